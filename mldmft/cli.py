"""The ``mldmft`` command line.

* ``mldmft solve --solver ed MODEL.yaml [--out FILE.h5] [--plot] [--opt key=value ...]`` solves one
  impurity model, writes the result (HDF5, schema in :mod:`mldmft.h5schema`) and a JSON summary
  ``FILE.summary.json`` beside it, and prints density, double occupancy, Z and wall time. It never
  writes over the model file or over an HDF5 file that is not an earlier result.
* ``mldmft generate [hydra overrides]`` generates (or resumes) an AIM database
  (``configs/generate.yaml``).
* ``mldmft inspect FILE`` summarises a database and writes PNG plots.
* ``mldmft demo`` runs the shipped Mott-transition demo (network vs IPT vs ED-DMFT).
* ``mldmft models`` lists the shipped networks of the ``ml`` solver (:mod:`mldmft.ml.shipped`).
* ``mldmft active [hydra overrides]`` runs (or resumes) active learning for the network
  (``configs/active.yaml``, :mod:`mldmft.active`).
* ``mldmft phase-diagram [hydra overrides] [--check-ed]`` computes the Mott phase diagram
  (``configs/phase_diagram.yaml``, :mod:`mldmft.dmft.phase_diagram`).
* ``mldmft dmft [hydra overrides]`` runs a DMFT sweep (``configs/dmft.yaml``, ``lattice=...``);
  ``mldmft overlay A.h5 B.h5 ... [--out FIG.png]`` overlays several sweeps in one figure
  (default ``overlay_A_B.png`` beside ``A.h5``; the path is printed).

Only this module (and ``train.py``/``dmft_loop.py``) sees Hydra configs; it builds typed objects
and passes plain arguments down.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Sequence

import yaml

from .yamlio import load_yaml

__all__ = ["main"]


def _option_value(text: str):
    """An ``--opt`` value: YAML (``512``, ``true``, ``[1, 2]``, ``null``, strings) with numbers
    read as Python reads them (``1e-8`` too; :func:`mldmft.yamlio.load_yaml`).

    Example:
        >>> _option_value("1e-8"), _option_value("512"), _option_value("true")
        (1e-08, 512, True)
    """
    return load_yaml(text)


def _parse_options(pairs: Sequence[str]) -> dict:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--opt expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        try:
            out[key.strip()] = _option_value(value)
        except yaml.YAMLError as err:
            first = str(err).strip().splitlines()[0]
            raise ValueError(f"--opt {pair}: cannot parse the value {value!r} ({first})") from None
    return out


def _name_part(key: str, value) -> str:
    """A setting as part of a default file name: ``n_bath8``, ``cutoff1e-08``,
    ``extrapolate-true``, ``checkpoint-model`` (a path: its stem), others a short digest.

    Example:
        >>> _name_part("n_bath", 8), _name_part("checkpoint", "runs/a/model.pt")
        ('n_bath8', 'checkpoint-model')
    """
    import hashlib

    if isinstance(value, bool):
        text = f"-{str(value).lower()}"
    elif isinstance(value, (int, float)):
        text = f"{value:g}"
    elif isinstance(value, str):
        text = "-" + (Path(value).stem if ("/" in value or "." in value) else value)
    else:
        digest = hashlib.sha1(json.dumps(value, sort_keys=True, default=str).encode())
        text = "-" + digest.hexdigest()[:8]
    return re.sub(r"[^\w.+-]", "_", f"{key}{text}")


def _name_parts(settings: dict) -> str:
    """``_<part>_<part>...`` of :func:`_name_part` for every setting (sorted by key); ``""`` if
    none."""
    return "".join(f"_{_name_part(k, v)}" for k, v in sorted(settings.items()))


def _cmd_solve(args: argparse.Namespace) -> int:
    from solvers import available_solvers, check_options, solve

    from .modelfile import load_model
    from .h5util import write_text_atomic
    from .plotting import plot_result
    from .results_io import result_summary, write_result

    from . import load_solver_module

    model = load_model(args.model)
    load_solver_module(args.solver)
    if args.solver not in available_solvers():
        raise ValueError(f"unknown solver {args.solver!r}; available: "
                         f"{', '.join(available_solvers())}")
    options = _parse_options(args.opt)
    out, summary_path, png = _solve_outputs(args.model, args.solver, args.out, options,
                                            plot=args.plot)
    check_options(args.solver, options)
    result = solve(args.solver, model, **options)
    spectrum = None
    if args.spectrum:
        from .dmft.spectra import real_mesh, result_spectrum

        spectrum = result_spectrum(result, args.spectrum, real_mesh(args.omega_max, 801),
                                   eta=args.eta)
    write_result(out, result, model, options, spectrum=spectrum)
    summary = result_summary(result)
    write_text_atomic(summary_path, json.dumps(summary, indent=2) + "\n")
    print(f"model          {args.model}  (U={model.U:g}, eps_d={model.eps_d:g}, "
          f"beta={model.beta:g}, Nb={model.n_bath})")
    print(f"solver         {result.solver}   converged={result.converged}")
    print(f"density        {result.density:.8f}   (both spins)")
    if result.double_occupancy is not None:
        print(f"double occ.    {result.double_occupancy:.8f}")
    print(f"Z              {result.z:.6f}   (1/(1 - Im Sigma(i w_0)/w_0))")
    print(f"wall time      {result.wall_time:.3f} s")
    for w in result.diagnostics.warnings:
        print(f"warning        {w}")
    if spectrum is not None:
        print(f"spectrum       {spectrum.method}  int A = {spectrum.norm:.4f} on "
              f"|w| <= {args.omega_max:g}  {json.dumps(spectrum.params)}")
    print(f"written        {out}  (+ summary {summary_path.name})")
    if args.plot:
        print(f"plot           {plot_result(result, png)}")
    return 0


def _solve_outputs(model: str, solver: str, out: str | None, options: dict | None = None,
                   plot: bool = True) -> tuple[Path, Path, Path]:
    """``(result.h5, summary.json, plot.png)`` of ``mldmft solve``; checked before solving.

    ``--out`` must end in ``.h5`` (default ``data/results/<model>_<solver>[_<options>].h5``,
    e.g. ``model_ed_cutoff1e-08.h5``); the summary is ``<stem>.summary.json`` and the plot
    ``<stem>.png`` beside it. None of them may be the model file or a directory, an existing
    ``--out`` (summary) is overwritten only if it is an earlier ``mldmft solve`` result (summary),
    and the folder must be writable (:func:`mldmft.h5util.check_output_places`).
    """
    from .h5schema import RESULT_SCHEMA
    from .h5util import OutputFile, check_output_places, h5_schema_is

    h5 = (Path(out) if out else Path("data") / "results" /
          f"{Path(model).stem}_{solver}{_name_parts(options or {})}.h5")
    if h5.suffix != ".h5":
        raise ValueError(f"--out must name an HDF5 file ending in .h5 (the JSON summary and the "
                         f"plot are written beside it), got {h5}")
    summary = h5.with_name(h5.stem + ".summary.json")
    png = h5.with_suffix(".png")
    files = [OutputFile(h5, "solve result", h5_schema_is(RESULT_SCHEMA)),
             OutputFile(summary, "solve summary", _is_solve_summary)]
    if plot:
        files.append(OutputFile(png, "plot"))
    check_output_places(files, inputs={model: "model file"})
    return h5, summary, png


def _is_solve_summary(path: Path) -> bool:
    """An earlier ``mldmft solve`` summary (JSON with the solver and the density)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and {"solver", "density"} <= set(data)


