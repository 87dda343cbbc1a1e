"""Dynamic database: export the hybridisations a DMFT run visited as discrete baths.

Each point's ``Delta(i w_n)`` is fitted with ``n_bath`` poles as the ``dmft_iterates`` recipe
and active learning fit theirs (:func:`mldmft.database.dmft_sampling.bath_list_entry`: a
positive ``Im Delta`` clipped to 0, the particle-hole symmetric fit at symmetrised half filling,
two random restarts) and written as a YAML list that the ``bath_list`` sampling recipe reads::

    mldmft export-baths data/dmft/ml_beta50.h5 --out data/visited.yaml
    mldmft generate sampling=bath_list sampling.path=data/visited.yaml n_samples=... name=round2

so the database grows where the DMFT loop actually goes, and the network can be retrained on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import yaml

from ..database.dmft_sampling import bath_list_entry, write_bath_list
from ..h5util import OutputFile, check_output_places
from ..yamlio import load_yaml
from .loop import DMFTPoint

__all__ = ["export_baths", "check_export_out"]

#: Endings of a bath list file (YAML; the ``bath_list`` recipe reads ``.json`` as JSON).
BATH_LIST_SUFFIXES = (".yaml", ".yml")


def _is_bath_list(path: Path) -> bool:
    """An earlier export: YAML holding ``{baths: [...]}``."""
    try:
        data = load_yaml(path.read_text())
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

    Each entry (:func:`~mldmft.database.dmft_sampling.bath_list_entry`) holds ``bath_eps``,
    ``bath_v``, ``U``, ``eps_d = -mu``, ``beta``, the fit residual (``fit_residual``, weighted
    RMS deviation of ``Delta``, units of D), the lattice's ``D``, the point's ``branch`` and
    ``converged``.
    """
    out = check_export_out(out, inputs)
    if not points:
        raise ValueError("no DMFT points to export")
    entries = [{**bath_list_entry(p.delta_iw, p.beta, p.U, -p.mu, n_bath), "D": float(p.D),
                "branch": p.branch, "converged": bool(p.converged)} for p in points]
    return write_bath_list(out, entries)
