"""Hardening of solvers/: BLAS thread control, options checked by solve, huge energies refused at
once, half_filling with an asymmetric bath (each test reproduces a reported defect)."""

import functools
import os
import subprocess
import sys

import numpy as np
import pytest

import solvers
from solvers import (AndersonModel, SolverResult, UnknownOptionError, register_solver,
                     set_solver_threads, solve, solve_many, solver_threads)
from solvers import registry

SMALL = AndersonModel(U=2.0, eps_d=-0.7, beta=10.0, bath_eps=[-0.4, 0.6], bath_v=[0.4, 0.3])


@pytest.fixture
def clean_registry(monkeypatch):
    for table in ("_REGISTRY", "_CHECKS", "_IDENTITIES", "_BATCHES"):
        monkeypatch.setattr(registry, table, dict(getattr(registry, table)))


@pytest.fixture
def restore_threads():
    previous = solver_threads()
    yield
    set_solver_threads(previous)


def _blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


# ------------------------------------------------------------------ BLAS threads
def test_solvers_run_with_the_chosen_blas_thread_count(clean_registry, restore_threads):
    """The README's `solve("ed", model)` took 69-122 s instead of 1.9 s: the Python API let
    OpenBLAS use every core. Solves run with solver_threads() threads (default 1), set by
    MLDMFT_SOLVER_THREADS or set_solver_threads, and the libraries' setting is restored."""
    seen = []

    def probe(model: AndersonModel) -> SolverResult:
        seen.append(_blas_threads())
        return solve("hubbard_i", model)

    register_solver("probe", probe, batch=lambda models: [probe(m) for m in models])
    register_solver("probe_loop", probe)
    if not _blas_threads():
        pytest.skip("no BLAS thread pool found by threadpoolctl")
    outside = _blas_threads()
    for n in (1, 2, 1):
        set_solver_threads(n)
        seen.clear()
        solve("probe", SMALL)
        solve_many("probe", [SMALL, SMALL])
        solve_many("probe_loop", [SMALL])
        assert seen == [[n] * len(outside)] * 4
        assert _blas_threads() == outside
    set_solver_threads(None)              # no limit: the libraries keep their own setting
    seen.clear()
    solve("probe", SMALL)
    assert seen == [outside]


@pytest.mark.parametrize("value", [0, -1, 2.5, "two", True])
def test_set_solver_threads_refuses_non_counts(value, restore_threads):
    with pytest.raises(ValueError, match="positive integer"):
        set_solver_threads(value)


@pytest.mark.parametrize("env, expected", [(None, "1"), ("3", "3"), ("none", "None"),
                                           ("abc", "ValueError")])
def test_thread_count_from_the_environment(env, expected):
    code = "import solvers\nprint(solvers.solver_threads())\n"
    environ = {k: v for k, v in os.environ.items() if k != "MLDMFT_SOLVER_THREADS"}
    if env is not None:
        environ["MLDMFT_SOLVER_THREADS"] = env
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=environ, timeout=120)
    if expected == "ValueError":
        assert run.returncode != 0
        assert "MLDMFT_SOLVER_THREADS must be a positive integer" in run.stderr
    else:
        assert run.stdout.strip() == expected, run.stderr


# ------------------------------------------------------------- options checked by solve
@pytest.mark.parametrize("name, options, message", [
    ("ed", {"cutof": 1e-8}, r"solver 'ed' has no option 'cutof' \(did you mean 'cutoff'\?\)"),
    ("ed", {"cutoff": "1e-8"}, "solver 'ed': option 'cutoff' must be a number, got '1e-8'"),
    ("ed", {"n_iw": True}, "solver 'ed': option 'n_iw' must be an integer, got True"),
    ("ed", {"use_symmetry": "no"}, "option 'use_symmetry' must be true or false, got 'no'"),
    ("ipt", {"n_iw": 512.0}, "option 'n_iw' must be an integer, got 512.0"),
    ("hubbard_i", {"n_l": "80"}, "option 'n_l' must be an integer"),
])
def test_solve_refuses_bad_options_in_one_line_before_work(clean_registry, name, options,
                                                           message):
    calls = []
    original = registry._REGISTRY[name]

    @functools.wraps(original)
    def spy(model, **kw):
        calls.append(model)
        return original(model, **kw)

    registry._REGISTRY[name] = spy
    with pytest.raises(ValueError, match=message) as err:
        solve(name, SMALL, **options)
    assert "\n" not in str(err.value) and calls == []


def test_unknown_option_is_a_value_error_and_a_type_error():
    with pytest.raises(UnknownOptionError) as err:
        solve("ipt", SMALL, n_matsubara=10)
    assert isinstance(err.value, ValueError) and isinstance(err.value, TypeError)


