"""DMFT at fixed density (mu found inside the loop) and sweeps in mu at fixed U."""

import csv
import math

import numpy as np
import pytest
from scipy import integrate

from mldmft.dmft import BetheLattice, HypercubicLattice, load_sweep, sweep, sweep_mu
from mldmft.dmft.loop import DMFTOptions, solve_point
from mldmft.dmft.steps import make_step
from mldmft.dmft.sweep import metal_seed
from solvers import matsubara_freqs

U = 2.0
BETA = 50.0


@pytest.fixture(scope="module")
def doped(tmp_path_factory):
    """IPT-DMFT on the Bethe lattice, U = 2, beta = 50, at n = 0.9 (written to a file) and at
    its particle-hole mirror n = 1.1."""
    out = tmp_path_factory.mktemp("density") / "n09.h5"
    p09 = sweep("ipt", BETA, [U], density=0.9, out=out)[0]
    p11 = sweep("ipt", BETA, [U], density=1.1)[0]
    return out, p09, p11


def test_density_is_reached_off_half_filling(doped):
    out, p, _ = doped
    assert p.converged
    assert abs(p.density - 0.9) < 1e-4
    # the lattice at the mu found, with the impurity's self-energy, holds the same density
    lat = BetheLattice()
    iw = 1j * matsubara_freqs(BETA, p.sigma_iw.size)
    assert lat.local_density(iw + p.mu - p.sigma_iw, BETA) == pytest.approx(0.9, abs=1e-4)
    # hole doping lowers mu below U/2, by more than the free band's shift
    free_shift = lat.chemical_potential(0.9, BETA, np.zeros(64))
    assert p.mu < U / 2 + free_shift < U / 2
    # nothing is symmetrised off half filling
    assert np.max(np.abs(p.delta_iw.real)) > 1e-3
    assert np.max(np.abs(p.g_iw.real)) > 1e-3


def test_requested_density_is_the_impurity_density_when_the_solver_is_slightly_inconsistent():
    """A solver whose reported density differs a little from the filling its ``G(i w_n)`` gives
    (a network can: its density and its Green's function are separate outputs) still converges
    at the requested *impurity* density: the loop aims the lattice at ``n + (n_loc - n_imp)``.
    Aiming it at ``n`` alone would converge ``Delta`` with ``n_imp = n - 3e-4`` and never
    meet ``tol_density``."""
    import dataclasses

    from solvers import solve

    bias = -3e-4

    def biased_ipt(model, **options):
        res = solve("ipt", model, **options)
        return dataclasses.replace(res, density=res.density + bias)

    p = sweep(biased_ipt, BETA, [U], density=0.9, options=DMFTOptions(tol=1e-6))[0]
    exact = sweep("ipt", BETA, [U], density=0.9 - bias, options=DMFTOptions(tol=1e-6))[0]
    assert p.converged and abs(p.density - 0.9) < 1e-4
    # the same physical solution as an unbiased solver at the shifted filling
    assert p.mu == pytest.approx(exact.mu, abs=1e-4)
    assert p.Z == pytest.approx(exact.Z, abs=1e-4)


def test_found_mu_is_stored_in_hdf5_and_csv(doped):
    out, p, _ = doped
    stored = load_sweep(out)[0]
    assert stored.mu == p.mu and stored.density == p.density
    with open(out.with_suffix(".csv")) as fh:
        row = next(csv.DictReader(fh))
    assert float(row["mu"]) == pytest.approx(p.mu, abs=1e-12)
    assert float(row["density"]) == pytest.approx(0.9, abs=1e-4)


def test_particle_hole_mirror_of_the_chemical_potential(doped):
    """Particle-hole symmetry of the Bethe lattice: mu(2 - n) = U - mu(n)."""
    _, p09, p11 = doped
    assert p11.converged and abs(p11.density - 1.1) < 1e-4
    assert p09.mu + p11.mu == pytest.approx(U, abs=1e-4)
    assert p09.Z == pytest.approx(p11.Z, abs=1e-4)


def test_density_one_is_half_filling():
    half = sweep("ipt", 20.0, [U], options=DMFTOptions(n_iw=512))[0]
    at_one = sweep("ipt", 20.0, [U], options=DMFTOptions(n_iw=512), density=1.0)[0]
    assert at_one.mu == U / 2 and at_one.Z == pytest.approx(half.Z, abs=1e-12)
    # the same with the search running (no symmetrisation): it lands on mu = U/2
    lat = BetheLattice()
    searched = solve_point(make_step("ipt", 512), 20.0, U, metal_seed(lat, 20.0, 512), lat,
                           options=DMFTOptions(n_iw=512, symmetrise=False), density=1.0,
                           mu_start=0.7)
    assert searched.converged
    assert searched.mu == pytest.approx(U / 2, abs=1e-4)
    assert searched.density == pytest.approx(1.0, abs=1e-4)
    assert searched.Z == pytest.approx(half.Z, abs=1e-4)


def test_density_on_another_lattice():
    """The general Hilbert-transform path (hypercubic lattice, Faddeeva function)."""
    lat = HypercubicLattice()
    p = sweep("ipt", 20.0, [U], options=DMFTOptions(n_iw=512), lattice=lat, density=0.8)[0]
    assert p.converged and abs(p.density - 0.8) < 1e-4
    iw = 1j * matsubara_freqs(20.0, 512)
    assert lat.local_density(iw + p.mu - p.sigma_iw, 20.0) == pytest.approx(0.8, abs=1e-4)


