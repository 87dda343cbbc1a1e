"""Where commands write, and the defects found by trying every documented command: no output
(side files included) lands on an input, a directory or a foreign file, or where it cannot be
written, and all of this is refused before any work; ``--opt`` numbers in every notation;
bath lists that would repeat models; databases with wrong shapes or values; default names that
keep different sweeps apart; empty lock files; checkpoint and DOS-file messages."""

from __future__ import annotations

import json
import os
import shlex
import socket
import time
import warnings
from fractions import Fraction
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from mldmft.cli import (_bare_spectrum, _compose, _parse_options, _solve_outputs, active_config,
                        default_sweep_out, main, sweep_arguments)
from mldmft.database import GenerateConfig, SolverSpec, generate, load_database, open_database
from mldmft.h5schema import SchemaError
from mldmft.h5util import (LOCK_GRACE_S, OutputFile, OutputPlaceError, RunLockedError,
                           check_output_places, h5_schema_is, run_lock)

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "mldmft" / "examples" / "asymmetric_nb4.yaml"
ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0


def run_cli(capsys, *argv):
    """``mldmft ARGV`` in this process: (exit status, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, err: str, fragment: str) -> None:
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert fragment in err, err


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory) -> Path:
    """A small IPT sweep (beta = 20, U = 1, 2, up) and its CSV."""
    from mldmft.dmft import sweep

    out = tmp_path_factory.mktemp("sweep") / "s.h5"
    sweep("ipt", 20.0, [1.0, 2.0], "up", out=out)
    return out


@pytest.fixture(scope="module")
def tiny_db(tmp_path_factory) -> Path:
    """Two ED samples (Nb = 2) with Hubbard-I as the cheap solver."""
    out = tmp_path_factory.mktemp("db") / "db.h5"
    generate(GenerateConfig(out=str(out), n_samples=2, seed=3,
                            sampling=dict(kind="bethe_random", n_bath=2, D=1.0, U=[1.0, 3.0],
                                          beta=10.0, half_filling=True),
                            target=SolverSpec("ed"), cheap=(SolverSpec("hubbard_i"),), n_l=40,
                            n_sigma=16, workers=1, progress=False))
    return out


def _snapshot(*paths: Path) -> dict:
    return {p: p.read_bytes() for p in paths}


def _forbid(monkeypatch, target: str) -> None:
    """Make ``target`` (module.attribute) raise: the command must stop before reaching it."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"{target} was called: the work started before the check")
    monkeypatch.setattr(target, refuse)


