"""Benchmark of committed databases: pack an AIM database, unpack it, compare with the original.

Prints the sizes (database, packed file, the packed file per sample), the wall and CPU time of
``pack_database`` and of ``unpack_database``, and the round-trip error of every dataset of the
unpacked database against the original: exact (0) for the float64 columns kept as they are
(the target, the parameters, the bath) and for the rebuilt twins of those columns, <= 6e-8
(float32 rounding) relative to the sample's largest value (its two rows) for the cheap
solvers' ``g_l`` and ``sigma_iw``, and
``delta_l`` (recomputed) to the last bit. The input is only read.

Run: ``python benchmarks/pack.py data/pd_snap1.h5 [--out-dir /tmp/pack_bench]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from mldmft.database import load_database  # noqa: E402
from mldmft.database.pack import pack_database, unpack_database  # noqa: E402


def _timed(fn, *args) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    fn(*args, log=None)
    return time.perf_counter() - w0, time.process_time() - c0


def sample_errors(original: dict[str, np.ndarray], unpacked: dict[str, np.ndarray]
                  ) -> dict[str, float]:
    """Per dataset: the largest over samples of ``max |a - b| / max |b|``, both maxima over the
    sample's rows (the drawn one and its twin, one ``group_id``): a float32 value and the twin
    rebuilt from it carry the same absolute rounding. 0: identical (NaN equals NaN); strings
    and integers: 0 or inf."""
    out = {}
    _, group = np.unique(original["group_id"], return_inverse=True)
    for name, b in original.items():
        a = unpacked[name]
        if a.dtype != b.dtype or a.shape != b.shape:
            out[name] = float("inf")
        elif b.dtype.kind in "fc":
            both_nan = np.isnan(a) & np.isnan(b)
            diff = np.where(both_nan, 0.0, np.abs(a - b)).reshape(len(b), -1).max(axis=1)
            scale = np.abs(np.where(np.isnan(b), 0.0, b)).reshape(len(b), -1).max(axis=1)
            worst, size = np.zeros(group.max() + 1), np.zeros(group.max() + 1)
            np.maximum.at(worst, group, diff)
            np.maximum.at(size, group, scale)
            rel = worst / np.where(size > 0, size, 1.0)
            out[name] = float(np.max(rel, initial=0.0))
        else:
            out[name] = 0.0 if np.array_equal(a, b) else float("inf")
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database", help="an AIM database (read only)")
    parser.add_argument("--out-dir", default=None, help="where the packed and unpacked files go "
                        "(default: a temporary folder, removed at the end)")
    args = parser.parse_args(argv)
    src = Path(args.database)
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = Path(args.out_dir or tmp)
        packed, unpacked = out_dir / f"{src.stem}_packed.h5", out_dir / f"{src.stem}_unpacked.h5"
        for p in (packed, unpacked):
            p.unlink(missing_ok=True)
        pack_wall, pack_cpu = _timed(pack_database, src, packed)
        unpack_wall, unpack_cpu = _timed(unpack_database, packed, unpacked)
        original, back = load_database(src), load_database(unpacked)
        n_samples = int(np.sum(~original["augmented"]))
        errors = sample_errors(original, back)
        result = {"database_mb": src.stat().st_size / 1e6,
                  "packed_mb": packed.stat().st_size / 1e6, "samples": n_samples,
                  "rows": int(original["augmented"].size), "pack_s": pack_wall,
                  "pack_cpu_s": pack_cpu, "unpack_s": unpack_wall, "unpack_cpu_s": unpack_cpu,
                  "errors": errors}
    print(f"database   {src}: {result['database_mb']:.1f} MB, {n_samples} samples "
          f"({result['rows']} rows)")
    print(f"packed     {result['packed_mb']:.1f} MB = "
          f"{1e3 * result['packed_mb'] / n_samples:.2f} kB per sample "
          f"({1e3 * result['packed_mb'] / n_samples * 6:.1f} MB per 6,000 samples)")
    print(f"pack       {pack_wall:.1f} s wall, {pack_cpu:.1f} s CPU")
    print(f"unpack     {unpack_wall:.1f} s wall, {unpack_cpu:.1f} s CPU")
    exact = sorted(k for k, v in errors.items() if v == 0.0)
    print(f"identical  {len(exact)} of {len(errors)} datasets")
    for name, err in sorted(errors.items()):
        if err != 0.0:
            print(f"  {name:<36} max difference / sample's largest value {err:.2e}")
    return result


if __name__ == "__main__":
    main()
