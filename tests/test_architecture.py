"""The layering rules of docs/ARCHITECTURE.md, read from the source (the AST of every module of histoapp/ and
trainer/, nothing imported): no import cycle (function-level imports count, and ``from pkg import submodule`` is
an edge to the submodule), no arrow from the lower layers of histoapp up to its UI, no file over 500 lines.

A few known breaches that another change removes (issue 24, items 3 and 4) are listed; each must still be a
breach, so the list shrinks as they are fixed instead of hiding a new one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("histoapp", "trainer")
MAX_LINES = 500
# The layers below the UI: none of them may import histoapp.ui (the UI calls them, never the other way).
BELOW_UI = ("histoapp.models", "histoapp.store", "histoapp.explain", "histoapp.runs", "histoapp.analysis")

# What each layer of histoapp may import besides itself and trainer (docs/ARCHITECTURE.md, "Layers of histoapp").
BASE = {"histoapp", "settings", "auth", "login", "public", "visitor_files", "health"}
ALLOWED = {
    "base": {"base", "store"},  # health reads the store's engine
    "models": {"base"},  # the explanations are trainer.explain's
    "explain": set(),
    "store": set(),
    "runs": {"base"},
    "analysis": {"base", "runs"},
    "ui": {"base", "models", "explain", "store", "runs", "analysis"},
}


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The project modules ``name`` imports, anywhere in the file (module level, functions, TYPE_CHECKING)."""
    is_pkg = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against this module's package
                base = name.split(".")[: len(name.split(".")) - node.level + (1 if is_pkg else 0)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            for alias in node.names:
                sub = f"{mod}.{alias.name}"
                found.add(sub if sub in MODULES else mod)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index, low, on_stack, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(root: str) -> None:
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        out.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def test_the_import_graph_sees_function_level_and_submodule_imports():
    """The checks below are only as good as the graph: it holds the imports this rule is about."""
    assert "histoapp.models.zerogpu" in GRAPH["histoapp.models.worker_client"]  # a function-level import
    assert {"histoapp.models.calls", "histoapp.models.runner"} <= GRAPH["histoapp.ui.api"]  # from pkg import sub
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle(package):
    cycles = [c for c in _cycles(GRAPH) if next(iter(c)).split(".")[0] == package]
    assert [sorted(c) for c in cycles] == []


def test_no_lower_layer_imports_the_ui():
    upward = {
        name: sorted(m for m in deps if m == "histoapp.ui" or m.startswith("histoapp.ui."))
        for name, deps in GRAPH.items()
        if name.startswith(BELOW_UI)
    }
    assert {name: ups for name, ups in upward.items() if ups} == {}


def _layer(module: str) -> str:
    part = (module.split(".") + [""])[1] if module != "histoapp" else "histoapp"
    return "base" if part in BASE else part


def test_each_layer_imports_only_the_layers_below_it():
    assert set(ALLOWED) == {_layer(m) for m in MODULES if m.startswith("histoapp")}
    breaches = {
        name: sorted(
            d for d in deps if d.startswith("histoapp") and _layer(d) not in {_layer(name), *ALLOWED[_layer(name)]}
        )
        for name, deps in GRAPH.items()
        if name.startswith("histoapp")
    }
    assert {name: deps for name, deps in breaches.items() if deps} == {}


def test_trainer_never_imports_histoapp():
    assert {
        n: sorted(d) for n, d in GRAPH.items() if n.startswith("trainer") and any(m.startswith("histoapp") for m in d)
    } == {}


def test_no_file_over_500_lines():
    lengths = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in MODULES.values()}
    assert {f: n for f, n in lengths.items() if n > MAX_LINES} == {}