# ------------------------------------------------------------------ the output-place check
def test_check_output_places_refuses_each_bad_place(tmp_path):
    inp = tmp_path / "in.csv"
    inp.write_text("1 2\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    plain = tmp_path / "notes.h5"
    plain.write_text("my notes")
    cases = [
        ([OutputFile(inp, "CSV")], "would overwrite the input file"),
        ([OutputFile(sub, "result")], "is a directory"),
        ([OutputFile(tmp_path / "a.h5"), OutputFile(tmp_path / "a.h5", "CSV")], "same file"),
        ([OutputFile(plain, "database", h5_schema_is("mldmft.aim_database"))],
         "exists and is not an mldmft database"),
        ([OutputFile(inp / "x.h5")], "is not a directory"),
    ]
    for files, fragment in cases:
        with pytest.raises(OutputPlaceError, match=fragment) as err:
            check_output_places(files, inputs=[inp])
        assert len(str(err.value).splitlines()) == 1
    with pytest.raises(OutputPlaceError, match="is a file, not a directory"):
        check_output_places(dirs=[inp])
    # symlinks and relative paths to an input are the input
    link = tmp_path / "link.csv"
    link.symlink_to(inp)
    with pytest.raises(OutputPlaceError, match="overwrite the model file"):
        check_output_places([link], inputs={inp: "model file"})
    # fine: a new file in a folder still to be made, an earlier output of the same kind, a figure
    with h5py.File(tmp_path / "old.h5", "w") as f:
        f.attrs["schema"] = "mldmft.aim_database"
    check_output_places([OutputFile(tmp_path / "new" / "deeper" / "x.h5"),
                         OutputFile(tmp_path / "old.h5", "db", h5_schema_is("mldmft.aim_database")),
                         OutputFile(plain.with_suffix(".png"), "figure")], inputs=[inp],
                        dirs=[tmp_path / "plots"])


@pytest.mark.skipif(ROOT_USER, reason="root writes into read-only folders")
def test_check_output_places_refuses_a_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(OutputPlaceError, match="is not writable"):
            check_output_places([ro / "x.h5"])
        with pytest.raises(OutputPlaceError, match="is not writable"):
            check_output_places(dirs=[ro / "plots"])
    finally:
        ro.chmod(0o755)


# ------------------------------------------------------------------ item 1: export-baths
def test_export_baths_never_writes_over_an_input_a_database_or_a_csv(sweep_file, tiny_db, capsys,
                                                                      monkeypatch):
    """``--out`` onto the sweep itself exited 0 and the sweep file became YAML; onto a database
    the same (and the next step suggested sampling.path= that file); an existing CSV beside the
    sweep was overwritten too. Every case is refused before any fitting."""
    csv = sweep_file.with_suffix(".csv")
    notes = sweep_file.with_name("notes.yaml")
    notes.write_text("my: notes\n")
    before = _snapshot(sweep_file, csv, tiny_db, notes)
    _forbid(monkeypatch, "mldmft.dmft.export.bath_list_entry")
    for out, fragment in ((sweep_file, "ending in .yaml"), (tiny_db, "ending in .yaml"),
                          (csv, "ending in .yaml"), (notes, "not an mldmft bath list"),
                          (sweep_file.parent, "ending in .yaml")):
        one_line_error(*run_cli(capsys, "export-baths", sweep_file, "--out", out)[::2], fragment)
    assert _snapshot(sweep_file, csv, tiny_db, notes) == before
    monkeypatch.undo()
    # the normal case, and a rerun over its own bath list
    out = sweep_file.with_name("baths.yaml")
    for _ in range(2):
        code, stdout, err = run_cli(capsys, "export-baths", sweep_file, "--out", out,
                                    "--n-bath", "2")
        assert code == 0, err
    assert len(yaml.safe_load(out.read_text())["baths"]) == 2
    assert "sampling.path=" + str(out) in stdout


# ------------------------------------------------------------------ item 2: dmft side files
def test_dmft_side_files_never_replace_an_input(tmp_path, capsys, monkeypatch):
    """``lattice=file lattice.path=dos/mydos.csv out=dos/mydos.h5``: the sweep's companion CSV
    replaced the DOS file. Refused before the sweep starts; the DOS file is untouched."""
    monkeypatch.chdir(tmp_path)
    dos = tmp_path / "dos" / "mydos.csv"
    dos.parent.mkdir()
    e = np.linspace(-1, 1, 41)
    np.savetxt(dos, np.column_stack([e, 1 - e ** 2]))
    before = dos.read_bytes()
    _forbid(monkeypatch, "mldmft.dmft.sweep")
    _forbid(monkeypatch, "mldmft.dmft.sweep_mu")
    code, _, err = run_cli(capsys, "dmft", "lattice=file", "lattice.path=dos/mydos.csv",
                           "solver=ipt", "beta=10", "U_values=[1.0]", "out=dos/mydos.h5",
                           "progress=false")
    one_line_error(code, err, "would overwrite the input file (lattice.path) dos/mydos.csv")
    assert dos.read_bytes() == before and not (tmp_path / "dos" / "mydos.h5").exists()
    # the figure too; and an out that is a directory (item 16) is named as such
    np.savetxt(tmp_path / "dos" / "fig.png", np.column_stack([e, 1 - e ** 2]))
    code, _, err = run_cli(capsys, "dmft", "lattice=file", "lattice.path=dos/fig.png",
                           "solver=ipt", "beta=10", "U_values=[1.0]", "out=dos/fig.h5")
    one_line_error(code, err, "(sweep plot) would overwrite the input file")
    code, _, err = run_cli(capsys, "dmft", "solver=ipt", "U_values=[1.0]", "out=dos")
    one_line_error(code, err, "is a directory")
    # a CSV of the user's own beside the sweep is not replaced either
    (tmp_path / "mine.csv").write_text("a,b\n1,2\n")
    code, _, err = run_cli(capsys, "dmft", "solver=ipt", "U_values=[1.0]", "out=mine.h5")
    one_line_error(code, err, "mine.csv exists and is not an mldmft sweep CSV")


# ------------------------------------------------------------------ item 6: --opt numbers
def test_opt_values_parse_numbers_in_every_notation(capsys, tmp_path):
    """README's ``--opt cutoff=1e-8`` was refused: YAML 1.1 reads 1e-8 (no dot) as a string."""
    assert _parse_options(["cutoff=1e-8", "n_iw=512", "tol=1.0e-6", "x=-2E+3", "m=pade",
                           "flag=true", "none=null", "v=[1, 2]"]) == {
        "cutoff": 1e-8, "n_iw": 512, "tol": 1e-6, "x": -2000.0, "m": "pade", "flag": True,
        "none": None, "v": [1, 2]}
    assert isinstance(_parse_options(["n_iw=512"])["n_iw"], int)
    code, out, err = run_cli(capsys, "solve", "--solver", "ed", EXAMPLE, "--opt", "n_iw=512",
                             "--opt", "cutoff=1e-8", "--out", tmp_path / "r.h5")
    assert code == 0, err
    from mldmft import read_result

    assert read_result(tmp_path / "r.h5")[0].g_iw.size == 512


def test_yaml_inputs_read_exponent_numbers_as_numbers(tmp_path):
    """``beta: 1e2`` in a model file was a string (YAML 1.1): every YAML input reads numbers the
    way Python does (``mldmft.yamlio.load_yaml``)."""
    from mldmft.database.sampling import make_recipe
    from mldmft.modelfile import load_model
    from mldmft.yamlio import load_yaml

    assert load_yaml("[1e2, -3E-4, 1.5e+1, '1e2', 1e, 0x1f]") == [100.0, -3e-4, 15.0, "1e2",
                                                                   "1e", 31]
    model_file = tmp_path / "m.yaml"
    model_file.write_text("U: 2\neps_d: -1\nbeta: 1e2\nbath_eps: [-5e-1, 5e-1]\n"
                          "bath_v: [3e-1, 3e-1]\n")
    model = load_model(model_file)
    assert model.beta == 100.0 and np.allclose(model.bath_v, 0.3)
    baths = tmp_path / "baths.yaml"
    baths.write_text("baths:\n  - {bath_eps: [-5e-1, 5e-1], bath_v: [3e-1, 3e-1]}\n")
    recipe = make_recipe({"kind": "bath_list", "path": str(baths), "U": 2.0, "beta": 1e2})
    assert recipe.entries[0]["bath_eps"] == [-0.5, 0.5]
    assert recipe.entries[0]["bath_v"] == [0.3, 0.3]


# ------------------------------------------------------------------ item 7: active overrides
def test_documented_active_command_with_train_overrides_composes():
    """docs/networks.md's ``"train.overrides=[trainer.max_epochs=60]"`` failed to parse."""
    text = (REPO / "docs" / "networks.md").read_text()
    start = text.index("mldmft active database=data/phase_diagram.h5 name=try")
    command = text[start:text.index("```", start)].replace("\\\n", " ")
    args = shlex.split(command)[2:]
    assert any(a.startswith("train.overrides=") for a in args)
    cfg = active_config(args)
    assert cfg.train.trainer.max_epochs == 60 and cfg.max_rounds == 1


# ------------------------------------------------------------------ item 8: repeated baths
def _bath_list(path: Path, entries: list[dict]) -> Path:
    path.write_text(yaml.safe_dump({"baths": entries}))
    return path


def test_bath_list_that_would_repeat_models_is_refused_before_work(tmp_path, capsys):
    """54 fully specified baths and n_samples=100 cycled through the file: 46 exact duplicates,
    minutes of ED, no warning (and duplicates could land in training and test)."""
    full = [{"bath_eps": [-0.5, 0.5], "bath_v": [0.3, 0.3], "U": 2.0, "eps_d": -1.0,
             "beta": 10.0}, {"bath_eps": [-0.4, 0.4], "bath_v": [0.3, 0.3], "U": 2.5,
                             "eps_d": -1.25, "beta": 10.0}]
    path = _bath_list(tmp_path / "visited.yaml", full)
    code, _, err = run_cli(capsys, "generate", "sampling=bath_list", f"sampling.path={path}",
                           "n_samples=3", f"out={tmp_path / 'db.h5'}", "progress=false")
    one_line_error(code, err, "1 sample(s) would repeat an earlier model exactly")
    assert "use n_samples <= 2" in err
    assert not list(tmp_path.glob("db.h5*"))
    # one model twice in the file is a repeat too
    twice = _bath_list(tmp_path / "twice.yaml", [full[0], full[1], dict(full[0])])
    cfg = GenerateConfig(out=str(tmp_path / "t.h5"), n_samples=3, seed=1,
                         sampling={"kind": "bath_list", "path": str(twice)}, n_l=40,
                         progress=False, workers=1)
    with pytest.raises(ValueError, match="from sample 2 on"):
        cfg.validate()
    # baths whose U is drawn from a range give new models when cycled: accepted
    free = _bath_list(tmp_path / "free.yaml", [{k: v for k, v in e.items() if k != "U"}
                                                for e in full])
    GenerateConfig(out=str(tmp_path / "f.h5"), n_samples=5, seed=1,
                   sampling={"kind": "bath_list", "path": str(free), "U": [1.0, 3.0]},
                   n_l=40, progress=False, workers=1).validate()


# ------------------------------------------------------------------ item 9: merge
def test_merge_never_replaces_a_file_that_is_not_a_database(tiny_db, sweep_file, tmp_path,
                                                            capsys, monkeypatch):
    notes = tmp_path / "notes.h5"
    notes.write_text("my notes")
    txt = tmp_path / "notes.txt"
    txt.write_text("my notes")
    before = _snapshot(sweep_file, notes, txt, tiny_db)
    _forbid(monkeypatch, "mldmft.database.merge.load_database")
    for out, fragment in ((sweep_file, "exists and is not an mldmft AIM database"),
                          (notes, "exists and is not an mldmft AIM database"),
                          (txt, "ending in .h5"), (tiny_db, "would overwrite the input database"),
                          (tmp_path, "ending in .h5"),
                          (tmp_path / "sub.h5", "is a directory")):
        if out.name == "sub.h5":
            out.mkdir()
        one_line_error(*run_cli(capsys, "merge", tiny_db, "--out", out)[::2], fragment)
    assert _snapshot(sweep_file, notes, txt, tiny_db) == before
    monkeypatch.undo()
    out = tmp_path / "merged.h5"
    for _ in range(2):  # a rerun replaces its own earlier database
        code, _, err = run_cli(capsys, "merge", tiny_db, "--out", out)
        assert code == 0, err
    assert len(load_database(out)["sample_index"]) == len(load_database(tiny_db)["sample_index"])


# ------------------------------------------------------------------ item 12: default names
DOC_SWEEPS = [  # docs/spectra.md and docs/dmft.md, run one after another
    "lattice=square solver=ipt beta=50",
    "lattice=square lattice.tp=-0.05 mu=-0.2 solver=ipt",
    "lattice=hypercubic solver=ed solver_options.n_bath=6 U_values=[2.0]",
    "lattice=file lattice.path=my_dos.dat",
    "solver=ipt beta=100 direction=both",
    "solver=ed U_values=[2.0] beta=100 solver_options.n_bath=8",
    "density=0.9 U_values=[1.0,2.0,3.0] beta=50 direction=up",
    "U=2.7 mu_range=[0.95,1.35,0.05] beta=50 direction=both",
    "U=2.0 mu_values=[0.5,0.8] beta=50",
]


def test_default_sweep_names_keep_documented_sweeps_apart():
    """Two documented commands in a row collided ("holds another sweep ... lattice: ...")."""
    outs = [sweep_arguments(_compose("dmft", c.split()))["out"] for c in DOC_SWEEPS]
    assert len(set(outs)) == len(outs), outs
    assert outs[0] == "data/dmft/ipt_beta50_square.h5"
    assert outs[1] == "data/dmft/ipt_beta100_mu-0.2_square_tp-0.05.h5"
    assert outs[3] == "data/dmft/ipt_beta100_file-my_dos.h5"
    assert outs[4] == "data/dmft/ipt_beta100.h5"          # the Bethe lattice, no options
    assert outs[5] == "data/dmft/ed_beta100_n_bath8.h5"
    assert default_sweep_out("ml", 50.0, {"name": "bethe", "D": 1.0},
                             {"checkpoint": "runs/a/model.pt"},
                             guard={"fallback": "ed"}).name == (
        "ml_beta50_guard-ed_checkpoint-model.h5")
    # mldmft solve: the options are part of the default name
    a = _solve_outputs(str(EXAMPLE), "ed", None, {"cutoff": 1e-8})[0]
    b = _solve_outputs(str(EXAMPLE), "ed", None, {})[0]
    assert a.name == "asymmetric_nb4_ed_cutoff1e-08.h5" and b.name == "asymmetric_nb4_ed.h5"


# ------------------------------------------------------------------ item 13: before work
def test_outputs_into_unwritable_places_are_refused_before_work(tmp_path, tiny_db, sweep_file,
                                                                capsys, monkeypatch):
    """``solve --out``, ``merge``, ``export-baths`` into a read-only folder or onto a folder did
    the work first (4-7 s) and then failed with raw OS/h5py errors."""
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    (tmp_path / "folder.h5").mkdir()
    _forbid(monkeypatch, "solvers.solve")
    _forbid(monkeypatch, "mldmft.database.merge.load_database")
    _forbid(monkeypatch, "mldmft.dmft.export.bath_list_entry")
    commands = [
        (["solve", "--solver", "ed", EXAMPLE, "--out", blocker / "r.h5"], "is not a directory"),
        (["solve", "--solver", "ed", EXAMPLE, "--out", tmp_path / "folder.h5"], "is a directory"),
        (["merge", tiny_db, "--out", blocker / "m.h5"], "is not a directory"),
        (["export-baths", sweep_file, "--out", blocker / "b.yaml"], "is not a directory"),
        (["overlay", sweep_file, "--out", blocker / "c.png"], "is not a directory"),
        (["demo", "--out", blocker], "is a file, not a directory"),
        (["generate", f"out={tmp_path / 'folder.h5'}"], "is a directory"),
    ]
    for argv, fragment in commands:
        one_line_error(*run_cli(capsys, *argv)[::2], fragment)


@pytest.mark.skipif(ROOT_USER, reason="root writes into read-only folders")
def test_solve_into_a_read_only_folder_is_refused_before_solving(tmp_path, capsys, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    _forbid(monkeypatch, "solvers.solve")
    try:
        one_line_error(*run_cli(capsys, "solve", EXAMPLE, "--out", ro / "r.h5")[::2],
                       "is not writable")
    finally:
        ro.chmod(0o755)


# ------------------------------------------------------------------ item 14: inspect
def test_inspect_checks_its_plot_folder_first(tiny_db, tmp_path, capsys, monkeypatch):
    """In a read-only folder ``inspect`` printed no summary, only the PNG error: now a one-line
    error naming the ways out, before the database is read; ``--no-plots`` prints it."""
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    _forbid(monkeypatch, "mldmft.database.inspect.load_database")
    code, out, err = run_cli(capsys, "inspect", tiny_db, "--out", blocker)
    one_line_error(code, err, "choose --out DIR for the plots or --no-plots")
    assert out == ""
    monkeypatch.undo()
    code, out, err = run_cli(capsys, "inspect", tiny_db, "--no-plots")
    assert code == 0 and "samples      2" in out, err


# ------------------------------------------------------------------ item 16: messages
def test_checkpoint_messages_name_the_problem(tmp_path):
    import torch

    from mldmft.ml.checkpoint import load_checkpoint

    junk = tmp_path / "junk.pt"
    junk.write_bytes(bytes(range(256)) * 4)

    pickled = tmp_path / "obj.pt"  # a pickled object of a class outside torch's allowed list
    torch.save({"a": Fraction(1, 3)}, pickled)
    for path, fragment in (("", "empty path"), (tmp_path, "a directory, not a model file"),
                           (tmp_path / "none.pt", "no such file"),
                           (junk, "not an mldmft checkpoint (not a PyTorch file"),
                           (pickled, "never unpickled")):
        with pytest.raises(ValueError) as err:
            load_checkpoint(path)
        text = str(err.value)
        assert fragment in text and len(text.splitlines()) == 1, text
        assert "weights_only" not in text  # never torch's unsafe advice


def test_empty_dos_file_is_refused_without_a_numpy_warning(tmp_path):
    from mldmft.dmft.lattice import get_lattice

    empty = tmp_path / "empty.dat"
    empty.write_text("")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="need two columns"):
            get_lattice({"name": "file", "path": str(empty)})


def test_unknown_fallback_lists_each_solver_once():
    import mldmft.ml  # noqa: F401  (registers ml)
    from mldmft.dmft.steps import make_step

    with pytest.raises(ValueError) as err:
        make_step("magic", 64)
    names = str(err.value).split("available: ")[1].split(", ")
    assert "ml" in names and len(names) == len(set(names))


# ------------------------------------------------------------------ item 18: bad databases
def _damaged_copy(src: Path, dst: Path, edit) -> Path:
    dst.write_bytes(src.read_bytes())
    with h5py.File(dst, "r+") as f:
        edit(f)
    return dst


def test_database_with_wrong_shapes_or_values_is_refused_on_load(tiny_db, tmp_path, capsys):
    """A ``g_l`` of the wrong width or a row with beta = -5: ``inspect`` exited 0 with a bogus
    MSE, ``merge``/``train`` stopped with raw numpy broadcast errors, ``merge`` copied the row."""
    def narrow(f):
        g = f["solvers/hubbard_i/g_l"][()]
        del f["solvers/hubbard_i/g_l"]
        f["solvers/hubbard_i/g_l"] = g[:, :10]

    def negative_beta(f):
        beta = f["params/beta"][()]
        beta[1] = -5.0
        f["params/beta"][...] = beta

    cases = [(narrow, "dataset 'solvers/hubbard_i/g_l' has shape (4, 10)"),
             (negative_beta, "dataset 'params/beta' breaks beta > 0 in 1 row(s), e.g. row 1: -5")]
    for k, (edit, fragment) in enumerate(cases):
        bad = _damaged_copy(tiny_db, tmp_path / f"bad{k}.h5", edit)
        with pytest.raises(SchemaError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
            open_database(bad)
        one_line_error(*run_cli(capsys, "inspect", bad, "--no-plots")[::2], fragment)
        one_line_error(*run_cli(capsys, "merge", tiny_db, bad, "--out",
                                tmp_path / f"m{k}.h5")[::2], fragment)
        assert not (tmp_path / f"m{k}.h5").exists()
        from mldmft.ml.data import database_info  # training's first read

        with pytest.raises(SchemaError, match="dataset"):
            database_info(bad)


# ------------------------------------------------------------------ item 20: empty lock
def test_empty_lock_older_than_the_grace_period_is_taken_over(tmp_path):
    """A run killed between creating ``<out>.lock`` and writing it blocked every later run until
    the file was deleted by hand."""
    out = tmp_path / "x.h5"
    lock = tmp_path / "x.h5.lock"
    lock.write_text("")
    with pytest.raises(RunLockedError, match="names no holder"):  # fresh: maybe starting
        with run_lock(out):
            pass
    old = time.time() - 2 * LOCK_GRACE_S
    os.utime(lock, (old, old))
    with run_lock(out) as held:
        info = json.loads(held.read_text())
        assert info["pid"] == os.getpid() and info["host"] == socket.gethostname()
    assert not lock.exists()
    lock.write_text("{not json")  # half-written: the same
    os.utime(lock, (old, old))
    with run_lock(out):
        pass


# ------------------------------------------------------------------ item 21: --spectrum
def test_bare_spectrum_before_the_model_file_is_not_the_method(tmp_path, capsys):
    """``mldmft solve --solver ipt --spectrum model.yaml`` took the model file as the method."""
    assert _bare_spectrum(["solve", "--spectrum", "m.yaml"]) == ["solve", "--spectrum=auto",
                                                                 "m.yaml"]
    assert _bare_spectrum(["solve", "--spectrum", "pade", "m.yaml"]) == [
        "solve", "--spectrum", "pade", "m.yaml"]
    assert _bare_spectrum(["solve", "m.yaml", "--spectrum"]) == ["solve", "m.yaml", "--spectrum"]
    out = tmp_path / "r.h5"
    code, stdout, err = run_cli(capsys, "solve", "--solver", "ed", "--spectrum", EXAMPLE,
                                "--out", out)
    assert code == 0, err
    assert "spectrum       ed_poles" in stdout


# ------------------------------------------------------------------ found while running the docs
def test_square_lattice_down_branch_from_the_insulating_seed_converges():
    """``mldmft dmft lattice=square solver=ipt beta=50 "U_values=[2.0]"`` stopped the whole sweep
    with "square: hilbert needs Im zeta > 0": an Anderson-mixed hybridisation (causal on the
    Matsubara axis but no positive spectrum) gave IPT an acausal Sigma. The attempt ends with
    that reason, the point is redone with linear mixing, and both branches meet the metal."""
    from mldmft.dmft.lattice import get_lattice
    from mldmft.dmft.loop import solve_point
    from mldmft.dmft.steps import make_step

    lattice, step = get_lattice("square"), make_step("ipt", 1024)
    points = [solve_point(step, 50.0, 2.0, lattice.seed_delta_iw(50.0, 1024, U=seed), lattice,
                          branch=branch)
              for seed, branch in ((None, "up"), (2.0, "down"))]
    assert all(p.converged for p in points)
    assert points[1].retried_linear and "self-consistency failed" in \
        points[1].info.get("anderson_error", "")
    assert abs(points[0].Z - points[1].Z) < 1e-4
    assert np.isfinite(points[1].kinetic_energy)
