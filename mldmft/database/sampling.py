"""Sampling recipes for Anderson impurity models: seeded, reproducible per sample index.

Every sample ``i`` draws from its own generator ``numpy.random.default_rng(SeedSequence(seed,
spawn_key=(i,)))``, so a sample is the same whatever the order, the chunking or the number of
workers that produce it.

A parameter spec is a number (fixed), a two-element list ``[lo, hi]`` (uniform on the range), a
mapping ``{"loguniform": [lo, hi]}`` (``log x`` uniform, ``lo > 0``), or a mapping
``{"choice": [v1, v2, ...]}`` (uniform over the set).

Recipes:

* :class:`BetheRandomBath` — Bethe-like random baths: half bandwidth ``D``
  from a spec, ``V_k`` drawn uniform and rescaled so ``sum_k V_k^2 = D^2/4`` (the Bethe value
  ``t^2``), bath energies drawn uniform and stretched about their centre so that
  ``(max - min)/(2D) = 1``; ``U``, ``eps_d`` (or half filling: ``eps_d = -U/2`` with a mirror-
  symmetric bath) and ``beta`` from specs.
  Off half filling ``eps_d`` is drawn from a spec, or as ``eps_d = -U/2 + s (U/2 + D)`` with the
  shift ``s`` from the ``eps_d_shift`` spec (``s = 0``: half filling, ``s = -+1``: the atomic
  levels at the band edges), so that every ``U`` sees the same range of fillings;
  ``half_filling_fraction`` draws that share of samples at half filling.
* :class:`BathListRecipe` — discrete baths read from a YAML/JSON list (e.g. hybridisations visited
  by a DMFT run); ``U``, ``eps_d``, ``beta`` come from each entry or, where absent, from specs.
  Sample ``i`` uses entry ``i mod len(entries)``: an entry whose model is fully fixed (``U``,
  ``beta`` and ``eps_d`` from the entry or from fixed specs) would repeat itself exactly, so
  :func:`repeated_samples` finds such repeats and generation refuses them.
* :class:`~mldmft.database.dmft_sampling.DMFTIterateRecipe` (``kind: dmft_iterates``) — the
  hybridisations cheap-solver DMFT loops visit, refitted to discrete baths.
* :class:`MixtureRecipe` (``kind: mixture``) — each sample from one of several recipes, chosen
  with given weights.

New kinds plug in with :func:`register_recipe` (``make_recipe`` looks them up by ``kind``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import yaml

from solvers import AndersonModel, check_keys, check_type, half_bandwidth

from ..yamlio import load_yaml

__all__ = ["ParamSpec", "BetheRandomBath", "BathListRecipe", "MixtureRecipe", "sample_rng",
           "make_recipe", "register_recipe", "Sample", "repeated_samples"]


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """Generator of sample ``index`` under master ``seed`` (order independent)."""
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(int(index),)))


@dataclass(frozen=True)
class ParamSpec:
    """A fixed value, a uniform range ``[lo, hi]`` or a uniform choice from a set."""

    name: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[float, ...] | None = None
    log: bool = False

    @classmethod
    def parse(cls, name: str, spec: Any) -> "ParamSpec":
        if isinstance(spec, Mapping) and set(spec) == {"loguniform"}:
            rng = spec["loguniform"]
            if not isinstance(rng, (list, tuple)) or len(rng) != 2:
                raise ValueError(f"sampling.{name}: loguniform needs [lo, hi], got {rng!r}")
            inner = cls.parse(name, list(rng))
            if inner.lo <= 0:
                raise ValueError(f"sampling.{name}: loguniform needs lo > 0, got {inner.lo}")
            return cls(name, lo=inner.lo, hi=inner.hi, log=True)
        if isinstance(spec, Mapping):
            if set(spec) != {"choice"}:
                raise ValueError(f"sampling.{name}: a mapping spec must be {{choice: [...]}} or "
                                 f"{{loguniform: [lo, hi]}}, got keys {sorted(spec)}")
            vals = tuple(float(v) for v in spec["choice"])
            if not vals:
                raise ValueError(f"sampling.{name}: the choice list is empty")
            if not all(math.isfinite(v) for v in vals):
                raise ValueError(f"sampling.{name}: choices must be finite")
            return cls(name, choices=vals)
        if isinstance(spec, (list, tuple)):
            if len(spec) != 2:
                raise ValueError(f"sampling.{name}: a range must be [lo, hi], got {list(spec)}")
            lo, hi = float(spec[0]), float(spec[1])
            if not (math.isfinite(lo) and math.isfinite(hi)):
                raise ValueError(f"sampling.{name}: range bounds must be finite")
            if lo > hi:
                raise ValueError(f"sampling.{name}: empty range [{lo}, {hi}] (lo > hi)")
            return cls(name, lo=lo, hi=hi)
        try:
            val = float(spec)
        except (TypeError, ValueError):
            raise ValueError(f"sampling.{name}: expected a number, [lo, hi] or {{choice: [...]}}, "
                             f"got {spec!r}") from None
        if not math.isfinite(val):
            raise ValueError(f"sampling.{name}: must be finite, got {val}")
        return cls(name, lo=val, hi=val)

    def draw(self, rng: np.random.Generator) -> float:
        if self.choices is not None:
            return float(self.choices[int(rng.integers(len(self.choices)))])
        if self.lo == self.hi:
            return float(self.lo)
        if self.log:
            return float(np.exp(rng.uniform(np.log(self.lo), np.log(self.hi))))
        return float(rng.uniform(self.lo, self.hi))

    @property
    def fixed(self) -> bool:
        """One value only: every draw gives it."""
        return self.choices is None and self.lo == self.hi

    @property
    def bounds(self) -> tuple[float, float]:
        if self.choices is not None:
            return min(self.choices), max(self.choices)
        return float(self.lo), float(self.hi)

    def require_positive(self) -> None:
        if self.bounds[0] <= 0:
            raise ValueError(f"sampling.{self.name} must be > 0, got bounds {self.bounds}")

    def require_nonnegative(self) -> None:
        if self.bounds[0] < 0:
            raise ValueError(f"sampling.{self.name} must be >= 0, got bounds {self.bounds}")


def _atomic_window(eps_d_bounds: tuple[float, float] | None, u_bounds: tuple[float, float],
                   half: bool) -> float:
    """``max(|eps_d|, |eps_d + U|)`` over the parameter box (convex: the corners suffice;
    ``half``: ``eps_d = -U/2``)."""
    out = 0.0
    for u in u_bounds:
        for e in ((-u / 2,) if half else eps_d_bounds):
            out = max(out, abs(e), abs(e + u))
    return out


@dataclass(frozen=True)
class Sample:
    """One drawn impurity model and the recipe parameters that are not in the model."""

    index: int
    model: AndersonModel
    D: float


@dataclass(frozen=True)
class BetheRandomBath:
    """Bethe-like random discrete baths (see module docstring)."""

    n_bath: int
    D: ParamSpec
    U: ParamSpec
    beta: ParamSpec
    eps_d: ParamSpec | None
    half_filling: bool = False
    eps_d_shift: ParamSpec | None = None
    half_filling_fraction: float = 0.0

    def __post_init__(self) -> None:
        if not 1 <= int(self.n_bath) <= 64:
            raise ValueError(f"sampling.n_bath must be >= 1, got {self.n_bath}")
        self.D.require_positive()
        self.beta.require_positive()
        self.U.require_nonnegative()
        if self.eps_d is not None and self.eps_d_shift is not None:
            raise ValueError("sampling: give eps_d or eps_d_shift, not both")
        if not self.half_filling and self.eps_d is None and self.eps_d_shift is None:
            raise ValueError("sampling.eps_d (or eps_d_shift) is required unless "
                             "sampling.half_filling is true")
        if not 0.0 <= float(self.half_filling_fraction) <= 1.0:
            raise ValueError("sampling.half_filling_fraction must lie in [0, 1], got "
                             f"{self.half_filling_fraction}")

    @property
    def max_bath(self) -> int:
        return int(self.n_bath)

    def windows(self) -> list[tuple[float, float]]:
        """``[(beta_max, e_max)]``, ``e_max = max(|eps_d|, |eps_d + U|) + D`` over the parameter
        box (the Legendre-order check of :mod:`mldmft.database.generate`)."""
        if self.eps_d_shift is not None:  # eps_d = -U/2 + s (U/2 + D)
            lo, hi = self.eps_d_shift.bounds
            e_at = max(abs(u / 2) + abs(s) * (u / 2 + d) for u in self.U.bounds
                       for s in (lo, hi) for d in self.D.bounds)
        else:
            e_at = _atomic_window(None if self.half_filling else self.eps_d.bounds,
                                  self.U.bounds, self.half_filling)
        return [(self.beta.bounds[1], e_at + self.D.bounds[1])]

    def draw(self, seed: int, index: int) -> Sample:
        rng = sample_rng(seed, index)
        D = self.D.draw(rng)
        U = self.U.draw(rng)
        beta = self.beta.draw(rng)
        nb = int(self.n_bath)
        half = self.half_filling
        if not half and self.half_filling_fraction > 0:
            half = bool(rng.uniform() < self.half_filling_fraction)
        if half:
            half = nb // 2
            pos = rng.uniform(0.0, 1.0, half)
            v_half = rng.uniform(0.0, 1.0, half) + 1e-3
            eps = np.concatenate([-pos, pos] + ([np.zeros(1)] if nb % 2 else []))
            v = np.concatenate([v_half, v_half] + ([rng.uniform(0, 1, 1) + 1e-3] if nb % 2 else []))
            span = eps.max() - eps.min()
            eps = eps * (2 * D / span) if span > 0 else eps
            eps_d = -U / 2
        else:
            eps = rng.uniform(-1.0, 1.0, nb)
            v = rng.uniform(0.0, 1.0, nb) + 1e-3
            span = eps.max() - eps.min()
            centre = 0.5 * (eps.max() + eps.min())
            eps = centre + (eps - centre) * (2 * D / span) if span > 0 else eps
            if self.eps_d_shift is not None:
                eps_d = -U / 2 + self.eps_d_shift.draw(rng) * (U / 2 + D)
            else:
                eps_d = self.eps_d.draw(rng)
        v = v * (D / 2) / np.sqrt(np.sum(v ** 2))
        order = np.argsort(eps, kind="stable")
        model = AndersonModel(U=U, eps_d=eps_d, beta=beta, bath_eps=eps[order], bath_v=v[order])
        return Sample(index=index, model=model, D=D)


@dataclass(frozen=True)
class BathListRecipe:
    """Discrete baths from a file; sample ``i`` uses entry ``i mod len(entries)``."""

    path: str
    U: ParamSpec
    beta: ParamSpec
    eps_d: ParamSpec | None
    half_filling: bool = False
    entries: tuple = field(default=(), compare=False)
    fixed_entries: tuple = field(default=(), compare=False)

    def __post_init__(self) -> None:
        path = Path(self.path)
        if not path.is_file():
            raise ValueError(f"sampling.path: no such bath list file: {path}")
        text = path.read_text()
        try:
            data = json.loads(text) if path.suffix.lower() == ".json" else load_yaml(text)
        except (json.JSONDecodeError, yaml.YAMLError) as err:
            raise ValueError(f"sampling.path: cannot parse {path}: {err}") from None
        if isinstance(data, Mapping) and "baths" in data:
            data = data["baths"]
        if not isinstance(data, Sequence) or not data:
            raise ValueError(f"sampling.path: {path} must hold a non-empty list of baths")
        entries = []
        for k, entry in enumerate(data):
            if not isinstance(entry, Mapping) or "bath_eps" not in entry or "bath_v" not in entry:
                raise ValueError(f"sampling.path: entry {k} of {path} needs bath_eps and bath_v")
            eps = np.asarray(entry["bath_eps"], dtype=float)
            v = np.asarray(entry["bath_v"], dtype=float)
            if eps.shape != v.shape or eps.ndim != 1:
                raise ValueError(f"sampling.path: entry {k}: bath_eps and bath_v lengths differ")
            entries.append(dict(entry))
        object.__setattr__(self, "entries", tuple(entries))
        self.beta.require_positive()
        self.U.require_nonnegative()
        object.__setattr__(self, "fixed_entries", tuple(self._model_key(e) for e in entries))

    def _model_key(self, entry: Mapping) -> tuple | None:
        """``(U, eps_d, beta, bath)`` (rounded to 10 decimals) of an entry whose model does not
        depend on the draw, else ``None``."""
        def value(name: str, spec: ParamSpec | None) -> float | None:
            if name in entry:
                return float(entry[name])
            return spec.lo if spec is not None and spec.fixed else None

        U, beta = value("U", self.U), value("beta", self.beta)
        eps_d = (-U / 2 if U is not None and "eps_d" not in entry and self.half_filling
                 else value("eps_d", self.eps_d))
        if U is None or beta is None or eps_d is None:
            return None
        bath = sorted(zip(np.round(np.asarray(entry["bath_eps"], float), 10).tolist(),
                          np.round(np.abs(np.asarray(entry["bath_v"], float)), 10).tolist()))
        return (round(U, 10), round(eps_d, 10), round(beta, 10), tuple(bath))

    def fixed_key(self, seed: int, index: int) -> tuple | None:
        """The model of sample ``index`` (:meth:`_model_key`) if it does not depend on the draw
        (then equal keys are the same model), else ``None``."""
        return self.fixed_entries[index % len(self.entries)]

    @property
    def max_bath(self) -> int:
        return max(len(e["bath_eps"]) for e in self.entries)

    def windows(self) -> list[tuple[float, float]]:
        """``(beta, e_max)`` per entry: its atomic levels plus ``max |eps_k|`` of its bath."""
        pairs = []
        for entry in self.entries:
            u_b = (float(entry["U"]),) * 2 if "U" in entry else self.U.bounds
            if "eps_d" in entry:
                eps_b, half = (float(entry["eps_d"]),) * 2, False
            else:
                half = self.half_filling
                eps_b = None if half else self.eps_d.bounds
            beta = float(entry["beta"]) if "beta" in entry else self.beta.bounds[1]
            width = float(np.max(np.abs(entry["bath_eps"]), initial=0.0))
            pairs.append((beta, _atomic_window(eps_b, u_b, half) + width))
        return pairs

    def draw(self, seed: int, index: int) -> Sample:
        rng = sample_rng(seed, index)
        entry = self.entries[index % len(self.entries)]
        U = float(entry["U"]) if "U" in entry else self.U.draw(rng)
        beta = float(entry["beta"]) if "beta" in entry else self.beta.draw(rng)
        if "eps_d" in entry:
            eps_d = float(entry["eps_d"])
        elif self.half_filling:
            eps_d = -U / 2
        else:
            eps_d = self.eps_d.draw(rng)
        model = AndersonModel(U=U, eps_d=eps_d, beta=beta, bath_eps=entry["bath_eps"],
                              bath_v=entry["bath_v"])
        D = float(entry.get("D", half_bandwidth(np.sum(model.bath_v ** 2))))
        return Sample(index=index, model=model, D=D)


@dataclass(frozen=True)
class MixtureRecipe:
    """Each sample from one component recipe, chosen with probability ``weights[k]``.

    Sample ``i`` picks its component with its own generator (seed and index), then draws from
    that component with the same ``(seed, i)``: the mixture is as reproducible as its parts.
    """

    components: tuple
    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.components or len(self.components) != len(self.weights):
            raise ValueError("sampling.components: a non-empty list of recipes, each with a "
                             "weight")
        w = np.asarray(self.weights, dtype=float)
        if not (np.all(np.isfinite(w)) and np.all(w >= 0) and w.sum() > 0):
            raise ValueError(f"sampling.components: weights must be >= 0 and not all 0, got "
                             f"{list(self.weights)}")

    @property
    def max_bath(self) -> int:
        return max(c.max_bath for c in self.components)

    def windows(self) -> list[tuple[float, float]]:
        """Every component's windows."""
        return [w for c in self.components for w in c.windows()]

    def component_of(self, seed: int, index: int) -> int:
        """Index of the component sample ``index`` is drawn from."""
        rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(int(index), 1)))
        w = np.asarray(self.weights, dtype=float)
        return int(rng.choice(len(w), p=w / w.sum()))

    def draw(self, seed: int, index: int) -> Sample:
        return self.components[self.component_of(seed, index)].draw(seed, index)

    def fixed_key(self, seed: int, index: int) -> tuple | None:
        """``(component, its key)`` when sample ``index`` is a fully fixed model of a component
        (see :meth:`BathListRecipe.fixed_key`), else ``None``."""
        c = self.component_of(seed, index)
        inner = getattr(self.components[c], "fixed_key", None)
        key = inner(seed, index) if inner is not None else None
        return None if key is None else (c, key)


def _has_fixed(recipe: Any) -> bool:
    if isinstance(recipe, MixtureRecipe):
        return any(_has_fixed(c) for c in recipe.components)
    return any(k is not None for k in getattr(recipe, "fixed_entries", ()))


def repeated_samples(recipe: Any, seed: int, n_samples: int) -> list[int]:
    """Sample indices below ``n_samples`` whose model repeats an earlier sample's exactly (a bath
    list cycled past its length, or holding one model twice, with every parameter of the entry
    fixed); empty if none.

    Example:
        >>> import tempfile, yaml
        >>> f = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
        >>> yaml.safe_dump({"baths": [{"bath_eps": [0.0], "bath_v": [0.5], "U": 2.0,
        ...                            "eps_d": -1.0, "beta": 10.0}]}, f); f.close()
        >>> repeated_samples(make_recipe({"kind": "bath_list", "path": f.name}), 0, 3)
        [1, 2]
    """
    if not hasattr(recipe, "fixed_key") or not _has_fixed(recipe):
        return []
    seen: set = set()
    out = []
    for i in range(int(n_samples)):
        key = recipe.fixed_key(seed, i)
        if key is None:
            continue
        if key in seen:
            out.append(i)
        seen.add(key)
    return out


def _make_bethe_random(cfg: dict[str, Any], eps_spec: ParamSpec | None, half: bool):
    shift = cfg.pop("eps_d_shift", None)
    frac = float(cfg.pop("half_filling_fraction", 0.0))
    fields = ("n_bath", "D", "U", "beta")
    check_keys(cfg, fields, fields, prefix="sampling.", lead="bethe_random: ")
    return BetheRandomBath(n_bath=check_type("sampling.n_bath", cfg["n_bath"], int),
                           D=ParamSpec.parse("D", cfg["D"]),
                           U=ParamSpec.parse("U", cfg["U"]),
                           beta=ParamSpec.parse("beta", cfg["beta"]), eps_d=eps_spec,
                           half_filling=half,
                           eps_d_shift=None if shift is None else ParamSpec.parse("eps_d_shift",
                                                                                  shift),
                           half_filling_fraction=frac)


