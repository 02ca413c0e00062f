"""The package map of DESIGN.md holds: no import cycle between modules, and every import
points down the layers (forecasting ← features ← models ← pipelines ← serving;
replication → forecasting only). Imports inside functions count the same as top-level ones.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("forecasting", "features", "models", "replication", "pipelines", "serving")

#: package -> the packages of ours it may import (DESIGN.md, "Layout").
ALLOWED: dict[str, set[str]] = {
    "forecasting": set(),
    "features": {"forecasting"},
    "models": {"features", "forecasting"},
    "replication": {"forecasting"},
    "pipelines": {"forecasting", "features", "models", "replication"},
    "serving": {"forecasting", "features", "models", "replication", "pipelines"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(p): p
        for package in PACKAGES
        for p in (ROOT / package).rglob("*.py")
        if ".venv" not in p.parts
    }


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Modules of ours that ``path`` imports (relative imports and ``from a import b`` resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            # the longest known module that the target names (a.b.c -> a.b if c is a symbol)
            parts = target.split(".")
            while parts and ".".join(parts) not in known:
                parts.pop()
            if parts:
                found.add(".".join(parts))
    found.discard(name)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(path, name, known) for name, path in modules.items()}


def test_the_walk_sees_the_packages(graph: dict[str, set[str]]) -> None:
    assert {name.split(".")[0] for name in graph} == set(PACKAGES)
    assert "forecasting.settings" in graph["serving.cli.sync"]


def test_no_import_breaks_the_layer_rules(graph: dict[str, set[str]]) -> None:
    broken = sorted(
        f"{src} imports {dst}"
        for src, targets in graph.items()
        for dst in targets
        if (a := src.split(".")[0]) != (b := dst.split(".")[0]) and b not in ALLOWED[a]
    )
    assert broken == []


def _package_edges(graph: dict[str, set[str]], name: str) -> set[str]:
    """A package module (``__init__``) does not import its submodules by being imported."""
    return {dst for dst in graph[name] if not dst.startswith(f"{name}.")}


def test_no_import_cycle_between_modules(graph: dict[str, set[str]]) -> None:
    edges = {name: _package_edges(graph, name) for name in graph}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert cycles == [], "\n".join(" -> ".join(c) for c in cycles)
