"""The import graph follows the pipeline: a stage imports only the stages before it.

Read statically from every module (function-level imports included), so a lazy import that
breaks the layering fails here too; plus a run-time check that the prediction path loads
neither Lightning nor Hydra (they cost seconds at start-up and are not needed to score).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import bigbird_genomics

PACKAGE = Path(bigbird_genomics.__file__).parent

# stage -> the package's stages it may import (besides itself and the root's errors/__version__)
ALLOWED = {
    "attention": set(),
    "io": set(),
    "tokens": {"io"},
    "builders": {"io", "tokens"},
    "model": {"attention"},
    "reporting": {"io", "attention"},
    "inference": {"io", "tokens", "model", "attention"},
    "training": {"io", "tokens", "builders", "model", "attention", "inference", "reporting"},
    "commands": {
        "io", "tokens", "builders", "model", "attention", "inference", "reporting", "training",
    },
}
ROOT_MODULES = {"errors", "__version__"}  # importable by every stage (attention excepted)
HEAVY = ("pytorch_lightning", "lightning", "hydra", "omegaconf")


def stage_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def package_imports(path: Path) -> set[str]:
    """Top-level names of the package imported by `path` (`io` for bigbird_genomics.io.fasta)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "bigbird_genomics":
                names = [f"bigbird_genomics.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "bigbird_genomics" and len(parts) > 1:
                found.add(parts[1])
    return found


def third_party_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if stage_of(p) in ALLOWED)


def test_every_stage_package_is_covered() -> None:
    stages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert stages <= set(ALLOWED), f"a new stage package needs a row in ALLOWED: {stages}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_import_from_a_later_stage(path: Path) -> None:
    stage = stage_of(path)
    allowed = ALLOWED[stage] | {stage} | (set() if stage == "attention" else ROOT_MODULES)
    wrong = package_imports(path) - allowed
    assert not wrong, f"{path.relative_to(PACKAGE)} ({stage}) imports {sorted(wrong)}"


@pytest.mark.parametrize(
    "path",
    [p for p in MODULES if stage_of(p) in ("io", "tokens", "builders", "model", "inference",
                                          "reporting", "attention")],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_lower_stages_do_not_import_lightning_or_hydra(path: Path) -> None:
    assert not third_party_imports(path) & set(HEAVY)


SCORING_COMMANDS = ("predict", "evaluate", "variant_effect", "ism", "gather_predictions")


@pytest.mark.parametrize("name", SCORING_COMMANDS)
def test_scoring_commands_do_not_import_training(name: str) -> None:
    """Even lazily: training's modules load Lightning (seconds at start-up, on every call)."""
    path = PACKAGE / "commands" / f"{name}.py"
    assert "training" not in package_imports(path)
    assert not third_party_imports(path) & set(HEAVY)


def test_predict_and_evaluate_load_neither_lightning_nor_hydra() -> None:
    code = (
        "import sys\n"
        "from bigbird_genomics.cli import build_parser\n"
        "import bigbird_genomics.commands.predict, bigbird_genomics.commands.evaluate\n"
        "import bigbird_genomics.inference.checkpoint, bigbird_genomics.inference.scan\n"
        "import bigbird_genomics.inference.evaluation\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout
