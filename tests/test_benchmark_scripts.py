"""Smoke tests of the benchmark scripts: they run, write what they promise, and the
ED reference cache of the solver panel is reused. Small models only (a few seconds in all)."""

from __future__ import annotations

import csv
import importlib.util
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "benchmarks")


def _load(filename: str, name: str):
    spec = importlib.util.spec_from_file_location(name, os.path.join(BENCH, filename))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench_solvers():
    return _load("solvers.py", "bench_solvers")


@pytest.fixture(scope="module")
def panel_script():
    return _load("solver_panel.py", "bench_solver_panel")


def test_benchmark_dir_does_not_shadow_solvers_package():
    """benchmarks/solvers.py shares the package's name; a sibling script run from benchmarks/
    (sys.path[0] = benchmarks/, e.g. ``python benchmarks/ed.py``) must still get the package."""
    import solvers as real

    saved_path = list(sys.path)
    del sys.modules["solvers"]
    sys.path.insert(0, BENCH)
    try:
        imported = importlib.import_module("solvers")
        assert os.path.samefile(imported.__file__, real.__file__)
        assert imported.AndersonModel is real.AndersonModel
    finally:
        sys.path[:] = saved_path
        sys.modules["solvers"] = real


def test_solver_timings_table(bench_solvers, capsys):
    m = bench_solvers.make_model("bethe", -1.0)
    # the continuous Bethe Delta and the 8-site bath both carry sum_k V_k^2 = 1/4
    wn_last = (2 * m.delta_iw.size - 1) * np.pi / m.beta
    assert -wn_last * m.delta_iw[-1].imag == pytest.approx(0.25, rel=1e-4)
    assert sum(v ** 2 for v in bench_solvers.BATH_V) == pytest.approx(0.25)
    rows = bench_solvers.main(["--repeats", "1", "--solvers", "hubbard_i"])
    assert len(rows) == 4 and all(r.converged and r.median_s > 0 for r in rows)
    out = capsys.readouterr().out
    assert "median/aim" in out and "hubbard_i" in out


