"""The engine's shape holds: no import cycles (engine or bench), and its public API is exactly what `__all__` says."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def module_imports(folder: Path, package: str) -> dict[str, set[str]]:
    """Module -> the sibling modules it imports anywhere (in functions too: a lazy import is still a dependency),
    outside TYPE_CHECKING blocks."""
    graph = {}
    for path in sorted(folder.glob("*.py")):
        name = path.stem
        found = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue  # annotations only
            for sub in ast.walk(node):
                if isinstance(sub, ast.ImportFrom):
                    if sub.level == 1 and sub.module:
                        found.add(sub.module.split(".")[0])
                    elif sub.module and sub.module.startswith(f"{package}."):
                        found.add(sub.module.split(".")[1])
        graph[name] = found & {p.stem for p in folder.glob("*.py")}
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, or None."""
    state = {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return trail[trail.index(nxt):] + [nxt] if nxt in trail else [node, nxt]
            if nxt not in state:
                found = visit(nxt, trail + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


@pytest.mark.parametrize("folder, package", [("engine", "engine"), ("bench", "bench"), ("training", "training")])
def test_no_import_cycles(folder, package):
    assert cycle(module_imports(ROOT / folder, package)) is None


def test_the_cycle_finder_finds_one():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


def test_every_public_name_imports_and_every_lazy_name_is_public():
    import engine

    assert set(engine._LAZY) <= set(engine.__all__)
    for name in engine.__all__:
        assert getattr(engine, name) is not None, name
    assert len(engine.__all__) == len(set(engine.__all__))
