"""Bad configuration is refused before any work with one line naming it: solver options (one check,
:func:`solvers.check_options`, used by ``solve``, ``generate`` and ``dmft``), Hydra overrides
(the documented ``solver_options.KEY=VALUE`` form works, misspelt keys are named), types in
configs and model files, corrupt HDF5 files, and non-finite rows of a database."""

import importlib.util
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from mldmft.cli import _compose, main, sweep_arguments
from mldmft.database import GenerateConfig, SolverSpec, generate, load_database
from mldmft.database.inspect import inspect_database, non_finite_rows
from mldmft.dmft.steps import make_step
from mldmft.h5schema import SchemaError
from mldmft.modelfile import ModelFileError, load_model
from solvers import available_solvers, check_options, check_type, get_solver

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "mldmft" / "examples" / "asymmetric_nb4.yaml"
DEMO_CHECKPOINT = REPO / "mldmft" / "pretrained" / "demo_beta50.pt"


def run_cli(capsys, *argv):
    """``mldmft ARGV`` in this process: (exit status, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------ one option check
@pytest.mark.parametrize("name, options, fragment", [
    ("ed", {"cutof": 1e-6}, "solver 'ed' has no option 'cutof' (did you mean 'cutoff'?)"),
    ("ed", {"n_iw": "abc"}, "option 'n_iw' must be an integer, got 'abc'"),
    ("ed", {"n_iw": 2.5}, "option 'n_iw' must be an integer, got 2.5"),
    ("ed", {"n_iw": 0}, "n_iw and n_l must be >= 1"),
    ("ed", {"cutoff": 2.0}, "cutoff must lie in (0, 1)"),
    ("ed", {"use_symmetry": "false"}, "option 'use_symmetry' must be true or false"),
    ("ipt", {"mixing": 2.0}, "mixing must lie in (0, 1]"),
    ("nca", {"method": "leapfrog"}, "unknown NCA method 'leapfrog'"),
    ("hubbard_i", {"tol": -1.0}, "tol must be a finite number > 0"),
    # ed_fit and ed1..3 forward options to ED: checked there, named with a suggestion
    ("ed2", {"cutof": 1e-8}, "solver 'ed2' has no option 'cutof' (did you mean 'cutoff'?)"),
    ("ed_fit", {"n_bath": 9}, "n_bath must be between 1 and 8"),
])
def test_check_options_names_the_bad_option(name, options, fragment):
    with pytest.raises(ValueError) as err:
        check_options(name, options)
    assert fragment in str(err.value) and len(str(err.value).splitlines()) == 1


def test_check_options_returns_what_the_options_give():
    for name in ("ed", "ipt", "hubbard_i", "nca", "ed_fit", "ed1", "ed2", "ed3"):
        assert check_options(name, {"n_iw": 64, "n_l": 30}).result_sizes() == (64, 30), name


def test_check_type_is_strict():
    assert check_type("x", 3, float) == 3 and check_type("x", None, int | None) is None
    for value, tp in [(True, int), (True, float), ("1", float), (1, bool), ("false", bool),
                      (2.0, int), ([1.0, "a"], list[float]), ((0.5, 0.5), tuple[float, float, float])]:
        with pytest.raises(ValueError, match="^x must be "):
            check_type("x", value, tp)


def test_ml_solver_options_are_checked(tmp_path):
    import mldmft.ml  # noqa: F401  (registers "ml")

    check_options("ml", {})   # the shipped default model loads
    with pytest.raises(ValueError,
                       match=r"has no option 'chekpoint' \(did you mean 'checkpoint'\?\)"):
        check_options("ml", {"chekpoint": "x.pt"})
    with pytest.raises(ValueError, match="no such file"):
        check_options("ml", {"checkpoint": str(tmp_path / "missing.pt")})
    with pytest.raises(ValueError, match="option 'checkpoint' must be a string"):
        check_options("ml", {"checkpoint": 3})
    assert check_options("ml", {"checkpoint": str(DEMO_CHECKPOINT)}).result_sizes() is None


# ------------------------------------------------------------------ mldmft dmft
def test_documented_dmft_overrides_work():
    """docs/dmft.md: ``solver=ed solver_options.n_bath=8``; the ml solver's own network."""
    kw = sweep_arguments(_compose("dmft", ["solver=ed", "U_values=[2.0]", "beta=100",
                                           "solver_options.n_bath=8"]))
    assert kw["solver_options"] == {"n_bath": 8}  # undeclared options (null) are not passed
    assert json.loads(kw["metadata"]["config"])["solver_options"] == {"n_bath": 8}
    assert callable(make_step("ed", kw["options"].n_iw, kw["solver_options"]))
    kw = sweep_arguments(_compose("dmft", ["solver=ml", "beta=50",
                                           f"solver_options.checkpoint={DEMO_CHECKPOINT}"]))
    assert kw["solver_options"] == {"checkpoint": str(DEMO_CHECKPOINT)}
    assert callable(make_step("ml", kw["options"].n_iw, kw["solver_options"]))
    kw = sweep_arguments(_compose("dmft", ["solver=ed", "+solver_options.cutoff=1e-8"]))
    assert kw["solver_options"] == {"cutoff": 1e-8}


