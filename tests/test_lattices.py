"""Lattices of the DMFT loop: DOS, Hilbert transforms against independent quadratures, U = 0 on
every lattice, kinetic energy, the tabulated DOS, the registry, IPT-DMFT on the hypercubic lattice."""

import math

import numpy as np
import pytest
from scipy import integrate

from mldmft.dmft import (BetheLattice, CubicLattice, DMFTOptions, HypercubicLattice, Lattice,
                         SquareLattice, available_lattices, get_lattice, load_sweep,
                         register_lattice, sweep)
from mldmft.dmft.lattice import TabulatedLattice, square_dos
from solvers import fermi, matsubara_freqs

_QUAD = dict(limit=4000, epsabs=1e-13, epsrel=1e-12)


def _cquad(f, a, b, points=None):
    kw = dict(_QUAD, points=points) if points is not None else _QUAD
    return (integrate.quad(lambda x: f(x).real, a, b, **kw)[0]
            + 1j * integrate.quad(lambda x: f(x).imag, a, b, **kw)[0])


def _square_k(z, t, tp):
    """k-space: the kx integral in closed form, (1/2pi) int dkx 1/(z - b - a cos kx) =
    1/sqrt((z-b)^2 - a^2), then scipy quad over ky (independent of the DOS formula)."""
    def f(ky):
        a = -2 * t - 4 * tp * math.cos(ky)
        b = -2 * t * math.cos(ky)
        return 1 / (np.sqrt(z - b - a) * np.sqrt(z - b + a))
    return _cquad(f, 0, math.pi) / math.pi


def _reference(lat, z):
    if isinstance(lat, SquareLattice):
        return _square_k(z, lat.t, lat.tp)
    if isinstance(lat, CubicLattice):
        return _cquad(lambda q: _square_k(z - 2 * lat.t * math.cos(q), lat.t, 0.0),
                      0, math.pi) / math.pi
    if isinstance(lat, BetheLattice):
        return _cquad(lambda e: lat.dos(e) / (z - e), -lat.D, lat.D, points=[z.real])
    return _cquad(lambda e: lat.dos(e) / (z - e), -12, 12, points=[z.real])


LATTICES = {"bethe": BetheLattice(), "square": SquareLattice(),
            "square_tp": SquareLattice(tp=-0.05), "cubic": CubicLattice(),
            "hypercubic": HypercubicLattice()}


@pytest.mark.parametrize("name", list(LATTICES))
def test_u_zero_reproduces_the_free_local_g(name):
    """DMFT at U = 0 (IPT) on every lattice gives the free local G to 1e-8, checked against an
    independent quadrature (k-space for square/cubic, scipy quad over the DOS otherwise)."""
    lat = LATTICES[name]
    beta = 50.0
    mu = 0.0 if lat.particle_hole_symmetric else -0.1
    pts = sweep("ipt", beta, [0.0], "up", options=DMFTOptions(n_iw=256, tol=1e-11), lattice=lat,
                mu=mu)
    assert pts[0].converged
    wn = matsubara_freqs(beta, 256)
    for n in (0, 3, 40):
        ref = _reference(lat, 1j * wn[n] + mu)
        assert abs(pts[0].g_iw[n] - ref) < 1e-8, (n, pts[0].g_iw[n], ref)


@pytest.mark.parametrize("tp", [0.0, -0.05, 0.1])
def test_square_dos_normalised_with_second_moment(tp):
    """int rho = 1 and int rho e^2 = 4t^2 + 4t'^2 (scipy quad, split at the van Hove point)."""
    t = 0.25
    lat = SquareLattice(t=t, tp=tp)
    lo, hi = lat.band
    pts = [4 * tp]
    norm = integrate.quad(lambda e: square_dos(e, t, tp), lo, hi, points=pts, limit=500)[0]
    m2 = integrate.quad(lambda e: e * e * square_dos(e, t, tp), lo, hi, points=pts,
                        limit=500)[0]
    assert norm == pytest.approx(1.0, abs=1e-8)
    assert m2 == pytest.approx(4 * t * t + 4 * tp * tp, abs=1e-8)
    assert lat.second_moment == 4 * t * t + 4 * tp * tp
    # logarithmic van Hove singularity at e = 4t'
    assert square_dos(np.array([4 * tp + 1e-9]), t, tp)[0] > 3 * square_dos(
        np.array([4 * tp + 0.3]), t, tp)[0]


