"""Typed solver options (one frozen dataclass per solver, checked when built) and typed
diagnostics on results (:class:`solvers.Diagnostics`)."""

import dataclasses
import inspect

import numpy as np
import pytest

import solvers
from solvers import (AndersonModel, Diagnostics, SolverOptions, SolverResult,
                     UnknownOptionError, available_solvers, check_options, options_class,
                     register_solver, solve, solve_many)
from solvers import registry

SHIPPED = ("ed", "ed1", "ed2", "ed3", "ed_fit", "hubbard_i", "ipt", "nca")
MODEL = AndersonModel(U=1.0, eps_d=-0.3, beta=10.0, bath_eps=[0.2], bath_v=[0.5])


@pytest.fixture
def clean_registry(monkeypatch):
    for table in ("_REGISTRY", "_OPTIONS", "_CHECKS", "_IDENTITIES", "_BATCHES"):
        monkeypatch.setattr(registry, table, dict(getattr(registry, table)))


def _signature_defaults(func) -> dict:
    params = list(inspect.signature(func).parameters.values())[1:]
    return {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY}


# ------------------------------------------------------------------ one class per solver
@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_solver_registers_a_frozen_options_class(name):
    cls = options_class(name)
    assert issubclass(cls, SolverOptions) and cls.__dataclass_params__.frozen
    opts = check_options(name, {})
    assert isinstance(opts, cls)
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.n_l = 3


@pytest.mark.parametrize("name, func", [("ed", solvers.ed.solver.solve_ed),
                                        ("ed_fit", solvers.ed_fit.solve_ed_fit),
                                        ("hubbard_i", solvers.hubbard_i.solve_hubbard_i),
                                        ("ipt", solvers.ipt.solve_ipt),
                                        ("ipt", solvers.ipt.solve_ipt_many),
                                        ("nca", solvers.nca.solve_nca)])
def test_options_class_defaults_are_the_keyword_functions_defaults(name, func):
    """The class and the public keyword function say the same (ed_fit: its own options; the ED
    ones it passes on are EDOptions' defaults)."""
    defaults = check_options(name, {}).kwargs()
    own = _signature_defaults(func)
    assert {k: defaults[k] for k in own} == own
    if name == "ed_fit":
        ed = check_options("ed", {}).kwargs()
        assert {k: defaults[k] for k in ed if k != "n_iw"} == {k: v for k, v in ed.items()
                                                            if k != "n_iw"}
    else:
        assert set(defaults) == set(own)


def test_fixed_bath_solvers_take_every_ed_fit_option_but_n_bath():
    names = set(options_class("ed_fit").names())
    for n in (1, 2, 3):
        assert set(options_class(f"ed{n}").names()) == names - {"n_bath"}
        assert check_options(f"ed{n}", {}).n_bath == n
    with pytest.raises(UnknownOptionError, match="solver 'ed2' fixes n_bath=2; use 'ed_fit'"):
        check_options("ed2", {"n_bath": 3})


# ------------------------------------------------------------------ checking = building
@pytest.mark.parametrize("name, options, fragment", [
    ("ed", {"cutof": 1e-8}, "solver 'ed' has no option 'cutof' (did you mean 'cutoff'?)"),
    ("ed", {"cutoff": "1e-8"}, "solver 'ed': option 'cutoff' must be a number, got '1e-8'"),
    ("ed", {"n_iw": True}, "solver 'ed': option 'n_iw' must be an integer, got True"),
    ("ed", {"seed": 1.0}, "option 'seed' must be an integer, got 1.0"),
    ("ed", {"method": "qr"}, "unknown ED method 'qr'"),
    ("ed", {"n_tau": 1}, "n_tau must be >= 2"),
    ("ed3", {"cutoff": 0.0}, "solver 'ed3': cutoff must lie in (0, 1)"),
    ("ed1", {"use_symmetry": 1}, "option 'use_symmetry' must be true or false, got 1"),
    ("ed_fit", {"n_bath": 0}, "n_bath must be between 1 and 8"),
    ("ed_fit", {"n_iw": 0}, "n_iw must be an integer >= 1, got 0"),
    ("ed_fit", {"weight_power": -1.0}, "weight_power must be finite and >= 0"),
    ("ed_fit", {"n_restarts": -1}, "n_restarts must be an integer >= 0"),
    ("ed_fit", {"symmetric": "yes"}, "option 'symmetric' must be true or false or null"),
    ("ipt", {"n_iw": 8}, "n_iw must be an integer >= 16, got 8"),
    ("ipt", {"density_guess": 2.0}, "density_guess (both spins) must lie in (0, 2)"),
    ("ipt", {"fft_tau_points": 64}, "fft_tau_points must be an integer >= 65"),
    ("hubbard_i", {"max_iter": 0}, "max_iter must be an integer >= 1"),
    ("hubbard_i", {"tol": float("inf")}, "tol must be a finite number > 0"),
    ("nca", {"n_tau": 10}, "n_tau must be an integer >= 16"),
    ("nca", {"mixing": 0.0}, "mixing must lie in (0, 1]"),
    ("nca", {"n_quad": 0}, "n_quad must be an integer >= 1"),
])
def test_bad_options_are_one_line_value_errors_naming_the_option(name, options, fragment):
    with pytest.raises(ValueError) as err:
        check_options(name, options)
    assert fragment in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ValueError) as again:        # solve refuses them the same way
        solve(name, MODEL, **options)
    assert str(again.value) == str(err.value)


