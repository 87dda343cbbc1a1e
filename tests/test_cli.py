"""`mldmft solve`: the shipped example, HDF5 round trip, one-line errors for bad model files."""

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from mldmft import read_result
from mldmft.modelfile import ModelFileError, load_model
from solvers import solve

EXAMPLES = Path(__file__).resolve().parents[1] / "mldmft" / "examples"
ENV = dict(os.environ, OMP_NUM_THREADS="1")


def run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "mldmft.cli", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True)


def test_solve_example_writes_result_summary_and_plot(tmp_path):
    out = tmp_path / "r.h5"
    res = run("solve", "--solver", "ed", str(EXAMPLES / "asymmetric_nb4.yaml"), "--out", str(out),
              "--plot", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    for key in ("density", "double occ.", "Z", "wall time"):
        assert key in res.stdout
    stored, model = read_result(out)
    direct = solve("ed", load_model(EXAMPLES / "asymmetric_nb4.yaml"))
    np.testing.assert_allclose(stored.g_iw, direct.g_iw, atol=1e-12)
    assert stored.density == pytest.approx(direct.density, abs=1e-12)
    assert json.loads((tmp_path / "r.summary.json").read_text())["solver"] == "ed"
    assert out.with_suffix(".png").exists()
    with h5py.File(out) as f:
        assert f.attrs["schema"] == "mldmft.result"


@pytest.mark.parametrize("text, fragment", [
    ("U: 2.0\nbeta: [unclosed\n", "cannot parse"),
    ("U: 2.0\neps_d: -1\nbath_eps: [0.1]\nbath_v: [0.2]\n", "'beta' is missing"),
    ("U: 2.0\neps_d: -1\nbeta: -5\nbath_eps: [0.1]\nbath_v: [0.2]\n", "beta"),
    ("U: .nan\neps_d: -1\nbeta: 5\nbath_eps: [0.1]\nbath_v: [0.2]\n", "U"),
    ("U: 2.0\neps_d: -1\nbeta: 5\nbath_eps: [0.1, 0.2]\nbath_v: [0.2]\n", "bath_v"),
    ("U: 2.0\neps_d: -1\nbeta: 5\nbath_eps: [0.1]\nbath_v: [0.2]\ncolour: red\n", "colour"),
])
def test_malformed_model_file_gets_a_one_line_error(tmp_path, text, fragment):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ModelFileError, match=fragment.replace("[", r"\[")):
        load_model(f)
    res = run("solve", str(f), cwd=tmp_path)
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1 and fragment in res.stderr


def test_too_many_bath_sites_and_unknown_solver(tmp_path):
    f = tmp_path / "nb9.json"
    f.write_text(json.dumps({"U": 1.0, "eps_d": -0.5, "beta": 10.0,
                             "bath_eps": list(np.linspace(-1, 1, 9)), "bath_v": [0.1] * 9}))
    res = run("solve", str(f), cwd=tmp_path)
    assert res.returncode == 2 and "at most 8" in res.stderr
    res = run("solve", "--solver", "magic", str(EXAMPLES / "asymmetric_nb4.yaml"), cwd=tmp_path)
    assert res.returncode == 2 and "unknown solver 'magic'" in res.stderr


def test_solve_never_writes_over_its_input_or_a_foreign_file(tmp_path, capsys):
    """`--out r.json` used to be overwritten by the JSON summary (HDF5 lost) and `--out
    model.yaml` overwrote the model; now --out must be .h5 and no output may be an input."""
    from mldmft.cli import main

    model = tmp_path / "model.yaml"
    model.write_text((EXAMPLES / "asymmetric_nb4.yaml").read_text())
    original = model.read_text()
    for out, fragment in (("r.json", "ending in .h5"), ("model.yaml", "ending in .h5")):
        assert main(["solve", "--solver", "ipt", str(model), "--out", str(tmp_path / out)]) == 2
        err = capsys.readouterr().err
        assert fragment in err and len(err.strip().splitlines()) == 1
    assert model.read_text() == original and not (tmp_path / "r.json").exists()
    # the summary of x.h5 would be x.summary.json: refused when that is the model file
    json_model = tmp_path / "x.summary.json"
    json_model.write_text(json.dumps({"U": 1.0, "eps_d": -0.5, "beta": 10.0,
                                      "bath_eps": [0.1], "bath_v": [0.3]}))
    assert main(["solve", "--solver", "ipt", str(json_model), "--out",
                 str(tmp_path / "x.h5")]) == 2
    assert "would overwrite the model file" in capsys.readouterr().err
    assert json.loads(json_model.read_text())["U"] == 1.0
    # an HDF5 file that is not a solve result (e.g. a database) is never overwritten
    foreign = tmp_path / "db.h5"
    with h5py.File(foreign, "w") as f:
        f.attrs["schema"] = "mldmft.aim_database"
    assert main(["solve", "--solver", "ipt", str(model), "--out", str(foreign)]) == 2
    assert "not an mldmft solve result" in capsys.readouterr().err
    with h5py.File(foreign) as f:
        assert f.attrs["schema"] == "mldmft.aim_database"
    # the normal case: result, summary beside it with a distinct name; a rerun may overwrite
    out = tmp_path / "r.h5"
    for _ in range(2):
        assert main(["solve", "--solver", "ipt", str(model), "--out", str(out)]) == 0
    assert "summary r.summary.json" in capsys.readouterr().out
    assert read_result(out)[0].solver == "ipt"
    assert json.loads((tmp_path / "r.summary.json").read_text())["solver"] == "ipt"


def test_importing_solvers_never_loads_torch():
    code = "import solvers, sys; solvers.solve; print('torch' in sys.modules, 'mldmft' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True)
    assert out.stdout.split() == ["False", "False"]
