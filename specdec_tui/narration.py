"""What one step did, in plain words, and the numbers the accept rule really used. Pure functions (no textual).

Everything here is built from the engine's frozen records (StepResult, Position, TreeNode), so the app, the headless
run and a replayed trace say the same. Pieces from a model are data: `quote` makes them visible, never markup.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine import Decision, Guess, Position, Source, StepResult, TreeNode, expected_speedup, shown

DISCARDED_NOTE = "verifier predictions after a rejected draft are discarded (they assumed the rejected token)"
MATCH_TOLERANCE = 1e-4  # how close min(1, p/q) from the recovered p and q must come to the recorded ratio


def quote(piece: str | None) -> str:
    """A piece as a reader sees it in a sentence: quoted, spaces kept, newline/tab/controls as visible symbols."""
    if piece is None:
        return "''"
    if piece == "":
        return "‹part of a character›"
    return "'" + shown(piece.replace("\n", "↵").replace("\t", "⇥").replace("\r", "␍"), keep="") + "'"


def num(value: float) -> str:
    """A probability with two significant digits at least (0.21, 0.035, 0.9990), so a ratio of two shown numbers
    can be recomputed from them; 0 and 1 exactly as themselves."""
    if value == 0 or value == 1:
        return f"{value:.0f}"
    if 0.1 <= value < 0.995:
        return f"{value:.2f}"
    return f"{value:.2g}" if value < 0.1 else f"{value:.4f}"


def tokens(n: int) -> str:
    return f"{n} token" if n == 1 else f"{n} tokens"


def drafts(n: int) -> str:
    return f"{n} draft" if n == 1 else f"{n} drafts"


# -- the numbers of the sampling rule ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One draft's test under speculative sampling: kept when u < ratio = min(1, p/q).

    p and q are what the rule compared, which need not be what the rows show elsewhere: a greedy draft is a point
    mass (q = 1) whatever the drafter's softmax said, and a tree's later sibling is tested against the residual p
    left by the siblings refused before it. `p` is None where the record does not let us recover it exactly.
    """

    p: float | None
    q: float
    ratio: float
    u: float
    q_why: str | None = None  # why q is what it is, when it is not the drafter's softmax ("greedy draft: q = 1")
    p_why: str | None = None  # why p is not the verifier's plain p ("p after 1 refused sibling")

    @property
    def kept(self) -> bool:
        return self.u < self.ratio

    def shown_ratio(self) -> str:
        return num(self.ratio)

    def shown_u(self) -> str:
        """u with enough digits that the shown u and the shown ratio compare as the rule did."""
        for digits in (2, 3, 4, 6):
            u, r = round(self.u, digits), round(self.ratio, digits)
            if (u < r) == self.kept and u != r:
                return f"{self.u:.{digits}f}"
        return f"{self.u:.8f}"

    def shown_ratio_for_u(self) -> str:
        """The ratio at the same number of digits as shown_u (so `u=0.321 ≥ 0.320` reads right)."""
        digits = len(self.shown_u().partition(".")[2])
        return f"{self.ratio:.{digits}f}" if digits > 2 else num(self.ratio)


def _why_point_mass(result: StepResult) -> str:
    """Why the rule's q is 1: the draft was certain to be picked, whatever the drafter's softmax said."""
    if result.drafted_by == "lookup":
        return "copied draft: q = 1"
    if result.draft_mode == "greedy":
        return "greedy draft: q = 1"
    return "top-k/top-p left only this token: q = 1"


def _agrees(p: float, q: float, ratio: float) -> bool:
    return q > 0 and abs(min(1.0, p / q) - ratio) <= MATCH_TOLERANCE


def chain_rule(result: StepResult, position: Position) -> Rule | None:
    """The sampling rule's numbers at a chain position (None where no draft was tested)."""
    if position.accept_prob is None or position.draw is None or position.draft_id is None:
        return None
    if result.tree is not None:
        node = tree_node_at(result, position.index)
        return node_rule(result, node) if node is not None else None
    q = position.q_drafter if position.q_drafter is not None else 1.0
    p = position.p_verifier_of_draft
    why = _why_point_mass(result) if q >= 1.0 else None
    if p is None or not _agrees(p, q, position.accept_prob):
        p = None
    return Rule(p, q, position.accept_prob, position.draw, why)