def _make_bath_list(cfg: dict[str, Any], eps_spec: ParamSpec | None, half: bool):
    check_keys(cfg, ("path", "U", "beta"), ("path",), prefix="sampling.", lead="bath_list: ")
    return BathListRecipe(path=str(cfg["path"]), U=ParamSpec.parse("U", cfg.get("U", 0.0)),
                          beta=ParamSpec.parse("beta", cfg.get("beta", 50.0)),
                          eps_d=eps_spec, half_filling=half)


def _make_mixture(cfg: dict[str, Any], eps_spec: ParamSpec | None, half: bool):
    comps = cfg.pop("components", None)
    if cfg or eps_spec is not None or half:
        raise ValueError("sampling: a mixture takes only `components` (each with a weight); "
                         f"got also {sorted(cfg) + (['eps_d'] if eps_spec else [])}")
    if not isinstance(comps, Sequence) or isinstance(comps, str) or not comps:
        raise ValueError("sampling.components: a non-empty list of recipes")
    recipes, weights = [], []
    for k, comp in enumerate(comps):
        if not isinstance(comp, Mapping) or "weight" not in comp:
            raise ValueError(f"sampling.components[{k}]: a recipe mapping with a `weight`")
        comp = dict(comp)
        weights.append(float(comp.pop("weight")))
        recipes.append(make_recipe(comp))
    return MixtureRecipe(components=tuple(recipes), weights=tuple(weights))


