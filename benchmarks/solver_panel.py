"""Accuracy panel of the cheap impurity solvers against exact ED with Nb = 8.

Panel: U in {1, 2, 3, 4}, beta in {10, 50}; half filling (eps_d = -U/2) and off it
(eps_d = -U/2 + 0.5, i.e. the level raised by 0.5 D: density below 1); bath: the 8-site
literature bath eps = +-0.1, +-0.4, +-0.9, +-1.5, V = sqrt(0.25/8). 16 models.

Solvers (default options): ``ipt``, ``hubbard_i``, ``nca``, ``ed1``, ``ed2``, ``ed3`` (ED of a
1/2/3-pole fit of the 8-site bath; a fit is always made since 8 > 3). Reference: ``ed`` on the
full 8-site bath with Boltzmann cutoff 1e-8 (``--ed-cutoff``; every state with weight
``exp(-beta (E - E_0)) > 1e-8`` kept). ED's default cutoff 1e-10 keeps about twice the states at
beta = 10 (and takes longer); at U = 1, beta = 10, half filling the two cutoffs differ by
max |dG(tau)| = 2e-8, |dD| = 1.3e-8, |dZ| = 9e-8, far below every cheap solver's error.

Per model and solver:

* ``mse_gtau``: mean over a uniform grid of ``n_tau`` (default 201) points, tau in [0, beta], of
  ``(G_solver(tau) - G_ED(tau))^2``; both ``G(tau)`` are rebuilt from the solvers' ``g_l``
  (``SolverResult.g_tau_at``, 80 Legendre coefficients by default), so the Legendre truncation
  is the same on both sides (its size for ED, ``max |G_l-sum - G_exact|`` on the grid, is stored
  with the reference);
* ``dZ = Z_solver - Z_ED`` with ``Z = 1/(1 - Im Sigma(i w_0)/w_0)``;
* ``dD = D_solver - D_ED`` for the double occupancy ``<n_up n_dn>`` (n/a when the solver gives
  ``None``);
* ``dn = n_solver - n_ED`` (total density, both spins);
* ``time``: ``SolverResult.wall_time`` of this single solve (``benchmarks/solvers.py`` does the
  careful timing).

ED with Nb = 8 is expensive at beta = 10 (thousands of states in the Boltzmann window: tens of
seconds to minutes per model), so the references are cached in ``<out>/ed_reference.h5``, one
group per model keyed by U, beta, eps_d; a cached entry is reused when its stored model (U,
eps_d, beta, bath) and ED options match, otherwise recomputed (``--recompute-ed`` forces it).
Each reference is written as soon as it is computed, so an interrupted run loses at most one.

Outputs in ``--out`` (default ``data/benchmarks/solver_panel/``): ``ed_reference.h5``,
``panel.csv`` (one row per model x solver), ``panel.md`` (the row table and the summaries) and
one PNG per model, ``gtau_U{U}_beta{beta}_{half|off}.png`` (G(tau) of every solver and ED, and
the difference to ED).

Run: ``python benchmarks/solver_panel.py [--out DIR] [--U 1 2] [--beta 50] [--solvers ipt nca]``.
"""

from __future__ import annotations

import os
import sys

# benchmarks/solvers.py shares its name with the ``solvers`` package; run as a script, Python
# puts benchmarks/ first on sys.path: drop it so ``import solvers`` finds the package.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import datetime  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402

import h5py  # noqa: E402
import numpy as np  # noqa: E402

from solvers import AndersonModel, SolverResult, quasiparticle_weight, solve  # noqa: E402

BATH_EPS = [-1.5, -0.9, -0.4, -0.1, 0.1, 0.4, 0.9, 1.5]
BATH_V = [float(np.sqrt(0.25 / 8))] * 8
U_VALUES = (1.0, 2.0, 3.0, 4.0)
BETA_VALUES = (10.0, 50.0)
OFF_SHIFT = 0.5   # off half filling: eps_d = -U/2 + OFF_SHIFT
SOLVERS = ("ipt", "hubbard_i", "nca", "ed1", "ed2", "ed3")
DEFAULT_OUT = os.path.join("data", "benchmarks", "solver_panel")
ED_CUTOFF = 1e-8
ED_OPTIONS: dict = {"cutoff": ED_CUTOFF}   # options of the reference ED (set by --ed-cutoff)
N_IW = 1024               # default of every solver; the reference stores g_iw on this mesh
N_L = 80
LEGENDRE_CHECK_N_TAU = 201  # grid on which the reference's Legendre truncation is measured


