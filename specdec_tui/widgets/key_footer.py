"""The footer: as many keys as the width holds, the most needed first (`?` lists every key).

Textual's footer lists only `show=True` bindings, in binding order, and cuts the row at the right edge: at 120
columns the last key was cut, and at 200 the row stayed half empty while e, a, x, t, [/], ←/→ were never listed.
Here every binding the screen offers is ranked, pairs share one entry (+/-, ←/→, [/]), and entries are added in
rank order while they fit.
"""

from __future__ import annotations

from rich.cells import cell_len
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

# Binding ids, most needed first. `pane` only exists in the one-pane layout (check_action hides it elsewhere).
RANK = ("step", "play", "reset", "block_size.up", "pane", "help", "quit", "scroll.down", "baseline", "drafter", "draft_mode",
        "verify_mode", "tree", "stats", "position.left", "browse.earlier", "chart", "prompt", "save", "speed",
        "screenshot", "guide")
# Pairs shown as one entry: (key shown, description).
PAIRED = {"block_size.up": ("+/-", "k±1"), "scroll.down": ("PgDn/Up", "Scroll"), "position.left": ("←/→", "Position"), "browse.earlier": ("[/]", "Browse")}
ESSENTIAL = {"step", "play", "reset", "block_size.up", "pane", "help", "quit"}  # kept for tests and docs


class KeyFooter(Footer):
    def compose(self):
        if not self._bindings_ready:
            return
        offered = {}
        for _node, binding, enabled, tooltip in self.screen.active_bindings.values():
            if binding.id in RANK and enabled and binding.id not in offered:
                offered[binding.id] = (binding, tooltip)
        room = (self.app.size.width or 80) - 1
        rank = list(RANK)
        if not self.app.has_class("-compact"):  # PgDn/PgUp matter where panes are cut short, not beside the stats
            rank.remove("scroll.down")
            rank.append("scroll.down")
        chosen = []
        for binding_id in rank:
            if binding_id not in offered:
                continue
            binding, tooltip = offered[binding_id]
            key, description = PAIRED.get(binding_id, (self.app.get_key_display(binding), binding.description))
            width = cell_len(key) + cell_len(description) + 3  # the key's and the description's padding
            if width > room:
                continue  # a shorter entry further down may still fit
            room -= width
            chosen.append((binding_id, binding, key, description, tooltip))
        chosen.sort(key=lambda entry: rank.index(entry[0]))
        self.styles.grid_size_columns = max(1, len(chosen))
        for _id, binding, key, description, tooltip in chosen:
            yield FooterKey(binding.key, key, description, binding.action, tooltip=tooltip or binding.tooltip
                            ).data_bind(compact=Footer.compact)