_RECIPES: dict[str, Any] = {"bethe_random": _make_bethe_random, "bath_list": _make_bath_list,
                            "mixture": _make_mixture}


def register_recipe(kind: str, factory: Any) -> None:
    """Register ``factory(cfg, eps_d_spec, half_filling) -> recipe`` under ``kind``.

    A recipe has ``max_bath`` (largest bath), ``windows()`` (``[(beta_max, e_max)]`` bounding
    its models' temperatures and spectra, for the Legendre-order check) and
    ``draw(seed, index) -> Sample``.
    """
    _RECIPES[str(kind)] = factory


def make_recipe(cfg: Mapping[str, Any]):
    """Build a recipe from a plain mapping (``kind``: ``bethe_random``, ``bath_list``,
    ``dmft_iterates``, ``mixture`` or a registered kind)."""
    cfg = dict(cfg)
    kind = cfg.pop("kind", None)
    if kind == "dmft_iterates" and kind not in _RECIPES:
        from . import dmft_sampling  # noqa: F401  (registers the kind)
    half = check_type("sampling.half_filling", cfg.pop("half_filling", False), bool)
    eps_d = cfg.pop("eps_d", None)
    eps_spec = None if (half or eps_d is None) else ParamSpec.parse("eps_d", eps_d)
    if kind not in _RECIPES:
        raise ValueError(f"sampling.kind: unknown recipe {kind!r}; choose one of "
                         f"{', '.join(sorted(set(_RECIPES) | {'dmft_iterates'}))}")
    return _RECIPES[kind](cfg, eps_spec, half)