@dataclass(frozen=True)
class Entry:
    """One panel model."""

    U: float
    beta: float
    filling: str                  # "half" or "off"
    bath_eps: tuple = tuple(BATH_EPS)
    bath_v: tuple = tuple(BATH_V)

    @property
    def eps_d(self) -> float:
        return -self.U / 2 + (OFF_SHIFT if self.filling == "off" else 0.0)

    @property
    def key(self) -> str:
        """Group name in the reference cache and stem of the PNG."""
        return f"U{self.U:g}_beta{self.beta:g}_{self.filling}"

    @property
    def label(self) -> str:
        return f"U={self.U:g} beta={self.beta:g} eps_d={self.eps_d:+g} ({self.filling})"

    def model(self) -> AndersonModel:
        return AndersonModel(U=self.U, eps_d=self.eps_d, beta=self.beta,
                             bath_eps=list(self.bath_eps), bath_v=list(self.bath_v))


def panel(u_values=U_VALUES, beta_values=BETA_VALUES, fillings=("half", "off")) -> list[Entry]:
    """The panel, cheap (large beta) models first."""
    return [Entry(U, beta, f) for beta in sorted(beta_values, reverse=True) for U in u_values
            for f in fillings]


# ------------------------------------------------------------------------- ED reference cache
@dataclass
class Reference:
    """What the panel needs of an ED solve (rebuilt from the cache without re-solving)."""

    g_l: np.ndarray
    g_iw: np.ndarray
    sigma_iw: np.ndarray
    beta: float
    density: float
    double_occupancy: float
    converged: bool
    wall_time: float
    n_kept_states: int
    legendre_error: float         # max |G(tau) from g_l - exact G(tau)| on the panel grid
    cached: bool = False

    @property
    def z(self) -> float:
        return quasiparticle_weight(self.sigma_iw, self.beta)

    def g_tau_at(self, tau: np.ndarray) -> np.ndarray:
        return SolverResult(solver="ed", beta=self.beta, g_iw=self.g_iw, sigma_iw=self.sigma_iw,
                            g_l=self.g_l, density=self.density).g_tau_at(tau)


def _stamp(entry: Entry) -> dict:
    """Attributes that must match for a cached reference to be reused."""
    return {"U": entry.U, "eps_d": entry.eps_d, "beta": entry.beta,
            "bath_eps": np.asarray(entry.bath_eps, float),
            "bath_v": np.asarray(entry.bath_v, float),
            "n_iw": N_IW, "n_l": N_L, "ed_options": repr(sorted(ED_OPTIONS.items()))}


def _matches(attrs, stamp: dict) -> bool:
    for name, want in stamp.items():
        if name not in attrs:
            return False
        have = attrs[name]
        if isinstance(want, np.ndarray):
            have = np.asarray(have, float)
            if have.shape != want.shape or not np.array_equal(have, want):
                return False
        elif isinstance(want, str):
            if (have.decode() if isinstance(have, bytes) else str(have)) != want:
                return False
        elif float(have) != float(want):
            return False
    return True


def load_reference(path: str, entry: Entry) -> Reference | None:
    """The cached ED reference of ``entry``, or ``None`` if absent or stale."""
    if not os.path.exists(path):
        return None
    with h5py.File(path, "r") as f:
        if entry.key not in f:
            return None
        g = f[entry.key]
        if not _matches(g.attrs, _stamp(entry)):
            return None
        return Reference(g_l=g["g_l"][()], g_iw=g["g_iw"][()], sigma_iw=g["sigma_iw"][()],
                         beta=float(g.attrs["beta"]), density=float(g.attrs["density"]),
                         double_occupancy=float(g.attrs["double_occupancy"]),
                         converged=bool(g.attrs["converged"]),
                         wall_time=float(g.attrs["wall_time"]),
                         n_kept_states=int(g.attrs["n_kept_states"]),
                         legendre_error=float(g.attrs["legendre_error"]), cached=True)


