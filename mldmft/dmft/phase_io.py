"""Outputs of a phase-diagram run (:mod:`mldmft.dmft.phase_diagram`): ``diagram.h5`` (layout in
:mod:`mldmft.h5schema`), ``diagram_points.csv`` (every DMFT point), ``diagram_ends.csv`` (branch
ends and first-order line per temperature), ``summary.json``, ``summary.txt`` (the printed
report) and ``diagram.png`` (:mod:`mldmft.dmft.phase_plot`), all written atomically into the
output directory."""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..h5schema import PHASE_DIAGRAM_SCHEMA, PHASE_DIAGRAM_SCHEMA_VERSION
from ..h5util import atomic_h5, atomic_path, write_header, write_text_atomic

if TYPE_CHECKING:
    from .phase_diagram import PhaseDiagramConfig, PhaseDiagramResult, TemperatureResult

__all__ = ["write_outputs", "report_lines", "summary_dict", "output_files", "check_outputs"]

_POINT_COLUMNS = ("U", "branch", "converged", "iterations", "residual", "Z", "double_occupancy",
                  "density", "g_beta_half", "kinetic_energy", "wall_time", "fallbacks", "beta",
                  "mu", "D", "retried_linear")


def _f(x: float) -> float | None:
    """A float for JSON (NaN -> None)."""
    return None if x is None or not math.isfinite(x) else float(x)


def _diagrams(result: "PhaseDiagramResult") -> list[tuple[str, Any, list]]:
    """``(role, diagram-or-ed, temperatures)`` of every diagram of the run."""
    out = [("main", result.main, result.main.temperatures)]
    out += [("comparison", d, d.temperatures) for d in result.comparisons]
    if result.ed is not None:
        out.append(("ed_check", result.ed, result.ed.temperatures))
    return out


def _label(role: str, diagram: Any) -> str:
    return "ed_check" if role == "ed_check" else diagram.label


def _first_order(diagram: Any) -> dict[float, Any]:
    thermo = getattr(diagram, "thermo", None)
    return {} if thermo is None else dict(thermo.first_order)


def _end_row(t: "TemperatureResult", crossing: Any) -> dict[str, Any]:
    return {"beta": t.beta, "T": t.T, "refined": t.refined,
            "uc1": _f(t.down.U), "uc1_error": _f(t.down.error), "uc1_status": t.down.status,
            "uc2": _f(t.up.U), "uc2_error": _f(t.up.error), "uc2_status": t.up.status,
            "coexist": t.coexist,
            "first_order_U": _f(crossing.U) if crossing is not None else None,
            "first_order_error": _f(crossing.error) if crossing is not None else None,
            "first_order_status": crossing.status if crossing is not None else ""}


def summary_dict(result: "PhaseDiagramResult", config: "PhaseDiagramConfig") -> dict[str, Any]:
    """Everything of the run in JSON-able form (``summary.json``)."""
    out: dict[str, Any] = {"lattice": dict(config.lattice), "tol_U": config.tol_U,
                           "metal_threshold": config.metal_threshold, "diagrams": {},
                           "timings_s": {k: round(v, 2) for k, v in result.timings.items()},
                           "total_time_s": round(result.total_time, 2),
                           "points_solved": result.solved, "points_read": result.resumed,
                           "files": {k: str(v) for k, v in result.files.items()}}
    for role, d, temps in _diagrams(result):
        fo = _first_order(d)
        entry: dict[str, Any] = {"role": role,
                                 "solver": (d.plan["solver"] if role == "ed_check"
                                            else d.spec.solver),
                                 "ends": [_end_row(t, fo.get(t.beta)) for t in temps]}
        if role != "ed_check":
            c = d.critical
            entry["critical"] = {"Tc": _f(c.Tc), "Tc_error": _f(c.Tc_error), "Uc": _f(c.Uc),
                                 "Uc_error": _f(c.Uc_error), "status": c.status,
                                 "T_window": _f(c.T_window), "T_none": _f(c.T_none),
                                 "notes": list(c.notes)}
            if d.thermo is not None:
                th = d.thermo
                entry["thermo"] = {"beta_top": th.beta_top, "U_lo": th.U_lo, "U_hi": th.U_hi,
                                   "path_error_omega": _f(th.path_error), "notes": th.notes,
                                   "loop": None if th.loop is None else dict(zip(
                                       ("beta_a", "beta_b", "defect_beta_omega", "error"),
                                       th.loop))}
        out["diagrams"][_label(role, d)] = entry
    return out


