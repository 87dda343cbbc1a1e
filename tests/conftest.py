"""Shared fixtures; BLAS threads are limited so tests stay fast on loaded 2-core machines."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from solvers import AndersonModel  # noqa: E402

# Literature model (mldmft/examples/literature_nb8.yaml): Nb = 8, U = 2, half filling, V = sqrt(0.25/8).
LIT_BATH_EPS = [-1.5, -0.9, -0.4, -0.1, 0.1, 0.4, 0.9, 1.5]
LIT_BATH_V = [float(np.sqrt(0.25 / 8))] * 8


@pytest.fixture(scope="session")
def literature_model() -> AndersonModel:
    return AndersonModel(U=2.0, eps_d=-1.0, beta=50.0, bath_eps=LIT_BATH_EPS, bath_v=LIT_BATH_V)


def random_model(seed: int, nb: int, beta: float, U: float | None = None,
                 half_filling: bool = False) -> AndersonModel:
    """A reproducible random Anderson model with a Bethe-like bath."""
    rng = np.random.default_rng(seed)
    U = float(rng.uniform(0.5, 4.0)) if U is None else U
    if half_filling:
        half = rng.uniform(0.05, 1.2, nb // 2)
        eps = np.concatenate([-half, half] + ([np.zeros(1)] if nb % 2 else []))
        v = np.concatenate([rng.uniform(0.1, 0.5, nb // 2)] * 2
                           + ([rng.uniform(0.1, 0.5, 1)] if nb % 2 else []))
        eps_d = -U / 2
    else:
        eps = rng.uniform(-1.5, 1.5, nb)
        v = rng.uniform(0.1, 0.5, nb)
        eps_d = float(rng.uniform(-U, 0.5))
    return AndersonModel(U=U, eps_d=eps_d, beta=beta, bath_eps=eps, bath_v=v)
