"""The one HDF5 schema of mldmft: every stored name, its axes, dtype and units.

Solver result file (``mldmft solve``), schema ``mldmft.result`` version 1::

    /                       attrs: schema, schema_version, package_version, created,
                                   solver, solver_options (JSON), model (JSON), summary (JSON)
    /g_iw        complex128 [n_iw]       G(i w_n), n = 0..n_iw-1, per spin            (1/D)
    /sigma_iw    complex128 [n_iw]       Sigma(i w_n) = G0^-1 - G^-1                  (D)
    /wn          float64    [n_iw]       w_n = (2n+1) pi / beta                       (D)
    /g_l         float64    [n_l]        G_l = sqrt(2l+1) int P_l(x(tau)) G(tau) dtau (1/D)
    /tau         float64    [n_tau]      imaginary time (optional)                    (1/D)
    /g_tau       float64    [n_tau]      G(tau) on /tau (optional)                    (1)
    /scalars     attrs: beta (1/D), density (both spins), double_occupancy, energy (D), z,
                        converged, iterations, wall_time (s)

Readers call :func:`check_schema`, which refuses files of another schema, a newer version or
with missing datasets, naming what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

import h5py

__all__ = ["Dataset", "RESULT_SCHEMA", "RESULT_SCHEMA_VERSION", "RESULT_DATASETS",
           "check_schema", "SchemaError"]

RESULT_SCHEMA = "mldmft.result"
RESULT_SCHEMA_VERSION = 1


class SchemaError(ValueError):
    """An HDF5 file that is not of the expected schema, or is incomplete/corrupt."""


@dataclass(frozen=True)
class Dataset:
    """Documentation of one stored dataset."""

    name: str
    dtype: str
    axes: tuple[str, ...]
    units: str
    meaning: str
    required: bool = True


RESULT_DATASETS = (
    Dataset("g_iw", "complex128", ("n_iw",), "1/D", "G(i w_n), n = 0..n_iw-1, per spin"),
    Dataset("sigma_iw", "complex128", ("n_iw",), "D", "Sigma(i w_n) = G0^-1 - G^-1"),
    Dataset("wn", "float64", ("n_iw",), "D", "Matsubara frequencies (2n+1) pi / beta"),
    Dataset("g_l", "float64", ("n_l",), "1/D", "Legendre coefficients of G(tau)"),
    Dataset("tau", "float64", ("n_tau",), "1/D", "imaginary-time mesh", required=False),
    Dataset("g_tau", "float64", ("n_tau",), "1", "G(tau) on tau", required=False),
)


def check_schema(f: h5py.File, schema: str, version: int,
                 datasets: tuple[Dataset, ...]) -> None:
    """Raise :class:`SchemaError` unless ``f`` is a complete file of ``schema`` <= ``version``."""
    name = f.attrs.get("schema")
    if isinstance(name, bytes):
        name = name.decode()
    if name != schema:
        raise SchemaError(f"{f.filename}: not a {schema} file (schema attribute: {name!r})")
    ver = int(f.attrs.get("schema_version", -1))
    if ver < 1 or ver > version:
        raise SchemaError(f"{f.filename}: schema version {ver} is not supported "
                          f"(this mldmft reads versions 1..{version})")
    for ds in datasets:
        if ds.required and ds.name not in f:
            raise SchemaError(f"{f.filename}: dataset '{ds.name}' is missing (truncated file?)")
