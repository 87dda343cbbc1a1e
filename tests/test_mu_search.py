"""The fixed-density chemical-potential search of many problems at once
(:meth:`mldmft.dmft.lattice.Lattice.chemical_potentials`): each row equals an independent
bracket-and-Brent search and the one-row method, and does not depend on the batch; a row without
a root is reported without stopping the others."""

import numpy as np
import pytest

from mldmft.dmft.lattice import BetheLattice, get_lattice
from scipy import optimize

from solvers import matsubara_freqs

N_IW = 256


def _brent_reference(lattice, density, beta, sigma, guess):
    """The root of ``local_density(i w_n + mu - Sigma) = density`` by scipy's Brent method in a
    bracket doubled from ``guess`` (an independent search)."""
    base = 1j * matsubara_freqs(beta, sigma.size) - sigma

    def excess(mu):
        return lattice.local_density(base + mu, beta) - density

    lo = hi = guess
    f_lo = f_hi = excess(lo)
    step = 0.05 * lattice.D
    while not f_lo <= 0.0 <= f_hi:
        if f_hi < 0.0:
            lo, f_lo, hi = hi, f_hi, hi + step
            f_hi = excess(hi)
        else:
            hi, f_hi, lo = lo, f_lo, lo - step
            f_lo = excess(lo)
        step *= 2.0
    return optimize.brentq(excess, lo, hi, xtol=1e-10)


def _sigmas(betas, rng):
    """Causal model self-energies ``U^2/4 / (i w_n - a) + s0`` per row."""
    rows = []
    for beta in betas:
        wn = matsubara_freqs(beta, N_IW)
        a, u, s0 = rng.uniform(-0.3, 0.3), rng.uniform(0.5, 2.5), rng.uniform(0.2, 1.2)
        rows.append(s0 + u * u / 4 / (1j * wn - a))
    return np.stack(rows)


@pytest.mark.parametrize("lattice", [BetheLattice(), get_lattice("square")])
def test_rows_equal_the_lattice_search_and_their_batch(lattice):
    rng = np.random.default_rng(3)
    betas = np.array([10.0, 20.0, 20.0, 35.0, 50.0])
    density = np.array([0.3, 0.9, 1.0, 1.25, 1.7])
    sigma = _sigmas(betas, rng)
    guess = np.array([0.0, 0.5, -0.4, 1.0, 0.2])
    mu, errors = lattice.chemical_potentials(density, betas, sigma, guess)
    assert errors == [""] * 5
    for i in range(5):
        ref = _brent_reference(lattice, density[i], betas[i], sigma[i], guess[i])
        assert abs(mu[i] - ref) <= 2e-10
        one, err = lattice.chemical_potentials(density[i:i + 1], betas[i:i + 1],
                                               sigma[i:i + 1], guess[i:i + 1])
        assert err == [""] and abs(one[0] - mu[i]) <= 1e-13
        assert lattice.chemical_potential(density[i], betas[i], sigma[i], guess[i]) == one[0]
        n = lattice.local_density(1j * matsubara_freqs(betas[i], N_IW) + mu[i] - sigma[i],
                                  betas[i])
        assert abs(n - density[i]) <= 1e-8


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_a_row_without_a_root_is_reported_alone():
    lattice = BetheLattice()
    rng = np.random.default_rng(4)
    betas = np.array([20.0, 20.0, 20.0])
    sigma = _sigmas(betas, rng)
    sigma[1] = np.nan                    # no density at any mu
    mu, errors = lattice.chemical_potentials(np.array([0.8, 0.8, 1.1]), betas, sigma,
                                     np.zeros(3))
    assert errors[0] == errors[2] == "" and np.isfinite(mu[[0, 2]]).all()
    assert errors[1].startswith("bethe: no chemical potential gives density 0.8") and np.isnan(mu[1])
    alone = lattice.chemical_potentials(np.array([0.8, 1.1]), betas[[0, 2]], sigma[[0, 2]],
                                np.zeros(2))[0]
    np.testing.assert_allclose(alone, mu[[0, 2]], rtol=0, atol=1e-13)
