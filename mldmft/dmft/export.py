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

from ..h5util import OutputFile, check_output_places, write_text_atomic
from .loop import DMFTPoint

__all__ = ["export_baths", "check_export_out"]

#: Endings of a bath list file (YAML; the ``bath_list`` recipe reads ``.json`` as JSON).
BATH_LIST_SUFFIXES = (".yaml", ".yml")


def _is_bath_list(path: Path) -> bool:
    """An earlier export: YAML holding ``{baths: [...]}``."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, ValueError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and isinstance(data.get("baths"), list)


def check_export_out(out: str | Path, inputs: Sequence[str | Path] = ()) -> Path:
    """Refuse, before any fitting, an ``out`` that is not a ``.yaml``/``.yml`` file, that is one of
    ``inputs`` (the sweeps), a directory or an existing file other than an earlier bath list, or
    that cannot be written (:func:`mldmft.h5util.check_output_places`)."""
    out = Path(out)
    if out.suffix.lower() not in BATH_LIST_SUFFIXES:
        raise ValueError(f"--out must name a YAML file ending in .yaml or .yml (the bath list), "
                         f"got {out}")
    check_output_places([OutputFile(out, "bath list", _is_bath_list)],
                        inputs={p: "input sweep" for p in inputs})
    return out


def export_baths(points: Sequence[DMFTPoint], out: str | Path, n_bath: int = 8,
                 inputs: Sequence[str | Path] = ()) -> Path:
    """Fit every point's hybridisation with ``n_bath`` poles and write the bath list (YAML,
    atomically; ``out`` is checked first by :func:`check_export_out`, ``inputs``: the files the
    points came from).

    Each entry holds ``bath_eps``, ``bath_v``, ``U``, ``eps_d = -mu``, ``beta``, ``D`` and the fit
    residual (``fit_residual``, weighted RMS deviation of ``Delta``, units of D).
    """
    out = check_export_out(out, inputs)
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
    return write_text_atomic(out, yaml.safe_dump({"baths": entries}, sort_keys=False))