def tree_node_at(result: StepResult, column: int) -> TreeNode | None:
    """The node a chain column of a tree step shows: the path's node, or the first sibling refused after it."""
    tree = result.tree
    if column < len(tree.path):
        return tree.nodes[tree.path[column]]
    if column == len(tree.path):
        refused = tree.children(tree.path[-1] if tree.path else -1)
        return refused[0] if refused else None
    return None


def node_rule(result: StepResult, node: TreeNode) -> Rule | None:
    """The sampling rule's numbers at a tree node, recovered from the siblings tried before it.

    Top-k (and copied) children are point masses: q = 1, and refusing sibling x leaves p with x's mass removed, so
    p' = p(x) / (1 − p of the earlier siblings). Sampled children are drawn without replacement: q' = q(x) / (1 − q
    of the earlier siblings); their residual p' needs the whole distribution, so it is recovered as ratio · q' where
    the ratio is below 1, and only bounded (p' ≥ q') where it is 1. Every recovered pair is checked against the
    recorded ratio; one that does not reproduce it is not shown.
    """
    if node.accept_prob is None or node.draw is None:
        return None
    siblings = result.tree.children(node.parent)
    earlier = siblings[: [s.index for s in siblings].index(node.index)]
    n = len(earlier)
    p_why = f"p after {n} refused sibling{'s' if n != 1 else ''}" if n else None
    point_mass = node.q_drafter >= 1.0 or result.draft_mode == "greedy" or result.tree.shape.startswith("dynamic")
    if point_mass:
        left = 1.0 - sum(s.p_verifier_of_draft for s in earlier)
        p = node.p_verifier_of_draft / left if left > 1e-12 else node.p_verifier_of_draft
        rule = Rule(p, 1.0, node.accept_prob, node.draw, _why_point_mass(result), p_why)
        return rule if _agrees(p, 1.0, node.accept_prob) else Rule(None, 1.0, node.accept_prob, node.draw,
                                                                   _why_point_mass(result), p_why)
    left = 1.0 - sum(s.q_drafter for s in earlier)
    q = node.q_drafter / left if left > 1e-12 else node.q_drafter
    q_why = f"q without the {n} sibling{'s' if n != 1 else ''} drawn before it" if n else None
    if not n:
        p = node.p_verifier_of_draft
        return Rule(p if _agrees(p, q, node.accept_prob) else None, q, node.accept_prob, node.draw, q_why)
    p = node.accept_prob * q if node.accept_prob < 1.0 else None
    return Rule(p, q, node.accept_prob, node.draw, q_why, p_why)


def rule_sentence(rule: Rule) -> str:
    """Greek-free: 'p 0.21 / q 1 (greedy draft: q = 1) → kept with probability 0.21; drew u = 0.32, so rejected'."""
    p = "p ?" if rule.p is None else f"p {num(rule.p)}"
    why = "; ".join(w for w in (rule.p_why, rule.q_why) if w)
    parts = f"{p} / q {num(rule.q)}" + (f" ({why})" if why else "")
    verdict = "kept" if rule.kept else "rejected"
    sign = "<" if rule.kept else "≥"
    return (f"{parts}: kept with probability {rule.shown_ratio()}; drew u = {rule.shown_u()} "
            f"{sign} {rule.shown_ratio_for_u()}, so {verdict}")


# -- the step in one paragraph -----------------------------------------------------------------------------------


def _ending(result: StepResult) -> str:
    reason = {"eos": "the model ended the text", "max_new_tokens": "the token limit was reached",
              "context_window": "the context window is full"}
    return f" Then {reason.get(result.finish_reason, 'the text ended')}." if result.finish_reason else ""


def _count(result: StepResult) -> str:
    calls = result.verifier_calls or 1
    return f"{tokens(len(result.emitted))} for {calls} verifier pass{'es' if calls != 1 else ''}."


