"""The docs stay true: a short README, links that resolve, and key tables generated from the app's bindings.

Fast: no model is loaded (docs/keys.py imports the app's module only).
"""

from __future__ import annotations

import importlib.util
import re
import unicodedata
from pathlib import Path

import pytest
from textual.binding import Binding

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = [README, ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def load_keys():
    spec = importlib.util.spec_from_file_location("docs_keys", ROOT / "docs" / "keys.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prose(text: str) -> str:
    """The text without fenced code blocks and inline code, where brackets are not links."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"``.+?``|`[^`\n]+`", "", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    kept = "".join(c for c in heading.strip().lower()
                   if c in " -_" or unicodedata.category(c)[0] in "LN")
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
    seen: dict[str, int] = {}
    found = set()
    for match in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, flags=re.M):
        base = slug(match.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 160, f"README.md has {len(lines)} lines: move detail to docs/ (limit 160)"


def test_the_docs_pages_exist():
    for name in ("options", "screen", "architecture", "draft-head", "trees", "benchmarks", "experiments"):
        assert (ROOT / "docs" / f"{name}.md").is_file(), name
    assert (ROOT / "docs" / "screen.svg").is_file()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    broken = []
    for target in LINK.findall(prose(page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, flags=re.I):  # http:, https:, mailto:
            continue
        file_part, _, fragment = target.partition("#")
        path = (page.parent / file_part).resolve() if file_part else page
        if not path.exists():
            broken.append(f"{target}: no file {path}")
        elif fragment and path.suffix == ".md" and fragment not in anchors(path):
            broken.append(f"{target}: no heading #{fragment} in {path.name}")
    assert not broken, f"{page.name}: " + "; ".join(broken)


def test_link_checker_sees_a_broken_link(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n[ok](#title) [gone](missing.md) `[code](not-a-link.md)`\n", encoding="utf-8")
    found = LINK.findall(prose(page.read_text()))
    assert found == ["#title", "missing.md"]
    assert "title" in anchors(page)
    assert slug("bf16 (`--forward bf16`)") == "bf16---forward-bf16"


@pytest.mark.parametrize("path", ["README.md", "docs/screen.md"])
def test_key_table_matches_the_bindings(path):
    keys = load_keys()
    table = keys.table_in((ROOT / path).read_text(encoding="utf-8"))
    assert table is not None, f"{path} has no key table markers"
    assert table == keys.render(), f"{path}: the key table differs from the app's BINDINGS: run python docs/keys.py --write"


def test_a_new_or_renamed_binding_changes_the_table():
    from specdec_tui.app import SpecDecApp

    keys = load_keys()
    bindings = list(SpecDecApp.BINDINGS)
    table = keys.render(bindings)
    added = bindings + [Binding("z", "bell", "Zap", tooltip="a key the docs do not list yet")]
    renamed = [Binding(b.key, b.action, "Renamed", show=b.show, id=b.id, key_display=b.key_display, tooltip=b.tooltip)
               if b.key == "n" else b for b in bindings]
    assert keys.render(added) != table
    assert keys.render(renamed) != table
    assert "`n` | Step |" in table or "`n` |" in table