def save_reference(path: str, entry: Entry, ref: Reference) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with h5py.File(path, "a") as f:
        if entry.key in f:
            del f[entry.key]
        g = f.create_group(entry.key)
        g["g_l"], g["g_iw"], g["sigma_iw"] = ref.g_l, ref.g_iw, ref.sigma_iw
        for name, value in _stamp(entry).items():
            g.attrs[name] = value
        g.attrs["density"] = ref.density
        g.attrs["double_occupancy"] = ref.double_occupancy
        g.attrs["converged"] = ref.converged
        g.attrs["wall_time"] = ref.wall_time
        g.attrs["n_kept_states"] = ref.n_kept_states
        g.attrs["legendre_error"] = ref.legendre_error
        g.attrs["computed"] = datetime.datetime.now().isoformat(timespec="seconds")


def ed_reference(entry: Entry, cache: str | None, recompute: bool = False) -> Reference:
    """ED of ``entry`` from the cache, or solved (and then cached)."""
    if cache is not None and not recompute:
        ref = load_reference(cache, entry)
        if ref is not None:
            return ref
    res = solve("ed", entry.model(), n_iw=N_IW, n_l=N_L, n_tau=LEGENDRE_CHECK_N_TAU,
                **ED_OPTIONS)
    tau = np.linspace(0.0, entry.beta, LEGENDRE_CHECK_N_TAU)
    exact = res.g_tau if res.tau is not None and np.allclose(res.tau, tau) else None
    leg_err = float(np.max(np.abs(res.g_tau_at(tau) - exact))) if exact is not None else math.nan
    ref = Reference(g_l=res.g_l, g_iw=res.g_iw, sigma_iw=res.sigma_iw, beta=res.beta,
                    density=float(res.density), double_occupancy=float(res.double_occupancy),
                    converged=bool(res.converged), wall_time=float(res.wall_time),
                    n_kept_states=int(res.info.get("n_kept_states", -1)), legendre_error=leg_err)
    if cache is not None:
        save_reference(cache, entry, ref)
    return ref


# ------------------------------------------------------------------------------- comparison
@dataclass
class Row:
    U: float
    beta: float
    eps_d: float
    filling: str
    solver: str
    mse_gtau: float
    max_abs_dgtau: float
    z: float
    z_ed: float
    dz: float
    docc: float | None
    docc_ed: float
    ddocc: float | None
    dn: float
    time_s: float
    converged: bool


