"""solvers.solve_many: validation before work, batch registration, batched == one at a time."""

import dataclasses
import functools

import numpy as np
import pytest
from conftest import random_model

import solvers
from solvers import AndersonModel, SolverResult, register_solver, solve, solve_many, supports_batch
from solvers import registry


@pytest.fixture
def clean_registry(monkeypatch):
    """Registrations made in a test are undone after it."""
    for table in ("_REGISTRY", "_CHECKS", "_IDENTITIES", "_BATCHES"):
        monkeypatch.setattr(registry, table, dict(getattr(registry, table)))


def _fields(r: SolverResult) -> dict:
    return {f.name: getattr(r, f.name) for f in dataclasses.fields(r) if f.name != "wall_time"}


def assert_same_result(a: SolverResult, b: SolverResult, atol: float) -> None:
    """Every array and number of two results agree to ``atol`` (``info`` scalars too)."""
    fa, fb = _fields(a), _fields(b)
    for key in fa:
        va, vb = fa[key], fb[key]
        if key == "info":
            assert set(va) == set(vb), key
            for k in va:
                if isinstance(va[k], (float, np.floating)):
                    assert abs(va[k] - vb[k]) <= atol, (k, va[k], vb[k])
            continue
        if isinstance(va, np.ndarray) or isinstance(vb, np.ndarray):
            assert va.shape == vb.shape, key
            assert np.max(np.abs(va - vb), initial=0.0) <= atol, (key, np.max(np.abs(va - vb)))
        elif isinstance(va, float) and isinstance(vb, float):
            assert abs(va - vb) <= atol, (key, va, vb)
        else:
            assert va == vb, (key, va, vb)


MODELS = [random_model(s, 2, beta, half_filling=s % 2 == 0)
          for s, beta in zip(range(4), (5.0, 10.0, 20.0, 8.0))]


def test_empty_list_gives_empty_list():
    assert solve_many("ipt", []) == []
    assert solve_many("ed", (), cutoff=1e-12) == []


@pytest.mark.parametrize("name", ["ed", "nca"])
def test_loop_fallback_equals_solve(name):
    assert not supports_batch(name)
    many = solve_many(name, MODELS[:2])
    for m, r in zip(MODELS[:2], many):
        assert_same_result(r, solve(name, m), 0.0)


def test_wall_time_is_the_batch_time_per_model():
    many = solve_many("ed", MODELS)
    assert len({r.wall_time for r in many}) == 1
    assert many[0].wall_time > 0


@pytest.mark.parametrize("models, message", [
    (MODELS[0], "models must be a sequence of AndersonModel"),
    ("abc", "models must be a sequence"),
    ([MODELS[0], {"U": 1.0}], r"models\[1\] must be an AndersonModel, got dict"),
    ([MODELS[0], None], r"models\[1\] must be an AndersonModel"),
])
def test_bad_models_are_refused_before_any_work(models, message):
    with pytest.raises(ValueError, match=message):
        solve_many("ipt", models)


@pytest.mark.parametrize("name, options, message", [
    ("nosuch", {}, "unknown solver 'nosuch'"),
    ("ed", {"cutof": 1e-8}, "did you mean 'cutoff'"),
    ("ed", {"cutoff": "1e-8"}, "option 'cutoff' must be a number"),
    ("ipt", {"n_iw": True}, "option 'n_iw' must be an integer"),
    ("hubbard_i", {"n_l": 2.5}, "option 'n_l' must be an integer"),
])
def test_bad_options_are_refused_before_any_work(clean_registry, name, options, message):
    calls = []
    if name != "nosuch":
        original = registry._REGISTRY[name]

        @functools.wraps(original)  # same signature and annotations
        def spy(model, **kw):
            calls.append(model)
            return original(model, **kw)

        registry._REGISTRY[name] = spy
    with pytest.raises(ValueError, match=message) as err:
        solve_many(name, MODELS, **options)
    assert "\n" not in str(err.value)
    assert calls == []


def test_registered_batch_function_is_used(clean_registry):
    seen = []

    def one(model: AndersonModel, *, scale: float = 1.0) -> SolverResult:
        r = solve("hubbard_i", model)
        return dataclasses.replace(r, solver="toy", density=scale * r.density)

    def many(models, *, scale: float = 1.0):
        seen.append(len(models))
        return [one(m, scale=scale) for m in models]

    register_solver("toy", one, batch=many)
    assert supports_batch("toy")
    out = solve_many("toy", MODELS, scale=2.0)
    assert seen == [len(MODELS)]
    for m, r in zip(MODELS, out):
        assert r.density == 2.0 * solve("hubbard_i", m).density
    with pytest.raises(ValueError, match="option 'scale' must be a number"):
        solve_many("toy", MODELS, scale="2")
    assert seen == [len(MODELS)]
    # re-registering without a batch function removes it
    register_solver("toy", one, replace=True)
    assert not supports_batch("toy")


def test_batch_function_returning_the_wrong_count_is_an_error(clean_registry):
    def one(model: AndersonModel) -> SolverResult:
        return solve("hubbard_i", model)

    register_solver("short", one, batch=lambda models: [one(models[0])])
    with pytest.raises(RuntimeError, match="returned 1 results for 4 models"):
        solve_many("short", MODELS)


def test_supports_batch_refuses_unknown_names():
    with pytest.raises(ValueError, match="unknown solver"):
        supports_batch("nosuch")


def test_public_api():
    assert solvers.solve_many is solve_many and solvers.supports_batch is supports_batch
