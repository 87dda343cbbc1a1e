"""Every docstring example in ``solvers`` runs and prints what it claims."""

import doctest
import importlib
import pkgutil

import pytest

import solvers

MODULES = sorted(m.name for m in pkgutil.walk_packages(solvers.__path__, "solvers."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
