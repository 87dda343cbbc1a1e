"""Summaries and plots of an AIM database (``mldmft inspect FILE``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from solvers.legendre import g_tau_from_l

from ..h5schema import STATUS_FAILED, STATUS_NOT_CONVERGED, STATUS_OK
from .store import load_database, open_database

__all__ = ["inspect_database", "g_tau_rows", "non_finite_rows", "plot_paths", "INPUT_NAMES"]

#: Datasets that define a row's impurity model (the network's inputs); every value must be
#: finite, bath arrays up to the row's ``n_bath`` (beyond it they are padding).
INPUT_NAMES = ("params/U", "params/eps_d", "params/beta", "params/D", "delta_l", "bath/eps",
               "bath/v")


def non_finite_rows(data: dict[str, np.ndarray], solvers: tuple[str, ...] | list[str] = ()
                    ) -> dict[str, np.ndarray]:
    """Rows holding NaN or inf where a value must be finite, per dataset (only those with any).

    Checked: the inputs :data:`INPUT_NAMES` present in ``data`` (bath arrays inside each row's
    ``params/n_bath``) and, for each of ``solvers``, ``g_l``, ``sigma_iw`` and ``density`` of the
    rows whose status is not failed (a failed row is NaN by design).

    Example:
        >>> import numpy as np
        >>> non_finite_rows({"params/U": np.array([1.0, np.nan, 2.0])})
        {'params/U': array([1])}
    """
    out: dict[str, np.ndarray] = {}

    def record(name: str, values: np.ndarray, rows_to_check: np.ndarray | None = None) -> None:
        ok = np.isfinite(values)
        ok = ok.reshape(ok.shape[0], -1).all(axis=1)
        if rows_to_check is not None:
            ok |= ~rows_to_check
        if not ok.all():
            out[name] = np.flatnonzero(~ok)

    for name in INPUT_NAMES:
        if name not in data:
            continue
        values = np.asarray(data[name], dtype=float)
        if name.startswith("bath/") and "params/n_bath" in data:
            inside = np.arange(values.shape[1])[None, :] < data["params/n_bath"][:, None]
            values = np.where(inside, values, 0.0)
        record(name, values)
    for s in solvers:
        status = data.get(f"solvers/{s}/status")
        used = None if status is None else status != STATUS_FAILED
        for field in ("g_l", "sigma_iw", "density"):
            if f"solvers/{s}/{field}" in data:
                record(f"solvers/{s}/{field}", data[f"solvers/{s}/{field}"], used)
    return out


def g_tau_rows(g_l: np.ndarray, beta: np.ndarray, n_tau: int = 201) -> np.ndarray:
    """``G(tau)`` of every row on ``tau = beta x``, ``x`` uniform in [0, 1] (rows, n_tau)."""
    x = np.linspace(0.0, 1.0, n_tau)
    out = np.empty((g_l.shape[0], n_tau))
    for i in range(g_l.shape[0]):
        out[i] = g_tau_from_l(g_l[i], beta[i], beta[i] * x)
    return out


def inspect_database(path: str | Path, plots: bool = True,
                     out_dir: str | Path | None = None) -> list[str]:
    """Counts, parameter ranges, failures, each cheap solver's error against the target.

    Errors are over rows where both solvers succeeded: the MSE of ``G(tau)`` on 201 points
    (``tau/beta`` uniform), and the mean absolute error of the density. Writes
    ``<stem>_params.png`` (parameter histograms) and ``<stem>_gtau.png`` (sample ``G(tau)`` per
    solver) unless ``plots`` is false.
    The plots' places (:func:`plot_paths`) are checked before anything is read.
    """
    path = Path(path)
    if plots:
        out_dir = Path(out_dir) if out_dir else path.parent
        _check_plot_places(path, out_dir)
    with open_database(path) as f:
        attrs = {k: f.attrs[k] for k in f.attrs}
    names = json.loads(attrs["solver_names"])
    target = str(attrs["target"])
    data = load_database(path)
    n_rows = len(data["sample_index"])
    aug = data["augmented"].astype(bool)
    bad = non_finite_rows(data, names)
    inputs_ok = np.ones(n_rows, dtype=bool)
    for name in INPUT_NAMES:
        inputs_ok[bad.get(name, [])] = False
    lines = [f"database     {path}",
             f"created      {attrs.get('created', '?')}  (mldmft {attrs.get('package_version', '?')}"
             f", git {str(attrs.get('git_revision', '?'))[:10]})",
             f"samples      {int(attrs['n_samples'])}   rows {n_rows} ({int(aug.sum())} "
             "particle-hole twins)",
             f"Legendre     n_l = {int(attrs['n_l'])},  Sigma on {int(attrs['n_sigma'])} "
             "Matsubara points"]
    if bad:
        lines.append("non-finite values (these rows are left out of the statistics below):")
        for name, rows in bad.items():
            shown = ", ".join(str(r) for r in rows[:10]) + (", ..." if rows.size > 10 else "")
            lines.append(f"  {name:<24} {rows.size} row(s): {shown}")
    for p in ("U", "eps_d", "beta", "D", "n_bath"):
        v = data[f"params/{p}"][~aug & inputs_ok]
        lines.append(f"  {p:<8} min {np.min(v):9.4g}  median {np.median(v):9.4g}  "
                     f"max {np.max(v):9.4g}")
    lines.append("solver       ok  not-conv  failed  median wall [s]")
    for n in names:
        st = data[f"solvers/{n}/status"]
        wt = data[f"solvers/{n}/wall_time"][~aug]
        lines.append(f"  {n:<9} {int(np.sum(st == STATUS_OK)):>4} "
                     f"{int(np.sum(st == STATUS_NOT_CONVERGED)):>9} "
                     f"{int(np.sum(st == STATUS_FAILED)):>7}  {np.median(wt):.4f}")
    beta = data["params/beta"]

    def usable(n: str) -> np.ndarray:
        """Rows where solver ``n`` succeeded with finite values, on a finite model."""
        ok = inputs_ok & (data[f"solvers/{n}/status"] == STATUS_OK)
        for field in ("g_l", "density"):
            ok[bad.get(f"solvers/{n}/{field}", [])] = False
        return ok

    ok_t = usable(target)
    g_target = g_tau_rows(data[f"solvers/{target}/g_l"], beta)
    lines.append(f"error against {target} (rows where both succeeded with finite values):")
    lines.append("  solver     rows   MSE G(tau) median      mean   |dn| mean")
    errors = {}
    for n in names:
        if n == target:
            continue
        ok = ok_t & usable(n)
        if not np.any(ok):
            lines.append(f"  {n:<9} {0:>5}   (no rows)")
            continue
        g = g_tau_rows(data[f"solvers/{n}/g_l"][ok], beta[ok])
        mse = np.mean((g - g_target[ok]) ** 2, axis=1)
        dn = np.abs(data[f"solvers/{n}/density"][ok] - data[f"solvers/{target}/density"][ok])
        errors[n] = mse
        lines.append(f"  {n:<9} {int(ok.sum()):>5}   {np.median(mse):12.3e} {np.mean(mse):9.3e}"
                     f" {np.mean(dn):10.3e}")
    failures = [(n, str(e)) for n in names for e in data[f"solvers/{n}/error"] if e]
    if failures:
        lines.append("first problems:")
        lines += [f"  {n}: {e[:150]}" for n, e in failures[:5]]
    if plots:
        lines += _plots(path.stem, out_dir, data, names, target, g_target, aug)
    return lines


def plot_paths(path: str | Path, out_dir: str | Path) -> tuple[Path, Path]:
    """The figures of :func:`inspect_database`: ``<stem>_params.png``, ``<stem>_gtau.png``."""
    return _plot_names(Path(path).stem, Path(out_dir))


def _plot_names(stem: str, out_dir: Path) -> tuple[Path, Path]:
    return out_dir / f"{stem}_params.png", out_dir / f"{stem}_gtau.png"


def _check_plot_places(path: Path, out_dir: Path) -> None:
    """The figures' folder must be writable and no figure may be the database (one-line error
    with the ways out)."""
    from ..h5util import OutputFile, OutputPlaceError, check_output_places

    try:
        check_output_places([OutputFile(p, "figure") for p in plot_paths(path, out_dir)],
                            inputs={path: "database"}, dirs=[out_dir])
    except OutputPlaceError as err:
        raise OutputPlaceError(f"{err}; choose --out DIR for the plots or --no-plots") from None


def _plots(stem, out_dir, data, names, target, g_target, aug) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.2))
    for ax, p in zip(axes, ("U", "eps_d", "beta", "D")):
        ax.hist(data[f"params/{p}"][~aug], bins=30, color="tab:blue")
        ax.set_xlabel(p)
    axes[0].set_ylabel("samples")
    fig.tight_layout()
    p1, p2 = _plot_names(stem, out_dir)
    fig.savefig(p1, dpi=110)
    plt.close(fig)

    rows = np.flatnonzero(~aug)[:4]
    fig, axes = plt.subplots(1, len(rows), figsize=(4 * len(rows), 3.4), squeeze=False)
    x = np.linspace(0, 1, g_target.shape[1])
    for ax, r in zip(axes[0], rows):
        for n in names:
            if data[f"solvers/{n}/status"][r] == STATUS_FAILED:
                continue
            g = g_target[r] if n == target else g_tau_rows(
                data[f"solvers/{n}/g_l"][r:r + 1], data["params/beta"][r:r + 1])[0]
            ax.plot(x, g, "k-" if n == target else "--", lw=2 if n == target else 1, label=n)
        ax.set_title(f"U={data['params/U'][r]:.2f} eps_d={data['params/eps_d'][r]:.2f} "
                     f"beta={data['params/beta'][r]:.0f}", fontsize=9)
        ax.set_xlabel(r"$\tau/\beta$")
    axes[0][0].set_ylabel(r"$G(\tau)$")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(p2, dpi=110)
    plt.close(fig)
    return [f"plots        {p1}", f"             {p2}"]
