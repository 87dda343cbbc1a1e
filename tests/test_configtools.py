"""Typed configs from plain mappings (mldmft.configtools, solvers.check_keys): one set of checks
and one set of execution settings for every command."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mldmft.configtools import (EXECUTION_KEYS, build_dataclass, check_execution, check_fields,
                                typed)
from solvers import AndersonModel, check_keys


@dataclass(frozen=True)
class _Grid:
    beta: tuple[float, ...]
    n_iw: int = 512
    direction: str = "up"

    def __post_init__(self) -> None:
        if self.direction not in ("up", "down"):
            raise ValueError(f"grid.direction must be up or down, got {self.direction!r}")


def test_check_keys_names_unknown_and_missing_keys_in_one_line():
    check_keys({"U": 1.0}, ("U", "beta"))
    with pytest.raises(ValueError, match=r"^unknown key 'betta' \(did you mean 'beta'\?\); "
                                         r"allowed: U, beta$"):
        check_keys({"betta": 1.0}, ("U", "beta"))
    with pytest.raises(ValueError, match=r"^unknown keys 'x', 'y'; allowed: U, beta$"):
        check_keys({"x": 1, "y": 2}, ("U", "beta"))
    with pytest.raises(ValueError, match=r"^config: keys 'grid.U', 'grid.beta' are missing$"):
        check_keys({}, ("U", "beta"), ("U", "beta"), prefix="grid.", lead="config: ")
    # the model-file reader uses it
    with pytest.raises(ValueError, match="unknown model field 'bath_ep' \\(did you mean "
                                         "'bath_eps'\\?\\)"):
        AndersonModel.from_dict({"U": 1.0, "beta": 10.0, "eps_d": -0.5, "bath_ep": [0.1]})
    with pytest.raises(ValueError, match="model field 'beta' is missing"):
        AndersonModel.from_dict({"U": 1.0, "eps_d": -0.5})


def test_build_dataclass_checks_keys_types_and_the_class_checks():
    g = build_dataclass(_Grid, "grid", {"beta": [50, 100.0], "n_iw": 256}, tuples=("beta",))
    assert g == _Grid(beta=(50, 100.0), n_iw=256)
    assert build_dataclass(_Grid, "grid", {"beta": 50.0}, ("beta",), wrap_scalars=True).beta == (
        50.0,)
    cases = [({"beta": [50], "n_iv": 3}, "config: unknown key 'grid.n_iv' (did you mean "
                                         "'grid.n_iw'?)"),
             ({"n_iw": 3}, "config: key 'grid.beta' is missing"),
             ({"beta": [50], "n_iw": 2.5}, "grid.n_iw must be an integer, got 2.5"),
             ({"beta": [50], "direction": "sideways"}, "grid.direction must be up or down"),
             ([1, 2], "grid: expected a mapping")]
    for values, message in cases:
        with pytest.raises(ValueError) as err:
            build_dataclass(_Grid, "grid", values, tuples=("beta",))
        assert message in str(err.value) and "\n" not in str(err.value)


def test_typed_and_check_fields():
    assert typed({"loop": {"n_iw": 512}}, "loop.n_iw", int) == 512
    with pytest.raises(ValueError, match="loop.n_iw must be an integer, got '512'"):
        typed({"loop": {"n_iw": "512"}}, "loop.n_iw", int)
    check_fields(_Grid(beta=(1.0,)))
    with pytest.raises(ValueError, match="n_iw must be an integer, got 2.7"):
        check_fields(_Grid(beta=(1.0,), n_iw=2.7))


def test_generation_and_active_learning_share_the_execution_rules(tmp_path):
    from mldmft.active.config import RESUMABLE_KEYS, GenerationConfig
    from mldmft.database import GenerateConfig, SolverSpec
    from mldmft.database.store import RERUN_MAY_CHANGE

    check_execution(1, "dask", None, 1)
    bad = [((0, "local", None, 2), "chunk_size must be >= 1, got 0"),
           ((1, "mpi", None, 2), "backend must be 'local' or 'dask', got 'mpi'"),
           ((1, "local", 0, 2), "workers must be >= 1 (or null: all cores), got 0"),
           ((1, "local", None, 0), "dask.n_workers must be >= 1, got 0")]
    base = dict(out=str(tmp_path / "x.h5"), n_samples=1, seed=0,
                sampling=dict(kind="bethe_random", n_bath=2, U=1.0, beta=10.0, D=1.0,
                              half_filling=True), target=SolverSpec("ipt"), n_l=40, n_sigma=8)
    for (chunk_size, backend, workers, dask_workers), message in bad:
        with pytest.raises(ValueError, match=f"^generation.{message}".replace("(", r"\(")
                           .replace(")", r"\)")):
            GenerationConfig(chunk_size=chunk_size, backend=backend, workers=workers,
                             dask_workers=dask_workers)
        with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")
                           .replace(")", r"\)")):
            GenerateConfig(**base, chunk_size=chunk_size, backend=backend, workers=workers,
                           dask_workers=dask_workers).validate()
    # how a run is executed may change between reruns of both commands
    assert set(EXECUTION_KEYS) <= set(RERUN_MAY_CHANGE)
    assert {f"generation.{k}" for k in EXECUTION_KEYS if k != "progress"} <= set(RESUMABLE_KEYS)
    assert "progress" in RESUMABLE_KEYS
