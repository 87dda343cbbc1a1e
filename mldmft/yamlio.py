"""Reading YAML the way a physicist writes numbers.

PyYAML follows YAML 1.1, whose float pattern needs a dot: ``1e-8`` and ``1e2`` are read as
strings there, while YAML 1.2, Python and every config a physicist writes treat them as numbers.
:func:`load_yaml` is ``yaml.safe_load`` with the YAML 1.2 core-schema float pattern added, so
``beta: 1e2`` in a model file, ``--opt cutoff=1e-8`` on the command line and a bath list with
``bath_v: [1e-1, 2e-1]`` all hold floats. Every YAML input of the project is read through it.

Example:
    >>> load_yaml("beta: 1e2\\ncutoff: 1e-8\\nn: 512\\nname: ed")
    {'beta': 100.0, 'cutoff': 1e-08, 'n': 512, 'name': 'ed'}
"""

from __future__ import annotations

import re
from typing import Any

import yaml

__all__ = ["load_yaml"]


class _NumberLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads exponent-only floats (``1e2``, ``-3E-4``)."""


#: Floats without a dot, which YAML 1.1 leaves as strings (YAML 1.2 core schema: numbers).
_EXPONENT_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$")

_NumberLoader.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT_FLOAT,
                                    list("-+0123456789"))


def load_yaml(text: str) -> Any:
    """Parse YAML text with ``yaml.safe_load``'s types plus exponent-only floats.

    Raises ``yaml.YAMLError`` on unparsable text, as ``yaml.safe_load`` does.
    """
    return yaml.load(text, Loader=_NumberLoader)