def _write_h5(path: Path, result: "PhaseDiagramResult", config: "PhaseDiagramConfig",
              summary: dict[str, Any]) -> None:
    import numpy as np

    with atomic_h5(path) as f:
        write_header(f, PHASE_DIAGRAM_SCHEMA, PHASE_DIAGRAM_SCHEMA_VERSION)
        f.attrs["config"] = json.dumps(dict(config.metadata), sort_keys=True, default=str)
        f.attrs["summary"] = json.dumps(summary, sort_keys=True, default=str)
        for role, d, temps in _diagrams(result):
            label = _label(role, d)
            g = f.create_group(label)
            g.attrs["role"] = role
            g.attrs["solver"] = d.plan["solver"] if role == "ed_check" else d.spec.solver
            g.attrs["plan"] = json.dumps(d.plan, sort_keys=True, default=str)
            entry = summary["diagrams"][label]
            g.attrs["critical"] = json.dumps(entry.get("critical"), default=str)
            g.attrs["thermo"] = json.dumps(entry.get("thermo"), default=str)
            e = g.create_group("ends")
            e["beta"] = np.array([t.beta for t in temps])
            for name, end in (("uc1", "down"), ("uc2", "up")):
                e[name] = np.array([getattr(t, end).U for t in temps])
                e[f"{name}_error"] = np.array([getattr(t, end).error for t in temps])
            e["coexist"] = np.array([t.coexist for t in temps], dtype=np.int8)
            e["refined"] = np.array([t.refined for t in temps], dtype=np.int8)
            fo = sorted(_first_order(d).items())
            h = g.create_group("first_order")
            h["beta"] = np.array([b for b, _ in fo], dtype=float)
            h["U"] = np.array([c.U for _, c in fo], dtype=float)
            h["error"] = np.array([c.error for _, c in fo], dtype=float)
            h["delta_lo"] = np.array([c.delta_lo for _, c in fo], dtype=float)
            h["delta_hi"] = np.array([c.delta_hi for _, c in fo], dtype=float)
            pts = g.create_group("points")
            for key, point, extra in d.store.items():
                q = pts.create_group(key)
                for name, value in point.scalars().items():
                    q.attrs[name] = json.dumps(value) if isinstance(value, list) else value
                q.attrs["key"] = key
                q.attrs["start"] = extra["start"]
                q.attrs["stage"] = extra["stage"]
                q["g_iw"] = point.g_iw
                q["sigma_iw"] = point.sigma_iw
                q["delta_iw"] = point.delta_iw


def _write_csvs(out: Path, result: "PhaseDiagramResult") -> tuple[Path, Path]:
    points_csv, ends_csv = out / "diagram_points.csv", out / "diagram_ends.csv"
    with atomic_path(points_csv) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(("label", "key", "start", "stage") + _POINT_COLUMNS)
        for role, d, _ in _diagrams(result):
            rows = sorted(d.store.items(), key=lambda r: (r[1].beta, r[1].branch, r[1].U))
            for key, point, extra in rows:
                s = point.scalars()
                w.writerow([_label(role, d), key, extra["start"], extra["stage"]]
                           + [s[c] for c in _POINT_COLUMNS])
    with atomic_path(ends_csv) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        header = None
        for role, d, temps in _diagrams(result):
            fo = _first_order(d)
            for t in temps:
                row = {"label": _label(role, d), **_end_row(t, fo.get(t.beta))}
                if header is None:
                    header = list(row)
                    w.writerow(header)
                w.writerow(["" if row[k] is None else row[k] for k in header])
    return points_csv, ends_csv


def output_files(out: str | Path) -> dict[str, Path]:
    """The files a run writes into the directory ``out``."""
    out = Path(out)
    return {"h5": out / "diagram.h5", "png": out / "diagram.png",
            "points_csv": out / "diagram_points.csv", "ends_csv": out / "diagram_ends.csv",
            "summary_json": out / "summary.json", "summary_txt": out / "summary.txt"}


def _csv_starting(header: str):
    def ours(path: Path) -> bool:
        try:
            with open(path) as fh:
                return fh.readline().startswith(header)
        except (OSError, UnicodeDecodeError):
            return False
    return ours


def _is_summary(path: Path) -> bool:
    try:
        return "diagrams" in json.loads(path.read_text())
    except (OSError, ValueError, TypeError):
        return False


def check_outputs(config: "PhaseDiagramConfig") -> None:
    """Refuse, before any work, an output place that is a directory, an input file (the
    network's checkpoint) or a foreign file (:func:`~mldmft.h5util.check_output_places`)."""
    from ..h5schema import PHASE_DIAGRAM_SCHEMA
    from ..h5util import OutputFile, check_output_places, h5_schema_is

    f = output_files(config.out)
    inputs = {str(s.solver_options["checkpoint"]): "checkpoint"
              for s in (config.main, *config.compare) if s.solver_options.get("checkpoint")}
    check_output_places(
        [OutputFile(f["h5"], "phase diagram", h5_schema_is(PHASE_DIAGRAM_SCHEMA)),
         OutputFile(f["png"], "figure"),
         OutputFile(f["points_csv"], "phase-diagram points CSV", _csv_starting("label,key,")),
         OutputFile(f["ends_csv"], "phase-diagram ends CSV", _csv_starting("label,beta,")),
         OutputFile(f["summary_json"], "phase-diagram summary", _is_summary),
         OutputFile(f["summary_txt"], "summary text"),
         OutputFile(f["h5"].with_name("diagram.h5.lock"), "lock file")],
        inputs=inputs, dirs=[Path(config.out), Path(config.out) / "store"], flag="out")