def test_square_dos_matches_a_brute_force_k_histogram():
    t, tp = 0.25, -0.05
    k = (np.arange(1200) + 0.5) * 2 * np.pi / 1200
    e = (-2 * t * (np.cos(k)[:, None] + np.cos(k)[None, :])
         - 4 * tp * np.cos(k)[:, None] * np.cos(k)[None, :]).ravel()
    hist, edges = np.histogram(e, bins=40, range=(-1.2, 1.2), density=True)
    mid = 0.5 * (edges[1:] + edges[:-1])
    lo, hi = SquareLattice(t=t, tp=tp).band
    # away from the log peak and the band edges (the k grid resolves neither within a bin)
    far = (np.abs(mid - 4 * tp) > 0.1) & (edges[:-1] > lo + 0.02) & (edges[1:] < hi - 0.02)
    x, w = np.polynomial.legendre.leggauss(20)
    exact = np.array([np.sum(w * square_dos(a + (b - a) * (x + 1) / 2, t, tp)) / 2
                      for a, b in zip(edges[:-1], edges[1:])])
    np.testing.assert_allclose(hist[far], exact[far], atol=2e-3)


@pytest.mark.parametrize("name", ["square", "hypercubic", "cubic"])
def test_kinetic_energy_of_the_free_lattice(name):
    """U = 0: E_kin = 2 int rho(e) e f(e) de (both spins), by scipy quad."""
    lat = LATTICES[name]
    beta = 20.0
    g = lat.g0_iw(beta, 4096)
    wn = matsubara_freqs(beta, 4096)
    ekin = lat.kinetic_energy(g, beta, 1j * wn)
    if isinstance(lat, HypercubicLattice):
        lo, hi = -8.0, 8.0
    else:
        lo, hi = lat.band
    x, w = lat._rule(0) if hasattr(lat, "_rule") else (None, None)
    if x is None:
        ref = 2 * integrate.quad(lambda e: lat.dos(e) * e * fermi(e, beta), lo, hi,
                                 limit=500)[0]
    else:  # rho already folded into the graded rule's weights (checked separately above)
        ref = 2 * float(np.sum(w * x * fermi(x, beta)))
    assert ekin == pytest.approx(ref, abs=1e-6)


def test_free_density_off_half_filling():
    lat = SquareLattice(tp=0.05)
    beta = 30.0
    x, w = lat._rule(0)
    ref = 2 * float(np.sum(w * fermi(x + 0.2, beta)))
    assert lat.free_density(-0.2, beta) == pytest.approx(ref, abs=1e-7)


def test_tabulated_dos_normalised_and_exact_for_the_interpolant(tmp_path):
    e = np.linspace(-1, 1, 2001)
    rho = 3.0 * np.sqrt(1 - e ** 2)  # an unnormalised semicircle
    path = tmp_path / "dos.dat"
    np.savetxt(path, np.column_stack([e, rho]))
    lat = get_lattice({"name": "file", "path": str(path)})
    assert lat.particle_hole_symmetric
    assert lat.second_moment == pytest.approx(0.25, abs=1e-5)
    z = np.array([0.03j, 0.4 + 0.05j, 2.0 + 1.0j])
    np.testing.assert_allclose(lat.hilbert(z), BetheLattice().hilbert(z), atol=5e-5)
    # exact for the piecewise-linear interpolant: 20-point Gauss-Legendre on every segment
    x, w = np.polynomial.legendre.leggauss(20)
    nodes = 0.5 * (e[:-1, None] + e[1:, None]) + 0.5 * np.diff(e)[:, None] * x
    ref = np.sum(0.5 * np.diff(e)[:, None] * w * lat.dos(nodes) / (z[1] - nodes))
    assert abs(lat.hilbert(z[1:2])[0] - ref) < 1e-10


@pytest.mark.parametrize("rows, message", [
    ("-1 0.5\n0 -0.2\n1 0.5\n", "negative density of states"),
    ("-1 0\n0 0\n1 0\n", "integrates to 0"),
    ("-1 0.5\n0 inf\n1 0.5\n", "not integrable"),
    ("-1 0.5\n1 0.5\n0 0.5\n", "increase strictly"),
    ("-1 0.5 3\n0 1 3\n", "two columns"),
])
def test_bad_dos_file_names_the_problem(tmp_path, rows, message):
    path = tmp_path / "bad.dat"
    path.write_text(rows)
    with pytest.raises(ValueError, match=message):
        TabulatedLattice(path=str(path))


