"""Every command in the ```bash blocks of README.md and docs/*.md runs as documented, so the docs
cannot drift from the code.

Each documented command is in :data:`COMMANDS`, either as a :class:`Run` (run here with shrunk
sizes: a few samples, one U value, one epoch; the long ones marked ``slow``) or as an
:class:`Elsewhere` naming the test that covers it and why it is not run here (an installation,
a remote Dask scheduler, a benchmark of hours). A command in the docs that is in neither, or an
entry no longer in the docs, fails :func:`test_every_documented_command_is_covered`. The fast
runs share one working directory and go in the docs' order with the database generations
first, as a reader would run them; placeholders of the synopsis lines (``MODEL.yaml``, ``A.h5``,
``DIR``) are real files made first (:data:`Run.needs`).
"""

from __future__ import annotations

import io
import os
import re
import runpy
import shlex
import shutil
import sys
import time
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "mldmft" / "examples" / "asymmetric_nb4.yaml"
DEMO_NETWORK = ROOT / "mldmft" / "pretrained" / "demo_beta50.pt"


# ------------------------------------------------------------------ the docs' commands
def _strip_comment(line: str) -> str:
    """``line`` without a shell comment (a ``#`` at the start or after a blank, outside quotes)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def documented_commands() -> list[tuple[str, str]]:
    """``(file:line, command)`` of every command in a ```bash block of README.md and docs/*.md,
    comments removed, ``\\`` continuations and indented continuation lines (the README's
    synopsis) joined, blanks collapsed."""
    out = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        for block in re.finditer(r"^```bash\n(.*?)^```", text, re.S | re.M):
            first = text[:block.start()].count("\n") + 2
            command, where, continued = None, "", False
            for k, raw in enumerate(block.group(1).splitlines()):
                line = _strip_comment(raw).rstrip()
                if not line.strip():
                    continued = False
                    continue
                if command is not None and (continued or raw[:1].isspace()):
                    command += " " + line.rstrip("\\").strip()
                else:
                    if command is not None:
                        out.append((where, " ".join(command.split())))
                    command = line.rstrip("\\").strip()
                    where = f"{path.relative_to(ROOT)}:{first + k}"
                continued = line.endswith("\\")
            if command is not None:
                out.append((where, " ".join(command.split())))
    return out


# ------------------------------------------------------------------ how each one is covered
@dataclass(frozen=True)
class Run:
    """A documented command run by this file.

    Attributes:
        extra: arguments appended to shrink it (Hydra overrides: the last value wins).
        subs: ``(text, replacement)`` pairs for placeholders (``path/to/model.pt``).
        synopsis: a usage line: optional ``[...]`` groups are included, ``a|b`` alternatives
            take the first, ``[hydra overrides]`` is dropped (``extra`` stands for it).
        cwd: subfolder of the working directory it runs in.
        needs: ``(kind, path)`` made first if missing: ``model`` (the example model file),
            ``sweep`` (a small IPT sweep), ``db`` (a small database), ``packed`` (a small
            database packed by ``mldmft pack``), ``dos`` (a DOS table).
        creates: files it must write.
        hooks: names in :data:`HOOKS` applied while it runs (shrinking what has no option).
        slow: run only with ``-m slow``.
    """

    extra: tuple[str, ...] = ()
    subs: tuple[tuple[str, str], ...] = ()
    synopsis: bool = False
    cwd: str = "."
    needs: tuple[tuple[str, str], ...] = ()
    creates: tuple[str, ...] = ()
    hooks: tuple[str, ...] = ()
    slow: bool = False


@dataclass(frozen=True)
class Elsewhere:
    """A documented command another test covers (``test``: ``path`` or ``path::function``)."""

    test: str
    why: str


GEN = ("n_samples=12", "sampling.n_bath=2", "workers=1", "progress=false")   # 12: train splits
GEN_SMALL = ("n_samples=2", "sampling.n_bath=2", "workers=1", "progress=false")
DMFT = ("U_values=[2.0]", "progress=false")
#: The square lattice at beta = 50, U = 2 alone, both branches (the down branch starts from the
#: insulating seed, where IPT's first Anderson-mixed iterates give an acausal Sigma and the
#: point is redone with linear mixing).
_SQUARE_U = ("U_values=[2.0]", "progress=false")
TRAIN = ("trainer.max_epochs=1", "trainer.progress_bar=false", "metrics.plots=false")
BENCH_TRAIN = ("--max-epochs", "1", "--out", "data/bench_train")
#: A phase diagram at two temperatures, no comparison, no thermodynamic integration.
PD = ("betas=[20,100]", "U_range=[2.3,3.5,0.1]", "compare.ipt.enabled=false",
      "thermo.enabled=false", "refine_tc=0", "loop.n_iw=256", "progress=false")
PD_ED = PD + ("ed.betas=[100]", "ed.solver_options.n_bath=4", "tol_U=0.05")  # ED check: 4 sites
ACTIVE_TEST = "tests/test_active.py::test_a_trusted_model_stops_at_round_0_without_ed_or_training"
ACTIVE_WHY = ("active learning over the 4640-sample phase-diagram database takes hours; the test "
              "runs the same command on a tiny database and network (tests/test_active.py runs "
              "full rounds, resume and install=true into a temporary target)")

COMMANDS: dict[str, Run | Elsewhere] = {
    # ---------------------------------------------------------------- README.md
    'python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 && '
    'pip install -e ".[dev]" && mldmft demo': Elsewhere(
        ".ci/run", "installing into a fresh environment is what CI does; its last step, "
        "mldmft demo, is run below (mldmft demo [--out DIR] [--compute-ed])"),
    "python -m pytest -q": Elsewhere(".ci/run", "the test suite itself, CI's command"),
    "mldmft solve --solver ed MODEL.yaml [--out FILE.h5] [--plot] [--opt n_iw=512 --opt "
    "cutoff=1e-8] [--spectrum [auto|ed_poles|maxent|pade]]": Run(
        synopsis=True, cwd="solve", needs=(("model", "MODEL.yaml"),),
        creates=("FILE.h5", "FILE.summary.json", "FILE.png")),
    "mldmft generate [hydra overrides]": Run(synopsis=True, extra=GEN,
                                             creates=("data/aim_db.h5",)),
    "mldmft inspect data/aim_db.h5": Run(creates=("data/aim_db_params.png",
                                                  "data/aim_db_gtau.png")),
    "mldmft dmft [hydra overrides]": Run(synopsis=True, extra=DMFT,
                                         creates=("data/dmft/ipt_beta100.h5",)),
    "mldmft overlay A.h5 B.h5 --out cmp.png": Run(
        cwd="overlay", needs=(("sweep", "A.h5"), ("sweep", "B.h5")), creates=("cmp.png",)),
    "mldmft merge A.h5 B.h5 --out C.h5": Run(cwd="merge", needs=(("db", "A.h5"), ("db", "B.h5")),
                                             creates=("C.h5",)),
    "mldmft pack DB.h5 --out datasets/NAME.h5": Run(cwd="pack", needs=(("db", "DB.h5"),),
                                                    creates=("datasets/NAME.h5",)),
    "mldmft unpack datasets/NAME.h5 --out data/NAME.h5": Run(cwd="pack",
                                                             creates=("data/NAME.h5",)),
    "mldmft export-baths SWEEP.h5 --out baths.yaml": Run(
        cwd="export", needs=(("sweep", "SWEEP.h5"),), creates=("baths.yaml",)),
    "mldmft active database=DB.h5 [hydra overrides]": Elsewhere(ACTIVE_TEST, ACTIVE_WHY),
    "mldmft demo [--out DIR] [--compute-ed]": Run(
        synopsis=True, hooks=("small_demo",), creates=("DIR/mott_beta100.png",), slow=True),
    "mldmft models": Run(),
    "mldmft phase-diagram [--check-ed] [hydra overrides]": Run(
        synopsis=True, extra=PD_ED, creates=("data/phase_diagram/diagram.h5",), slow=True),
    "python dmft_loop.py solver=ipt beta=100": Run(extra=DMFT,
                                                   creates=("data/dmft/ipt_beta100.h5",)),
    "python train.py data.path=data/aim_db.h5": Run(extra=TRAIN),
    "python train.py data.path=data/aim_db.h5 model=resmlp data=collective": Run(extra=TRAIN),
    "python train.py data.path=data/aim_db.h5 model=krr": Run(extra=TRAIN),
    "python train.py -m data.path=data/aim_db.h5 model.hidden=32,64": Run(extra=TRAIN),
    "python train.py --config-name train_phase_diagram": Run(extra=TRAIN, slow=True),
    # ---------------------------------------------------------------- docs/database.md
    "mldmft generate": Run(extra=GEN, creates=("data/aim_db.h5",)),
    "mldmft generate n_samples=1000 sampling.beta=[10,50] cheap_solvers=[ipt,hubbard_i] "
    "name=small": Run(extra=GEN_SMALL, creates=("data/small.h5",)),
    "mldmft generate sampling=bethe_half n_samples=800 cheap_solvers=[ipt,hubbard_i,nca,ed2] "
    "name=demo_half_b50": Run(extra=GEN_SMALL, creates=("data/demo_half_b50.h5",)),
    "mldmft generate backend=dask dask.address=tcp://10.0.0.5:8786 n_samples=100000 "
    "chunk_size=16": Elsewhere(
        "tests/test_database.py::test_dask_local_cluster_writes_the_same_data",
        "tcp://10.0.0.5:8786 stands for the reader's scheduler; the test runs the dask backend "
        "on a LocalCluster and compares its file with the local pool's"),
    'mldmft generate name=phase_diagram sampling=phase_diagram n_l=160 seed=2026 '
    '"cheap_solvers=[ipt,hubbard_i,nca,ed2,ed3]" +target.options.cutoff=1e-6 n_samples=4640':
        Run(extra=("n_samples=12", "workers=1", "progress=false"),
            creates=("data/phase_diagram.h5",), slow=True),
    "mldmft generate name=aim_b20_10k n_samples=10000 +target.options.cutoff=1e-6": Run(
        extra=GEN, creates=("data/aim_b20_10k.h5",)),
    "mldmft pack data/phase_diagram.h5 --out datasets/phase_diagram.h5": Run(
        cwd="pack_pd", needs=(("db", "data/phase_diagram.h5"),),
        creates=("datasets/phase_diagram.h5",)),
    "mldmft unpack datasets/phase_diagram.h5 --out data/phase_diagram.h5": Run(
        cwd="unpack_pd", needs=(("packed", "datasets/phase_diagram.h5"),),
        creates=("data/phase_diagram.h5",)),
    # ---------------------------------------------------------------- docs/dmft.md
    "mldmft dmft solver=ipt beta=100 direction=both": Run(
        extra=DMFT, creates=("data/dmft/ipt_beta100.h5",)),
    'mldmft dmft solver=ed "U_values=[2.0]" beta=100 solver_options.n_bath=8': Run(
        extra=("progress=false", "loop.max_iter=2"),
        creates=("data/dmft/ed_beta100_n_bath8.h5",), slow=True),
    "mldmft dmft solver=ml beta=50 solver_options.checkpoint=path/to/model.pt": Run(
        subs=(("path/to/model.pt", str(DEMO_NETWORK)),), extra=DMFT,
        creates=("data/dmft/ml_beta50_checkpoint-demo_beta50.h5",)),
    "mldmft overlay data/dmft/ipt_beta100.h5 data/dmft/ed_beta100_n_bath8.h5 --out "
    "data/dmft/compare.png": Run(needs=(("sweep", "data/dmft/ed_beta100_n_bath8.h5"),),
                                 creates=("data/dmft/compare.png",)),
    "mldmft export-baths data/dmft/ipt_beta100.h5 --out data/visited.yaml": Run(
        creates=("data/visited.yaml",)),
    'mldmft dmft density=0.9 "U_values=[1.0,2.0,3.0]" beta=50 direction=up': Run(
        extra=DMFT, creates=("data/dmft/ipt_beta50_n0.9.h5",)),
    'mldmft dmft U=2.7 "mu_range=[0.95,1.35,0.05]" beta=50 direction=both': Run(
        extra=("mu_range=[0.95,0.95,0.05]", "direction=up", "progress=false"),
        creates=("data/dmft/ipt_beta50_U2.7_mu.h5",)),
    'mldmft dmft U=2.0 "mu_values=[0.5,0.8]" beta=50': Run(
        extra=("direction=up", "progress=false"), creates=("data/dmft/ipt_beta50_U2_mu.h5",)),
    # ---------------------------------------------------------------- docs/networks.md
    "mldmft generate n_samples=10000 out=data/aim_db.h5": Run(extra=GEN,
                                                              creates=("data/aim_db.h5",)),
    "python benchmarks/train.py data/aim_db.h5 [--max-samples 2000]": Run(
        synopsis=True, extra=BENCH_TRAIN, slow=True),
    "python benchmarks/train.py data/aim_b20_10k.h5 --data collective data.base=ed2 --models "
    "resmlp ensemble": Run(extra=BENCH_TRAIN, slow=True),
    'python benchmarks/train.py data/aim_b20_10k.h5 --data collective data.base=ed2 '
    'model.max_train=8000 "model.gammas=[0.01,0.03,0.1,0.3,1.0,3.0,10.0]" --models krr': Run(
        extra=BENCH_TRAIN, slow=True),
    "mldmft active database=data/phase_diagram.h5": Elsewhere(ACTIVE_TEST, ACTIVE_WHY),
    "mldmft active database=data/phase_diagram.h5 name=try max_rounds=1 \"grid.beta=[50.0]\" "
    "\"train.overrides=['trainer.max_epochs=60']\"": Elsewhere(ACTIVE_TEST, ACTIVE_WHY),
    "mldmft active database=data/phase_diagram.h5 flag.spread_threshold=3e-3 max_rounds=3 "
    "install=true": Elsewhere("tests/test_active.py::test_install_copies_the_final_model",
                              ACTIVE_WHY + "; install=true would replace the shipped network"),
    "python train.py --config-name train_fast": Run(extra=TRAIN, slow=True),
    "cp data/train/<date>/<time>/model.pt mldmft/pretrained/fast.pt": Elsewhere(
        "tests/test_fast_network.py::test_registry_lists_the_shipped_networks_and_the_default",
        "a shell copy of the model the command above trained into the package (it would "
        "install a network); the test checks the registry that finds mldmft/pretrained/fast.pt"),
    # ---------------------------------------------------------------- docs/phase_diagram.md
    "mldmft phase-diagram": Run(extra=PD, creates=("data/phase_diagram/diagram.h5",),
                                slow=True),
    "mldmft phase-diagram --check-ed": Run(extra=PD_ED, slow=True),
    'mldmft phase-diagram solver=ipt compare.ipt.enabled=false +solver_options.n_l=128 '
    '"betas=[12,15,18,20,24,30,40,50,75,100,150,200]" "U_range=[2.0,3.8,0.1]" out=data/pd_ipt':
        Run(extra=PD, creates=("data/pd_ipt/diagram.h5", "data/pd_ipt/summary.json")),
    # ---------------------------------------------------------------- docs/solvers.md
    "OMP_NUM_THREADS=1 python benchmarks/solvers.py": Elsewhere(
        "tests/test_benchmark_scripts.py::test_solver_timings_table",
        "timings of 4 runs of ~10 s each; the test runs the script's main with one repeat"),
    "OMP_NUM_THREADS=1 nohup python benchmarks/solver_panel.py > "
    "data/benchmarks/solver_panel/run.log &": Elsewhere(
        "tests/test_benchmark_scripts.py::test_solver_panel_small_model_and_cache",
        "hours in the background; the test runs the panel on a small model and its cache"),
    # ---------------------------------------------------------------- docs/spectra.md
    "mldmft dmft lattice=square solver=ipt beta=50": Run(  # U = 2 alone
        extra=_SQUARE_U, creates=("data/dmft/ipt_beta50_square.h5",)),
    "mldmft dmft lattice=square lattice.tp=-0.05 mu=-0.2 solver=ipt": Run(
        extra=DMFT, creates=("data/dmft/ipt_beta100_mu-0.2_square_tp-0.05.h5",)),
    'mldmft dmft lattice=hypercubic solver=ed solver_options.n_bath=6 "U_values=[2.0]"': Run(
        extra=("progress=false", "loop.max_iter=3"),
        creates=("data/dmft/ed_beta100_hypercubic_n_bath6.h5",), slow=True),
    "mldmft dmft lattice=file lattice.path=my_dos.dat": Run(
        needs=(("dos", "my_dos.dat"),), extra=DMFT,
        creates=("data/dmft/ipt_beta100_file-my_dos.h5",)),
}


# ------------------------------------------------------------------ running one
def _expand_synopsis(text: str) -> str:
    """A usage line as a command: ``[hydra overrides]`` dropped, optional groups kept,
    ``a|b|c`` -> ``a``."""
    text = text.replace("[hydra overrides]", "")
    text = re.sub(r"(?<![\w=])([^\s\[\]|]+)(\|[^\s\[\]|]+)+", r"\1", text)
    return " ".join(text.replace("[", " ").replace("]", " ").split())


def command_argv(command: str, run: Run) -> tuple[dict[str, str], list[str]]:
    """``(environment, argv)`` of a documented command as this file runs it."""
    text = command
    for old, new in run.subs:
        text = text.replace(old, new)
    if run.synopsis:
        text = _expand_synopsis(text)
    text = re.sub(r"\s*>\s*\S+\s*&?\s*$", "", text)  # a redirection to a log, in background
    argv = shlex.split(text) + list(run.extra)
    env = {}
    while argv and re.fullmatch(r"[A-Z_]+=\S*", argv[0]):
        key, value = argv.pop(0).split("=", 1)
        env[key] = value
    if argv and argv[0] == "nohup":
        argv.pop(0)
    return env, argv


def _make_needed(kind: str, path: Path) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "model":
        shutil.copyfile(EXAMPLE, path)
    elif kind == "sweep":
        from mldmft.dmft import sweep

        sweep("ipt", 20.0, [1.0, 2.0], "up", out=path)
    elif kind == "db":
        from mldmft.database import GenerateConfig, SolverSpec, generate

        generate(GenerateConfig(out=str(path), n_samples=2, seed=len(path.name),
                                sampling=dict(kind="bethe_random", n_bath=2, D=1.0,
                                              U=[1.0, 3.0], beta=10.0, half_filling=True),
                                target=SolverSpec("ed"), cheap=(SolverSpec("hubbard_i"),),
                                n_l=40, n_sigma=16, workers=1, progress=False))
    elif kind == "packed":  # a packed small database, as committed under datasets/
        from mldmft.database.pack import pack_database

        source = path.with_name(path.stem + "_source.h5")
        _make_needed("db", source)
        pack_database(source, path, log=None)
    elif kind == "dos":
        e = np.linspace(-1.0, 1.0, 201)
        np.savetxt(path, np.column_stack([e, 2 / np.pi * np.sqrt(1 - e ** 2)]))
    else:
        raise ValueError(f"unknown prerequisite kind {kind!r}")


def _small_demo(monkeypatch) -> None:
    """The demo on one U value in the metal (its 42-point grid, and the 8-site ED-DMFT
    reference of ``--compute-ed``, take many minutes)."""
    import functools

    import mldmft.dmft.demo as demo

    monkeypatch.setattr(demo, "run_demo", functools.partial(demo.run_demo,
                                                            U_values=(1.5,)))


HOOKS = {"small_demo": _small_demo}


@contextmanager
def _working_dir(path: Path):
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def run_documented(command: str, run: Run, workspace: Path, monkeypatch) -> str:
    """Run one command in ``workspace / run.cwd``; returns its output, raises AssertionError
    (with the output) when it fails or does not write what it must."""
    from hydra.core.global_hydra import GlobalHydra

    from mldmft.cli import main

    cwd = workspace / run.cwd
    cwd.mkdir(parents=True, exist_ok=True)
    for kind, rel in run.needs:
        _make_needed(kind, cwd / rel)
    env, argv = command_argv(command, run)
    buf = io.StringIO()
    with monkeypatch.context() as mp, _working_dir(cwd), redirect_stdout(buf), \
            redirect_stderr(buf):
        for key, value in env.items():
            mp.setenv(key, value)
        for hook in run.hooks:
            HOOKS[hook](mp)
        GlobalHydra.instance().clear()
        if argv[0] == "mldmft":
            code = main(argv[1:])
        elif argv[0] in ("python", "python3") and argv[1].endswith(".py"):
            mp.setattr(sys, "argv", [str(ROOT / argv[1]), *argv[2:]])
            try:
                runpy.run_path(str(ROOT / argv[1]), run_name="__main__")
                code = 0
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None
                                                                      else 1)
        else:
            raise AssertionError(f"no way to run {argv[0]!r}")
        GlobalHydra.instance().clear()
    output = buf.getvalue()
    missing = [p for p in run.creates if not (cwd / p).exists()]
    assert code == 0 and not missing, (
        f"{shlex.join(argv)} (in {run.cwd}): exit {code}, missing {missing}\n{output[-3000:]}")
    return output


def _order(item: tuple[str, str]) -> int:
    """Database generations first (the other commands read them), then the docs' order."""
    return 0 if item[1].startswith("mldmft generate") else 1


def _runs(slow: bool) -> list[tuple[str, str, Run]]:
    seen, out = set(), []
    for where, command in sorted(documented_commands(), key=_order):
        spec = COMMANDS.get(command)
        if command in seen or not isinstance(spec, Run):
            continue
        seen.add(command)
        if spec.slow == slow or (slow and command.startswith("mldmft generate")):
            out.append((where, command, spec))
    return out


# ------------------------------------------------------------------ the tests
def test_every_documented_command_is_covered():
    """A command in the docs must be run here or name the test that covers it; an entry here
    must still be in the docs; a named test must exist."""
    documented = {c: w for w, c in documented_commands()}
    missing = [f"{w}: {c}" for c, w in documented.items() if c not in COMMANDS]
    assert not missing, ("documented commands neither run by tests/test_documented_commands.py "
                         "nor listed as covered elsewhere (add them to COMMANDS):\n  "
                         + "\n  ".join(missing))
    stale = [c for c in COMMANDS if c not in documented]
    assert not stale, "COMMANDS entries no longer in the docs:\n  " + "\n  ".join(stale)
    for command, spec in COMMANDS.items():
        if isinstance(spec, Elsewhere):
            path, _, func = spec.test.partition("::")
            assert (ROOT / path).is_file(), (command, spec.test)
            assert not func or f"def {func}(" in (ROOT / path).read_text(), (command, spec.test)


def test_documented_configs_compose_and_name_their_outputs():
    """Every documented Hydra command composes as written (the slow and elsewhere ones too),
    and every documented sweep writes the file the docs' later commands read."""
    from mldmft.cli import _compose, sweep_arguments

    for where, command in documented_commands():
        spec = COMMANDS.get(command)
        subs = spec.subs if isinstance(spec, Run) else ()
        run = Run(subs=subs, synopsis=isinstance(spec, Run) and spec.synopsis)
        env, argv = command_argv(command.replace("[hydra overrides]", ""), run)
        args = argv[2:]
        if argv[:2] in (["mldmft", "generate"], ["mldmft", "active"]):
            _compose(argv[1], args)
        elif argv[:2] == ["mldmft", "phase-diagram"]:
            _compose("phase_diagram", [a for a in args if a != "--check-ed"])
        elif argv[:2] == ["mldmft", "dmft"]:
            out = sweep_arguments(_compose("dmft", args))["out"]
            if isinstance(spec, Run) and spec.creates and spec.creates[0].startswith("data/dmft"):
                assert out == spec.creates[0], (where, command, out)
        elif argv[:2] == ["python", "train.py"] and "-m" not in args:
            name = args[args.index("--config-name") + 1] if "--config-name" in args else "train"
            _compose(name, [a for a in args if a not in ("--config-name", name)])


def _run_all(slow: bool, workspace: Path, monkeypatch) -> None:
    """Run :func:`_runs` in ``workspace`` (one BLAS and torch thread), print each command's
    time, and fail with every failing command and its output."""
    import torch

    torch.set_num_threads(1)
    failures = []
    for where, command, run in _runs(slow=slow):
        t0 = time.perf_counter()
        try:
            run_documented(command, run, workspace, monkeypatch)
        except AssertionError as err:
            failures.append(f"{where}: {command}\n{err}")
        print(f"{time.perf_counter() - t0:7.2f} s  {command}")
    assert not failures, "\n\n".join(failures)


def test_fast_documented_commands_run(tmp_path_factory, monkeypatch):
    """The documented commands that take seconds, with shrunk sizes, one after another in one
    working directory (run with ``-s`` to see each command's time)."""
    _run_all(False, tmp_path_factory.mktemp("documented"), monkeypatch)


@pytest.mark.slow
def test_slow_documented_commands_run(tmp_path_factory, monkeypatch):
    """The long documented commands (8-site ED-DMFT, the phase-diagram database and network,
    the training benchmarks, the demo with its ED-DMFT reference) with shrunk sizes, after the
    database generations they read (minutes)."""
    _run_all(True, tmp_path_factory.mktemp("documented_slow"), monkeypatch)