def test_solver_panel_small_model_and_cache(panel_script, tmp_path):
    entry = panel_script.Entry(U=2.0, beta=10.0, filling="off", bath_eps=(-0.5, 0.5),
                               bath_v=(0.3, 0.3))
    assert entry.eps_d == pytest.approx(-0.5)
    logs = []
    rows, refs = panel_script.run([entry], ["hubbard_i", "ed1"], str(tmp_path), n_tau=51,
                                  log=lambda *a, **k: logs.append(a[0]))
    assert not refs[entry.key].cached and "computed" in logs[0]
    assert (tmp_path / "ed_reference.h5").exists()
    assert (tmp_path / f"gtau_{entry.key}.png").stat().st_size > 0
    assert {r.solver for r in rows} == {"hubbard_i", "ed1"}
    assert all(np.isfinite(r.mse_gtau) and r.mse_gtau >= 0 for r in rows)

    rows2, refs2 = panel_script.run([entry], ["hubbard_i"], str(tmp_path), n_tau=51, plots=False,
                                    log=lambda *a, **k: None)
    assert refs2[entry.key].cached
    assert rows2[0].mse_gtau == pytest.approx(rows[0].mse_gtau, rel=1e-12, abs=1e-30)

    # a different bath under the same key is not served from the cache
    other = panel_script.Entry(U=2.0, beta=10.0, filling="off", bath_eps=(-0.6, 0.6),
                               bath_v=(0.3, 0.3))
    assert panel_script.load_reference(str(tmp_path / "ed_reference.h5"), other) is None

    panel_script.write_reports(str(tmp_path), rows, refs, [entry], ["hubbard_i", "ed1"], "hdr")
    with open(tmp_path / "panel.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 2
    md = (tmp_path / "panel.md").read_text()
    assert "Summary per solver" in md and "ed1" in md


def test_ml_dmft_benchmark_small(tmp_path, capsys):
    """The ML-DMFT benchmark on a toy grid (2-site ED as the reference, 1-site ED as the
    method): fine windows placed around the reference's branch ends, figures against the
    reference, and a --report-only rerun reads the same numbers back from the sweep files."""
    import json

    bench = _load("ml_dmft.py", "bench_ml_dmft")
    args = ["--betas", "30", "--densities", "1", "--methods", "ed1", "--reference", "ed2",
            "--coarse", "2.0,3.0", "--out-dir", str(tmp_path)]
    assert bench.main(args) == 0
    first = json.loads((tmp_path / "report.json").read_text())["cases"]["beta=30, n=1"]
    ref, ed1 = first["methods"]["ed2"], first["methods"]["ed1"]
    # the up window [Uc2 - 0.1, Uc2 + 0.1] and the down window around Uc1, 11 points each
    assert ref["points"] == 4 + 11 + 11 and ref["max_abs_dZ"] == 0.0
    assert ref["Uc2"] is not None and ref["Uc1"] is not None
    assert 0.01 < ed1["max_abs_dZ"] < 0.5 and ed1["max_abs_dn"] < 1e-8  # half filling exact
    assert (tmp_path / "front.png").stat().st_size > 0
    assert (tmp_path / "ed2_beta30_n1.csv").read_text().count("\n") == 27
    capsys.readouterr()
    assert bench.main(args + ["--report-only"]) == 0
    again = json.loads((tmp_path / "report.json").read_text())["cases"]["beta=30, n=1"]
    assert again["methods"]["ed1"]["max_abs_dZ"] == ed1["max_abs_dZ"]
    # the reference read back from its CSV (as from benchmarks/results/): same grids, same figures
    other = tmp_path / "from_csv"
    assert bench.main(args[:-1] + [str(other), "--reference-dir", str(tmp_path)]) == 0
    from_csv = json.loads((other / "report.json").read_text())["cases"]["beta=30, n=1"]
    assert from_csv["methods"]["ed1"]["points"] == ed1["points"]
    assert from_csv["methods"]["ed1"]["max_abs_dZ"] == pytest.approx(ed1["max_abs_dZ"], abs=1e-6)
    assert not list(other.glob("b30_n1_ed2_*.h5"))             # the reference was not recomputed
    with pytest.raises(SystemExit):
        bench.main(["--methods", "ed9"])
    # --checkpoint: the network methods run another model (e.g. an active-learning round's)
    with pytest.raises(SystemExit):
        bench.main(["--checkpoint", str(tmp_path / "missing.pt")])
    assert bench.CHECKPOINT is None and bench._solver("net", 30.0)[1] == {"network": "phase_diagram"}
    model = tmp_path / "round.pt"
    model.write_bytes(b"")
    assert bench.main(args[:-1] + [str(tmp_path / "ck"), "--checkpoint", str(model),
                                   "--report-only"]) == 0
    assert bench._solver("net_guarded", 30.0)[1] == {"checkpoint": str(model.resolve())}
    # the fast network: by name unless --fast-checkpoint; seeded points on another phase counted
    assert bench._solver("fast_batched", 30.0)[:2] == ("ml", {"network": "fast",
                                                             "extrapolate": True})
    from types import SimpleNamespace as P
    metal, insulator = P(branch="down", U=2.4, g_beta_half=0.9), P(branch="down", U=2.4,
                                                                   g_beta_half=0.1)
    assert bench.phase_changes([("fine_down", metal)], [("fine_down", insulator)]) == [
        ["fine_down", "down", 2.4]]
    assert bench.phase_changes([("fine_down", metal)], [("fine_down", metal)]) == []


def test_ml_dmft_benchmark_segments_method(tmp_path):
    """fast_segments: the fast network as fast_batched, start="segments" with --segment values
    per segment (default the sweep's), its run in a file named by the length; --segment < 1 is
    refused before any run."""
    bench = _load("ml_dmft.py", "bench_ml_dmft_segments")
    from mldmft.dmft import SweepSettings

    assert "fast_segments" in bench.METHODS and "fast_segments" in bench.NETWORKS
    assert bench.BATCHED_START == {"fast_batched": "seeded", "fast_segments": "segments"}
    assert bench._solver("fast_segments", 30.0) == bench._solver("fast_batched", 30.0)
    assert bench.SEGMENT == SweepSettings().segment
    assert bench._batched_stage("fast_batched") == "all"
    assert bench._batched_stage("fast_segments") == f"all_s{SweepSettings().segment}"
    with pytest.raises(SystemExit):
        bench.main(["--segment", "0", "--out-dir", str(tmp_path)])
    # --report-only with nothing computed: runs nothing, sets the length for the file names
    assert bench.main(["--methods", "fast_segments", "--segment", "3", "--report-only",
                       "--betas", "30", "--densities", "1", "--out-dir", str(tmp_path)]) == 0
    assert bench._batched_stage("fast_segments") == "all_s3"
