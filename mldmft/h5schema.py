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


# --------------------------------------------------------------------------- AIM database
DATABASE_SCHEMA = "mldmft.aim_database"
DATABASE_SCHEMA_VERSION = 1

#: Status codes of ``/solvers/<name>/status``.
STATUS_OK, STATUS_NOT_CONVERGED, STATUS_FAILED = 0, 1, 2

_DATABASE_DOC = """AIM database, schema ``mldmft.aim_database`` version 1. One row per stored sample;
with particle-hole augmentation, row ``2i`` is drawn sample ``i`` and row ``2i+1`` its twin.

    /                   attrs: schema, schema_version, package_version, git_revision, created,
                               config (JSON, fully resolved), target, cheap_solvers (JSON),
                               solver_options (JSON), n_l, n_sigma, n_bath_max, n_samples, n_rows;
                               merged files (mldmft merge) also merged_from (JSON list of paths),
                               duplicates_dropped (samples), config_digest = "merged"
    /sample_index       int64   [row]            index i of the drawn sample
    /group_id           int64   [row]            = sample_index; twins share it (never split)
    /augmented          bool    [row]            True for a particle-hole twin
    /params/U           float64 [row]            Hubbard U                                (D=1)
    /params/eps_d       float64 [row]            impurity level                           (D=1)
    /params/beta        float64 [row]            inverse temperature                      (1/D)
    /params/D           float64 [row]            half bandwidth of the random bath        (D=1)
    /params/n_bath      int64   [row]            number of bath sites Nb
    /bath/eps           float64 [row, n_bath_max] bath energies eps_k (NaN-padded)        (D=1)
    /bath/v             float64 [row, n_bath_max] hybridisations V_k (0-padded)           (D=1)
    /delta_l            float64 [row, l]         Legendre coefficients of Delta(tau)      (1/D)
    /solvers/<name>/g_l              float64    [row, l]     G_l (n_l coefficients)       (1/D)
    /solvers/<name>/sigma_iw         complex128 [row, n]     Sigma(i w_n), n < n_sigma    (D=1)
    /solvers/<name>/density          float64    [row]        <n_up + n_dn>
    /solvers/<name>/double_occupancy float64    [row]        <n_up n_dn> (NaN: undefined)
    /solvers/<name>/status           int8       [row]        0 ok, 1 not converged, 2 failed
    /solvers/<name>/wall_time        float64    [row]        seconds (twins: 0, no solve)
    /solvers/<name>/error            str        [row]        failure message ('' if none)

Failed entries hold NaN. Chunked along the row axis."""


def database_datasets(solver_names: list[str]) -> tuple[Dataset, ...]:
    """Documentation of every dataset of a database holding ``solver_names``."""
    base = [
        Dataset("sample_index", "int64", ("row",), "1", "index of the drawn sample"),
        Dataset("group_id", "int64", ("row",), "1", "split group: a sample and its twin"),
        Dataset("augmented", "bool", ("row",), "1", "particle-hole twin"),
        Dataset("params/U", "float64", ("row",), "D", "Hubbard U"),
        Dataset("params/eps_d", "float64", ("row",), "D", "impurity level"),
        Dataset("params/beta", "float64", ("row",), "1/D", "inverse temperature"),
        Dataset("params/D", "float64", ("row",), "D", "half bandwidth of the bath"),
        Dataset("params/n_bath", "int64", ("row",), "1", "bath sites"),
        Dataset("bath/eps", "float64", ("row", "n_bath_max"), "D", "bath energies (NaN pad)"),
        Dataset("bath/v", "float64", ("row", "n_bath_max"), "D", "hybridisations (0 pad)"),
        Dataset("delta_l", "float64", ("row", "l"), "1/D", "Legendre Delta(tau)"),
    ]
    for name in solver_names:
        p = f"solvers/{name}/"
        base += [
            Dataset(p + "g_l", "float64", ("row", "l"), "1/D", "Legendre G"),
            Dataset(p + "sigma_iw", "complex128", ("row", "n"), "D", "Sigma(i w_n)"),
            Dataset(p + "density", "float64", ("row",), "1", "<n_up + n_dn>"),
            Dataset(p + "double_occupancy", "float64", ("row",), "1", "<n_up n_dn>"),
            Dataset(p + "status", "int8", ("row",), "1", "0 ok, 1 not converged, 2 failed"),
            Dataset(p + "wall_time", "float64", ("row",), "s", "solver wall time"),
            Dataset(p + "error", "str", ("row",), "", "failure message"),
        ]
    return tuple(base)


__doc__ += "\n\n" + _DATABASE_DOC
__all__ += ["DATABASE_SCHEMA", "DATABASE_SCHEMA_VERSION", "database_datasets", "STATUS_OK",
            "STATUS_NOT_CONVERGED", "STATUS_FAILED"]


# --------------------------------------------------------------------------- DMFT sweeps
SWEEP_SCHEMA = "mldmft.dmft_sweep"
SWEEP_SCHEMA_VERSION = 1

_SWEEP_DOC = """DMFT sweep, schema ``mldmft.dmft_sweep`` version 1 (one group per (U, branch), or
per (mu, branch) for a sweep in mu, in sweep order; a CSV with the scalars is written next to it):

    /                      attrs: schema, schema_version, package_version, created, n_points,
                                  plan (JSON: what decides the points, compared on resume:
                                  solver, solver_options, guard, beta, lattice, D, mu, U_values,
                                  direction, start (continuation | seeded; absent: continuation),
                                  n_iw, tol, max_iter, mixing, accel; at fixed
                                  density also density, tol_density (then mu = "from
                                  density"); a sweep in mu has U and mu_values instead of
                                  U_values and mu),
                                  meta (JSON: the plan plus extra metadata, e.g. the config)
    /points/<k>            attrs: U, branch ('up'|'down'), converged, iterations, residual, Z,
                                  double_occupancy, density, g_beta_half (-beta G(beta/2)),
                                  kinetic_energy (D, per site, both spins), wall_time (s),
                                  fallbacks, beta, mu (the one used; at fixed density the
                                  one found), D, retried_linear (Anderson failed,
                                  redone with linear mixing; iterations counts both),
                                  warnings (JSON list: the solver's warnings about its
                                  result of the last iteration; absent: none), error (why
                                  the loop stopped early, e.g. no chemical potential
                                  found; '' or absent: it did not)
    /points/<k>/g_iw       complex128 [n_iw]   local G(i w_n)                      (1/D)
    /points/<k>/sigma_iw   complex128 [n_iw]   Sigma(i w_n)                        (D)
    /points/<k>/delta_iw   complex128 [n_iw]   converged Delta(i w_n)              (D)
                           (Bethe: t^2 G; other lattices: zeta - 1/G_loc(zeta))
    /points/<k>/spectrum   (optional, when the sweep computed spectra) attrs: method
                           ('ed_poles' | 'maxent' | 'pade'), params (JSON: eta, error, alpha,
                           n_fit, n_pade, norm, lattice, ... as used)
    /points/<k>/spectrum/omega  float64 [n_omega]  real frequencies w           (D)
    /points/<k>/spectrum/a_w    float64 [n_omega]  A(w) = -Im G_loc(w + i0)/pi  (1/D)

The ``meta`` attribute also holds ``lattice`` (name and parameters, e.g.
``{"name": "square", "t": 0.25, "tp": 0.0}``) and ``spectra`` (the options, when given).
Result files of ``mldmft solve --spectrum`` hold the same ``/spectrum`` group (impurity
``A(w)``; ED: its poles at ``w + i eta``, ed_fit: those of the fitted bath's model)."""

SWEEP_POINT_DATASETS = (
    Dataset("g_iw", "complex128", ("n_iw",), "1/D", "local G(i w_n)"),
    Dataset("sigma_iw", "complex128", ("n_iw",), "D", "Sigma(i w_n)"),
    Dataset("delta_iw", "complex128", ("n_iw",), "D", "Delta(i w_n)"),
)

SPECTRUM_DATASETS = (
    Dataset("spectrum/omega", "float64", ("n_omega",), "D", "real frequencies", required=False),
    Dataset("spectrum/a_w", "float64", ("n_omega",), "1/D", "A(w) = -Im G(w + i0)/pi",
            required=False),
)

__doc__ += "\n\n" + _SWEEP_DOC
__all__ += ["SWEEP_SCHEMA", "SWEEP_SCHEMA_VERSION", "SWEEP_POINT_DATASETS", "SPECTRUM_DATASETS"]