def test_dmft_yaml_declares_real_solver_options():
    import mldmft.ml  # noqa: F401  (registers "ml")

    declared = yaml.safe_load((REPO / "configs" / "dmft.yaml").read_text())["solver_options"]
    assert all(v is None for v in declared.values())
    import inspect

    taken = {p for name in available_solvers()
             for p in list(inspect.signature(get_solver(name)).parameters)[1:]}
    assert set(declared) <= taken, set(declared) - taken


@pytest.mark.parametrize("argv, fragment", [
    (["solve", str(EXAMPLE), "--opt", "n_iw=2.5"], "option 'n_iw' must be an integer, got 2.5"),
    (["solve", str(EXAMPLE), "--opt", "n_iw=[1"], "--opt n_iw=[1: cannot parse the value"),
    (["solve", str(EXAMPLE), "--opt", "cutof=1e-8"], "did you mean 'cutoff'?"),
    (["dmft", "+solver_options.cutof=1e-8", "solver=ed"], "has no option 'cutof' (did you "
                                                          "mean 'cutoff'?)"),
    (["dmft", "+solver_options.cutof=1e-8"], "solver 'ipt' has no option 'cutof'"),
    (["dmft", "solver=ml", "solver_options.checkpoint=missing.pt"], "checkpoint missing.pt: "
                                                                    "no such file"),
    (["dmft", "solver=ed", "solver_options.n_bath=9"], "n_bath must be between 1 and 8"),
    (["dmft", "solver_options.foo=1"], "Could not override 'solver_options.foo'. To append to "
                                       "your config use +solver_options.foo=1"),
    (["dmft", "guard={fallback: ed, treshold: 1}"], "unknown key 'guard.treshold' (did you "
                                                   "mean 'guard.threshold'?)"),
    (["dmft", "loop=3"], "'loop' must be a mapping"),
    (["dmft", "beta=abc"], "beta must be a number, got 'abc'"),
    (["dmft", "+U_value=[1.0]"], "unknown key 'U_value' (did you mean 'U_values'?)"),
    (["generate", "+n_sample=10"], "unknown key 'n_sample' (did you mean 'n_samples'?)"),
    (["generate", "n_sample=10"], "To append to your config use +n_sample=10 (did you mean "
                                  "'n_samples'?)"),
    (["generate", "n_samples=2.7"], "n_samples must be an integer, got 2.7"),
    (["generate", "+target.options.cutof=1e-6"], "target.options: solver 'ed' has no option "
                                                 "'cutof' (did you mean 'cutoff'?)"),
    (["generate", "+target.options.n_iw=0"], "n_iw and n_l must be >= 1"),
    (["generate", "n_sigma=100000"], "n_sigma = 100000 exceeds the 1024 Matsubara"),
    (["generate", "+solver_options.nca.n_tau=abc"], "solver_options.nca: solver 'nca': option "
                                                    "'n_tau' must be an integer"),
    (["generate", "sampling=nope"], "Available options in 'sampling': bath_list, bethe_half, "
                                    "bethe_random"),
])
def test_cli_config_errors_are_one_line_before_any_work(capsys, tmp_path, monkeypatch, argv,
                                                        fragment):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, *argv)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and fragment in err, err
    assert not list(tmp_path.iterdir())  # nothing written, not even data/


