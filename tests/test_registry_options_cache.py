"""The registry builds a solver's options once per ``(solver, options)`` and hands the built
object to a solver that registered ``built``: the same results, the same refusals."""

from dataclasses import dataclass

import numpy as np
import pytest

from solvers import AndersonModel, SolverOptions, SolverResult, register_solver, solve, solve_many
from solvers import registry
from solvers.ipt import solve_ipt, solve_ipt_many

MODELS = [AndersonModel(U=u, eps_d=e, beta=20.0, bath_eps=[-0.6, 0.1, 0.7],
                        bath_v=[0.4, 0.3, 0.5]) for u, e in ((2.0, -1.0), (2.5, -0.7),
                                                             (1.5, -0.2))]


@pytest.fixture
def clean_registry(monkeypatch):
    for table in ("_REGISTRY", "_OPTIONS", "_CHECKS", "_IDENTITIES", "_BATCHES",
                  "_BUILT_BATCHES", "_BUILT"):
        monkeypatch.setattr(registry, table, dict(getattr(registry, table)))


@dataclass(frozen=True)
class ToyOptions(SolverOptions):
    scale: float = 1.0
    labels: tuple | list = ()


def _toy_result(model: AndersonModel, scale: float) -> SolverResult:
    r = solve("hubbard_i", model, n_iw=64, n_l=40)
    return SolverResult(solver="toy", beta=r.beta, g_iw=r.g_iw, sigma_iw=r.sigma_iw, g_l=r.g_l,
                        density=scale * r.density)


def _register_toy(seen: list):
    def one(model: AndersonModel, *, scale: float = 1.0, labels=()) -> SolverResult:
        raise AssertionError("the keyword function is not called when built is registered")

    def built(models, opts):
        seen.append(opts)
        return [_toy_result(m, opts.scale) for m in models]

    register_solver("toy", one, options=ToyOptions, built=built)


def test_solve_and_solve_many_hand_the_built_options_to_built(clean_registry):
    seen = []
    _register_toy(seen)
    out = solve_many("toy", MODELS, scale=2.0)
    one = solve("toy", MODELS[0], scale=2.0)
    assert all(isinstance(o, ToyOptions) and o.scale == 2.0 for o in seen)
    assert seen[0] is seen[1]               # the same options: built once
    assert [r.density for r in out] == [2.0 * solve("hubbard_i", m, n_iw=64, n_l=40).density
                                        for m in MODELS]
    assert one.density == out[0].density
    solve("toy", MODELS[0], scale=3.0)
    assert seen[2] is not seen[0] and seen[2].scale == 3.0


def test_cached_options_keep_every_refusal(clean_registry):
    seen = []
    _register_toy(seen)
    solve("toy", MODELS[0], scale=2)         # an int for a float option: accepted
    assert seen[-1].scale == 2.0 and isinstance(seen[-1].scale, float)
    with pytest.raises(ValueError, match="option 'scale' must be a number"):
        solve("toy", MODELS[0], scale="2")
    with pytest.raises(ValueError, match="did you mean 'scale'"):
        solve_many("toy", MODELS, scal=2.0)
    # a value equal to an accepted one but of a refused type is refused, not served the cache
    solve("ipt", MODELS[0], n_iw=512)
    with pytest.raises(ValueError, match="option 'n_iw' must be an integer, got 512.0"):
        solve("ipt", MODELS[0], n_iw=512.0)
    with pytest.raises(ValueError, match="option 'n_iw' must be an integer"):
        solve("ipt", MODELS[0], n_iw=True)


def test_unhashable_option_values_are_built_every_time(clean_registry):
    seen = []
    _register_toy(seen)
    solve("toy", MODELS[0], labels=["a"])
    solve("toy", MODELS[0], labels=["a"])
    assert seen[0] is not seen[1] and seen[0] == seen[1]
    solve("toy", MODELS[0], labels=("a",))
    solve("toy", MODELS[0], labels=("a",))
    assert seen[2] is seen[3]
    solve("toy", MODELS[0], labels=(1, 2))
    solve("toy", MODELS[0], labels=(1.0, 2.0))     # equal, but items of other types
    solve("toy", MODELS[0], labels=(True, 2))
    assert seen[4] is not seen[5] and seen[5] is not seen[6] and seen[4] is not seen[6]


def test_registering_again_drops_the_built_options(clean_registry):
    seen = []
    _register_toy(seen)
    solve("toy", MODELS[0], scale=2.0)

    @dataclass(frozen=True)
    class Stricter(SolverOptions):
        scale: float = 1.0

        def check(self) -> None:
            if self.scale > 1.5:
                raise ValueError(f"scale must be <= 1.5, got {self.scale}")

    register_solver("toy", lambda m, *, scale=1.0: _toy_result(m, scale), replace=True,
                    options=Stricter)
    with pytest.raises(ValueError, match="scale must be <= 1.5"):
        solve("toy", MODELS[0], scale=2.0)


def test_built_needs_an_options_class(clean_registry):
    with pytest.raises(ValueError, match="built needs the options class"):
        register_solver("toy", lambda m: None, built=lambda models, opts: [])


@pytest.mark.parametrize("options", [{}, {"n_iw": 256, "n_l": 40, "tol": 1e-11}])
def test_registry_path_equals_the_keyword_functions_bit_for_bit(options):
    """``solve``/``solve_many`` (built options, cached) == ``solve_ipt``/``solve_ipt_many``."""
    for _ in range(2):                       # the second time from the cache
        many = solve_many("ipt", MODELS, **options)
        direct = solve_ipt_many(MODELS, **options)
        for a, b, m in zip(many, direct, MODELS):
            one, alone = solve("ipt", m, **options), solve_ipt(m, **options)
            for x, y in ((a, b), (one, alone)):
                np.testing.assert_array_equal(x.g_iw, y.g_iw)
                np.testing.assert_array_equal(x.sigma_iw, y.sigma_iw)
                np.testing.assert_array_equal(x.g_l, y.g_l)
                assert x.density == y.density and x.double_occupancy == y.double_occupancy
