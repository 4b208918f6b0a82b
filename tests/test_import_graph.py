"""The package's module graph: no import cycle (function-level imports included) and no module over 400 lines.

Every ``import`` / ``from ... import`` of every module under src/napari_sim_ml is read with
``ast`` (at module level, inside functions and under ``TYPE_CHECKING`` alike), resolved to
the module it loads (``from .pkg import name`` is the submodule ``pkg.name`` when that is a
module, else ``pkg``), and the graph is searched for strongly connected components.
Nothing is left out: the PINN package (engine/pinn/) is checked like the rest.
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "src" / "napari_sim_ml"
MAX_LINES = 400


def _excluded(path: Path) -> bool:
    return "__pycache__" in path.parts


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        if _excluded(path):
            continue
        parts = ["napari_sim_ml", *path.relative_to(PKG).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom, known: dict[str, Path]) -> set[str]:
    names: list[str] = []
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            base = module.split(".")
            base = base[: len(base) - node.level + (1 if is_package else 0)]
            origin = ".".join(base + ([node.module] if node.module else []))
        else:
            origin = node.module or ""
        names = [f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in known else origin for alias in node.names]
    found = set()
    for name in names:
        if not name.startswith("napari_sim_ml"):
            continue
        while name not in known and "." in name:
            name = name.rsplit(".", 1)[0]
        if name in known and name != module:
            found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module → the package modules it imports anywhere in its source."""
    known = _modules()
    graph = {}
    for module, path in known.items():
        tree = ast.parse(path.read_text())
        edges: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges |= _targets(module, path.name == "__init__.py", node, known)
        graph[module] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_graph_sees_the_imports_it_must_see():
    """The parser resolves relative, package and function-level imports (else the cycle test proves nothing)."""
    graph = import_graph()
    assert "napari_sim_ml.engine.rawfile" in graph["napari_sim_ml.engine.sequence"]  # module level, relative
    assert "napari_sim_ml.engine.sequence" in graph["napari_sim_ml.engine.io"]  # inside read_raw
    assert "napari_sim_ml.engine.filters" in graph["napari_sim_ml.engine.wiener"]  # inside default_settings
    assert "napari_sim_ml._qt._layers" in graph["napari_sim_ml._qt.learned"]  # ``from . import _layers``


def test_cycles_are_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle():
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" ↔ ".join(c) for c in found)


def test_no_module_over_400_lines():
    sizes = {path.relative_to(PKG).as_posix(): len(path.read_text().splitlines()) for path in _modules().values()}
    over = sorted(f"{name} ({n} lines)" for name, n in sizes.items() if n > MAX_LINES)
    assert not over, f"modules over {MAX_LINES} lines: " + ", ".join(over)
