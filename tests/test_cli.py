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
    assert json.loads(out.with_suffix(".json").read_text())["solver"] == "ed"
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


def test_importing_solvers_never_loads_torch():
    code = "import solvers, sys; solvers.solve; print('torch' in sys.modules, 'mldmft' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True)
    assert out.stdout.split() == ["False", "False"]
