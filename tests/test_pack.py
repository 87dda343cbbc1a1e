"""Committed databases (mldmft.database.pack): pack -> unpack restores every dataset (the
target, parameters, bath and group ids bit for bit, the rebuilt twins equal to the stored ones,
delta_l recomputed to the last bit, the cheap solvers' float32 G_l and Sigma within float32
rounding), the packed file holds only the drawn samples with every dataset compressed, the
unpacked file trains with the shipped networks' data recipes, and bad input is refused in one
line before anything is written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from mldmft.cli import main
from mldmft.database import GenerateConfig, SolverSpec, generate, load_database, open_database
from mldmft.database.merge import merge_databases
from mldmft.database.pack import delta_l_from_bath, pack_database, unpack_database
from mldmft.h5schema import PACKED_DATABASE_SCHEMA, SchemaError
from mldmft.h5util import OutputPlaceError
from solvers import g_l_from_poles

#: Nb = 3 baths, a good part at half filling (particle-hole symmetric: their own twins).
SAMPLING = dict(kind="bethe_random", n_bath=3, D=[0.7, 1.3], U=[0.5, 4.0], beta=[10.0, 30.0],
                eps_d_shift=[-0.65, 0.65], half_filling_fraction=0.4)
CHEAP = ("ipt", "hubbard_i", "nca", "ed2", "ed3")


def _generate(out: Path, n_samples: int, seed: int, **kw) -> Path:
    generate(GenerateConfig(out=str(out), n_samples=n_samples, seed=seed,
                            sampling=dict(SAMPLING, **kw.pop("sampling", {})),
                            target=SolverSpec("ed"), cheap=tuple(SolverSpec(c) for c in CHEAP),
                            n_l=60, n_sigma=16, chunk_size=8, workers=1, progress=False, **kw))
    return out


@pytest.fixture(scope="session")
def dbs(tmp_path_factory) -> dict[str, Path]:
    """``plain``: 12 samples with twins; ``merged``: it merged with 4 Nb = 2 samples generated
    without twins (bath arrays padded, rows with and without a twin)."""
    root = tmp_path_factory.mktemp("pack")
    plain = _generate(root / "plain.h5", 12, seed=3)
    no_twins = _generate(root / "no_twins.h5", 4, seed=4, augment=False,
                         sampling=dict(n_bath=2))
    merged = merge_databases([plain, no_twins], root / "merged.h5", log=None)
    return {"plain": plain, "merged": merged, "root": root}


def _round_trip(src: Path, tmp: Path) -> tuple[Path, Path]:
    packed, back = tmp / f"{src.stem}_packed.h5", tmp / f"{src.stem}_back.h5"
    pack_database(src, packed, log=None)
    unpack_database(packed, back, log=None)
    return packed, back


def _attrs(path: Path) -> dict:
    with h5py.File(path, "r") as f:
        return {k: f.attrs[k] for k in f.attrs}


def _stored_bytes(path: Path) -> int:
    sizes = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: sizes.append(o.id.get_storage_size())
                     if isinstance(o, h5py.Dataset) else None)
    return sum(sizes)


def _equal(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype.kind in "fc":
        return bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))
    return bool(np.array_equal(a, b))


# ------------------------------------------------------------------ round trip
@pytest.mark.parametrize("which", ["plain", "merged"])
def test_round_trip_restores_every_dataset(dbs, which, tmp_path):
    src = dbs[which]
    packed, back = _round_trip(src, tmp_path)
    orig, new = load_database(src), load_database(back)
    assert set(new) == set(orig)
    cast = json.loads(_attrs(packed)["packing"])["cast"]
    assert sorted(cast) == sorted(f"solvers/{s}/{k}" for s in CHEAP for k in ("g_l", "sigma_iw"))
    _, group = np.unique(orig["group_id"], return_inverse=True)
    for name, a in orig.items():
        b = new[name]
        assert b.dtype == a.dtype and b.shape == a.shape, name
        if name not in cast:
            assert _equal(b, a), f"{name} differs"   # target, params, bath, twins, delta_l: exact
            continue
        # float32 rounding; a twin rebuilt from the rounded value carries the same absolute
        # error, so both rows of a sample are measured against the sample's largest value
        assert np.array_equal(np.isnan(a), np.isnan(b)), name
        diff = np.nan_to_num(np.abs(b - a)).max(axis=1)
        size = np.nan_to_num(np.abs(a)).max(axis=1)
        worst, scale = np.zeros(group.max() + 1), np.zeros(group.max() + 1)
        np.maximum.at(worst, group, diff)
        np.maximum.at(scale, group, size)
        assert np.all(worst <= 1e-6 * scale), name
        assert np.any(diff > 0), f"{name}: float32 rounding should show"
    # delta_l comes from the bath: the recomputation equals generation's g_l_from_poles
    i = int(np.flatnonzero(~orig["augmented"])[-1])
    nb = int(orig["params/n_bath"][i])
    expect = g_l_from_poles(orig["bath/v"][i, :nb] ** 2, orig["bath/eps"][i, :nb],
                            float(orig["params/beta"][i]), 60)
    np.testing.assert_allclose(new["delta_l"][i], expect, rtol=0, atol=1e-12)
    # the attributes are the database's, plus where it was unpacked from
    want, got = _attrs(src), _attrs(back)
    assert set(got) == set(want) | {"unpacked_from"}
    assert all(str(got[k]) == str(want[k]) for k in want)
    assert json.loads(got["unpacked_from"])["source_digest"] == json.loads(
        _attrs(packed)["packing"])["source_digest"]


def test_twins_are_rebuilt_where_the_database_had_them(dbs, tmp_path):
    src = dbs["merged"]
    _, back = _round_trip(src, tmp_path)
    orig, new = load_database(src), load_database(back)
    assert orig["augmented"].sum() == 12 and (~orig["augmented"]).sum() == 16   # 4 without twin
    assert np.array_equal(new["augmented"], orig["augmented"])
    twins = np.flatnonzero(orig["augmented"])
    for name in ("params/eps_d", "bath/eps", "bath/v", "delta_l", "solvers/ed/g_l",
                 "solvers/ed/sigma_iw", "solvers/ed/density", "solvers/ed/double_occupancy"):
        assert _equal(new[name][twins], orig[name][twins]), name
    # the padded bath columns of the Nb = 2 rows stay padding
    nb2 = orig["params/n_bath"] == 2
    assert nb2.sum() == 4 and np.all(np.isnan(new["bath/eps"][nb2, 2]))


def test_packed_file_holds_the_drawn_samples_compressed(dbs, tmp_path):
    src = dbs["plain"]
    packed = pack_database(src, tmp_path / "p.h5", log=None)
    # the data (the tiny file's size is mostly HDF5 metadata of its 55 datasets)
    assert _stored_bytes(packed) < 0.4 * _stored_bytes(src)
    orig = load_database(src)
    with h5py.File(packed, "r") as f:
        assert f.attrs["schema"] == PACKED_DATABASE_SCHEMA
        packing = json.loads(f.attrs["packing"])
        assert set(packing["dropped"]) == {"twins", "delta_l"}
        assert packing["n_rows"] == 24 and packing["stored_rows"] == 12
        assert "delta_l" not in f and f["has_twin"][()].all()
        assert {k: str(v) for k, v in f["database_attrs"].attrs.items()} == {
            k: str(v) for k, v in _attrs(src).items()}
        names = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        for n in names:
            assert f[n].compression == "gzip" and f[n].compression_opts == 9 and f[n].shuffle, n
        assert f["solvers/ed/g_l"].dtype == np.float64
        assert f["solvers/ed/sigma_iw"].dtype == np.complex128
        assert f["solvers/ipt/g_l"].dtype == np.float32
        assert f["solvers/nca/sigma_iw"].dtype == np.complex64
        assert f["solvers/ipt/double_occupancy"].dtype == np.float64
        assert not f["augmented"][()].any()
        assert np.array_equal(f["solvers/ed/g_l"][()], orig["solvers/ed/g_l"][~orig["augmented"]])


def test_delta_l_from_bath_matches_one_row_at_a_time():
    rng = np.random.default_rng(0)
    n_bath = np.array([3, 1, 0, 3, 2])
    eps = rng.uniform(-1.5, 1.5, (5, 3))
    v = rng.uniform(0.1, 0.5, (5, 3))
    beta = rng.uniform(10.0, 100.0, 5)
    got = delta_l_from_bath(beta, eps, v, n_bath, 40)
    for r, nb in enumerate(n_bath):
        want = g_l_from_poles(v[r, :nb] ** 2, eps[r, :nb], beta[r], 40)
        assert np.array_equal(got[r], want)
    assert not got[2].any()


# ------------------------------------------------------------------ the unpacked file trains
@pytest.mark.parametrize("config", ["train_fast", "train_phase_diagram"])
def test_unpacked_database_prepares_like_the_original(dbs, config, tmp_path):
    """The shipped networks' data recipes (configs/data/fast.yaml: IPT base, IPT
    features; configs/data/phase_diagram.yaml: ed3 base, IPT, Hubbard-I, ed2, ed3) read the
    unpacked file: same kept rows and splits, features and targets within float32 rounding.
    The Legendre basis stands in for the IR one (building the IR basis takes ~20 s; the basis
    acts on the loaded rows and does not touch the file)."""
    import importlib.util

    from mldmft.cli import _compose
    from mldmft.ml.data import prepare_data

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("train_script_pack", root / "train.py")
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    src = dbs["plain"]
    _, back = _round_trip(src, tmp_path)
    prepared = [prepare_data(train.to_train_config(_compose(
        config, [f"data.path={p}", "data.basis=legendre"])).data) for p in (src, back)]
    a, b = prepared
    assert a.rows.report.kept == b.rows.report.kept == 24
    for split in ("train", "val", "test"):
        assert np.array_equal(getattr(a.splits, split), getattr(b.splits, split))
    np.testing.assert_allclose(b.features, a.features, rtol=0,
                               atol=1e-6 * np.abs(a.features).max())
    # the target G(ED) - G(base) moves by the base's float32 rounding (with Nb = 3 baths the
    # ed3 base is exact: the target is 0 in the original and ~1e-9 after the round trip)
    g_base = np.abs(a.rows.batch.g_l[a.spec.base]).max()
    np.testing.assert_allclose(b.targets, a.targets, rtol=0, atol=1e-6 * g_base)


# ------------------------------------------------------------------ reruns and bad input
def test_reruns_replace_only_files_of_the_same_database(dbs, tmp_path):
    src = dbs["plain"]
    packed, back = _round_trip(src, tmp_path)
    pack_database(src, packed, log=None)            # same database: replaced
    unpack_database(packed, back, log=None)         # unpacked from it: replaced
    other = tmp_path / "other_packed.h5"
    pack_database(dbs["merged"], other, log=None)
    with pytest.raises(OutputPlaceError, match="exists and is not"):
        pack_database(src, other, log=None)         # a packing of another database
    before = dbs["merged"].read_bytes()
    with pytest.raises(OutputPlaceError, match="exists and is not"):
        unpack_database(packed, dbs["merged"], log=None)   # a database it did not come from
    assert dbs["merged"].read_bytes() == before


def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg and msg
    return msg


def test_bad_input_is_refused_in_one_line(dbs, tmp_path):
    src = dbs["plain"]
    packed = pack_database(src, tmp_path / "p.h5", log=None)
    with pytest.raises(OutputPlaceError) as err:
        pack_database(src, src, log=None)
    assert "overwrite the input database" in _one_line(err)
    with pytest.raises(OutputPlaceError) as err:
        unpack_database(packed, packed, log=None)
    assert "overwrite the packed database" in _one_line(err)
    with pytest.raises(ValueError) as err:
        pack_database(src, tmp_path / "p.yaml", log=None)
    assert ".h5" in _one_line(err)
    with pytest.raises(SchemaError) as err:
        pack_database(packed, tmp_path / "again.h5", log=None)
    assert "not a mldmft.aim_database file" in _one_line(err)
    with pytest.raises(SchemaError) as err:
        unpack_database(src, tmp_path / "x.h5", log=None)
    assert "not a packed one" in _one_line(err)
    text = tmp_path / "notes.h5"
    text.write_text("not HDF5")
    for fn in (pack_database, unpack_database):
        with pytest.raises(SchemaError) as err:
            fn(text, tmp_path / "y.h5", log=None)
        assert "notes.h5" in _one_line(err)
    cut = tmp_path / "cut.h5"
    cut.write_bytes(packed.read_bytes()[: packed.stat().st_size // 2])
    with pytest.raises(SchemaError) as err:
        unpack_database(cut, tmp_path / "z.h5", log=None)
    _one_line(err)
    assert not list(tmp_path.glob("[xyz].h5*")) and not (tmp_path / "again.h5").exists()


def test_a_database_whose_twins_were_altered_is_refused(dbs, tmp_path):
    bad = tmp_path / "bad.h5"
    shutil.copyfile(dbs["plain"], bad)
    with h5py.File(bad, "r+") as f:
        f["solvers/ipt/g_l"][3, 5] += 1e-9   # row 3 is the twin of row 2
    with pytest.raises(ValueError) as err:
        pack_database(bad, tmp_path / "bad_packed.h5", log=None)
    assert "row 3" in _one_line(err) and "solvers/ipt/g_l" in str(err.value)
    assert not (tmp_path / "bad_packed.h5").exists()


def test_delta_l_is_kept_when_the_bath_does_not_reproduce_it(dbs, tmp_path):
    """A stored delta_l the pole sum does not give back (here scaled by 1.001 in one sample and
    its twin) is packed as it is, and comes back bit for bit."""
    odd = tmp_path / "odd.h5"
    shutil.copyfile(dbs["plain"], odd)
    with h5py.File(odd, "r+") as f:
        f["delta_l"][0:2] = f["delta_l"][0:2] * 1.001
    packed, back = _round_trip(odd, tmp_path)
    assert "delta_l" not in json.loads(_attrs(packed)["packing"])["dropped"]
    assert np.array_equal(load_database(back, ["delta_l"])["delta_l"],
                          load_database(odd, ["delta_l"])["delta_l"])


def test_failed_solves_survive_the_round_trip(dbs, tmp_path):
    """A failed cheap solve (NaN values, status 2, its message) and its twin come back as they
    were."""
    failed = tmp_path / "failed.h5"
    shutil.copyfile(dbs["plain"], failed)
    with h5py.File(failed, "r+") as f:
        for r in (4, 5):
            for k in ("g_l", "sigma_iw"):
                f[f"solvers/nca/{k}"][r] = np.nan
            f["solvers/nca/density"][r] = np.nan
            f["solvers/nca/double_occupancy"][r] = np.nan
            f["solvers/nca/status"][r] = 2
            f["solvers/nca/error"][r] = "FloatingPointError: nca returned non-finite values"
    _, back = _round_trip(failed, tmp_path)
    orig, new = load_database(failed), load_database(back)
    for k in ("g_l", "sigma_iw", "density", "double_occupancy", "status", "error"):
        assert _equal(new[f"solvers/nca/{k}"][4:6], orig[f"solvers/nca/{k}"][4:6]), k
    open_database(back).close()


def test_cli_pack_and_unpack(dbs, tmp_path, capsys):
    packed, back = tmp_path / "datasets" / "tiny.h5", tmp_path / "data" / "tiny.h5"
    assert main(["pack", str(dbs["plain"]), "--out", str(packed)]) == 0
    assert main(["unpack", str(packed), "--out", str(back)]) == 0
    out = capsys.readouterr().out
    assert "packed" in out and "unpacked" in out and back.is_file()
    assert main(["unpack", str(dbs["plain"]), "--out", str(tmp_path / "x.h5")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mldmft unpack: error:") and "\n" not in err