def test_dmft_loop_script_errors_are_one_line(tmp_path):
    import os
    import subprocess
    import sys

    res = subprocess.run([sys.executable, str(REPO / "dmft_loop.py"), "solver=ml",
                          "solver_options.checkpoint=missing.pt", f"hydra.run.dir={tmp_path}"],
                         cwd=tmp_path, capture_output=True, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dmft_loop.py: error: ")
    assert "missing.pt: no such file" in lines[0]


def test_train_config_types_are_checked():
    spec = importlib.util.spec_from_file_location("train_script", REPO / "train.py")
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    for override, fragment in [("trainer.max_epochs=1.5", "trainer.max_epochs must be an integer"),
                               ("constraints.sum_rule=yes", "constraints.sum_rule must be true "
                                                            "or false"),
                               ("data.split=[0.5,0.5]", "data.split must be a list of 3 numbers"),
                               ("seed=0.5", "seed must be an integer"),
                               ("trainer.max_epoch=3", "did you mean 'trainer.max_epochs'?")]:
        with pytest.raises(ValueError) as err:
            train.compose(["data.path=db.h5", override])
        assert fragment in str(err.value)


# ------------------------------------------------------------------ model files
@pytest.mark.parametrize("text, fragment", [
    ('U: 2.0\nhalf_filling: "false"\nbeta: 10\nbath_eps: [0.1]\nbath_v: [0.2]\n',
     "model field 'half_filling' must be true or false, got 'false'"),
    ("U: true\neps_d: -1\nbeta: 10\nbath_eps: [0.1]\nbath_v: [0.2]\n",
     "model field 'U' must be a number, got True"),
    ('U: "2"\neps_d: -1\nbeta: 10\nbath_eps: [0.1]\nbath_v: [0.2]\n', "model field 'U' must be"),
    ("U: 2\neps_d: -1\nbeta: 10\nbath_eps: [0.1, x]\nbath_v: [0.2, 0.1]\n",
     "model field 'bath_eps' must be a list of numbers"),
])
def test_model_file_types_are_strict(tmp_path, text, fragment):
    f = tmp_path / "m.yaml"
    f.write_text(text)
    with pytest.raises(ModelFileError) as err:
        load_model(f)
    assert fragment in str(err.value) and str(f) in str(err.value)


# ------------------------------------------------------------------ databases
@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hardening") / "db.h5"
    generate(GenerateConfig(out=str(out), n_samples=4, seed=1,
                            sampling=dict(kind="bethe_random", n_bath=2, D=1.0, U=[1.0, 3.0],
                                          eps_d=[-2.0, 0.0], beta=10.0),
                            target=SolverSpec("ed"), cheap=(SolverSpec("hubbard_i"),),
                            n_l=32, n_sigma=8, chunk_size=4, workers=1, progress=False))
    return out


def _zero_object_header(src: Path, dst: Path, name: str) -> Path:
    """Copy ``src`` to ``dst`` with the first 64 bytes of object ``name``'s header zeroed."""
    with h5py.File(src, "r") as f:
        addr = h5py.h5o.get_info(f[name].id).addr
    raw = bytearray(src.read_bytes())
    raw[addr:addr + 64] = bytes(64)
    dst.write_bytes(bytes(raw))
    return dst


@pytest.mark.parametrize("damaged", ["solvers/hubbard_i/g_l", "params"])
def test_corrupt_database_gives_one_line_naming_the_file(db, tmp_path, capsys, damaged):
    bad = _zero_object_header(db, tmp_path / "bad.h5", damaged)
    with pytest.raises(SchemaError, match="bad.h5: corrupt or incomplete HDF5 file"):
        load_database(bad)
    for argv in (["inspect", str(bad), "--no-plots"],
                 ["merge", str(bad), str(db), "--out", str(tmp_path / "m.h5")]):
        code, _, err = run_cli(capsys, *argv)
        assert code == 2 and len(err.strip().splitlines()) == 1 and "bad.h5: corrupt" in err
    from mldmft.ml.config import DataConfig
    from mldmft.ml.data import prepare_data

    with pytest.raises(SchemaError, match="bad.h5: corrupt"):
        prepare_data(DataConfig(path=str(bad), base="hubbard_i", feature_solvers=("hubbard_i",)))


def test_corrupt_sweep_file_gives_one_line_on_resume(tmp_path, capsys):
    args = ["dmft", "solver=hubbard_i", "U_values=[1.0,2.0]", "beta=10", "direction=up",
            "plot=false", "progress=false", f"out={tmp_path / 'sweep.h5'}"]
    assert run_cli(capsys, *args)[0] == 0
    good = tmp_path / "good.h5"
    shutil.copy(tmp_path / "sweep.h5", good)
    with h5py.File(good, "r") as f:
        point = sorted(f["points"])[0]
    _zero_object_header(good, tmp_path / "sweep.h5", f"points/{point}")
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "sweep.h5: corrupt or incomplete HDF5 file" in err


def test_non_finite_inputs_are_named_and_dropped(db, tmp_path):
    edited = tmp_path / "nan.h5"
    shutil.copy(db, edited)
    with h5py.File(edited, "r+") as f:
        v = f["bath/v"][()]
        v[3, 0] = np.nan
        f["bath/v"][...] = v
        g = f["solvers/hubbard_i/g_l"][()]
        g[5, 2] = np.inf
        f["solvers/hubbard_i/g_l"][...] = g
    bad = non_finite_rows(load_database(edited), ["ed", "hubbard_i"])
    assert {k: v.tolist() for k, v in bad.items()} == {"bath/v": [3],
                                                       "solvers/hubbard_i/g_l": [5]}
    text = "\n".join(inspect_database(edited, plots=False))
    assert "bath/v                   1 row(s): 3" in text
    assert "solvers/hubbard_i/g_l    1 row(s): 5" in text
    assert "nan" not in text.split("error against")[1]
    from mldmft.ml.config import DataConfig
    from mldmft.ml.data import load_rows, make_spec, database_info

    cfg = DataConfig(path=str(edited), base="hubbard_i", feature_solvers=("hubbard_i",))
    info = database_info(edited)
    rows = load_rows(cfg, make_spec(cfg, info), info)
    assert rows.report.non_finite_inputs == {"bath/v": 1}
    assert rows.report.failed["hubbard_i"] == 1 and rows.report.kept == 8 - 2
    assert "bath/v     non-finite in 1 row(s) (dropped)" in "\n".join(rows.report.lines())
    assert np.all(np.isfinite(rows.bath_v)) and np.all(np.isfinite(rows.batch.delta_iw))