def _config_dir() -> Path:
    here = Path(__file__).resolve().parents[1] / "configs"
    if not here.is_dir():
        raise ValueError(f"Hydra config directory not found at {here}; run from a source "
                         "checkout (pip install -e .)")
    return here


def config_error_message(err: Exception) -> str:
    """Hydra's whole message on one line, hint included ("To append to your config use
    +key=value", the available options of a group), without the config search path."""
    parts: list[str] = []
    listing = False  # inside an indented list (e.g. "Available options in 'sampling':")
    for line in str(err).splitlines():
        if line.startswith("Config search path"):
            break
        if not line.strip():
            continue
        if line[0].isspace() and parts and (listing or parts[-1].endswith(":")):
            parts[-1] += (", " if listing else " ") + line.strip()
            listing = True
        else:
            parts.append(line.strip())
            listing = False
    return " ".join(parts) or type(err).__name__


#: Mappings whose keys are checked by the code that uses them (solver options, recipes), not
#: against the config files.
_OPEN_KEYS = {"phase_diagram": ("solver_options", "compare", "ed.solver_options"),
              "generate": ("sampling", "target.options", "solver_options"),
              "dmft": ("solver_options", "guard"), "active": ("reference.options",),
              "active_fast": ("reference.options",)}


def _check_keys(cfg: dict, ref: dict, open_keys: Sequence[str], prefix: str = "") -> None:
    """Refuse a key of ``cfg`` that the config files do not declare (e.g. ``+n_sample=10``),
    and a value in place of a declared mapping, naming it (and the closest declared key)."""
    from solvers import check_keys

    for key, val in cfg.items():
        path = f"{prefix}{key}"
        if path in open_keys:
            continue
        if key not in ref:
            check_keys({key: val}, ref, prefix=prefix, lead="config: ")
        if isinstance(ref[key], dict) and ref[key]:
            if not isinstance(val, dict):
                raise ValueError(f"config: '{path}' must be a mapping with keys "
                                 f"{sorted(ref[key])}, got {val!r}")
            _check_keys(val, ref[key], open_keys, f"{path}.")


