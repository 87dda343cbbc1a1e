"""Real-frequency spectra: ED poles, MaxEnt (ana_cont) and Pade; sum rule and positivity for
every method, MaxEnt against ED's own spectrum, spectra of DMFT points stored and plotted."""

import numpy as np
import pytest
from scipy.signal import find_peaks

from mldmft.dmft import DMFTOptions, load_sweep, plot_spectra, result_spectrum, sweep
from mldmft.dmft.spectra import pole_spectrum, real_mesh
from solvers import AndersonModel, solve

import importlib.util

needs_ana_cont = pytest.mark.skipif(importlib.util.find_spec("ana_cont") is None,
                                    reason="MaxEnt needs the optional ana_cont package")


@pytest.fixture(scope="module")
def ed_result():
    """Nb = 2 at beta = 50, U = 3, half filling: few well separated poles."""
    m = AndersonModel(U=3.0, eps_d=-1.5, beta=50.0, bath_eps=[-0.5, 0.5], bath_v=[0.4, 0.4])
    return solve("ed", m, n_iw=512)


def test_ed_exposes_poles_that_rebuild_g(ed_result):
    w, e = ed_result.info["pole_weights"], ed_result.info["pole_energies"]
    assert np.all(w > 0) and w.sum() == pytest.approx(1.0, abs=1e-12)
    z = 1j * ed_result.wn[:5]
    g = (w[None, :] / (z[:, None] - e[None, :])).sum(axis=1)
    np.testing.assert_allclose(g, ed_result.g_iw[:5], atol=1e-12)


@pytest.mark.parametrize("method", ["ed_poles", pytest.param("maxent", marks=needs_ana_cont),
                                    "pade"])
def test_sum_rule_and_positivity(ed_result, method):
    """int A = 1 and A >= 0. Lorentzians (eta = 0.05) leave weight beyond the mesh; it is
    computed exactly (arctan) and added back for ED, so 1e-3 covers the trapezoid error
    (mesh step 0.02 against eta = 0.05). Pade
    and MaxEnt: within 2% (Pade has Lorentzian tails beyond w = 4 too; MaxEnt fits the
    1/(i w_n) tail to the error 1e-4)."""
    om = real_mesh(4.0, 401)
    spec = result_spectrum(ed_result, method, om, eta=0.05)
    assert spec.method == method
    assert np.all(spec.a_w >= 0)
    if method == "ed_poles":
        assert spec.norm + spec.params["weight_outside"] == pytest.approx(1.0, abs=1e-3)
    else:
        assert spec.norm == pytest.approx(1.0, abs=0.02)


@needs_ana_cont
def test_maxent_agrees_with_ed_peaks_and_weights(ed_result):
    """MaxEnt of the ED G(i w_n) at beta = 50 (error 1e-4) against ED's broadened spectrum
    (eta = 0.1): the peaks at the same energies within 0.06 D (~ pi T, the resolution of
    Matsubara data at beta = 50; the mesh step is 0.02) and the weights below/between/above
    the split points |w| = 1.25 and 0 within 0.03 (MaxEnt spreads weight across minima)."""
    om = real_mesh(4.0, 401)
    ed = result_spectrum(ed_result, "ed_poles", om, eta=0.1)
    me = result_spectrum(ed_result, "maxent", om)
    pk_ed, _ = find_peaks(ed.a_w, height=0.15)
    pk_me, _ = find_peaks(me.a_w, height=0.15)
    main_ed = om[pk_ed][np.argsort(ed.a_w[pk_ed])[-4:]]   # Hubbard bands and the inner pair
    for x in main_ed:
        assert np.min(np.abs(om[pk_me] - x)) <= 0.06, (x, om[pk_me])
    for lo, hi in [(-4, -1.25), (-1.25, 0.0), (0.0, 1.25), (1.25, 4)]:
        sel = (om >= lo) & (om <= hi)
        w_ed = np.trapezoid(ed.a_w[sel], om[sel])
        w_me = np.trapezoid(me.a_w[sel], om[sel])
        assert abs(w_ed - w_me) < 0.03, (lo, hi, w_ed, w_me)