def test_registry_unknown_and_custom_lattice():
    with pytest.raises(ValueError, match="unknown lattice 'kagome'"):
        get_lattice("kagome")
    with pytest.raises(ValueError, match=r"\|tp\| < t/2"):
        get_lattice("square", tp=0.2)
    assert {"bethe", "square", "cubic", "hypercubic", "file"} <= set(available_lattices())

    @register_lattice("test_flat")
    class Flat(Lattice):
        """Flat band of half width 1: G = log((z + 1)/(z - 1))/2."""

        D = 1.0
        second_moment = 1.0 / 3.0

        def dos(self, e):
            return np.where(np.abs(e) < 1, 0.5, 0.0)

        def hilbert(self, zeta):
            zeta = np.asarray(zeta, dtype=complex)
            return 0.5 * (np.log(zeta + 1) - np.log(zeta - 1))

        def __hash__(self):
            return 1

    pts = sweep("ipt", 20.0, [0.0, 1.0], "up", lattice="test_flat", options=DMFTOptions(n_iw=256))
    assert all(p.converged for p in pts)
    assert pts[0].g_iw[0] == pytest.approx(Flat().hilbert(1j * np.pi / 20.0), abs=1e-10)


def test_lattice_is_stored_with_the_sweep(tmp_path):
    out = tmp_path / "sq.h5"
    sweep("ipt", 20.0, [1.0], "up", lattice={"name": "square", "tp": 0.0},
          options=DMFTOptions(n_iw=256), out=out)
    import json

    import h5py

    with h5py.File(out) as f:
        meta = json.loads(f.attrs["meta"])
    assert meta["lattice"] == {"name": "square", "t": 0.25, "tp": 0.0}
    assert load_sweep(out)[0].U == 1.0
    with pytest.raises(ValueError, match="holds another sweep.*lattice"):
        sweep("ipt", 20.0, [1.0], "up", lattice="cubic", options=DMFTOptions(n_iw=256), out=out)


def test_ipt_mott_transition_on_the_hypercubic_lattice():
    """IPT-DMFT, hypercubic lattice (t* = 1/sqrt 2, second moment 1/4 as the Bethe lattice's),
    beta = 100, half filling: a first-order transition with a coexistence region. The published
    IPT values for the Bethe lattice at this temperature (Georges, Kotliar, Krauth, Rozenberg,
    RMP 68, 13 (1996)) are Uc2 ~ 3.2-3.3, Uc1 ~ 2.6; with the same second moment the Gaussian
    lattice's transition lies close to them (measured here: metal up to U = 3.0, insulator
    down to U = 2.6)."""
    U = [2.4, 2.8, 3.0, 3.2]
    pts = sweep("ipt", 100.0, U, "both", lattice="hypercubic",
                options=DMFTOptions(tol=1e-7, max_iter=500))
    up = {p.U: p for p in pts if p.branch == "up"}
    down = {p.U: p for p in pts if p.branch == "down"}
    metal = lambda p: p.converged and p.g_beta_half > 0.5  # noqa: E731
    insulator = lambda p: p.converged and p.g_beta_half < 0.05  # noqa: E731
    uc2 = max(u for u, p in up.items() if metal(p))
    uc1 = min(u for u, p in down.items() if insulator(p))
    assert 2.9 <= uc2 <= 3.3, uc2
    assert 2.5 <= uc1 <= 2.9, uc1
    assert metal(up[2.8]) and insulator(down[2.8])  # coexistence
    assert metal(down[2.4])


def test_cli_dmft_on_another_lattice(tmp_path, capsys):
    from mldmft.cli import main

    out = tmp_path / "hc.h5"
    assert main(["dmft", "solver=ipt", "lattice=hypercubic", "U_values=[1.0]", "beta=20",
                 "direction=up", "loop.n_iw=256", f"out={out}", "progress=false",
                 "plot=false"]) == 0
    p = load_sweep(out)[0]
    assert p.converged and p.D == pytest.approx(1.0)
    capsys.readouterr()
    assert main(["dmft", "lattice=kagome", f"out={out}"]) != 0
    assert "Could not find 'lattice/kagome'" in capsys.readouterr().err


def test_network_solver_runs_on_the_square_lattice():
    """The network takes Delta(i w_n) only: on the square lattice (beta = 50, U = 2) it gives
    the ED-DMFT Z (bath of 6 sites, measured 0.1912) within 0.005 with no lattice-specific code."""
    pytest.importorskip("torch")
    import mldmft.ml  # noqa: F401  (registers the "ml" solver)
    from mldmft.dmft.demo import demo_checkpoint

    pts = sweep("ml", 50.0, [2.0], "up", lattice="square",
                solver_options={"checkpoint": str(demo_checkpoint())})
    assert pts[0].converged
    assert pts[0].Z == pytest.approx(0.1912, abs=0.005)