def narrate(result: StepResult) -> str:
    """One paragraph a newcomer reads in ten seconds: what was drafted, what the verifier did, what was kept."""
    if not result.drafted:
        emitted = quote(result.emitted_text) if result.emitted else "nothing"
        if result.planned_trial:
            why = "auto chose a plain step once, to time one on this machine: it had only an estimate of its cost"
        elif result.planned_plain:
            why = "auto chose a plain step, as drafting here is expected to cost more time than it saves"
        else:
            why = "no earlier match to copy, or no room left"
        return (f"Nothing was drafted this step ({why}): the verifier produced {emitted} on its own, as plain "
                f"decoding would.{_guess_story(result)} {_count(result)}{_ending(result)}")
    if result.tree is not None:
        return _narrate_tree(result)
    guess = quote("".join(p.draft_piece or "" for p in result.positions[: result.drafted]))
    text = f"The drafter guessed {guess}. "
    text += _sampling_story(result) if result.verify_mode == "sampling" else _greedy_story(result)
    return f"{text} {_count(result)}{_ending(result)}"


def guess_line(guess: Guess) -> str:
    """The guess in a few words, for the stats: "guessed ' the': right"."""
    if guess.token_id is None:
        return "nothing to guess: a miss"
    outcome = "right" if guess.rank == 1 else f"the verifier's token was #{guess.rank}" if guess.rank else "wrong"
    return f"guessed {quote(guess.piece)}: {outcome}"


def _guess_story(result: StepResult) -> str:
    """A plain step's unverified guess, in words: what it guessed and whether the verifier's token was it. One
    short sentence: at 80x24 a longer story pushes the pane below it off the screen."""
    guess = result.guess
    if guess is None:
        return ""
    who = f"The {guess.source}" if guess.source else "The drafter"
    if guess.token_id is None:
        return f" {who} had nothing to guess here: a miss."
    verdict = ("right" if guess.rank == 1 else f"wrong (the verifier's token was its #{guess.rank})"
               if guess.rank else "wrong (not among its top 5)")
    return f" {who}'s unverified guess, {quote(guess.piece)}, was {verdict}."


def _kept_pieces(result: StepResult) -> str:
    return quote("".join(p.draft_piece or "" for p in result.positions[: result.accepted]))


def _final(result: StepResult) -> tuple[Position | None, str]:
    """The verifier's own token of the step (correction or bonus), and what it was."""
    for p in result.positions:
        if p.decision is Decision.REJECTED:
            return p, "correction"
        if p.decision in (Decision.BONUS, Decision.PLAIN):
            return p, "bonus"
    return None, "none"


def _greedy_story(result: StepResult) -> str:
    final, kind = _final(result)
    kept = result.accepted
    if kind == "correction":
        agreed = f"The verifier agreed with {_kept_pieces(result)} but" if kept else "The verifier"
        return (f"{agreed} preferred {quote(final.verifier_piece)} over {quote(final.draft_piece)}: kept "
                f"{drafts(kept)}, took {quote(final.verifier_piece)} from the verifier (the block stops at the first "
                f"mismatch).")
    if kind == "bonus":
        return (f"The verifier agreed with all {kept}: kept {drafts(kept)} and added its own next token "
                f"{quote(final.verifier_piece)} as a bonus.")
    stopped = sum(p.decision is Decision.STOPPED for p in result.positions)
    if stopped:
        return f"The verifier agreed with {_kept_pieces(result)}: kept {drafts(kept)}; the text ended before the rest."
    return f"The verifier agreed with all {kept}: kept {drafts(kept)} (no bonus token: bonus tokens are off)."