def _compose(config_name: str, overrides: Sequence[str]):
    """Compose ``configs/<config_name>.yaml`` with Hydra overrides; every config error (a bad
    override, an unknown key, a value in place of a mapping) is a one-line ``ValueError``."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    config_dir = _config_dir()
    # the reference: the config files with the same group choices (e.g. sampling=bath_list)
    groups = [o for o in overrides
              if "=" in o and (config_dir / o.split("=", 1)[0].lstrip("+~")).is_dir()]
    ref = None
    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            ref = OmegaConf.to_container(compose(config_name=config_name, overrides=groups))
            cfg = compose(config_name=config_name, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as err:
        message = config_error_message(err)
        key = re.match(r"Could not override '([\w.]+)'", message)
        if key and ref is not None:  # a misspelt key: name the declared one too
            try:
                _check_keys(_nested(key.group(1)), ref, ())
            except ValueError as unknown:
                hint = re.search(r" \(did you mean .*\)", str(unknown))
                message += hint.group(0) if hint else ""
        raise ValueError(f"config: {message}") from None
    _check_keys(OmegaConf.to_container(cfg), ref, _OPEN_KEYS.get(config_name, ()))
    return cfg


def _nested(dotted: str) -> dict:
    """``"a.b.c"`` -> ``{"a": {"b": {"c": None}}}``."""
    out: dict = {}
    node = out
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = None
    return out


def _typed(c: dict, path: str, tp):
    """The value at dotted ``path`` of the plain config ``c``, checked against type ``tp``."""
    from .configtools import typed

    return typed(c, path, tp)


def _generate_config(cfg):
    """Hydra DictConfig -> typed :class:`mldmft.database.GenerateConfig` (the config boundary);
    the values are passed on as given, :meth:`GenerateConfig.validate` checks their types."""
    from omegaconf import OmegaConf

    from .database import GenerateConfig, SolverSpec

    c = OmegaConf.to_container(cfg, resolve=True)
    out = c.get("out") or str(Path("data") / f"{c['name']}.h5")
    opts = _typed(c, "solver_options", dict)
    cheap = _typed(c, "cheap_solvers", list[str])
    unknown = set(opts) - set(cheap)
    if unknown:
        raise ValueError(f"solver_options: {sorted(unknown)} not in cheap_solvers")
    for n in opts:
        _typed(c, f"solver_options.{n}", dict | None)
    _typed(c, "target", dict)  # a mapping, checked before its fields
    return GenerateConfig(
        out=str(out), n_samples=c["n_samples"], seed=c["seed"], sampling=c["sampling"],
        target=SolverSpec(_typed(c, "target.solver", str),
                          dict(_typed(c, "target.options", dict | None) or {})),
        cheap=tuple(SolverSpec(n, dict(opts.get(n) or {})) for n in cheap),
        n_l=c["n_l"], n_sigma=c["n_sigma"], augment=c["augment"],
        chunk_size=c["chunk_size"], backend=c["backend"], workers=c.get("workers"),
        dask_address=c["dask"].get("address"), dask_workers=c["dask"]["n_workers"],
        progress=c["progress"])


def _cmd_generate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .database import generate

    cfg = _generate_config(_compose("generate", args.overrides))
    _check_generate_places(cfg)
    cfg.validate()
    bars: list = []

    def start(done: int, total: int) -> None:  # opened only when there is work to do
        resumed = f", {done} already on disk" if done else ""
        print(f"generating {total} samples -> {cfg.out}  (target {cfg.target.name}, cheap "
              f"{', '.join(c.name for c in cfg.cheap) or '-'}, backend {cfg.backend}{resumed})",
              flush=True)
        bars.append(tqdm(total=total, initial=done, unit="sample", disable=not cfg.progress,
                         dynamic_ncols=True))

    try:
        summary = generate(cfg, progress=lambda n: bars[0].update(n), on_start=start)
    finally:
        for bar in bars:
            bar.close()
    for line in summary.lines():
        print(line)
    return 0


def _config_inputs(c, skip: tuple[str, ...] = ("out",)) -> dict[str, str]:
    """The files a plain config names (every string value that is an existing file, keys in
    ``skip`` left out), each with its dotted key as its role: the inputs no output may
    overwrite."""
    found: dict[str, str] = {}

    def walk(node, path: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if str(k) not in skip:
                    walk(v, f"{path}.{k}" if path else str(k))
        elif isinstance(node, list):
            for k, v in enumerate(node):
                walk(v, f"{path}[{k}]")
        elif isinstance(node, str) and node and "\n" not in node and len(node) < 4096:
            try:
                if Path(node).is_file():
                    found.setdefault(node, f"input file ({path})")
            except OSError:
                pass

    walk(c, "")
    return found


def _check_generate_places(cfg) -> None:
    """Where ``mldmft generate`` writes: the database (an existing one only if it is a
    database: resumed or refused by its config), its lock and its ``.parts`` folder; never a
    file the recipe reads (``sampling.path``)."""
    from .h5schema import DATABASE_SCHEMA
    from .h5util import OutputFile, check_output_places, h5_schema_is

    out = Path(cfg.out)
    check_output_places([OutputFile(out, "AIM database", h5_schema_is(DATABASE_SCHEMA)),
                         OutputFile(out.with_name(out.name + ".lock"), "lock file")],
                        inputs=_config_inputs({"sampling": cfg.sampling}), flag="out",
                        dirs=[out.with_name(out.name + ".parts")])


def default_sweep_out(solver: str, beta: float, lattice: dict, solver_options: dict, *,
                      mu: float | None = None, density: float | None = None,
                      mu_sweep_U: float | None = None, guard: dict | None = None,
                      start: str = "continuation", segment: int | None = None) -> Path:
    """Default file of ``mldmft dmft``: ``data/dmft/<solver>_beta<beta>[_<filling>]
    [_<lattice>][_guard-<fallback>][_start-seeded|_start-segments<segment>][_<options>].h5``.

    The filling is ``U<U>_mu`` (a sweep in mu), ``n<density>`` or ``mu<mu>``; the lattice its
    name and the parameters that differ from its defaults (nothing for the default Bethe
    lattice; a DOS file by its stem); the options those set (``n_bath8``, ``checkpoint-model``).
    So sweeps that differ in any of these do not share a file.

    Example:
        >>> str(default_sweep_out("ipt", 100.0, {"name": "square", "t": 0.25, "tp": -0.05}, {},
        ...                       mu=-0.2))
        'data/dmft/ipt_beta100_mu-0.2_square_tp-0.05.h5'
    """
    tag = (f"_U{mu_sweep_U:g}_mu" if mu_sweep_U is not None
           else f"_n{density:g}" if density is not None
           else f"_mu{mu:g}" if mu is not None else "")
    name = str(lattice.get("name", "bethe"))
    params = {k: v for k, v in lattice.items() if k != "name"}
    if name == "file":
        tag += f"_file-{Path(str(params.get('path', ''))).stem}"
    else:
        group = _config_dir() / "lattice" / f"{name}.yaml"
        default = (load_yaml(group.read_text()) or {}) if group.is_file() else {}
        changed = {k: v for k, v in params.items() if not _same_setting(default.get(k), v)}
        if name != "bethe" or changed:
            tag += f"_{name}" + _name_parts(changed)
    if guard:
        tag += f"_guard-{guard.get('fallback', 'ed')}"
    if start != "continuation":
        tag += f"_start-{start}" + (f"{segment}" if start == "segments" else "")
    stem = re.sub(r"[^\w.+-]", "_", f"{solver}_beta{beta:g}{tag}{_name_parts(solver_options)}")
    return Path("data") / "dmft" / f"{stem}.h5"


def _same_setting(a, b) -> bool:
    """Equal settings, numbers to 12 digits (``0.7071067811865476`` == ``1/sqrt(2)``)."""
    import math

    numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b))
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15) if numbers else a == b


def sweep_arguments(cfg) -> dict:
    """Hydra DictConfig of ``configs/dmft.yaml`` -> keyword arguments of
    :func:`mldmft.dmft.sweep` (or, with ``mu_range``/``mu_values``, of
    :func:`mldmft.dmft.sweep_mu`: then the dict holds ``U`` and ``mu_values``) (the config
    boundary): the loop section as one :class:`~mldmft.dmft.DMFTOptions` (``options``), plus
    ``plot``."""
    from omegaconf import OmegaConf

    c = OmegaConf.to_container(cfg, resolve=True)
    mu = _number(c, "mu")
    density = _number(c, "density")
    U_one = _number(c, "U")
    if c.get("mu_range") is not None and c.get("mu_values") is not None:
        raise ValueError("give either mu_range or mu_values, not both")
    mu_values = (_range_values("mu_range", c["mu_range"]) if c.get("mu_range") is not None
                 else _number_list(c, "mu_values"))
    if mu_values is not None:
        clash = [k for k, v in (("mu", mu), ("density", density), ("U_values", c.get("U_values")))
                 if v is not None]
        if clash:
            raise ValueError(f"a mu sweep (mu_range/mu_values) fixes U=...; it takes no "
                             f"{', '.join(clash)}")
        if U_one is None:
            raise ValueError("a mu sweep (mu_range/mu_values) needs the fixed U, e.g. U=2.0")
    from .dmft.loop import check_density_args

    check_density_args(mu, density)
    if U_one is not None and mu_values is None:
        if c.get("U_values") is not None:
            raise ValueError("give either U or U_values, not both")
        U = [U_one]
    elif c.get("U_values") is not None:
        U = _number_list(c, "U_values")
    else:
        U = _range_values("U_range", c["U_range"])
    solver = _typed(c, "solver", str)
    # declared but unset options (null) are the solver's defaults: not passed
    options = {k: v for k, v in (_typed(c, "solver_options", dict | None) or {}).items()
               if v is not None}
    c["solver_options"] = options
    guard = _typed(c, "guard", dict | None)
    if guard:
        _check_guard(guard)
    from . import load_solver_module

    load_solver_module(solver)
    if guard and guard.get("fallback", "ed") is not None:
        load_solver_module(str(guard.get("fallback", "ed")))
    beta = float(_typed(c, "beta", float))
    segment = _typed(c, "segment", int)
    out = (_typed(c, "out", str | None)
           or str(default_sweep_out(solver, beta, dict(_typed(c, "lattice", dict | None) or {}),
                                    options, mu=mu, density=density, guard=guard,
                                    mu_sweep_U=U_one if mu_values is not None else None,
                                    start=str(c.get("start", "continuation")),
                                    segment=segment)))
    spectra = dict(_typed(c, "spectra", dict | None) or {})
    spectra = ({k: v for k, v in spectra.items() if k != "enabled"}
               if spectra.get("enabled") else None)
    from .dmft.loop import DMFTOptions
    from .configtools import build_dataclass

    loop = build_dataclass(DMFTOptions, "loop", c.get("loop"))
    axis: dict = (dict(U=U_one, mu_values=mu_values) if mu_values is not None else
                  dict(U_values=U, mu=mu, density=density))
    return dict(solver=solver, beta=beta, **axis,
                direction=_typed(c, "direction", str), start=_typed(c, "start", str),
                segment=segment,
                lattice=dict(_typed(c, "lattice", dict | None) or {"name": "bethe"}),
                spectra=spectra, solver_options=options, options=loop, guard=guard, out=out,
                progress=_typed(c, "progress", bool), plot=_typed(c, "plot", bool),
                metadata={"config": json.dumps(c, sort_keys=True)})


def _check_guard(guard: dict) -> None:
    """``guard: {fallback: NAME, threshold: X, fallback_options: {...}}``, keys and types."""
    from solvers import check_keys, check_type

    types = {"fallback": str | None, "threshold": float, "fallback_options": dict}
    check_keys(guard, types, prefix="guard.", lead="config: ")
    for key, val in guard.items():
        check_type(f"guard.{key}", val, types[key])


def _number(c: dict, key: str) -> float | None:
    """``c[key]`` as a float (``None`` stays ``None``); one-line error otherwise."""
    v = c.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:
        raise ValueError(f"{key} must be a number, got {v!r}")
    return float(v)


def _number_list(c: dict, key: str) -> list[float] | None:
    """``c[key]`` as a list of floats (``None`` stays ``None``); one-line error otherwise."""
    v = c.get(key)
    if v is None:
        return None
    if not isinstance(v, list) or not v or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        raise ValueError(f"{key} must be a non-empty list of numbers, got {v!r}")
    return [float(x) for x in v]


def _range_values(key: str, r) -> list[float]:
    """``start, start + step, ... <= stop`` from ``{start, stop, step}`` or
    ``[start, stop, step]`` (rounded to 10 digits)."""
    import numpy as np

    if isinstance(r, list) and len(r) == 3:
        r = dict(zip(("start", "stop", "step"), r))
    if not (isinstance(r, dict) and set(r) == {"start", "stop", "step"} and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in r.values())):
        raise ValueError(f"{key} must be [start, stop, step] or {{start, stop, step}} (numbers), "
                         f"got {r!r}")
    start, stop, step = float(r["start"]), float(r["stop"]), float(r["step"])
    if not (step > 0 and stop >= start and np.isfinite(start) and np.isfinite(stop)):
        raise ValueError(f"{key}: need step > 0 and stop >= start, got {r}")
    return [round(float(u), 10) for u in np.arange(start, stop + 0.5 * step, step)]


def run_sweep(kwargs: dict) -> list:
    """Run a sweep from :func:`sweep_arguments`, print the table, write CSV/HDF5/PNG."""
    from .dmft import plot_spectra, plot_sweeps, sweep, sweep_mu

    kwargs = dict(kwargs)
    plot = kwargs.pop("plot")
    _check_sweep_places(kwargs, plot)
    mu_axis = "mu_values" in kwargs
    points = sweep_mu(**kwargs) if mu_axis else sweep(**kwargs)
    print(f"{'branch':<6} {'U':>6} {'mu':>9} {'n':>8} {'conv':>5} {'iter':>5} {'Z':>8} "
          f"{'docc':>8} {'-bG(b/2)':>9} {'E_kin':>8} {'time s':>7}")
    for p in points:
        note = p.note()
        print(f"{p.branch:<6} {p.U:>6.3f} {p.mu:>9.5f} {p.density:>8.5f} {str(p.converged):>5} "
              f"{p.iterations:>5} {p.Z:>8.4f} {p.double_occupancy:>8.4f} {p.g_beta_half:>9.4f} "
              f"{p.kinetic_energy:>8.4f} {p.wall_time:>7.2f}" + (f"  {note}" if note else ""))
    loop = kwargs["options"]
    if any(p.retried_linear for p in points):
        print(f"(iter counts both attempts where Anderson acceleration failed within max_iter = "
              f"{loop.max_iter} and the point was redone with linear mixing)")
    if kwargs.get("density") is not None:
        print(f"(mu found at every point for density n = {kwargs['density']:g} "
              f"+- {loop.tol_density:g})")
    out = Path(kwargs["out"])
    print(f"written  {out}  and  {out.with_suffix('.csv')}")

    def where(p) -> str:
        return f"mu={p.mu:g} ({p.branch})" if mu_axis else f"U={p.U:g} ({p.branch})"

    bad = [p for p in points if not p.converged]
    if bad:
        print(f"NOT CONVERGED at {len(bad)} point(s): " + ", ".join(map(where, bad)))
    warned = [p for p in points if p.warnings]
    if warned:
        named = ", ".join(map(where, warned[:8])) + (f" and {len(warned) - 8} more"
                                                     if len(warned) > 8 else "")
        print(f"SOLVER WARNINGS at {len(warned)} point(s): {named} (the notes above say what; "
              "stored as 'warnings' in the HDF5 and CSV files)")
    if plot:
        title = f"{kwargs['lattice']['name']} lattice, beta = {kwargs['beta']:g}"
        title += (f", U = {kwargs['U']:g}" if mu_axis else
                  f", n = {kwargs['density']:g}" if kwargs.get("density") is not None else "")
        png = plot_sweeps([(kwargs["solver"] if isinstance(kwargs["solver"], str) else "solver",
                            points)], out.with_suffix(".png"), title=title,
                          x="mu" if mu_axis else "U")
        print(f"plot     {png}")
        for branch in sorted({p.branch for p in points if p.spectrum is not None}):
            png = plot_spectra(points, out.with_name(f"{out.stem}_spectra_{branch}.png"),
                               title=title, branch=branch, x="mu" if mu_axis else "U")
            print(f"spectra  {png}")
    return points


def _check_sweep_places(kwargs: dict, plot: bool) -> None:
    """Where a sweep writes: the HDF5 (an existing one only if it is a sweep: resumed or refused
    by its plan), the CSV beside it (only over an earlier sweep CSV), the lock and, with
    ``plot``, the figures; never a file the config names (a DOS file, a checkpoint)."""
    from .h5schema import SWEEP_SCHEMA
    from .h5util import OutputFile, check_output_places, h5_schema_is

    out = Path(kwargs["out"])
    files = [OutputFile(out, "DMFT sweep", h5_schema_is(SWEEP_SCHEMA)),
             OutputFile(out.with_suffix(".csv"), "sweep CSV", _is_sweep_csv),
             OutputFile(out.with_name(out.name + ".lock"), "lock file")]
    if plot:
        files.append(OutputFile(out.with_suffix(".png"), "sweep plot"))
        if kwargs.get("spectra") is not None:
            branches = (["up", "down"] if kwargs["direction"] == "both"
                        else [kwargs["direction"]])
            files += [OutputFile(out.with_name(f"{out.stem}_spectra_{b}.png"), "spectra plot")
                      for b in branches]
    config = json.loads(kwargs.get("metadata", {}).get("config", "{}"))
    inputs = _config_inputs(config or {k: kwargs.get(k) for k in ("lattice", "solver_options",
                                                                  "guard")})
    check_output_places(files, inputs=inputs, flag="out")


def _is_sweep_csv(path: Path) -> bool:
    """An earlier sweep CSV (its header starts with ``U,branch,``)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.readline().startswith("U,branch,")
    except OSError:
        return False


