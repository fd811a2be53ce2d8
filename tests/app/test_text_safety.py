"""Text is data: hostile strings from a model, a prompt, a trace or a path reach no terminal as markup or control."""

from __future__ import annotations

import json
import os
import re
import sys
import unicodedata
from pathlib import Path

import pytest
from textual.geometry import Region

from engine import SpecConfig
from engine.records.safe_text import json_line, shown
from helpers.hostile import HOSTILE, RAW_CONTROL, hostile_trace
from specdec_tui.app import SpecDecApp
from specdec_tui.cli import main
from specdec_tui.widgets.help_screen import HelpScreen

ROOT = Path(__file__).resolve().parents[2]
WIDGETS = ["HeaderTitle", "#prompt-bar", "#loading-label", "#draft-row", "#verifier-row", "#comparison-row",
           "#context-text", "#stats-text", "#step-log", "#inspector", "#status"]


# ---- the helper -----------------------------------------------------------------------------------------------


def test_every_control_and_invisible_character_becomes_one_visible_cell():
    for code in range(0x110000):
        char = chr(code)
        category = unicodedata.category(char)
        unsafe = category in ("Cc", "Cs", "Zl", "Zp") or (category == "Cf" and code not in (0x200C, 0x200D)
                                                         and not 0xE0020 <= code <= 0xE007F)
        out = shown(char, keep="")
        assert len(out) == 1, hex(code)  # one for one: columns and an input's cursor stay put
        if unsafe:
            assert out != char and unicodedata.category(out) not in ("Cc", "Cs", "Cf", "Zl", "Zp"), hex(code)
    assert shown("\x1b]0;PWNED\x07") == "␛]0;PWNED␇"
    assert shown("line\nnext\tcol") == "line\nnext␉col" and shown("a\nb", keep="") == "a␊b"
    assert shown("👨‍👩‍👧 café [/i]") == "👨‍👩‍👧 café [/i]"  # emoji sequences, accents and brackets are kept


def test_json_lines_are_exact_and_hold_no_raw_control_bytes():
    record = {"text": "".join(HOSTILE) + "\U000e0001 café"}
    line = json_line(record)
    assert json.loads(line) == record  # nothing lost
    assert not any(c in line for c in RAW_CONTROL) and "café" in line
    line.encode("utf-8")  # a lone surrogate would not even encode


# ---- every widget ---------------------------------------------------------------------------------------------


def widget_text(widget) -> str:
    region = Region(0, 0, widget.outer_size.width, widget.outer_size.height)
    return "\n".join(strip.text for strip in widget.render_lines(region))


def screen_texts(app) -> dict[str, str]:
    """What each widget draws: the named panels, and every other widget on the screen (footer, borders, ...)."""
    texts = {selector: widget_text(app.query_one(selector)) for selector in WIDGETS}
    for number, widget in enumerate(app.screen.query("*")):
        texts.setdefault(f"{type(widget).__name__}#{widget.id or number}", widget_text(widget))
    return texts


def assert_safe(texts: dict[str, str]) -> None:
    for selector, text in texts.items():
        bad = [c for c in RAW_CONTROL if c in text]
        assert not bad, f"{selector} draws raw control characters {bad!r}"
        assert "RED" not in text or "[red]RED" in text or "[red]RED[/re" in text, f"{selector} interpreted markup"


@pytest.mark.anyio
async def test_hostile_trace_through_every_widget(tmp_path):
    folder = tmp_path / "a["
    folder.mkdir()
    trace = hostile_trace(folder / "b]c.jsonl")  # the replay path holds a closing tag: a[/b]c.jsonl
    app = SpecDecApp(replay=str(trace))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        assert "replay loaded" in app.query_one("#status").message.plain
        seen = ""
        for key in ["n", "n", "n", "right", "right", "left_square_bracket", "n", "right"]:
            await pilot.press(key)
            await pilot.app.workers.wait_for_complete()
            await pilot.pause()
            texts = screen_texts(app)
            assert_safe(texts)
            seen += "\n".join(texts.values())
        # Shown literally: tags as typed, controls as their pictures, the path and the model name in the title.
        for literal in ["[/i]", "[red]RED[/red]", "[/]", "␛]0;PWNED␇", "␛[2J", "a␀b", "\ufffd", "🦀", "[b]bold[/b]"]:
            assert literal in seen, literal
        assert "[/b]␛]0;PWNED␇" in texts["HeaderTitle"]
        assert app.query_one("#prompt-bar").value == "".join(HOSTILE)  # the data itself is untouched
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        assert app.return_code is None  # nothing crashed