def test_options_are_checked_without_solving_a_model(clean_registry):
    def never(model, **kw):
        raise AssertionError("check_options solved a model")

    for name in SHIPPED:
        registry._REGISTRY[name] = never
        assert check_options(name, {"n_iw": 64, "n_l": 30}).result_sizes() == (64, 30)


def test_numbers_are_stored_as_plain_python_numbers():
    opts = check_options("ipt", {"n_iw": np.int64(64), "tol": 1, "mixing": np.float32(0.5)})
    assert type(opts.n_iw) is int and type(opts.tol) is float and type(opts.mixing) is float
    assert opts.kwargs()["tol"] == 1.0


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("options", [{}, {"n_iw": 64, "n_l": 30}])
def test_result_sizes_are_those_of_a_solve(name, options):
    """What the options say a result holds (used to check a database's n_l and n_sigma before
    any work) is what a solve returns."""
    res = solve(name, MODEL, **options)
    assert (res.g_iw.size, res.g_l.size) == check_options(name, options).result_sizes()


def test_the_typed_and_keyword_paths_give_the_same_result():
    m = AndersonModel(U=2.0, eps_d=-0.7, beta=10.0, bath_eps=[-0.4, 0.6], bath_v=[0.4, 0.3])
    for name, func in (("ipt", solvers.ipt.solve_ipt), ("hubbard_i",
                                                         solvers.hubbard_i.solve_hubbard_i)):
        a, b = solve(name, m, n_iw=128, n_l=40), func(m, n_iw=128, n_l=40)
        np.testing.assert_array_equal(a.g_l, b.g_l)
        np.testing.assert_array_equal(a.g_iw, b.g_iw)


# ------------------------------------------------------------------ other registered solvers
def test_a_solver_without_an_options_class_gets_one_from_its_signature(clean_registry):
    calls = []

    def toy(model: AndersonModel, *, need: int, scale: float = 1.0) -> SolverResult:
        calls.append((need, scale))
        return dataclasses.replace(solve("hubbard_i", model), solver="toy")

    register_solver("toy", toy)
    opts = check_options("toy", {"need": 2})
    assert opts.need == 2 and opts.scale == 1.0 and opts.result_sizes() is None
    for options, fragment in (({}, "solver 'toy' needs option(s) 'need'"),
                              ({"need": 1, "scal": 2.0}, "did you mean 'scale'"),
                              ({"need": 1, "scale": "2"}, "option 'scale' must be a number")):
        with pytest.raises(ValueError) as err:
            solve("toy", MODEL, **options)
        assert fragment in str(err.value)
    assert calls == []
    solve_many("toy", [MODEL, MODEL], need=3, scale=2)
    assert calls == [(3, 2.0), (3, 2.0)]


def test_a_solver_taking_any_option_gets_the_unlisted_ones_unchecked(clean_registry):
    seen = []

    def passing(model, *, n_iw: int = 64, **rest):
        seen.append(dict(rest, n_iw=n_iw))
        return solve("ipt", model, n_iw=n_iw, **rest)

    register_solver("passing", passing)
    solve("passing", MODEL, n_l=30)
    assert seen == [{"n_l": 30, "n_iw": 64}]
    with pytest.raises(ValueError, match="option 'n_iw' must be an integer"):
        solve("passing", MODEL, n_iw=64.0)


def test_register_solver_refuses_an_options_class_that_is_not_one(clean_registry):
    with pytest.raises(ValueError, match="options must be a SolverOptions subclass"):
        register_solver("bad", lambda m: None, options=dict)