def _cmd_dmft(args: argparse.Namespace) -> int:
    run_sweep(sweep_arguments(_compose("dmft", args.overrides)))
    return 0


def active_config(overrides: Sequence[str], config_name: str = "active"):
    """``configs/<config_name>.yaml`` (default ``active.yaml``) with overrides ->
    :class:`mldmft.active.ActiveConfig` (the
    config boundary); its ``train`` section names a training config and its overrides, composed
    like ``python train.py --config-name NAME OVERRIDES``; the grid's ``U`` is ``U_values`` (a
    list) if given, else ``U_range``."""
    from omegaconf import OmegaConf

    from .active import active_config_from_dict
    from .ml.config import train_config_from_dict

    c = OmegaConf.to_container(_compose(config_name, overrides), resolve=True)
    name = _typed(c, "train.config", str)
    train_overrides = _typed(c, "train.overrides", list[str])
    if not (_config_dir() / f"{name}.yaml").is_file():
        raise ValueError(f"train.config: no training config configs/{name}.yaml")
    try:
        train = train_config_from_dict(
            OmegaConf.to_container(_compose(name, train_overrides), resolve=True))
    except ValueError as err:
        raise ValueError(f"train ({name}): {err}") from None
    grid = dict(_typed(c, "grid", dict))
    values, rng = grid.pop("U_values", None), grid.pop("U_range", None)
    grid["U"] = (_number_list({"grid.U_values": values}, "grid.U_values") if values is not None
                 else _range_values("grid.U_range", rng))
    c["grid"] = grid
    return active_config_from_dict({k: v for k, v in c.items() if k != "train"}, train)


