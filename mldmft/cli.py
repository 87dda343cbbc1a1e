"""The ``mldmft`` command line.

``mldmft solve --solver ed MODEL.yaml [--out FILE.h5] [--plot] [--opt key=value ...]`` solves one
impurity model, writes the result (HDF5, schema in :mod:`mldmft.h5schema`) and a JSON summary,
and prints density, double occupancy, Z and wall time.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import yaml

__all__ = ["main"]


def _parse_options(pairs: Sequence[str]) -> dict:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--opt expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


def _cmd_solve(args: argparse.Namespace) -> int:
    from solvers import available_solvers, solve

    from .modelfile import load_model
    from .plotting import plot_result
    from .results_io import result_summary, write_result

    model = load_model(args.model)
    if args.solver not in available_solvers():
        raise ValueError(f"unknown solver {args.solver!r}; available: "
                         f"{', '.join(available_solvers())}")
    options = _parse_options(args.opt)
    try:
        result = solve(args.solver, model, **options)
    except TypeError as err:
        raise ValueError(f"bad option for solver {args.solver!r}: {err}") from None
    stem = Path(args.model).stem
    out = Path(args.out) if args.out else Path("data") / "results" / f"{stem}_{args.solver}.h5"
    write_result(out, result, model, options)
    summary = result_summary(result)
    out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"model          {args.model}  (U={model.U:g}, eps_d={model.eps_d:g}, "
          f"beta={model.beta:g}, Nb={model.n_bath})")
    print(f"solver         {result.solver}   converged={result.converged}")
    print(f"density        {result.density:.8f}   (both spins)")
    if result.double_occupancy is not None:
        print(f"double occ.    {result.double_occupancy:.8f}")
    print(f"Z              {result.z:.6f}   (1/(1 - Im Sigma(i w_0)/w_0))")
    print(f"wall time      {result.wall_time:.3f} s")
    for w in result.info.get("warnings", []):
        print(f"warning        {w}")
    print(f"written        {out}  (+ {out.with_suffix('.json').name})")
    if args.plot:
        png = plot_result(result, out.with_suffix(".png"))
        print(f"plot           {png}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mldmft", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("solve", help="solve one Anderson impurity model from a YAML/JSON file")
    p.add_argument("model", help="model file (.yaml or .json)")
    p.add_argument("--solver", default="ed", help="registered solver name (default: ed)")
    p.add_argument("--out", default=None, help="output HDF5 (default: data/results/<model>_<solver>.h5)")
    p.add_argument("--plot", action="store_true", help="also write a PNG of G(i w_n) and G(tau)")
    p.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE",
                   help="solver option, e.g. --opt n_iw=512 (repeatable)")
    p.set_defaults(func=_cmd_solve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # small dense blocks: threads only cost
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as err:
        print(f"mldmft {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