def _sampling_story(result: StepResult) -> str:
    kept, refused = [], ""
    for p in result.positions:
        rule = chain_rule(result, p)
        if rule is None:
            continue
        if rule.kept:  # kept drafts in brief; the refused one in full, as that is where the step turned
            kept.append((quote(p.draft_piece), f"{rule.shown_u()} < {rule.shown_ratio_for_u()}"))
        else:
            refused = f"{quote(p.draft_piece)}: {rule_sentence(rule)}."
    story = ""
    if kept:
        story = f"{', '.join(piece for piece, _ in kept)} kept (u < min(1, p/q): {', '.join(t for _, t in kept)})"
        story += "; " if refused else ". "
    story += refused
    final, kind = _final(result)
    if kind == "correction":
        story += (f" Kept {drafts(result.accepted)}; {quote(final.verifier_piece)} drawn from the leftover "
                  f"max(0, p − q).")
        story += _server_draws(result)
    elif kind == "bonus":
        story += f"Kept all {result.accepted}; bonus {quote(final.verifier_piece)} drawn from the verifier's p."
    return story.strip()


def _server_draws(result: StepResult) -> str:
    """A server verifier sends no whole distribution: its correction came from its own samples (server_draws.py)."""
    if result.draw_note:
        return f" The server's samples: {result.draw_note}."
    if result.server_draws:
        return (f" The server drew it: its draw {result.server_draws} from p, the first kept (each is kept with "
                f"probability max(0, 1 − q/p)).")
    return ""


def _narrate_tree(result: StepResult) -> str:
    tree = result.tree
    path = "".join(tree.nodes[i].piece for i in tree.path)
    tried = sum(n.decision is not Decision.NOT_REACHED for n in tree.nodes)
    refused = tried - len(tree.path)
    text = f"A tree of {len(tree.nodes)} candidates ({tree.depth} deep), all checked in one verifier pass: "
    if tree.path:
        text += (f"the branch {quote(path)} was kept ({drafts(len(tree.path))}; {refused} other"
                 f"{'s' if refused != 1 else ''} tried and refused)")
    else:
        text += f"every candidate for the first token was refused ({tried} tried)"
    last = result.emitted[-1] if result.emitted else None
    if last is not None and len(result.emitted) > len(tree.path):
        if last.source.value == "bonus":
            text += f", then {quote(last.piece)} as a bonus"
        else:
            drawn = ", drawn from the leftover max(0, p − q)" if result.verify_mode == "sampling" else ""
            text += f", then {quote(last.piece)} from the verifier{drawn}"
    return f"{text}. {_count(result)}{_ending(result)}"


# -- the notebook's per-position lines (headless) ------------------------------------------------------------------


def notebook_lines(result: StepResult) -> list[str]:
    """`[0] draft=' the' vs greedy=' the' -> ACCEPT`, then `MISMATCH -> take greedy and STOP`, as the seed notebook
    prints them (sampling: the draw against min(1, p/q) instead of the match)."""
    if result.tree is not None:
        return _tree_notebook_lines(result)
    lines = []
    sampling = result.verify_mode == "sampling"
    for p in result.positions:
        if p.draft_id is None:
            if p.decision in (Decision.BONUS, Decision.PLAIN):
                what = "bonus" if p.decision is Decision.BONUS else "plain"
                lines.append(f"[{p.index}] no draft -> {what}: take {'sample' if sampling else 'greedy'}"
                             f"={quote(p.verifier_piece)}")
            continue
        head = f"[{p.index}] draft={quote(p.draft_piece)} vs {'sample' if sampling else 'greedy'}={quote(p.verifier_piece)}"
        rule = chain_rule(result, p) if sampling else None
        if p.decision is Decision.ACCEPTED:
            tail = f"u={rule.shown_u()} < {rule.shown_ratio_for_u()} -> ACCEPT" if rule else "ACCEPT"
        elif p.decision is Decision.REJECTED:
            if rule:
                tail = (f"u={rule.shown_u()} >= {rule.shown_ratio_for_u()} -> REJECT, draw "
                        f"{quote(p.verifier_piece)} from max(0, p - q) and STOP")
            else:
                tail = "MISMATCH -> take greedy and STOP"
        elif p.decision is Decision.STOPPED:
            tail = "past the end of the text"
        else:
            continue  # after the stop: the notebook breaks out of its loop
        lines.append(f"{head} -> {tail}")
    return lines


