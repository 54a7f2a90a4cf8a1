"""The house's modules import each other without a cycle: every import statement of every
module counts (at the top, inside functions, and the type-only ones under TYPE_CHECKING),
read from the source, so a cycle that only bites in some import order is found too."""
import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "harness"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree: ast.AST, name: str, is_package: bool, modules: set[str]) -> set[str]:
    """The project's modules one module's import statements name (a `from X import y` where y
    is a module of X names that module too)."""
    here = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here.rsplit(".", node.level - 1)[0] if node.level > 1 else here
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return {m for m in found if m in modules}


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules importing it runs: the named one and its packages' __init__
    (those of the importer's own packages aside: they are already being imported)."""
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(paths)
    graph = {}
    for name, path in paths.items():
        edges = set()
        for target in imported(ast.parse(path.read_text(), str(path)), name, path.name == "__init__.py", modules):
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                ancestor = ".".join(parts[:i])
                if ancestor in modules and not (name == ancestor or name.startswith(ancestor + ".")):
                    edges.add(ancestor)
        graph[name] = edges - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_of_the_harness_takes_part_in_an_import_cycle():
    graph = import_graph()
    assert len(graph) > 100 and graph["harness.run.profile"] >= {"harness.run.setup", "harness.run.verify"}
    assert cycles(graph) == []


def test_the_walk_finds_a_cycle_made_of_type_only_and_function_level_imports(tmp_path):
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..results import Check\n"
                     "def f():\n    from . import verify\n")
    assert imported(tree, "harness.run.profile", False, {"harness.results", "harness.run.verify", "harness.run"}) \
        == {"harness.results", "harness.run", "harness.run.verify"}