@pytest.mark.parametrize("lattice", [BetheLattice(), HypercubicLattice()])
def test_free_chemical_potential_matches_the_dos_integral(lattice):
    beta = 20.0
    for n in (0.3, 0.9, 1.6):
        mu = lattice.chemical_potential(n, beta, np.zeros(512))
        occ = integrate.quad(lambda e: 2 * lattice.dos(e) / (1 + math.exp(beta * (e - mu))),
                             -6, 6, points=[mu, -1, 1], limit=200)[0]
        assert occ == pytest.approx(n, abs=1e-7)


def test_mu_sweep_density_rises_with_mu():
    """Compressibility dn/dmu >= 0 along a sweep in mu at fixed U (both directions), and the
    particle-hole mirror n(mu) + n(U - mu) = 2."""
    mus = [0.2, 0.6, 1.0, 1.4, 1.8]
    pts = sweep_mu("ipt", 20.0, U, mus, "both", options=DMFTOptions(n_iw=512))
    assert [(p.branch, p.mu) for p in pts] == [("up", m) for m in mus] + [
        ("down", m) for m in mus[::-1]]
    assert all(p.converged and p.U == U for p in pts)
    for branch in ("up", "down"):
        n = np.array([p.density for p in sorted((p for p in pts if p.branch == branch),
                                               key=lambda p: p.mu)])
        assert np.all(np.diff(n) > 0)
        assert n + n[::-1] == pytest.approx(np.full(len(mus), 2.0), abs=1e-4)
    assert [p for p in pts if p.mu == 1.0][0].density == 1.0    # half filling, symmetrised


def test_mu_and_density_are_exclusive_and_density_is_bounded():
    with pytest.raises(ValueError, match="either mu or density, not both"):
        sweep("ipt", 20.0, [U], mu=0.5, density=0.9)
    for bad in (0.0, 2.0, -0.1, 2.5, float("nan")):
        with pytest.raises(ValueError, match=r"density must lie in \(0, 2\)") as err:
            sweep("ipt", 20.0, [U], density=bad)
        assert len(str(err.value).splitlines()) == 1
    lat = BetheLattice()
    with pytest.raises(ValueError, match="either mu or density"):
        solve_point(make_step("ipt", 64), 20.0, U, metal_seed(lat, 20.0, 64), lat, mu=1.0,
                    options=DMFTOptions(n_iw=64), density=0.9)
    with pytest.raises(ValueError, match="symmetrise=True needs half filling"):
        solve_point(make_step("ipt", 64), 20.0, U, metal_seed(lat, 20.0, 64), lat,
                    options=DMFTOptions(n_iw=64, symmetrise=True), density=0.9)
    with pytest.raises(ValueError, match="takes no density"):
        sweep_mu("ipt", 20.0, U, [0.5], density=0.9)
    with pytest.raises(ValueError, match="mu_values"):
        sweep_mu("ipt", 20.0, U, [])


def test_resume_refuses_another_density_plan(doped, tmp_path):
    out, p, _ = doped
    again = sweep("ipt", BETA, [U], density=0.9, out=out)          # same plan: read back
    assert again[0].wall_time == p.wall_time and again[0].mu == p.mu
    for change, name in ((dict(density=0.8), "density: file 0.9, now 0.8"),
                         (dict(density=None), 'density: file 0.9, now "\\(absent\\)"'),
                         (dict(density=0.9, options=DMFTOptions(tol_density=1e-6)),
                          "tol_density")):
        kw = dict(density=0.9)
        kw.update(change)
        with pytest.raises(ValueError, match=f"holds another sweep, not resumed.*{name}") as err:
            sweep("ipt", BETA, [U], out=out, **kw)
        assert len(str(err.value).splitlines()) == 1
    # a sweep in mu stores its mu values: another list is refused
    mu_file = tmp_path / "mu.h5"
    sweep_mu("ipt", 20.0, U, [0.5], options=DMFTOptions(n_iw=256), out=mu_file)
    with pytest.raises(ValueError, match="mu_values: file \\[0.5\\], now \\[0.5, 0.6\\]"):
        sweep_mu("ipt", 20.0, U, [0.5, 0.6], options=DMFTOptions(n_iw=256), out=mu_file)
    with pytest.raises(ValueError, match="holds another sweep"):
        sweep("ipt", 20.0, [U], options=DMFTOptions(n_iw=256), out=mu_file)


def test_cli_config_keys(capsys):
    from mldmft.cli import _compose, main, sweep_arguments

    kw = sweep_arguments(_compose("dmft", ["density=0.9", "U=2", "beta=50"]))
    assert kw["density"] == 0.9 and kw["U_values"] == [2.0] and kw["mu"] is None
    assert kw["options"].tol_density == 1e-4 and kw["out"].endswith("ipt_beta50_n0.9.h5")
    kw = sweep_arguments(_compose("dmft", ["U=2", "mu_range=[0.0,1.0,0.25]", "beta=50"]))
    assert kw["U"] == 2.0 and kw["mu_values"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert "U_values" not in kw and kw["out"].endswith("ipt_beta50_U2_mu.h5")
    kw = sweep_arguments(_compose("dmft", ["U=2", "mu_values=[0.3,0.1]"]))
    assert kw["mu_values"] == [0.3, 0.1]
    for args, msg in ((["density=0.9", "mu=0.5"], "either mu or density"),
                      (["density=2"], "density must lie in (0, 2)"),
                      (["density=abc"], "density must be a number"),
                      (["mu_range=[0,1,0.5]"], "needs the fixed U"),
                      (["U=2", "mu_range=[0,1]"], "mu_range must be [start, stop, step]"),
                      (["U=2", "mu_range=[0,1,0.5]", "density=0.9"], "takes no density"),
                      (["U=2", "U_values=[1.0]"], "either U or U_values")):
        assert main(["dmft", *args, "progress=false", "plot=false"]) == 2
        err = capsys.readouterr().err
        assert msg in err and len(err.strip().splitlines()) == 1