def compare(entry: Entry, ref: Reference, solver_names, n_tau: int
            ) -> tuple[list[Row], dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Solve ``entry`` with each cheap solver and compare with the reference.

    Returns the rows, ``G(tau)`` per solver, the reference ``G(tau)`` and the grid.
    """
    model = entry.model()
    tau = np.linspace(0.0, entry.beta, n_tau)
    g_ref = ref.g_tau_at(tau)
    rows, curves = [], {}
    for name in solver_names:
        res = solve(name, model)
        g = res.g_tau_at(tau)
        curves[name] = g
        docc = None if res.double_occupancy is None else float(res.double_occupancy)
        rows.append(Row(U=entry.U, beta=entry.beta, eps_d=entry.eps_d, filling=entry.filling,
                        solver=name, mse_gtau=float(np.mean((g - g_ref) ** 2)),
                        max_abs_dgtau=float(np.max(np.abs(g - g_ref))), z=float(res.z),
                        z_ed=float(ref.z), dz=float(res.z - ref.z), docc=docc,
                        docc_ed=ref.double_occupancy,
                        ddocc=None if docc is None else docc - ref.double_occupancy,
                        dn=float(res.density - ref.density), time_s=float(res.wall_time),
                        converged=bool(res.converged)))
    return rows, curves, g_ref, tau


def plot_entry(path: str, entry: Entry, tau: np.ndarray, g_ref: np.ndarray,
               curves: dict[str, np.ndarray]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, dax) = plt.subplots(2, 1, figsize=(7, 7), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 2]})
    for name, g in curves.items():
        ax.plot(tau, g, lw=1.2, label=name)
        dax.plot(tau, g - g_ref, lw=1.2, label=name)
    ax.plot(tau, g_ref, "k--", lw=1.6, label="ED (Nb=8)", zorder=5)
    ax.set_ylabel(r"$G(\tau)$")
    ax.set_title(f"{entry.label}, 8-site bath")
    ax.legend(fontsize=8, ncol=2)
    dax.axhline(0.0, color="k", lw=0.8)
    dax.set_xlabel(r"$\tau$ (1/D)")
    dax.set_ylabel(r"$G(\tau) - G_{ED}(\tau)$")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------- tables
def _fmt(x: float | None, spec: str) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


ROW_COLUMNS = [("U", "U", "g"), ("beta", "beta", "g"), ("eps_d", "eps_d", "+g"),
               ("solver", "solver", "s"), ("MSE G(tau)", "mse_gtau", ".2e"),
               ("max|dG|", "max_abs_dgtau", ".3f"), ("Z", "z", ".4f"), ("Z_ED", "z_ed", ".4f"),
               ("dZ", "dz", "+.4f"), ("D", "docc", ".4f"), ("D_ED", "docc_ed", ".4f"),
               ("dD", "ddocc", "+.4f"), ("dn", "dn", "+.4f"), ("ms", "time_s", "")]


def _cells(r: Row) -> list[str]:
    out = []
    for _, attr, spec in ROW_COLUMNS:
        v = getattr(r, attr)
        out.append(f"{1e3 * v:.1f}" if attr == "time_s" else _fmt(v, spec))
    return out + ["" if r.converged else "NOT CONVERGED"]


def _format_table(heads: list[str], cells: list[list[str]], markdown: bool) -> str:
    """Right-aligned plain-text table (trailing blanks stripped), or a Markdown table."""
    if markdown:
        lines = ["| " + " | ".join(h.replace("|", "\\|") for h in heads) + " |",
                 "|" + "---|" * len(heads)]
        return "\n".join(lines + ["| " + " | ".join(c) + " |" for c in cells])
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h)
              for i, h in enumerate(heads)]
    lines = [" ".join(h.rjust(w) for h, w in zip(heads, widths)).rstrip()]
    lines += [" ".join(c.rjust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def row_table(rows: list[Row], markdown: bool = False) -> str:
    heads = [h for h, _, _ in ROW_COLUMNS] + ["note"]
    cells = [_cells(r) for r in rows]
    return _format_table(heads, cells, markdown)


def _median(values) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def summary_rows(rows: list[Row], solver_names) -> list[list[str]]:
    """Per solver: median MSE of G(tau) per beta and filling and overall, median |dZ|, |dD|,
    |dn| and median time."""
    betas = sorted({r.beta for r in rows})
    out = []
    for name in solver_names:
        mine = [r for r in rows if r.solver == name]
        if not mine:
            continue
        cells = [name]
        for beta in betas:
            cells.append(_fmt(_median(r.mse_gtau for r in mine if r.beta == beta), ".2e"))
        for filling in ("half", "off"):
            cells.append(_fmt(_median(r.mse_gtau for r in mine if r.filling == filling), ".2e"))
        cells.append(_fmt(_median(r.mse_gtau for r in mine), ".2e"))
        cells.append(_fmt(max(r.mse_gtau for r in mine), ".2e"))
        cells.append(_fmt(_median(abs(r.dz) for r in mine), ".1e"))
        cells.append(_fmt(_median(None if r.ddocc is None else abs(r.ddocc) for r in mine), ".1e"))
        cells.append(_fmt(_median(abs(r.dn) for r in mine), ".1e"))
        cells.append(f"{1e3 * statistics.median(r.time_s for r in mine):.1f}")
        cells.append(str(sum(not r.converged for r in mine)))
        out.append(cells)
    return out


def summary_heads(rows: list[Row]) -> list[str]:
    betas = sorted({r.beta for r in rows})
    return (["solver"] + [f"med MSE b={b:g}" for b in betas]
            + ["med MSE half", "med MSE off", "med MSE all", "max MSE", "med |dZ|", "med |dD|",
               "med |dn|", "med ms", "not conv"])


def summary_table(rows: list[Row], solver_names, markdown: bool = False) -> str:
    heads = summary_heads(rows)
    cells = summary_rows(rows, solver_names)
    return _format_table(heads, cells, markdown)


def mse_matrix(rows: list[Row], solver_names, markdown: bool = False) -> str:
    """Compact matrix: one line per model, MSE of G(tau) per solver (best marked with *)."""
    keys = []
    for r in rows:
        k = (r.U, r.beta, r.eps_d, r.filling)
        if k not in keys:
            keys.append(k)
    names = [n for n in solver_names if any(r.solver == n for r in rows)]
    heads = ["U", "beta", "eps_d"] + names
    cells = []
    for k in keys:
        mine = {r.solver: r for r in rows if (r.U, r.beta, r.eps_d, r.filling) == k}
        best = min(mine[n].mse_gtau for n in names if n in mine)
        line = [f"{k[0]:g}", f"{k[1]:g}", f"{k[2]:+g}"]
        for n in names:
            if n not in mine:
                line.append("-")
                continue
            v = mine[n].mse_gtau
            line.append(f"{v:.1e}" + ("*" if v == best else "") + ("!" if not mine[n].converged
                                                                  else ""))
        cells.append(line)
    return _format_table(heads, cells, markdown)


def write_csv(path: str, rows: list[Row]) -> None:
    with open(path, "w", newline="") as fh:
        fields = list(asdict(rows[0]).keys()) if rows else [f for f in Row.__dataclass_fields__]
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else v) for k, v in asdict(r).items()})


def ed_table(entries: list[Entry], refs: dict[str, Reference], markdown: bool = False) -> str:
    heads = ["U", "beta", "eps_d", "n_ED", "D_ED", "Z_ED", "kept", "ED s", "cached",
             "Legendre err", "conv"]
    cells = []
    for e in entries:
        r = refs[e.key]
        cells.append([f"{e.U:g}", f"{e.beta:g}", f"{e.eps_d:+g}", f"{r.density:.4f}",
                      f"{r.double_occupancy:.4f}", f"{r.z:.4f}", str(r.n_kept_states),
                      f"{r.wall_time:.1f}", "yes" if r.cached else "no",
                      _fmt(r.legendre_error, ".1e"), "yes" if r.converged else "NO"])
    return _format_table(heads, cells, markdown)


# -------------------------------------------------------------------------------------- main
def run(entries: list[Entry], solver_names, out: str, n_tau: int = 201, plots: bool = True,
        recompute_ed: bool = False, log=print) -> tuple[list[Row], dict[str, Reference]]:
    """Run the panel; write the cache, PNGs, ``panel.csv`` and ``panel.md`` into ``out``."""
    os.makedirs(out, exist_ok=True)
    cache = os.path.join(out, "ed_reference.h5")
    rows: list[Row] = []
    refs: dict[str, Reference] = {}
    t_run = time.perf_counter()
    for i, entry in enumerate(entries, 1):
        t0 = time.perf_counter()
        ref = ed_reference(entry, cache, recompute=recompute_ed)
        refs[entry.key] = ref
        t_ed = time.perf_counter() - t0
        new, curves, g_ref, tau = compare(entry, ref, solver_names, n_tau)
        rows.extend(new)
        if plots:
            plot_entry(os.path.join(out, f"gtau_{entry.key}.png"), entry, tau, g_ref, curves)
        src = (f"cached (computed in {ref.wall_time:.1f} s)" if ref.cached
               else f"computed in {t_ed:.1f} s")
        worst = [r.solver for r in new if not r.converged]
        log(f"[{i:>2}/{len(entries)}] {entry.label}: ED {src}, {ref.n_kept_states} states"
            + ("" if ref.converged else " NOT CONVERGED") + "; cheap solvers "
            f"{sum(r.time_s for r in new):.2f} s"
            + (f"; not converged: {', '.join(worst)}" if worst else "")
            + f"  [elapsed {time.perf_counter() - t_run:.0f} s]", flush=True)
    return rows, refs


def write_reports(out: str, rows: list[Row], refs: dict[str, Reference], entries: list[Entry],
                  solver_names, header: str) -> None:
    write_csv(os.path.join(out, "panel.csv"), rows)
    md = ["# Solver panel against ED (Nb = 8)", "", header, "",
          "## Summary per solver", "", summary_table(rows, solver_names, markdown=True), "",
          "## MSE of G(tau) per model (* best, ! not converged)", "",
          mse_matrix(rows, solver_names, markdown=True), "",
          "## ED references", "", ed_table(entries, refs, markdown=True), "",
          "## All rows", "", row_table(rows, markdown=True), ""]
    with open(os.path.join(out, "panel.md"), "w") as fh:
        fh.write("\n".join(md))


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output directory ({DEFAULT_OUT})")
    parser.add_argument("--U", type=float, nargs="+", default=list(U_VALUES))
    parser.add_argument("--beta", type=float, nargs="+", default=list(BETA_VALUES))
    parser.add_argument("--filling", nargs="+", choices=("half", "off"), default=["half", "off"])
    parser.add_argument("--solvers", nargs="+", default=list(SOLVERS))
    parser.add_argument("--n-tau", type=int, default=201, help="uniform tau grid for the MSE")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--ed-cutoff", type=float, default=ED_CUTOFF,
                        help=f"Boltzmann cutoff of the reference ED ({ED_CUTOFF:g})")
    parser.add_argument("--recompute-ed", action="store_true",
                        help="ignore the cached ED references")
    args = parser.parse_args(argv)
    if args.n_tau < 2:
        parser.error("--n-tau must be >= 2")
    ED_OPTIONS["cutoff"] = args.ed_cutoff
    t_start = time.perf_counter()
    entries = panel(args.U, args.beta, args.filling)
    header = (f"Reference: ED on the full bath, Boltzmann cutoff {args.ed_cutoff:g}. "
              f"Bath: eps = +-0.1, +-0.4, +-0.9, +-1.5, V = sqrt(0.25/8); half filling "
              f"eps_d = -U/2, off half filling eps_d = -U/2 + {OFF_SHIFT:g}. MSE of G(tau) on "
              f"{args.n_tau} uniform tau points in [0, beta] (G from {N_L} Legendre "
              f"coefficients); dX = X_solver - X_ED; D = double occupancy; dn = total density "
              f"error; ms = wall time of one solve. Generated "
              f"{datetime.datetime.now().isoformat(timespec='seconds')} on "
              f"{platform.machine()}, {os.cpu_count()} logical CPUs, OMP_NUM_THREADS="
              f"{os.environ.get('OMP_NUM_THREADS')}.")
    print(header, flush=True)
    rows, refs = run(entries, args.solvers, args.out, n_tau=args.n_tau,
                     plots=not args.no_plots, recompute_ed=args.recompute_ed)
    print()
    print("ED references")
    print(ed_table(entries, refs))
    print()
    print(row_table(rows))
    print()
    print("MSE of G(tau) per model (* best, ! not converged)")
    print(mse_matrix(rows, args.solvers))
    print()
    print("Summary per solver (medians over the panel)")
    print(summary_table(rows, args.solvers))
    write_reports(args.out, rows, refs, entries, args.solvers, header)
    print(f"\nwrote {args.out}/panel.md, panel.csv, ed_reference.h5"
          + ("" if args.no_plots else f" and {len(entries)} PNGs (gtau_*.png)")
          + f"; total {time.perf_counter() - t_start:.1f} s")
    return rows


if __name__ == "__main__":
    main()
