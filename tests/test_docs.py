"""The words around the code match the code: sources cited by reference, the checkpoint name
training writes, every CLI subcommand in the README, the example model's quoted double
occupancy at its own beta, and a stated machine load beside every README timing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mldmft.cli import build_parser
from mldmft.modelfile import load_model
from solvers import solve

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _text_files() -> list[Path]:
    """README, docs, configs, example and pretrained notes, and every Python file of the project
    (docstrings, comments and messages), this file excepted."""
    files = [README, *ROOT.glob("docs/*.md"), *ROOT.glob("configs/**/*.yaml"),
             *ROOT.glob("mldmft/**/*.yaml"), *ROOT.glob("mldmft/**/*.md"),
             *ROOT.glob("*.py")]
    for folder in ("solvers", "mldmft", "benchmarks", "tests"):
        files += ROOT.glob(f"{folder}/**/*.py")
    return sorted(f for f in set(files) if f.resolve() != Path(__file__).resolve())


def _hits(pattern: str, flags: int = re.IGNORECASE) -> list[str]:
    rx = re.compile(pattern, flags)
    return [f"{f.relative_to(ROOT)}:{n}: {line.strip()}"
            for f in _text_files()
            for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1)
            if rx.search(line)]


def test_sources_are_cited_by_reference_not_internal_shorthand():
    # "the talk's recipe", "talk MLP", "issue 3", "issue-5", "the issue asks": shorthand a reader
    # outside the project cannot resolve
    hits = _hits(r"\btalk(_mlp|'s)?\b|\bissue[ -]?\d|\b(the|project|this) issue\b")
    assert not hits, "internal shorthand instead of a reference:\n" + "\n".join(hits)


def test_text_names_the_checkpoint_file_that_training_writes():
    training = (ROOT / "mldmft/ml/training.py").read_text()
    assert 'out_dir / "model.pt"' in training
    hits = _hits(r"\.ckpt\b")
    assert not hits, "checkpoint named *.ckpt, training writes model.pt:\n" + "\n".join(hits)


def _readme_section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def test_readme_command_table_lists_every_cli_subcommand():
    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    table = _readme_section("Command line")
    missing = [name for name in sub.choices if f"mldmft {name}" not in table]
    assert not missing, f"subcommands missing from the README's command table: {missing}"
    solve_options = {o for a in sub.choices["solve"]._actions for o in a.option_strings
                     if o.startswith("--") and o not in ("--help", "--eta", "--omega-max")}
    assert {o for o in solve_options if o not in table} == set()


_TIMING = re.compile(r"\b\d+(\.\d+)?\s?(ms|s|min)\b|\babout a minute\b")


def test_every_readme_timing_states_the_machine_load():
    paragraphs = re.split(r"\n\s*\n", README.read_text(encoding="utf-8"))
    bare = [p.strip()[:80] for p in paragraphs
            if _TIMING.search(p) and not re.search(r"\bload\b", p)]
    assert not bare, f"README timings without the machine load they were measured at: {bare}"


def test_example_model_quotes_the_double_occupancy_at_its_own_beta():
    path = ROOT / "mldmft/examples/literature_nb8.yaml"
    comment = "\n".join(line for line in path.read_text().splitlines() if line.startswith("#"))
    m = re.search(r"Double occupancy at this beta = ([\d.]+): ([\d.]+)", comment)
    assert m, "the example's comment must quote the double occupancy at the file's beta"
    model = load_model(path)
    assert float(m.group(1)) == model.beta
    assert solve("ed", model).double_occupancy == pytest.approx(float(m.group(2)), abs=1e-7)
