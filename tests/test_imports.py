"""The package's import graph has no cycle (imports inside functions count), and layers point one way."""

import ast
from pathlib import Path

import zoo

PACKAGE = Path(zoo.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(name: str) -> str | None:
    """``name`` if it is a module or package of zoo, else its parent (``zoo.x.f`` for a function f of zoo.x)."""
    while name.startswith("zoo"):
        rel = Path(*name.split("."))
        if (PACKAGE.parent / rel).with_suffix(".py").is_file() or (PACKAGE.parent / rel / "__init__.py").is_file():
            return name
        name = name.rpartition(".")[0]
    return None


def _runtime_nodes(tree: ast.AST):
    """Every node but those under ``if TYPE_CHECKING:`` (annotations only, never imported at run time)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            continue
        yield node
        yield from _runtime_nodes(node)


def import_graph() -> dict[str, set[str]]:
    """zoo module -> the zoo modules it imports explicitly, at any depth of its code."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        name, edges = _module_name(path), set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _runtime_nodes(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                targets = [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            edges |= {t for t in map(_resolve, targets) if t is not None and t != name}
        graph[name] = edges
    return graph


def test_no_import_cycle_in_zoo():
    graph = import_graph()
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(nxt) :], nxt]))
            if nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])


def test_weights_and_data_know_nothing_of_the_registry_or_the_engine():
    graph = import_graph()

    def reach(node: str, seen: set[str]) -> set[str]:
        for nxt in graph[node]:
            if nxt not in seen:
                seen.add(nxt)
                reach(nxt, seen)
        return seen

    assert not {"zoo.registry", "zoo._factory", "zoo.engine"} & reach("zoo.weights", set())
    data = {m for m in graph if m.startswith("zoo.data")}
    assert not any(m.startswith(("zoo.engine", "zoo.registry", "zoo.models")) for d in data for m in reach(d, set()))