# --------------------------------------------------------------------------- active learning
ACTIVE_ROUNDS_SCHEMA = "mldmft.active_rounds"
ACTIVE_ROUNDS_SCHEMA_VERSION = 1
ACTIVE_CELL_SCHEMA = "mldmft.active_cell"
ACTIVE_CELL_SCHEMA_VERSION = 1

_ACTIVE_DOC = """Active learning (``mldmft active``, :mod:`mldmft.active`), in the run directory.

``rounds.h5``, schema ``mldmft.active_rounds`` version 1, one entry per round ``k`` (round ``k``
evaluates model ``k``: the starting model for ``k = 0``, else the one trained in round ``k - 1``),
rewritten atomically after every round (``rounds.csv`` holds the same scalar columns)::

    /                       attrs: schema, schema_version, package_version, created,
                                   plan (JSON: the run's settings compared on resume),
                                   stop_reason ('' while running), final_checkpoint,
                                   heldout_points (JSON list of {beta, U, density, branch})
    /round                  int64   [round]   k
    /checkpoint             str     [round]   the model evaluated in the round
    /iterations             int64   [round]   network calls of the grid sweeps
    /flagged                int64   [round]   flagged iterations (any configured reason)
    /guard_rate             float64 [round]   flagged / iterations
    /flagged_<reason>       int64   [round]   per reason: spread, unphysical, acausal,
                                              unlike_training (an iteration may have several)
    /outside_domain         int64   [round]   iterations outside the model's domain
    /points                 int64   [round]   DMFT points of the grid sweeps
    /converged_points       int64   [round]   of which converged
    /heldout_max_abs_dz     float64 [round]   max |Z_net - Z_ref| over the held-out points
                                              (NaN without held-out points)
    /heldout_max_abs_dn     float64 [round]   max |n_net - n_ref| (both spins)
    /heldout_abs_dz         float64 [round, point]   per held-out point
    /heldout_abs_dn         float64 [round, point]
    /candidates             int64   [round]   flagged iterates considered (0: not selected)
    /selected               int64   [round]   baths chosen (farthest-point sampling)
    /samples_added          int64   [round]   new samples in the merged database
    /db_samples             int64   [round]   samples of the database after the round's merge
    /val_mse_g_tau          float64 [round]   the retrained model's validation MSE of G(tau)
    /test_mse_g_tau         float64 [round]   its test MSE (NaN: no training in the round)

``round_<k>/sweeps/cell_<i>.h5``, schema ``mldmft.active_cell`` version 1 (one network-DMFT
sweep of the grid, written atomically when finished)::

    /                       attrs: schema, schema_version, package_version, created, beta,
                                   density, iterations, flagged, outside_domain,
                                   by_reason (JSON), points (JSON list: U, branch, converged,
                                   iterations, Z, density, mu), reason_bits (JSON names)
    /flagged/U              float64    [m]          U of each flagged iterate      (D)
    /flagged/eps_d          float64    [m]          eps_d = -mu                    (D)
    /flagged/beta           float64    [m]                                         (1/D)
    /flagged/delta_iw       complex128 [m, n_iw]    the iterate's Delta(i w_n)     (D)
    /flagged/reasons        int8       [m]          bit i set: reason_bits[i]
    /flagged/spread         float64    [m]          max_l |std G_l| (NaN: one network) (1/D)"""

__doc__ += "\n\n" + _ACTIVE_DOC
__all__ += ["ACTIVE_ROUNDS_SCHEMA", "ACTIVE_ROUNDS_SCHEMA_VERSION", "ACTIVE_CELL_SCHEMA",
            "ACTIVE_CELL_SCHEMA_VERSION"]


# --------------------------------------------------------------------------- phase diagram
PHASE_DIAGRAM_SCHEMA = "mldmft.phase_diagram"
PHASE_DIAGRAM_SCHEMA_VERSION = 1
PHASE_POINT_SCHEMA = "mldmft.phase_point"
PHASE_POINT_SCHEMA_VERSION = 1

