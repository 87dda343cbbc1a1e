"""The plan of a run (mldmft.plan): what decides its results, compared on resume."""

from __future__ import annotations

import json

import pytest

from mldmft.plan import (PlanMismatchError, check_plan, check_plan_file, flatten_plan,
                         make_plan, plan_difference)


def test_make_plan_leaves_out_what_a_rerun_may_change_and_is_plain_json():
    settings = {"seed": 7, "workers": 4, "betas": (50, 100.0),
                "generation": {"seed": 1, "workers": 2, "dask": {"address": "x"}},
                "train": {"trainer": {"progress_bar": True, "max_epochs": 3}}}
    plan = make_plan(settings, ("workers", "generation.workers", "generation.dask",
                                "train.trainer.progress_bar"))
    assert plan == {"seed": 7, "betas": [50, 100.0], "generation": {"seed": 1},
                    "train": {"trainer": {"max_epochs": 3}}}
    assert json.loads(json.dumps(plan)) == plan
    assert make_plan(settings, ("workers", "generation", "train"), flat=True) == {
        "seed": 7, "betas": [50, 100.0]}
    # flat: nested settings under dotted keys; an empty mapping stays a value
    assert flatten_plan({"a": {"b": 1, "c": {}}}) == {"a.b": 1, "a.c": {}}


def test_plan_difference_names_every_differing_key_and_compares_numbers_by_value():
    assert plan_difference({"beta": 50, "U": [1, 2]}, {"beta": 50.0, "U": [1.0, 2.0]}) is None
    diff = plan_difference({"beta": 50, "solver": "ipt", "old": 1},
                           {"beta": 100, "solver": "ipt", "new": True})
    assert diff == ('beta: file 50, now 100; new: file "(absent)", now true; '
                    'old: file 1, now "(absent)"')
    long = plan_difference({"x": list(range(100))}, {"x": []})
    assert long.startswith("x: file [0, 1, 2") and "..." in long and len(long) < 100


def test_a_mismatch_is_one_line_naming_the_place_and_the_keys():
    with pytest.raises(PlanMismatchError) as err:
        check_plan({"seed": 7}, {"seed": 8}, "data/x.h5")
    assert str(err.value) == ("data/x.h5 holds another sweep, not resumed (seed: file 7, now 8); "
                              "choose another output file or delete it")
    assert err.value.difference == "seed: file 7, now 8" and isinstance(err.value, ValueError)
    check_plan({"seed": 7}, {"seed": 7.0}, "data/x.h5")   # the same plan: no error


def test_plan_file_is_written_once_then_compared(tmp_path):
    path = tmp_path / "run" / "plan.json"
    path.parent.mkdir()
    plan = {"solver": "ed", "beta": 50.0, "options": {"n_bath": 4}}
    assert check_plan_file(path, plan, tmp_path / "run") is False     # written
    assert json.loads(path.read_text()) == plan
    assert check_plan_file(path, dict(plan, beta=50), tmp_path / "run") is True   # resumed
    with pytest.raises(PlanMismatchError, match=r"run holds another run, not resumed "
                       r"\(options: file \{\"n_bath\": 4\}, now \{\"n_bath\": 5\}\)"):
        check_plan_file(path, dict(plan, options={"n_bath": 5}), tmp_path / "run")
    path.write_text("{not json")
    with pytest.raises(ValueError, match="the stored plan.*is unreadable") as err:
        check_plan_file(path, plan, tmp_path / "run")
    assert "\n" not in str(err.value)


def test_generation_plan_keeps_its_stored_form_and_names_what_differs(tmp_path):
    """``config_digest`` is the canonical JSON it has always been (databases on disk store it),
    and a partial run of another config is refused before any work, naming the setting."""
    from mldmft.database import GenerateConfig, SolverSpec, generate
    from mldmft.database.store import RERUN_MAY_CHANGE, config_digest

    cfg = GenerateConfig(out=str(tmp_path / "db.h5"), n_samples=2, seed=7,
                         sampling=dict(kind="bethe_random", n_bath=2, D=1.0, U=[1.0, 2.0],
                                       half_filling=True, beta=10.0),
                         target=SolverSpec("ipt"), n_l=40, n_sigma=8, chunk_size=1, workers=1,
                         progress=False)
    d = cfg.to_dict()
    keep = {k: v for k, v in d.items() if k not in RERUN_MAY_CHANGE}
    assert config_digest(d) == json.dumps(keep, sort_keys=True)
    assert config_digest(dict(d, workers=8, n_samples=99, chunk_size=5)) == config_digest(d)
    parts = tmp_path / "db.h5.parts"
    parts.mkdir()
    (parts / "config.json").write_text(config_digest(dict(d, seed=8)))
    with pytest.raises(ValueError, match=r"holds a partial run made with a different config "
                       r"\(seed: file 8, now 7\)"):
        generate(cfg)
    assert sorted(p.name for p in parts.iterdir()) == ["config.json"]