# -- the plain stats' verdict --------------------------------------------------------------------------------------


def path_acceptance(stats) -> float | None:
    """Accepted drafts over drafted positions (a tree counts its depth per step, not every sibling it tried): for a
    chain the plain acceptance rate, for a tree the share of its depth the accepted path reached."""
    positions = sum(stats.per_position_drafted)
    return stats.accepted / positions if positions else None


def break_even(k: int, c: float, r: float = 1.0) -> float | None:
    """The acceptance rate at which drafting k tokens matches plain decoding (speed-up 1) by the formula; None when
    it cannot pay at k even with every draft accepted."""
    if expected_speedup(1.0, k, c, r) < 1.0:
        return None
    low, high = 0.0, 1.0
    for _ in range(40):
        mid = (low + high) / 2
        low, high = (mid, high) if expected_speedup(mid, k, c, r) < 1.0 else (low, mid)
    return high


def verdict_lines(theory, acceptance: float | None, timed: bool) -> list[str]:
    """'so far 0.87x: slower', 'the drafter is right 21% of the time;', 'at k=2 it needs about 45%' (≤ 42 columns)."""
    if not theory.known or theory.measured_speedup is None:
        return ["speed: after a step with drafts"]
    speed = theory.measured_speedup
    word = "faster" if speed > 1.02 else "slower" if speed < 0.98 else "about even"
    lines = [f"so far {speed:.2f}x: {word}" + (" (timed by b)" if timed else " (live steps)")]
    if acceptance is not None:
        lines.append(f"the drafter is right {100 * acceptance:.0f}% of the time;")
    need = break_even(theory.k, theory.cost_ratio, theory.verify_cost_ratio or 1.0)
    if need is None:
        lines.append(f"at k={theory.k} it cannot pay even at 100%")
    else:
        lines.append(f"at k={theory.k} it needs about {100 * need:.0f}% to pay")
    return lines


def _tree_notebook_lines(result: StepResult) -> list[str]:
    """A tree step as the notebook would print it: every candidate tried, in the order the rule tried them."""
    tree = result.tree
    sampling = result.verify_mode == "sampling"
    mode = "sample" if sampling else "greedy"
    lines = []
    tried = []  # level by level along the accepted path: every child of the path's node, in drafting order
    parent = -1
    while True:
        children = tree.children(parent)
        tried += children
        kept = next((c for c in children if c.decision in (Decision.ACCEPTED, Decision.STOPPED)), None)
        if kept is None:
            break
        parent = kept.index
    for node in tried:
        if node.decision not in (Decision.ACCEPTED, Decision.REJECTED, Decision.STOPPED):
            continue
        _, piece, _, _ = tree.verifier_before(node)
        rule = node_rule(result, node) if sampling else None
        head = f"[{node.depth - 1}] draft={quote(node.piece)}"
        if node.decision is Decision.STOPPED:
            lines.append(f"{head} -> past the end of the text")
        elif node.decision is Decision.ACCEPTED:
            tail = f"u={rule.shown_u()} < {rule.shown_ratio_for_u()} -> ACCEPT" if rule else f"vs {mode}={quote(piece)} -> ACCEPT"
            lines.append(f"{head} {tail}")
        else:
            tail = (f"u={rule.shown_u()} >= {rule.shown_ratio_for_u()} -> REJECT, try the next sibling" if rule
                    else f"vs {mode}={quote(piece)} -> MISMATCH")
            lines.append(f"{head} {tail}")
    last = result.emitted[-1] if result.emitted else None
    if last is not None and len(result.emitted) > len(tree.path):
        if last.source is Source.BONUS:
            lines.append(f"[{len(tree.path)}] end of the branch -> bonus: take {mode}={quote(last.piece)}")
        else:
            take = (f"draw {quote(last.piece)} from the leftover max(0, p - q)" if sampling
                    else f"take greedy={quote(last.piece)}")
            lines.append(f"[{len(tree.path)}] no candidate left -> {take} and STOP")
    return lines