def test_pole_spectrum_exact_lorentzian():
    om = real_mesh(2.0, 2001)
    spec = pole_spectrum(np.array([0.5, 0.5]), np.array([-0.5, 0.5]), om, eta=0.1)
    exact = 0.5 / (np.pi * 0.1) + 0.5 * 0.1 / (np.pi * (1.0 + 0.01))  # both Lorentzians at 0.5
    assert spec.a_w[np.argmin(np.abs(om - 0.5))] == pytest.approx(exact, rel=1e-12)
    with pytest.raises(ValueError, match="eta must be > 0"):
        pole_spectrum(np.ones(1), np.zeros(1), om, eta=0.0)


def test_maxent_refuses_a_solver_without_poles_for_ed_method():
    m = AndersonModel(U=1.0, eps_d=-0.5, beta=10.0, bath_eps=[0.0], bath_v=[0.5])
    r = solve("ipt", m, n_iw=128)
    with pytest.raises(ValueError, match="exposes no poles"):
        result_spectrum(r, "ed_poles")
    with pytest.raises(ValueError, match="unknown spectrum method"):
        result_spectrum(r, "bryan")


@pytest.mark.parametrize("lattice", ["bethe", "square"])
def test_ed_dmft_point_spectra_through_the_lattice(tmp_path, lattice):
    """ED-DMFT (Nb = 4, beta = 20): A(w) = -Im hilbert(w + i eta + mu - Sigma(w + i eta))/pi is
    >= 0, holds the weight 1 up to the Lorentzian tails beyond |w| = 6 (< 2 eta/(pi 5)), is
    stored in HDF5 and plotted; the metal at U = 1 has a quasiparticle peak at w = 0, the
    insulator at U = 5 a gap."""
    out = tmp_path / "ed.h5"
    pts = sweep("ed", 20.0, [1.0, 5.0], "up", lattice=lattice,
                options=DMFTOptions(n_iw=256, tol=1e-5),
                solver_options={"n_bath": 4}, out=out,
                spectra={"eta": 0.05, "omega_max": 6.0, "n_omega": 601})
    for p in pts:
        s = p.spectrum
        assert s.method == "ed_poles" and s.params["lattice"] == lattice
        assert np.all(s.a_w >= 0)
        assert s.norm == pytest.approx(1.0, abs=2 * 0.05 / (np.pi * 5) + 2e-3)
    a0 = [p.spectrum.a_w[300] for p in pts]  # w = 0
    assert a0[0] > 0.3 and a0[1] < 0.05
    back = load_sweep(out)
    np.testing.assert_allclose(back[1].spectrum.a_w, pts[1].spectrum.a_w)
    assert back[1].spectrum.params["eta"] == 0.05
    png = plot_spectra(back, tmp_path / "a.png")
    assert png.stat().st_size > 10_000


@needs_ana_cont
def test_ipt_sweep_spectra_by_maxent(tmp_path):
    pts = sweep("ipt", 20.0, [1.0], "up", options=DMFTOptions(n_iw=256), spectra={"n_omega": 201})
    s = pts[0].spectrum
    assert s.method == "maxent" and s.params["package"] == "ana_cont"
    assert np.all(s.a_w >= 0) and s.norm == pytest.approx(1.0, abs=0.02)


def test_cli_solve_stores_the_spectrum(tmp_path, capsys):
    import h5py

    from mldmft.cli import main

    model = tmp_path / "m.yaml"
    model.write_text("U: 3.0\neps_d: -1.5\nbeta: 50.0\nbath_eps: [-0.5, 0.5]\n"
                     "bath_v: [0.4, 0.4]\n")
    out = tmp_path / "r.h5"
    assert main(["solve", str(model), "--out", str(out), "--spectrum", "--eta", "0.1"]) == 0
    assert "spectrum       ed_poles" in capsys.readouterr().out
    with h5py.File(out) as f:
        assert f["spectrum"].attrs["method"] == "ed_poles"
        assert np.all(f["spectrum/a_w"][()] >= 0)
        assert '"eta": 0.1' in f["spectrum"].attrs["params"]
