"""The engine's shape holds: no import cycles (engine or bench), and its public API is exactly what `__all__` says."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def module_imports(folder: Path, package: str) -> dict[str, set[str]]:
    """Module (dotted, under `package`) -> the modules of the same package it imports anywhere (in functions too: a
    lazy import is still a dependency), outside TYPE_CHECKING blocks. Subpackages are walked."""
    names = {".".join((package, *p.relative_to(folder).with_suffix("").parts)).removesuffix(".__init__"): p
             for p in sorted(folder.rglob("*.py"))}
    graph = {}
    for name, path in names.items():
        here = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue  # annotations only
            for sub in ast.walk(node):
                if not isinstance(sub, ast.ImportFrom):
                    continue
                if sub.level:
                    base = ".".join(here.split(".")[: len(here.split(".")) - sub.level + 1])
                    target = f"{base}.{sub.module}" if sub.module else base
                else:
                    target = sub.module or ""
                # `from pkg import mod` names a module; `from mod import name` the module itself
                candidates = [f"{target}.{a.name}" for a in sub.names] + [target]
                found |= {c for c in candidates if c in names and c != name}
        graph[name] = found
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


def test_the_import_graph_sees_relative_imports_across_subpackages():
    graph = module_imports(ROOT / "engine", "engine")
    assert "engine.verification.acceptance" in graph["engine.session"]
    assert "engine.drafting.tree" in graph["engine.verification.acceptance"]  # `from ..drafting.tree import ...`


def test_engine_modules_live_in_subpackages():
    """The engine's folders show its architecture: only the session, its config and errors sit at the top."""
    top = sorted(p.name for p in (ROOT / "engine").glob("*.py"))
    assert top == ["__init__.py", "config.py", "errors.py", "session.py"]


def test_the_cycle_finder_finds_one():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


def test_every_public_name_imports_and_every_lazy_name_is_public():
    import engine

    assert set(engine._LAZY) <= set(engine.__all__)
    for name in engine.__all__:
        assert getattr(engine, name) is not None, name
    assert len(engine.__all__) == len(set(engine.__all__))
