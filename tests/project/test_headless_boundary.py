"""The engine is a headless library and the app never touches torch: checked in fresh interpreters."""

import subprocess
import sys


def run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_import_engine_does_not_import_textual_or_rich():
    out = run("import sys, engine, engine.session, engine.records.trace, engine.records.theory; print(sorted(m for m in ('textual', 'rich') if m in sys.modules))")
    assert out == "[]"


def test_light_engine_imports_do_not_need_torch():
    # Replaying a trace needs no model: config, results and traces import without torch.
    out = run("import sys, engine, engine.records.trace, engine.records.theory; print('torch' in sys.modules)")
    assert out == "False"


def test_headless_cli_does_not_import_textual():
    out = run("import sys, specdec_tui.cli, specdec_tui.headless; print('textual' in sys.modules)")
    assert out == "False"


def test_app_modules_never_import_torch_or_transformers_directly():
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2] / "specdec_tui"
    offenders = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        for line in path.read_text().splitlines()
        if line.strip().startswith(("import torch", "from torch", "import transformers", "from transformers"))
    ]
    assert offenders == []


def test_scheduler_operations_view_model_and_drivers_import_neither_textual_nor_torch():
    out = run("import sys, specdec_tui.scheduler, specdec_tui.operations, specdec_tui.view_model, specdec_tui.driver, "
              "engine.records.summary; print(sorted(m for m in ('textual', 'rich', 'torch') if m in sys.modules))")
    assert out == "[]"


def test_the_app_uses_only_the_engines_public_api():
    """Every name specdec_tui/ imports from the engine comes from `engine` itself and is in engine.__all__ (the bench
    measures internals, so it imports them from their modules: they are not public API)."""
    import ast
    import pathlib

    import engine

    root = pathlib.Path(__file__).resolve().parents[2]
    internal, missing = [], []
    for path in root.joinpath("specdec_tui").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "engine":
                if node.module != "engine":
                    internal.append(f"{path.name}: from {node.module} import ...")
                missing += [f"{path.name}: {a.name}" for a in node.names if a.name not in engine.__all__]
            elif isinstance(node, ast.Import):
                internal += [f"{path.name}: import {a.name}" for a in node.names if a.name.startswith("engine.")]
    assert internal == [] and missing == []
