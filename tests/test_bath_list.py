"""One way to fit and write a bath list (mldmft.database.dmft_sampling.bath_list_entry and
write_bath_list), shared by ``mldmft export-baths``, active learning's selection and the
``dmft_iterates`` recipe."""

from __future__ import annotations

import numpy as np
import pytest

from mldmft.database import make_recipe
from mldmft.database.dmft_sampling import bath_list_entry, iterate_bath, write_bath_list
from solvers import fit_bath, hybridisation_iw, matsubara_freqs

BETA = 20.0
WN = matsubara_freqs(BETA, 256)


def test_entry_is_the_iterate_fit_symmetric_at_symmetrised_half_filling():
    delta = hybridisation_iw(WN, [-0.8, -0.3, 0.3, 0.8], [0.3, 0.4, 0.4, 0.3])
    half = bath_list_entry(1j * delta.imag, BETA, 2.0, -1.0, 4)
    fit = iterate_bath(delta, BETA, 4, half_filling=True)
    assert half["bath_eps"] == [float(x) for x in fit.bath_eps]
    assert half["bath_v"] == [float(x) for x in fit.bath_v]
    assert half["fit_residual"] == fit.residual < 1e-8
    np.testing.assert_allclose(half["bath_eps"], -np.array(half["bath_eps"][::-1]), atol=1e-12)
    assert {k: half[k] for k in ("U", "eps_d", "beta")} == {"U": 2.0, "eps_d": -1.0,
                                                             "beta": BETA}
    # off half filling the free fit: an asymmetric bath is found exactly
    skew = hybridisation_iw(WN, [-0.6, 0.1, 0.9], [0.3, 0.2, 0.4])
    e = bath_list_entry(skew, BETA, 2.0, -0.3, 3)
    np.testing.assert_allclose(e["bath_eps"], [-0.6, 0.1, 0.9], atol=1e-6)


def test_an_acausal_transient_is_clipped_not_refused():
    """A DMFT transient may have ``Im Delta > 0`` at some frequency: ``solvers.fit_bath``
    refuses it, the bath list fits the clipped hybridisation."""
    delta = hybridisation_iw(WN, [-0.5, 0.5], [0.4, 0.4]).copy()
    delta[3] = delta[3].real + 0.01j
    with pytest.raises(ValueError):
        fit_bath(delta, BETA, 2)
    e = bath_list_entry(delta, BETA, 1.0, -0.2, 2)
    clipped = delta.real + 1j * np.minimum(delta.imag, 0.0)
    assert e["fit_residual"] == pytest.approx(fit_bath(clipped, BETA, 2, n_restarts=2).residual)


def test_written_list_reads_back_as_the_same_models(tmp_path):
    deltas = [hybridisation_iw(WN, [-0.4, 0.4], [0.5, 0.5]),
              hybridisation_iw(WN, [-0.7, 0.2], [0.3, 0.5])]
    entries = [bath_list_entry(1j * deltas[0].imag, BETA, 1.0, -0.5, 2),
               {**bath_list_entry(deltas[1], BETA, 3.0, -0.4, 2), "D": 1.0}]
    path = write_bath_list(tmp_path / "baths.yaml", entries)
    recipe = make_recipe(dict(kind="bath_list", path=str(path)))
    for i, (entry, delta) in enumerate(zip(entries, deltas)):
        m = recipe.draw(0, i).model
        assert (m.U, m.eps_d, m.beta) == (entry["U"], entry["eps_d"], BETA)
        np.testing.assert_allclose(m.delta(64), (1j * delta.imag if i == 0 else delta)[:64],
                                   atol=1e-8)


def test_export_writes_the_entries_selection_would(tmp_path):
    """``export_baths`` and active learning's selection fit one Delta identically."""
    from mldmft.dmft import sweep
    from mldmft.dmft.export import export_baths
    from mldmft.yamlio import load_yaml

    pts = sweep("ipt", BETA, [2.0], "up")
    out = export_baths(pts, tmp_path / "visited.yaml", n_bath=4)
    (got,) = load_yaml(out.read_text())["baths"]
    p = pts[0]
    want = bath_list_entry(p.delta_iw, p.beta, p.U, -p.mu, 4)
    assert {k: got[k] for k in want} == want
    assert (got["D"], got["branch"], got["converged"]) == (p.D, p.branch, p.converged)