def test_every_registered_solver_has_options():
    pytest.importorskip("torch")
    import mldmft.ml  # noqa: F401  (registers "ml")
    from mldmft.ml.inference import MLOptions

    assert set(SHIPPED) | {"ml"} <= set(available_solvers())
    assert options_class("ml") is MLOptions
    assert check_options("ml", {"network": "demo_beta50"}).result_sizes() is None
    with pytest.raises(ValueError, match="solver 'ml': n_iw must be an integer >= 1, got 0"):
        check_options("ml", {"n_iw": 0})


# ------------------------------------------------------------------ typed diagnostics
def test_diagnostics_type_the_entries_other_modules_read():
    d = Diagnostics.from_info({"warnings": ["a"], "spread": [0.1, 0.2], "causal_step": 1,
                               "trust_scale": None, "unlike_training": np.bool_(True),
                               "fit_residual": 0.5, "bath_eps": [0.1], "kept_states": [1]})
    assert d.warnings == ("a",) and d.spread.dtype == float and d.causal_step == 1.0
    assert d.unlike_training is True and d.extrapolated is False and d.trust_scale is None
    assert d.fit_residual == 0.5 and d.bath_eps.tolist() == [0.1] and d.bath_v is None
    empty = Diagnostics.from_info({})
    assert empty.warnings == () and empty.spread is None and not empty.unlike_training
    assert d.to_info("warnings", "causal_step") == {"warnings": ["a"], "causal_step": 1.0}


@pytest.mark.parametrize("info, fragment", [
    ({"warnings": "one line"}, "info['warnings'] must be a list of strings"),
    ({"warnings": [1]}, "warnings must be a list of strings"),
    ({"causal_step": "0.5"}, "info['causal_step'] must be a number or None"),
    ({"causal_step": 1.5}, "causal_step must lie in [0, 1]"),
    ({"unlike_training": "no"}, "info['unlike_training'] must be true or false"),
    ({"spread": ["x"]}, "info['spread'] must be an array of numbers"),
])
def test_diagnostics_of_the_wrong_type_are_named(info, fragment):
    with pytest.raises(ValueError) as err:
        Diagnostics.from_info(info)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_every_solver_reports_its_diagnostics_typed():
    m = AndersonModel(U=2.0, eps_d=-0.7, beta=10.0, bath_eps=[-0.4, 0.0, 0.6],
                      bath_v=[0.4, 0.2, 0.3])
    for name in SHIPPED:
        res = solve(name, m, n_iw=128, n_l=40)
        d = res.diagnostics
        assert d.warnings == tuple(res.info.get("warnings", ())), name
        if name.startswith("ed") and name != "ed":
            assert d.fit_residual == res.info["fit_residual"]
            np.testing.assert_array_equal(d.bath_eps, res.info["bath_eps"])
            np.testing.assert_array_equal(d.bath_v, res.info["bath_v"])
            assert (d.fit_residual > 0) == (name in ("ed1", "ed2"))
        else:
            assert d.fit_residual is None and d.bath_eps is None
        assert d.spread is None and d.causal_step is None and not d.unlike_training


def test_stored_results_keep_their_info_and_diagnostics(tmp_path):
    from mldmft.results_io import read_result, write_result

    res = solve("ed2", MODEL.__class__(U=2.0, eps_d=-1.0, beta=10.0,
                                       bath_eps=[-0.5, -0.1, 0.1, 0.5], bath_v=[0.3] * 4),
                n_iw=64, n_l=30)
    back, _ = read_result(write_result(tmp_path / "r.h5", res, MODEL))
    assert set(back.info) == set(res.info) - {"kept_states", "pole_weights", "pole_energies"}
    a, b = res.diagnostics, back.diagnostics
    assert a.warnings == b.warnings and a.fit_residual == b.fit_residual
    np.testing.assert_array_equal(a.bath_eps, b.bath_eps)


def test_the_guard_reads_the_typed_diagnostics():
    from mldmft.dmft.steps import guard_reasons

    res = solve("ipt", AndersonModel(U=1.0, eps_d=-0.5, beta=10.0, bath_eps=[-0.5, 0.5],
                                     bath_v=[0.5, 0.5]), n_iw=128)
    assert guard_reasons(res, 0.1) == []
    flagged = dataclasses.replace(res, info=dict(res.info, spread=np.full(4, 0.2),
                                                 causal_step=0.5, unlike_training=True))
    assert guard_reasons(flagged, 0.1) == ["spread", "acausal", "unlike_training"]
    assert guard_reasons(flagged, 0.3) == ["acausal", "unlike_training"]
    with pytest.raises(ValueError, match="info\\['causal_step'\\] must be a number"):
        guard_reasons(dataclasses.replace(res, info={"causal_step": "low"}), 0.1)
