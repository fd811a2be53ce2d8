"""Every key of the app, with what its action needs: a replay cannot configure, and has no models to time.

The app's BINDINGS come from here; the help screen, the footer, the palette and docs/keys.py read them, and a key
whose need the driver lacks is hidden and answers with the reason (`refusal`).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding

from engine import MAX_BLOCK_SIZE

CONFIGURE = "configure"  # changes the live run's settings or prompt
MODELS = "models"  # runs the models


@dataclass(frozen=True)
class Key:
    binding: Binding  # the tooltip is the line the help screen shows for the key
    needs: str | None = None


KEYS = [
    Key(Binding("n", "step", "Step", id="step", tooltip="one speculative step (draft -> verify -> accept)")),
    Key(Binding("space", "play", "Play", id="play", tooltip="play / pause auto-stepping")),
    Key(Binding("t", "speed", "Play speed", show=False, id="speed",
                tooltip="auto-play speed: no pause, 0.3 s, 1 s between steps")),
    Key(Binding("r", "reset", "Reset", id="reset", tooltip="reset to the prompt")),
    Key(Binding("plus,equals_sign", "block_size(1)", "k+1", id="block_size.up", key_display="+",
                tooltip=f"block size k (drafted tokens per step), 1..{MAX_BLOCK_SIZE}"), CONFIGURE),
    Key(Binding("minus", "block_size(-1)", "k-1", id="block_size.down", key_display="-",
                tooltip=f"block size k (drafted tokens per step), 1..{MAX_BLOCK_SIZE}"), CONFIGURE),
    Key(Binding("w", "next_pane", "Pane", id="pane",
                tooltip="small terminals: next pane under the chips (context, stats, log, position)")),
    Key(Binding("question_mark", "help", "Help", id="help", key_display="?", tooltip="this help (every key)")),
    Key(Binding("h", "guide", "Guide", show=False, id="guide",
                tooltip="the guided start again: drafter, verifier, one pass for k tokens, accepted and speed-up")),
    Key(Binding("q", "quit", "Quit", id="quit", tooltip="quit")),
    Key(Binding("ctrl+p", "command_palette", "Commands", show=False, id="palette", key_display="Ctrl+P",
                tooltip="command palette: search every action by name")),
    Key(Binding("g", "toggle_draft", "Draft", id="draft_mode",
                tooltip="drafting: greedy <-> sampled (temperature, top-k, top-p, penalties)"), CONFIGURE),
    Key(Binding("v", "toggle_verify", "Verify", id="verify_mode", tooltip="verification: greedy <-> speculative sampling"), CONFIGURE),
    Key(Binding("d", "next_drafter", "Drafter", id="drafter",
                tooltip="next drafter: the one you chose, ngram+head (lookup, else the head), head (the trained draft head), same, ngram, early-exit (half the layers); restarts"), CONFIGURE),
    Key(Binding("e", "toggle_tree", "Tree", show=False, id="tree",
                tooltip="chain <-> tree drafts (your --tree shape, else 3,2,1,1) with the same drafter"), CONFIGURE),
    Key(Binding("b", "baseline", "Speed check", id="baseline",
                tooltip="speed check: plain and speculative decoding of this prompt, each timed without pauses: identical output? real speed-up?"), MODELS),
    Key(Binding("m", "toggle_stats", "More stats", show=False, id="stats",
                tooltip="stats: plain view (acceptance, tokens per verifier call, a verdict) <-> full stats (c, r, formula, chart)")),
    Key(Binding("s", "save", "Save", id="save", tooltip="save the steps as a JSON Lines trace (replay with --replay FILE)")),
    Key(Binding("left", "select(-1)", "Position", show=False, id="position.left", key_display="←",
                tooltip="pick a position: the drafter's and verifier's top-5 side by side")),
    Key(Binding("right", "select(1)", "Position", show=False, id="position.right", key_display="→",
                tooltip="pick a position: the drafter's and verifier's top-5 side by side")),
    Key(Binding("left_square_bracket", "browse(-1)", "Earlier step", show=False, id="browse.earlier", key_display="[",
                tooltip="browse earlier steps (view only; n continues from the latest)")),
    Key(Binding("right_square_bracket", "browse(1)", "Later step", show=False, id="browse.later", key_display="]",
                tooltip="back toward the latest step while browsing (view only; n continues from the latest)")),
    Key(Binding("a", "toggle_chart", "Chart", show=False, id="chart",
                tooltip="stats chart: accepted-drafts histogram <-> acceptance over the steps")),
    Key(Binding("p", "focus_prompt", "Prompt", id="prompt",
                tooltip="edit the prompt: Enter restarts from it, Ctrl+J adds a line, Escape cancels the edit"), CONFIGURE),
    Key(Binding("tab,shift+tab", "tab", "Tab", show=False, priority=True, id="tab")),
    Key(Binding("pagedown", "scroll_pane(1)", "Scroll down", show=False, id="scroll.down", key_display="PgDn",
                tooltip="scroll the stats (small terminals: the pane shown under the chips)")),
    Key(Binding("pageup", "scroll_pane(-1)", "Scroll up", show=False, id="scroll.up", key_display="PgUp",
                tooltip="scroll the stats (small terminals: the pane shown under the chips)")),
    Key(Binding("x", "screenshot", "Picture", show=False, id="screenshot",
                tooltip="save a picture of the screen (SVG, named like a saved trace)")),
]

BINDINGS = [key.binding for key in KEYS]
NEEDS = {key.binding.action.partition("(")[0]: key.needs for key in KEYS}

WHY_NOT = {
    CONFIGURE: "this is a replay: its settings and prompt are fixed by the trace",
    MODELS: "the speed check needs the models; a replay has none (run without --replay)",
}


def refusal(action: str, can_configure: bool, has_models: bool) -> str | None:
    """Why `action` cannot run with this driver, or None."""
    need = NEEDS.get(action)
    if need == CONFIGURE and not can_configure or need == MODELS and not has_models:
        return WHY_NOT[need]
    return None
