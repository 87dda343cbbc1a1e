"""One checkpoint file per trained model: everything a prediction needs, nothing executable.

``model.pt`` (written with ``torch.save``, read with ``torch.load(weights_only=True)``, so loading
runs no pickled code) is a dict::

    format        "mldmft.ml.checkpoint"          version  1
    kind          "torch" | "krr"
    spec          EncodingSpec (solvers, feature blocks, target, n_l, n_sigma, solver options)
    x_transform   {"kind", "scale", "mean", "std"}  features: T((v - mean)/std)
    y_transform   {"kind", "scale", "mean", "std"}  targets
    constraints   {"sum_rule": bool, "particle_hole": bool}
    train_range   {"beta": [lo, hi], "U": [lo, hi], "eps_d": [lo, hi]}
    domain        where the model may be used: {"beta", "U", "density", "D": [lo, hi]} (optional;
                  without it the training range of beta and U is the domain)
    ir_matrix     the Legendre -> IR matrix M the model was trained with (IR encodings only;
                  registered with solvers.ir.register_matrix on load, so a prediction needs
                  neither sparse-ir's basis computation nor the same sparse-ir release)
    net           {"config": NetConfig fields, "n_in", "n_out", "state_dict"}     (torch)
    krr           {"kernel", "gamma", "alpha", "x_fit", "dual_coef"}            (krr)
    meta          provenance: database path, model config, seeds, metrics summary

Networks and KRR models load through the same :func:`load_checkpoint`.
:func:`load_checkpoint_cached` memoises on ``(path, mtime, size)`` so a DMFT loop that calls the
``ml`` solver every iteration reads the file once (and again only if it changes).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..h5util import atomic_path
from .config import ConstraintConfig, NetConfig
from .features import EncodingSpec
from .predictor import Predictor, TorchBackend
from .transforms import FittedTransform

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "save_checkpoint", "load_checkpoint",
           "load_checkpoint_cached"]

CHECKPOINT_FORMAT = "mldmft.ml.checkpoint"
CHECKPOINT_VERSION = 1


def _plain(obj: Any) -> Any:
    """JSON round trip: only dicts, lists, strings, numbers, booleans and None survive."""
    return json.loads(json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist")
                                 else str(o)))


def save_checkpoint(predictor: Predictor, path: str | Path) -> Path:
    """Write ``predictor`` to ``path`` atomically (temporary file, then rename).

    A torch predictor needs ``predictor.meta["net"] = {"config": ..., "n_in": ..., "n_out": ...}``
    (set by :mod:`mldmft.ml.training`).
    """
    import torch

    path = Path(path)
    meta = dict(predictor.meta)
    payload: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "kind": predictor.kind,
        "spec": _plain(predictor.spec.to_dict()),
        "x_transform": predictor.x_transform.to_dict(),
        "y_transform": predictor.y_transform.to_dict(),
        "constraints": asdict(predictor.constraints),
        "train_range": _plain(predictor.train_range),
        "domain": _plain(predictor.domain),
    }
    if predictor.spec.basis == "ir":
        payload["ir_matrix"] = torch.tensor(np.array(predictor.spec.ir.matrix(predictor.spec.n_l)))
    if predictor.kind == "torch":
        net = meta.pop("net", None)
        if net is None or not isinstance(predictor.backend, TorchBackend):
            raise ValueError("a torch predictor needs meta['net'] and a TorchBackend to be saved")
        payload["net"] = {"config": _plain(net["config"]), "n_in": int(net["n_in"]),
                          "n_out": int(net["n_out"]),
                          "state_dict": {k: v.detach().clone()
                                         for k, v in predictor.backend.net.state_dict().items()}}
    elif predictor.kind == "krr":
        payload["krr"] = predictor.backend.to_dict()
    else:
        raise ValueError(f"unknown predictor kind {predictor.kind!r}")
    payload["meta"] = _plain(meta)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | Path) -> Predictor:
    """Read a checkpoint written by :func:`save_checkpoint` (no code is unpickled).

    Raises:
        ValueError: missing file, not a checkpoint of this format, or a newer version.
    """
    import torch

    if not str(path).strip():
        raise ValueError("checkpoint: empty path; name a model.pt file")
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"checkpoint {path}: a directory, not a model file (e.g. "
                         f"{path / 'model.pt'})")
    if not path.is_file():
        raise ValueError(f"checkpoint {path}: no such file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for foreign files
        # never torch's advice to retry with weights_only=False: that would run pickled code
        reason = ("it holds Python objects besides tensors and plain data, which are never "
                  "unpickled" if "Unsupported global" in str(err)
                  else f"not a PyTorch file, {type(err).__name__}")
        raise ValueError(f"checkpoint {path}: not an mldmft checkpoint ({reason})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint {path}: not an {CHECKPOINT_FORMAT} file")
    version = int(payload.get("version", -1))
    if not 1 <= version <= CHECKPOINT_VERSION:
        raise ValueError(f"checkpoint {path}: version {version} is not supported (this mldmft "
                         f"reads 1..{CHECKPOINT_VERSION})")
    meta = dict(payload.get("meta", {}))
    kind = payload["kind"]
    if kind == "torch":
        from .networks import build_network

        net_d = payload["net"]
        cfg = NetConfig(**net_d["config"])
        net = build_network(cfg, int(net_d["n_in"]), int(net_d["n_out"]))
        net.load_state_dict(net_d["state_dict"])
        backend = TorchBackend(net)
        meta["net"] = {"config": dict(net_d["config"]), "n_in": int(net_d["n_in"]),
                       "n_out": int(net_d["n_out"])}
        meta.setdefault("n_members", cfg.n_members if cfg.kind == "ensemble" else 1)
    elif kind == "krr":
        from .krr import KRRModel

        backend = KRRModel.from_dict(payload["krr"])
    else:
        raise ValueError(f"checkpoint {path}: unknown model kind {kind!r}")
    meta["checkpoint"] = str(path)
    spec = EncodingSpec.from_dict(payload["spec"])
    if spec.basis == "ir":
        from solvers.ir import register_matrix

        if "ir_matrix" not in payload:
            raise ValueError(f"checkpoint {path}: an IR encoding without its ir_matrix")
        register_matrix(spec.n_l, spec.ir_lambda, spec.ir_eps,
                        payload["ir_matrix"].to(torch.float64).numpy())
    return Predictor(spec=spec,
                     x_transform=FittedTransform.from_dict(payload["x_transform"]),
                     y_transform=FittedTransform.from_dict(payload["y_transform"]),
                     backend=backend, constraints=ConstraintConfig(**payload["constraints"]),
                     train_range={k: list(v) for k, v in payload["train_range"].items()},
                     domain={k: list(v) for k, v in (payload.get("domain") or {}).items()},
                     kind=kind, meta=meta)


@lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int, size: int) -> Predictor:
    return load_checkpoint(path)


def load_checkpoint_cached(path: str | Path) -> Predictor:
    """:func:`load_checkpoint` memoised on the resolved path, modification time and size."""
    p = Path(path).expanduser()
    try:
        st = p.stat()
    except OSError:
        raise ValueError(f"checkpoint {p}: no such file") from None
    return _load_cached(str(p.resolve()), st.st_mtime_ns, st.st_size)
