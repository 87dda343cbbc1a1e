"""Dynamic database: export the hybridisations a DMFT run visited as discrete baths.

Each point's ``Delta(i w_n)`` is fitted with ``n_bath`` poles (:func:`solvers.fit_bath`) and
written as a YAML list that the ``bath_list`` sampling recipe reads::

    mldmft export-baths data/dmft/ml_beta50.h5 --out data/visited.yaml
    mldmft generate sampling=bath_list sampling.path=data/visited.yaml n_samples=... name=round2

so the database grows where the DMFT loop actually goes, and the network can be retrained on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import yaml

from solvers import fit_bath

from .loop import DMFTPoint

__all__ = ["export_baths"]


def export_baths(points: Sequence[DMFTPoint], out: str | Path, n_bath: int = 8) -> Path:
    """Fit every point's hybridisation with ``n_bath`` poles and write the bath list (YAML).

    Each entry holds ``bath_eps``, ``bath_v``, ``U``, ``eps_d = -mu``, ``beta``, ``D`` and the fit
    residual (``fit_residual``, weighted RMS deviation of ``Delta``, units of D).
    """
    if not points:
        raise ValueError("no DMFT points to export")
    entries = []
    for p in points:
        fit = fit_bath(p.delta_iw, p.beta, n_bath)
        entries.append({
            "bath_eps": [float(x) for x in fit.bath_eps],
            "bath_v": [float(x) for x in fit.bath_v],
            "U": float(p.U), "eps_d": float(-p.mu), "beta": float(p.beta), "D": float(p.D),
            "fit_residual": float(fit.residual), "branch": p.branch,
            "converged": bool(p.converged),
        })
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump({"baths": entries}, sort_keys=False))
    return out
