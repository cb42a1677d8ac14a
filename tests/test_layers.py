"""The layers run one way (README "Layout"): search_space → trainers → strategies → visualize.

Every module, commands included, imports its own layer or lower: setup.cfg's import-linter
contract has no ``ignore_imports`` and this test allows no exemption. No file cycles, counting
``TYPE_CHECKING`` imports too (a cycle of type hints is still a cycle of concepts);
function-level imports of our own modules only with a reason (at most 15).
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import networkx as nx

from tests.conftest import REPO

PACKAGES = ("search_space", "trainers", "strategies", "visualize")


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for path in (REPO / pkg).rglob("*.py"):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = path
    return mods


def _own_imports(path: Path, type_checking: bool = True) -> list[tuple[str, bool, int]]:
    """(imported module, inside a function, line) of every import of our packages; with
    ``type_checking=False``, not those inside ``if TYPE_CHECKING:`` blocks."""
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if (not type_checking and isinstance(child, ast.If)
                    and getattr(child.test, "id", "") == "TYPE_CHECKING"):
                continue
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                names = [child.module]
            elif isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            else:
                names = []
            found.extend((n, in_function, child.lineno) for n in names
                         if n.split(".")[0] in PACKAGES)
            visit(child, inner)

    visit(ast.parse(path.read_text()), False)
    return found


def test_import_linter_contract_is_kept():
    lint_imports = Path(sys.executable).parent / "lint-imports"  # import-linter's command
    r = subprocess.run([str(lint_imports), "--no-cache"], cwd=REPO, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "0 broken" in r.stdout and " kept" in r.stdout


def test_import_linter_contract_has_no_exceptions():
    config = (REPO / "setup.cfg").read_text()
    assert "ignore_imports" not in config
    assert "exclude_type_checking_imports = False" in config


def test_library_modules_import_only_their_layer_or_lower():
    rank = {pkg: i for i, pkg in enumerate(PACKAGES)}
    upward = []
    for name, path in _modules().items():
        for target, _, line in _own_imports(path):
            if rank[target.split(".")[0]] > rank[name.split(".")[0]]:
                upward.append(f"{name}:{line} imports {target}")
    assert upward == []


def test_no_file_cycles():
    mods = _modules()
    graph = nx.DiGraph()
    for name, path in mods.items():
        for target, _, _ in _own_imports(path):
            while target not in mods and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in mods and target != name and not name.startswith(target + "."):
                graph.add_edge(name, target)
    assert list(nx.simple_cycles(graph)) == []


def test_function_level_imports_of_our_modules_are_few_and_explained():
    inside = []
    for name, path in _modules().items():
        lines = path.read_text().splitlines()
        for target, in_function, line in _own_imports(path):
            if in_function:
                inside.append((name, line, target, "#" in lines[line - 1]))
    assert len(inside) <= 15, inside
    assert all(has_reason for *_, has_reason in inside), inside