def _cmd_active(args: argparse.Namespace) -> int:
    from .active import run_active
    from .h5util import OutputFile, check_output_places

    cfg = active_config(args.overrides, args.config_name)
    run_dir = Path(cfg.run_dir)
    check_output_places([OutputFile(run_dir / "run.lock", "lock file")], dirs=[run_dir],
                        inputs={p: "input file" for p in (cfg.database, cfg.checkpoint)},
                        flag="run_dir")
    summary = run_active(cfg, log=lambda s: print(s, flush=True))
    for line in summary.lines():
        print(line)
    return 0


def _cmd_overlay(args: argparse.Namespace) -> int:
    from .dmft import load_sweep, plot_sweeps

    labels = args.labels.split(",") if args.labels else [Path(f).stem for f in args.files]
    if len(labels) != len(args.files):
        raise ValueError(f"--labels has {len(labels)} names for {len(args.files)} files")
    out = Path(args.out) if args.out else overlay_default_out(args.files)
    if out.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise ValueError(f"--out must end in .png, .pdf or .svg, got {out}")
    from .h5util import OutputFile, check_output_places

    check_output_places([OutputFile(out, "figure")], inputs={f: "input sweep" for f in args.files})
    runs = [(lab, load_sweep(f)) for lab, f in zip(labels, args.files)]
    note = "" if args.out else "  (default name; choose one with --out)"
    print(f"plot     {plot_sweeps(runs, out, title=args.title)}{note}")
    return 0


def overlay_default_out(files: Sequence[str]) -> Path:
    """Default figure of ``mldmft overlay``: ``overlay_<stem1>_<stem2>...png`` in the folder of
    the first file (file stems joined by ``_``)."""
    return Path(files[0]).parent / ("overlay_" + "_".join(Path(f).stem for f in files) + ".png")


def _cmd_export_baths(args: argparse.Namespace) -> int:
    from .dmft import load_sweep
    from .dmft.export import check_export_out, export_baths

    check_export_out(args.out, args.files)
    points = [p for f in args.files for p in load_sweep(f)]
    out = export_baths(points, args.out, n_bath=args.n_bath, inputs=args.files)
    print(f"exported {len(points)} hybridisations ({args.n_bath} poles each) -> {out}")
    print(f"next:    mldmft generate sampling=bath_list sampling.path={out} "
          f"n_samples={len(points)}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .dmft.demo import run_demo
    from .h5util import check_output_places

    check_output_places(dirs=[args.out])
    for line in run_demo(out_dir=args.out, compute_ed=args.compute_ed,
                         progress=not args.no_progress):
        print(line)
    return 0


def _cmd_merge(args: argparse.Namespace) -> int:
    from .database.merge import merge_databases

    out = merge_databases(args.files, args.out)
    print(f"merged {len(args.files)} databases -> {out}")
    return 0


def _cmd_pack(args: argparse.Namespace) -> int:
    from .database.pack import pack_database

    pack_database(args.file, args.out)
    return 0


def _cmd_unpack(args: argparse.Namespace) -> int:
    from .database.pack import unpack_database

    unpack_database(args.file, args.out)
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from .ml.shipped import describe_shipped

    for line in describe_shipped():
        print(line)
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    from .database.inspect import inspect_database

    for line in inspect_database(args.file, plots=not args.no_plots, out_dir=args.out):
        print(line)
    return 0


def phase_diagram_config(overrides: Sequence[str], check_ed: bool = False):
    """``configs/phase_diagram.yaml`` with Hydra overrides -> typed
    :class:`mldmft.dmft.phase_diagram.PhaseDiagramConfig` (the config boundary); ``check_ed``
    (``--check-ed``) sets ``check_ed: true``. A comparison with the main solver's name is left
    out (the main diagram is that solver's)."""
    from omegaconf import OmegaConf

    from solvers import check_keys

    from .dmft.loop import DMFTOptions
    from .dmft.phase_diagram import DiagramSpec, PhaseDiagramConfig

    c = OmegaConf.to_container(_compose("phase_diagram", overrides), resolve=True)

    def grid(node: dict, where: str) -> tuple[float, ...]:
        if node.get("U_values") is not None:
            return tuple(_number_list({f"{where}U_values": node["U_values"]},
                                      f"{where}U_values"))
        return tuple(_range_values(f"{where}U_range", node.get("U_range")))

    def betas(node: dict, where: str) -> tuple[float, ...]:
        values = node.get("betas")
        if not isinstance(values, list) or not values:
            raise ValueError(f"{where}betas must be a non-empty list of numbers, got {values!r}")
        return tuple(_number_list({f"{where}betas": values}, f"{where}betas"))

    solver = _typed(c, "solver", str)
    main = DiagramSpec(solver, solver, dict(_typed(c, "solver_options", dict | None) or {}),
                       betas(c, ""), grid(c, ""))
    compare = []
    for name, node in (_typed(c, "compare", dict | None) or {}).items():
        where = f"compare.{name}."
        if not isinstance(node, dict):
            raise ValueError(f"config: 'compare.{name}' must be a mapping (enabled, solver, "
                             f"solver_options, betas, U_range or U_values), got {node!r}")
        check_keys(node, ("enabled", "solver", "solver_options", "betas", "U_range", "U_values"),
                   prefix=where, lead="config: ")
        if not node.get("enabled", True) or name == solver:
            continue
        compare.append(DiagramSpec(name, str(node.get("solver", name)),
                                   dict(node.get("solver_options") or {}), betas(node, where),
                                   grid(node, where), role="comparison"))
    loop = {k: _typed(c, f"loop.{k}", tp) for k, tp in (
        ("n_iw", int), ("tol", float), ("max_iter", int), ("mixing", float), ("accel", str),
        ("history", int), ("stall", int))}
    ed = _typed(c, "ed", dict)
    return PhaseDiagramConfig(
        main=main, compare=tuple(compare),
        lattice=dict(_typed(c, "lattice", dict | None) or {"name": "bethe"}),
        loop=DMFTOptions(**loop), tol_U=float(_typed(c, "tol_U", float)),
        follow_max_iter=_typed(c, "follow_max_iter", int),
        metal_threshold=float(_typed(c, "metal_threshold", float)),
        refine_tc=_typed(c, "refine_tc", int), thermo=_typed(c, "thermo.enabled", bool),
        top_dU=float(_typed(c, "thermo.top_dU", float)), n_path=_typed(c, "thermo.n_path", int),
        check_ed=bool(check_ed or _typed(c, "check_ed", bool)),
        ed_betas=tuple(_number_list({"ed.betas": ed.get("betas")}, "ed.betas") or ()),
        ed_solver=_typed(c, "ed.solver", str),
        ed_options=dict(_typed(c, "ed.solver_options", dict | None) or {}),
        ed_span=float(_typed(c, "ed.span", float)), ed_step=float(_typed(c, "ed.step", float)),
        out=_typed(c, "out", str), progress=_typed(c, "progress", bool),
        metadata={"config": json.dumps(c, sort_keys=True)})


def _cmd_phase_diagram(args: argparse.Namespace) -> int:
    from .dmft.phase_diagram import phase_diagram

    config = phase_diagram_config(args.overrides, check_ed=args.check_ed)
    result = phase_diagram(config, log=lambda line: print(line, flush=True))
    for line in result.lines():
        print(line)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mldmft", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("solve", help="solve one Anderson impurity model from a YAML/JSON file")
    p.add_argument("model", help="model file (.yaml or .json)")
    p.add_argument("--solver", default="ed", help="registered solver name (default: ed)")
    p.add_argument("--out", default=None,
                   help="output HDF5, must end in .h5 (default: data/results/<model>_<solver>"
                   "[_<options>].h5, e.g. model_ed_cutoff1e-08.h5);"
                   " the summary goes to <stem>.summary.json and --plot to <stem>.png beside it")
    p.add_argument("--plot", action="store_true", help="also write a PNG of G(i w_n) and G(tau)")
    p.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE",
                   help="solver option, e.g. --opt n_iw=512 (repeatable)")
    p.add_argument("--spectrum", nargs="?", const="auto", default=None,
                   choices=list(_SPECTRUM_METHODS),
                   help="also store A(w) (auto: ED poles for ed/ed_fit, else MaxEnt)")
    p.add_argument("--eta", type=float, default=0.05,
                   help="broadening of the ED poles / Pade, units D (default 0.05)")
    p.add_argument("--omega-max", type=float, default=4.0, help="real mesh |w| <= this")
    p.set_defaults(func=_cmd_solve)
    g = sub.add_parser("generate", help="generate an AIM database (Hydra config generate.yaml)")
    g.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. n_samples=1000")
    g.set_defaults(func=_cmd_generate)
    i = sub.add_parser("inspect", help="summarise an AIM database and plot it")
    i.add_argument("file", help="database HDF5 file")
    i.add_argument("--out", default=None, help="directory for PNGs (default: next to the file)")
    i.add_argument("--no-plots", action="store_true", help="print the summary only")
    i.set_defaults(func=_cmd_inspect)
    d = sub.add_parser("dmft", help="DMFT sweep in U on any lattice (Hydra config dmft.yaml)")
    d.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. solver=ipt beta=50")
    d.set_defaults(func=_cmd_dmft)
    pd = sub.add_parser("phase-diagram", help="the Mott phase diagram: Uc1(T), Uc2(T), the "
                        "critical end point and the first-order line (Hydra config "
                        "phase_diagram.yaml)")
    pd.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. solver=ipt "
                    "\"betas=[20,50,100]\"")
    pd.add_argument("--check-ed", action="store_true",
                    help="also locate the branch ends with 8-site ED-DMFT at ed.betas (slow)")
    pd.set_defaults(func=_cmd_phase_diagram)
    a = sub.add_parser("active", help="active learning: network-DMFT sweeps, ED on the flagged "
                       "hybridisations, retraining (Hydra config active.yaml)")
    a.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. max_rounds=2")
    a.add_argument("--config-name", default="active",
                   help="the run's config, configs/<name>.yaml (default: active; the fast "
                   "network's run: active_fast)")
    a.set_defaults(func=_cmd_active)
    o = sub.add_parser("overlay", help="overlay several DMFT sweeps (Z, docc vs U) in one PNG")
    o.add_argument("files", nargs="+", help="sweep HDF5 files")
    o.add_argument("--out", default=None, help="output figure (.png/.pdf/.svg; default: "
                   "overlay_<stem1>_<stem2>...png beside the first file)")
    o.add_argument("--labels", default=None, help="comma-separated labels (default: file stems)")
    o.add_argument("--title", default="", help="figure title")
    o.set_defaults(func=_cmd_overlay)
    e = sub.add_parser("export-baths", help="export the hybridisations of DMFT sweeps as a "
                       "bath list for `mldmft generate sampling=bath_list`")
    e.add_argument("files", nargs="+", help="sweep HDF5 files")
    e.add_argument("--out", required=True, help="output YAML")
    e.add_argument("--n-bath", type=int, default=8, help="poles per fitted bath (<= 8)")
    e.set_defaults(func=_cmd_export_baths)
    mg = sub.add_parser("merge", help="merge AIM databases with the same layout")
    mg.add_argument("files", nargs="+", help="database files")
    mg.add_argument("--out", required=True, help="merged database")
    mg.set_defaults(func=_cmd_merge)
    pk = sub.add_parser("pack", help="compress an AIM database for committing: drawn samples "
                        "only, no delta_l, cheap solvers' G_l and Sigma in float32, gzip")
    pk.add_argument("file", help="database file (read only)")
    pk.add_argument("--out", required=True, help="packed file, e.g. datasets/NAME.h5")
    pk.set_defaults(func=_cmd_pack)
    up = sub.add_parser("unpack", help="turn a packed database (mldmft pack) back into a "
                        "normal AIM database")
    up.add_argument("file", help="packed file")
    up.add_argument("--out", required=True, help="database, e.g. data/NAME.h5")
    up.set_defaults(func=_cmd_unpack)
    ms = sub.add_parser("models", help="list the shipped networks of the ml solver (name, "
                        "file size, domain, what each is; the default marked)")
    ms.set_defaults(func=_cmd_models)
    m = sub.add_parser("demo", help="the Mott-transition demo: network-DMFT vs IPT vs ED-DMFT "
                       "through the coexistence window (beta = 100) with the default network")
    m.add_argument("--out", default="data/demo", help="output directory")
    m.add_argument("--compute-ed", action="store_true",
                   help="recompute the ED-DMFT reference (minutes) instead of the shipped curve")
    m.add_argument("--no-progress", action="store_true", help="no progress bars")
    m.set_defaults(func=_cmd_demo)
    return parser


#: Methods of ``mldmft solve --spectrum`` (bare ``--spectrum``: auto).
_SPECTRUM_METHODS = ("auto", "ed_poles", "maxent", "pade")


def _bare_spectrum(argv: Sequence[str]) -> list[str]:
    """``--spectrum`` takes an optional method; a bare ``--spectrum`` followed by the model file
    (``--spectrum model.yaml``) must not take the file as the method: it becomes
    ``--spectrum=auto``."""
    argv = list(argv)
    for k, arg in enumerate(argv[:-1]):
        if arg == "--spectrum" and argv[k + 1] not in _SPECTRUM_METHODS \
                and not argv[k + 1].startswith("-"):
            argv[k] = "--spectrum=auto"
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # small dense blocks: threads only cost
    argv = _bare_spectrum(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError, KeyboardInterrupt) as err:
        if isinstance(err, KeyboardInterrupt):
            print(f"mldmft {args.command}: interrupted; rerun the same command to resume",
                  file=sys.stderr)
            return 130
        print(f"mldmft {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