def write_outputs(result: "PhaseDiagramResult", config: "PhaseDiagramConfig",
                  t_start: float) -> dict[str, Path]:
    """Write every output into ``config.out``; fills ``result.files``, ``result.timings["output"]``
    and ``result.total_time`` (measured from ``t_start``, ``time.perf_counter()``)."""
    from .phase_plot import plot_phase_diagram

    t0 = time.perf_counter()
    out = Path(config.out)
    files = output_files(out)
    result.files = files
    plot_phase_diagram(result, files["png"])
    _write_csvs(out, result)
    result.timings["output"] = time.perf_counter() - t0
    result.total_time = time.perf_counter() - t_start
    summary = summary_dict(result, config)
    _write_h5(files["h5"], result, config, summary)
    write_text_atomic(files["summary_json"], json.dumps(summary, indent=1, default=str) + "\n")
    write_text_atomic(files["summary_txt"], "\n".join(report_lines(result)) + "\n")
    return files


def _pm(x: float, err: float, digits: int = 3) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:.{digits}f} +- {err:.{digits}f}"


def _end_text(end: Any) -> str:
    if end.bracketed:
        return _pm(end.U, end.error)
    return "beyond range" if end.status == "beyond range" else "before range"


def report_lines(result: "PhaseDiagramResult") -> list[str]:
    """The human-readable report (``summary.txt``, printed by the command)."""
    lines: list[str] = []
    for role, d, temps in _diagrams(result):
        if role == "ed_check":
            continue
        fo = _first_order(d)
        title = "main" if role == "main" else "comparison"
        lines.append(f"{d.label} ({title}, solver {d.spec.solver}): branch ends, U in D "
                     "(+- half the bisection bracket)")
        lines.append(f"  {'beta':>7} {'T':>7}  {'Uc1 (insulator ends)':>20}  "
                     f"{'Uc2 (metal ends)':>17}  {'window':>6}  {'Uc first order':>16}")
        for t in temps:
            c = fo.get(t.beta)
            first = ("-" if c is None else _pm(c.U, c.error) if c.status == "crossing"
                     else c.status)
            mark = "*" if t.refined else " "
            lines.append(f"  {t.beta:>7.4g} {t.T:>7.4f}{mark} {_end_text(t.down):>20}  "
                         f"{_end_text(t.up):>17}  {'yes' if t.coexist else 'no':>6}  "
                         f"{first:>16}")
        if any(t.refined for t in temps):
            lines.append("  (* temperature added by the bisection of Tc)")
        cp = d.critical
        if cp.status == "bracketed":
            lines.append(f"  critical end point: Tc = {cp.Tc:.4f} +- {cp.Tc_error:.4f} "
                         f"(beta {1 / cp.Tc:.1f}; window at T = {cp.T_window:.4f}, none at "
                         f"{cp.T_none:.4f}), Uc = {cp.Uc:.3f} +- {cp.Uc_error:.3f}")
        else:
            lines.append(f"  critical end point: {cp.status}")
        lines += [f"  note: {n}" for n in cp.notes]
        th = d.thermo
        if th is not None:
            if th.loop is not None:
                ba, bb, defect, err = th.loop
                lines.append(f"  thermodynamic consistency: oint d(beta Omega) around U "
                             f"[{th.U_lo:g}, {th.U_hi:g}] x beta [{ba:g}, {bb:g}] = "
                             f"{defect:.2e} (integration error {err:.1e}; per site at beta "
                             f"{bb:g}: {defect / bb:.1e} D)")
            if math.isfinite(th.path_error):
                lines.append(f"  integration error of Omega at the path ends: <= "
                             f"{th.path_error:.1e} D")
            lines += [f"  note: {n}" for n in th.notes]
    if result.ed is not None:
        main = {t.beta: t for t in result.main.temperatures}
        plan = result.ed.plan
        opts = ", ".join(f"{k} {v}" for k, v in sorted(plan["solver_options"].items()))
        lines.append(f"ED-DMFT check (solver {plan['solver']}{', ' + opts if opts else ''}) "
                     f"against {result.main.label}:")
        lines.append(f"  {'beta':>7}  {'Uc1 ED':>15}  {'Uc1 ' + result.main.label:>15}  "
                     f"{'Uc2 ED':>15}  {'Uc2 ' + result.main.label:>15}  max |diff|")
        for t in result.ed.temperatures:
            m = main[t.beta]
            diffs = [abs(a.U - b.U) for a, b in ((t.down, m.down), (t.up, m.up))
                     if a.bracketed and b.bracketed]
            lines.append(f"  {t.beta:>7.4g}  {_end_text(t.down):>15}  {_end_text(m.down):>15}  "
                         f"{_end_text(t.up):>15}  {_end_text(m.up):>15}  "
                         + (f"{max(diffs):.3f}" if diffs else "-"))
    times = ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items())
    lines.append(f"time: total {result.total_time:.1f} s ({times})")
    lines.append(f"points: {result.solved} solved, {result.resumed} read from the store")
    if result.files:
        lines.append("written: " + ", ".join(str(p) for p in result.files.values()))
    return lines