def test_ml_extrapolate_must_be_a_bool():
    """solve("ml", model, extrapolate="no") extrapolated: the string counted as true."""
    pytest.importorskip("torch")
    import mldmft.ml  # noqa: F401  (registers "ml")
    with pytest.raises(ValueError, match="option 'extrapolate' must be true or false, got 'no'"):
        solve("ml", SMALL, extrapolate="no")


@pytest.mark.parametrize("field, value", [("bath_v", [0.4 + 0.1j, 0.3]),
                                          ("bath_v", np.array([0.4 + 0j, 0.3])),
                                          ("bath_eps", [0.1j, 0.6])])
def test_complex_bath_is_refused_by_name(field, value):
    kw = dict(U=2.0, eps_d=-0.7, beta=10.0, bath_eps=[-0.4, 0.6], bath_v=[0.4, 0.3])
    kw[field] = value
    with pytest.raises(ValueError, match=f"AndersonModel.{field} must be real"):
        AndersonModel(**kw)


@pytest.mark.parametrize("value", [["a", 0.3], [True, False], [0.1, None]])
def test_non_numeric_bath_is_refused_by_name(value):
    with pytest.raises(ValueError, match="AndersonModel.bath_v must be a 1-d array of real"):
        AndersonModel(U=2.0, eps_d=-0.7, beta=10.0, bath_eps=[-0.4, 0.6], bath_v=value)


# ------------------------------------------------------------ huge energies
HUGE = AndersonModel(U=1e14, eps_d=-5e13, beta=10.0, bath_eps=[-0.5, 0.5], bath_v=[0.5, 0.5])


@pytest.mark.parametrize("name, who", [("ed", "ED: "), ("hubbard_i", "Hubbard-I: "),
                                       ("ed2", "ED: ")])
def test_huge_energies_are_refused_at_once(name, who):
    """ED of U = 1e14 hung in the Legendre pole kernel (a recursion of ~6 sqrt(beta |e|/2) =
    1e8 steps); IPT refused it. Now every pole-based solver refuses before diagonalising."""
    with pytest.raises(ValueError, match=f"{who}beta \\|e\\| = 10 x 5e\\+13 = 5e\\+14 exceeds "
                                         "1e\\+12: .*units of the half bandwidth D") as err:
        solve(name, HUGE)
    assert "\n" not in str(err.value)


def test_the_pole_kernel_itself_refuses_runaway_products():
    from solvers.legendre import MAX_BETA_ENERGY, g_l_from_poles
    with pytest.raises(ValueError, match="exceeds 1e\\+12"):
        g_l_from_poles([1.0], [5e13], 10.0, 80)
    # at the bound the series is still computed (and reported truncated by the solvers); a far
    # pole of a bath fit (beta |e| = 1e9, seen in ED-DMFT at beta 30) is solved
    assert np.all(np.isfinite(g_l_from_poles([1.0], [3.35e7], 30.0, 80)))
    g_l = g_l_from_poles([1.0], [MAX_BETA_ENERGY / 1e8], 1e8, 80)
    assert np.all(np.isfinite(g_l))


def test_largest_accepted_beta_still_solves():
    model = AndersonModel(U=2.0, eps_d=-0.7, beta=1e8, bath_eps=[-0.4, 0.6], bath_v=[0.4, 0.3])
    with pytest.warns(solvers.SolverWarning, match="Legendre"):
        res = solve("ed", model)
    assert np.all(np.isfinite(res.g_iw)) and not res.converged


# -------------------------------------------------------- half_filling, asymmetric bath
def test_half_filling_with_an_asymmetric_bath_is_refused(tmp_path):
    """half_filling: true with an asymmetric bath gave density 0.983 silently."""
    from mldmft.modelfile import ModelFileError, load_model
    asym = {"U": 2.0, "half_filling": True, "beta": 20.0, "bath_eps": [-0.9, 0.3],
            "bath_v": [0.4, 0.4]}
    with pytest.raises(ValueError, match="'half_filling: true' sets eps_d = -U/2, which is half "
                                         "filling only with a particle-hole symmetric bath"):
        AndersonModel.from_dict(asym)
    path = tmp_path / "model.yaml"
    path.write_text("U: 2.0\nhalf_filling: true\nbeta: 20.0\nbath_eps: [-0.9, 0.3]\n"
                    "bath_v: [0.4, 0.4]\n")
    with pytest.raises(ModelFileError, match="model.yaml: 'half_filling: true'"):
        load_model(path)
    sym = dict(asym, bath_eps=[-0.3, 0.3])
    model = AndersonModel.from_dict(sym)
    assert model.eps_d == -1.0 and solve("hubbard_i", model).density == 1.0
    cont = {"U": 2.0, "half_filling": True, "beta": 20.0,
            "delta_iw_real": [0.0] * 4, "delta_iw_imag": [-0.1, -0.05, -0.03, -0.02]}
    assert AndersonModel.from_dict(cont).is_particle_hole_symmetric()
    with pytest.raises(ValueError, match="half_filling"):
        AndersonModel.from_dict(dict(cont, delta_iw_real=[0.01] * 4))
