"""Read an Anderson model from a YAML or JSON file, with one-line errors that name the problem.

File format (YAML shown; JSON has the same keys)::

    U: 2.0
    eps_d: -1.0          # or: half_filling: true  (eps_d = -U/2)
    beta: 50.0
    bath_eps: [-1.5, -0.9, -0.4, -0.1, 0.1, 0.4, 0.9, 1.5]
    bath_v: [0.1768, 0.1768, 0.1768, 0.1768, 0.1768, 0.1768, 0.1768, 0.1768]

A continuous bath is given as ``delta_iw_real`` / ``delta_iw_imag`` lists on the Matsubara mesh.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from solvers import AndersonModel, check_type

from .yamlio import load_yaml

__all__ = ["load_model", "ModelFileError"]

#: The type of every model-file field: ``half_filling: "false"`` or ``U: true`` is refused, not
#: read as true or 1.0.
FIELD_TYPES = {"U": float, "eps_d": float, "beta": float, "half_filling": bool,
               "bath_eps": list[float], "bath_v": list[float], "delta_iw_real": list[float],
               "delta_iw_imag": list[float], "name": str, "description": str}


class ModelFileError(ValueError):
    """A model file that cannot be read or does not describe a valid model."""


def load_model(path: str | Path) -> AndersonModel:
    """Load an :class:`~solvers.AndersonModel` from a ``.yaml``/``.yml`` or ``.json`` file.

    Raises:
        ModelFileError: missing file, unparsable text, or invalid fields; the message names the
            file and the problem in one line.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    text = path.read_text()
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            data = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            data = load_yaml(text)
        else:
            raise ModelFileError(f"{path}: unknown model file type {suffix!r} (use .yaml or .json)")
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        first = str(err).strip().splitlines()[0]
        raise ModelFileError(f"{path}: cannot parse {suffix[1:].upper()}: {first}") from None
    try:
        if isinstance(data, dict):
            for key, value in data.items():
                if key in FIELD_TYPES:
                    check_type(f"model field '{key}'", value, FIELD_TYPES[key])
        return AndersonModel.from_dict(data)
    except (ValueError, TypeError) as err:
        raise ModelFileError(f"{path}: {err}") from None