@pytest.mark.anyio
async def test_hostile_prompt_through_the_live_engine(tiny):
    prompt = "".join(HOSTILE)
    app = SpecDecApp(config=SpecConfig(verifier=tiny["verifier"], drafter="same", max_new_tokens=6), prompt=prompt)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("n")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        texts = screen_texts(app)
        assert_safe(texts)
        assert "[red]RED[/red]" in texts["#context-text"] and "␛]0;PWNED␇" in texts["#prompt-bar"]
        assert app.snap.steps and app.return_code is None


# ---- the bytes that reach a real terminal ---------------------------------------------------------------------


def test_no_escape_sequence_from_the_data_reaches_the_terminal(tmp_path):
    folder = tmp_path / "a["
    folder.mkdir()
    trace = hostile_trace(folder / "b]c.jsonl")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm-256color", "TEXTUAL_ANIMATIONS": "none"}
    env.pop("NO_COLOR", None)
    out = run_in_pty([sys.executable, "-m", "specdec_tui.cli", "--replay", str(trace)],
                     [b"n", b"n", b"n", b"\x1b[C", b"\x1b[C", b"?"], env)
    text = out.decode("utf-8", "replace")
    assert "replay loaded" in text and "Traceback" not in text
    assert "␛]0;PWNED␇" in text and "[red]RED[/red]" in text  # drawn, as text
    # Textual's own output: CSI sequences and one OSC 22 (pointer shape, ended by BEL). Nothing else may remain.
    own = re.sub(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b\]22;[a-z-]*\x07|\x1b[=>78]|\x1bP[^\x1b]*\x1b\\\\", b"", out)
    assert b"\x1b" not in own and b"\x07" not in own and b"\x00" not in own
    assert b"\xc2\x9b" not in out and "\u202e".encode() not in out  # C1 CSI, bidi override


def run_in_pty(argv, keys, env, cols=120, rows=40, timeout=60.0) -> bytes:
    """Run a program on a pseudo-terminal, type `keys`, quit with q, return every byte it wrote."""
    import fcntl
    import pty
    import select
    import signal
    import struct
    import termios
    import time

    pid, fd = pty.fork()
    if pid == 0:  # the child: the app
        os.execvpe(argv[0], argv, env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    out = bytearray()

    def read_for(seconds: float) -> bool:
        end = time.time() + seconds
        while time.time() < end:
            if select.select([fd], [], [], 0.05)[0]:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    return False
                if not data:
                    return False
                out.extend(data)
        return True

    deadline = time.time() + timeout
    while time.time() < deadline and b"replay loaded" not in out and read_for(0.2):
        pass
    for key in keys:
        os.write(fd, key)
        read_for(0.4)
    read_for(1.0)
    os.write(fd, b"\x1b")  # leave the help screen
    read_for(0.3)
    os.write(fd, b"q")
    read_for(3.0)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)
    os.close(fd)
    return bytes(out)


# ---- plain and JSON output ------------------------------------------------------------------------------------


@pytest.mark.parametrize("json_mode", [False, True])
def test_headless_output_writes_no_control_bytes(tiny, json_mode, capfdbinary):
    args = ["--headless", "--verifier", tiny["verifier"], "--drafter", tiny["drafter"], "--max-new-tokens", "6",
            "--prompt", "".join(HOSTILE)]
    assert main(args + (["--json"] if json_mode else [])) == 0
    captured = capfdbinary.readouterr()
    out = captured.out + captured.err
    for raw in RAW_CONTROL:
        assert raw.encode("utf-8", "surrogatepass") not in out, raw
    text = captured.out.decode("utf-8")
    if json_mode:
        summary = json.loads(text.splitlines()[-1])
        assert summary["text"].startswith("".join(HOSTILE).replace("\ud800", "\ufffd"))  # exact text, escaped bytes
    else:
        assert "text:\n[/i][red]RED[/red][/]␛]0;PWNED␇␛[2Ja␀b" in text