_PHASE_DOC = """Mott phase diagram (``mldmft phase-diagram``, :mod:`mldmft.dmft.phase_diagram`), in
the output directory (default ``data/phase_diagram/``).

``diagram.h5``, schema ``mldmft.phase_diagram`` version 1, written atomically at the end of a
run (``diagram_points.csv`` holds every point's scalars, ``diagram_ends.csv`` the ends and the
first-order line, ``summary.json`` the summary)::

    /                       attrs: schema, schema_version, package_version, created,
                                   config (JSON: the run's settings), summary (JSON)
    /<label>/               one diagram: the main solver's name (e.g. 'ml'), each comparison's
                            (e.g. 'ipt'), 'ed_check'; attrs: role ('main' | 'comparison' |
                            'ed_check'), solver, plan (JSON: what decides its points),
                            critical (JSON: Tc, Tc_error, Uc, Uc_error in D, status),
                            thermo (JSON: integration paths, loop defect, notes)
    /<label>/ends/beta      float64 [n_T]  inverse temperature                     (1/D)
    /<label>/ends/uc1       float64 [n_T]  end of the insulating branch: middle of its
                                           bisection bracket (NaN: not bracketed)   (D)
    /<label>/ends/uc1_error float64 [n_T]  half that bracket                        (D)
    /<label>/ends/uc2       float64 [n_T]  end of the metallic branch               (D)
    /<label>/ends/uc2_error float64 [n_T]  half its bracket                         (D)
    /<label>/ends/coexist   int8    [n_T]  1: both solutions found at a common U
    /<label>/ends/refined   int8    [n_T]  1: temperature added by the Tc bisection
    /<label>/first_order/beta   float64 [n_F]  temperatures with a window           (1/D)
    /<label>/first_order/U      float64 [n_F]  Omega_metal = Omega_insulator (NaN: no
                                               crossing inside the window)          (D)
    /<label>/first_order/error  float64 [n_F]  its estimated integration error      (D)
    /<label>/first_order/delta_lo, delta_hi  float64 [n_F]  Omega_metal - Omega_insulator
                                               at the window's two ends             (D)
    /<label>/points/<key>   one DMFT point: attrs as a sweep point's (``mldmft.dmft_sweep``:
                            U, branch, converged, iterations, residual, Z, double_occupancy,
                            density, g_beta_half, kinetic_energy, wall_time, fallbacks, beta,
                            mu, D, retried_linear) plus key, start ('metal' | 'insulator' |
                            the key of the point it was continued from) and stage;
                            datasets g_iw, sigma_iw, delta_iw as a sweep point's

Point store ``<out>/store/<label>/<key>.h5``, schema ``mldmft.phase_point`` version 1: one
finished point, written atomically as soon as it is solved (root attrs and datasets as
``/<label>/points/<key>`` above); ``<out>/store/<label>/plan.json`` holds the plan the points
belong to. A rerun reads the store and solves only the points not in it."""

__doc__ += "\n\n" + _PHASE_DOC
__all__ += ["PHASE_DIAGRAM_SCHEMA", "PHASE_DIAGRAM_SCHEMA_VERSION", "PHASE_POINT_SCHEMA",
            "PHASE_POINT_SCHEMA_VERSION"]


# --------------------------------------------------------------------------- packed database
PACKED_DATABASE_SCHEMA = "mldmft.aim_database_packed"
PACKED_DATABASE_SCHEMA_VERSION = 1

_PACKED_DOC = """Packed AIM database (``mldmft pack``, :mod:`mldmft.database.pack`), schema
``mldmft.aim_database_packed`` version 1: the drawn samples of an AIM database in a compact
file (``mldmft unpack`` rebuilds the database). Every dataset gzip (level 9) + shuffle::

    /                   attrs: schema, schema_version, package_version, created,
                               packing (JSON: n_rows of the database, stored_rows, dropped
                               {what: how it is rebuilt}, cast {dataset: [float64, float32]},
                               source (path), source_digest (SHA-256 of the database's
                               datasets and attributes), filters)
    /database_attrs     group; attrs: every root attribute of the database, verbatim
    /has_twin           bool [stored_row]   the sample's particle-hole twin is the next row
    /<name>             every dataset of the database under its name, rows with
                        augmented == False only; without delta_l (recomputed from the bath);
                        the cheap solvers' g_l and sigma_iw as float32 / complex64
                        (listed in packing.cast)"""

__doc__ += "\n\n" + _PACKED_DOC
__all__ += ["PACKED_DATABASE_SCHEMA", "PACKED_DATABASE_SCHEMA_VERSION"]
