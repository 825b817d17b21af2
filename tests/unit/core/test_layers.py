"""Imports run one way (import-linter's contract in pyproject.toml), and the core imports
nothing of the project and no framework beyond pydantic."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
ALLOWED_IN_CORE = {"pydantic", "pydantic_settings", "landflow", "__future__", "typing_extensions"}


def _imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_the_core_imports_only_pydantic_and_the_standard_library():
    stdlib = set(sys.stdlib_module_names)
    for path in sorted((ROOT / "landflow").glob("*.py")):
        foreign = _imported(path) - stdlib - ALLOWED_IN_CORE
        assert not foreign, f"{path.name} imports {sorted(foreign)}"


def test_imports_run_one_way():
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout
