"""-k auto / --tree auto (engine/planning/auto_plan.py): the choice follows measured costs and acceptance, and stays lossless."""

from dataclasses import replace

import pytest

from conftest import make_session, plain_greedy
from engine import ConfigError, SpecConfig
from engine.planning.auto_plan import FIRST_PRIOR, PROBE_EVERY, Acceptance, AutoPlanner, VerifyCosts
from engine.records.results import Alternative, Decision, Guess, Position, StepResult

FLAT = {1: 0.050, 2: 0.051, 3: 0.052, 4: 0.053, 5: 0.054, 7: 0.056, 9: 0.058, 13: 0.062}  # bf16 on AMX: near free
STEEP = {1: 0.050, 2: 0.065, 3: 0.080, 4: 0.095, 5: 0.110, 7: 0.140, 9: 0.170, 13: 0.230}  # fp32 on 2 cores


def _step(ranks: list[int | None], draft_s: float = 0.0, verify_s: float = 0.05) -> StepResult:
    """A greedy chain step whose position i had the verifier's token at rank ranks[i] of the drafter's top 5
    (None: outside it). The draft is the drafter's top candidate, so rank 1 is a kept draft."""
    positions, accepted = [], 0
    for i, rank in enumerate(ranks):
        top = tuple(Alternative(100 * i + r, f"t{r}", 0.5 / r) for r in range(1, 6))
        verifier_id = 100 * i + rank if rank else 999
        decision = Decision.ACCEPTED if rank == 1 else Decision.REJECTED
        positions.append(Position(index=i, draft_id=100 * i + 1, draft_piece="t1", q_drafter=1.0,
                                  verifier_id=verifier_id, verifier_piece="v", p_verifier=0.5,
                                  p_verifier_of_draft=0.5, decision=decision, draft_top=top))
        if rank != 1:
            break
        accepted += 1
    return StepResult(step=1, block_size=len(ranks), drafted=len(ranks), accepted=accepted, positions=tuple(positions),
                      emitted=(), draft_s=draft_s, verify_s=verify_s, step_s=draft_s + verify_s, verifier_calls=1,
                      draft_mode="greedy", verify_mode="greedy")


def test_verify_costs_interpolate_between_measured_sizes_and_scale_with_the_running_steps():
    costs = VerifyCosts(STEEP)
    assert costs(6) == pytest.approx(0.125) and costs.ratio(13) == pytest.approx(4.6)
    assert costs(17) == pytest.approx(0.230 + 4 * 0.015)  # past the last: the last slope
    costs.observe(3, 2 * 0.080)  # a size's first live pass: only its own price moves
    assert costs(1) == 0.050 and costs(3) > 0.080
    for _ in range(10):
        costs.observe(3, 2 * 0.080)  # live steps keep running twice as slow: every size scales, the ratios do not move
    assert costs(1) > 0.050 and costs.ratio(13) == pytest.approx(4.6)


def test_a_size_that_keeps_costing_more_than_its_curve_is_learnt_and_dropped():
    """The AMD EPYC's 5-row cliff: a start-up curve had r(5) close to r(4), the live 5-row passes cost 1.5x that.
    The planner first picks the chain of 4 drafts (5 rows); after a few such steps it moves to 3 drafts (4 rows)."""
    planner = AutoPlanner(VerifyCosts(FLAT), chain_lengths=(3, 4))
    certain = [1, 1, 1, 1]  # every draft kept: only the costs decide
    for _ in range(30):
        planner.observe(_step(certain, verify_s=FLAT[5]), None)
    assert planner.choose(None, 8).block_size == 4
    for _ in range(15):
        planner.observe(_step(certain, verify_s=FLAT[5] * 1.5), None)  # 4 drafts: a 5-row pass, slow
        planner.observe(_step(certain[:1], verify_s=FLAT[2]), None)  # 1 draft (another source's step): as measured
    costs = planner.costs  # each size's expected cost is what it costs live, a scale alone could not fit both
    assert costs(5) == pytest.approx(1.5 * FLAT[5], rel=0.05) and costs(2) == pytest.approx(FLAT[2], rel=0.05)
    assert planner.choose(None, 8).block_size == 3
    for _ in range(10):
        planner.observe(_step(certain[:3], verify_s=FLAT[4]), None)  # 3 drafts at their curve: nothing moves back
    assert planner.choose(None, 8).block_size == 3


def test_live_passes_overrule_the_start_up_curve_fast():
    """The curve counts as one pass of each size: after three live passes at 0.7x its price, that size's price is
    their mean with the curve counted once, about 0.78x (before, a running average from the curve said 0.85x)."""
    costs = VerifyCosts(STEEP)
    for _ in range(10):
        costs.observe(2, STEEP[2])  # the size the run keeps using costs what the curve said
    assert not costs.tried(4)
    for _ in range(3):
        costs.observe(4, 0.7 * STEEP[4])
    assert costs.tried(4) and costs(4) < 0.8 * STEEP[4]
    assert costs(2) == pytest.approx(STEEP[2], rel=0.05)  # a new size's surprise is mostly its own, not the machine's


def test_a_spike_moves_a_price_as_one_pass_half_as_slow_again():
    """A 2-core VM stalls now and then (a 2-row pass of 224 ms among 45 ms ones): such a pass moves the price of its
    size as a 1.5x one would, so a few spikes do not make a size look dear for the rest of the run."""
    costs, capped = VerifyCosts(STEEP), VerifyCosts(STEEP)
    for _ in range(10):
        costs.observe(2, STEEP[2])
        capped.observe(2, STEEP[2])
    costs.observe(2, 5 * STEEP[2])
    capped.observe(2, 1.5 * STEEP[2])
    assert costs(2) == pytest.approx(capped(2)) and costs(2) < 1.2 * STEEP[2]


def _near_tie() -> AutoPlanner:
    """k=1 expected 1.10x plain; k=2 (3 rows) 0.99x; a plain step's 1-token pass never ran live."""
    planner = AutoPlanner(VerifyCosts(STEEP), chain_lengths=(0, 1, 2))
    for _ in range(10):
        planner.observe(_step([1, None], draft_s=0.02, verify_s=STEEP[3]), None)
        planner.observe(_step([1, 1], draft_s=0.02, verify_s=STEEP[3]), None)
        planner.observe(_step([None], draft_s=0.01, verify_s=STEEP[2]), None)
    return planner


@pytest.mark.parametrize("live", [0.6, 1.2])
def test_a_plain_step_never_timed_live_is_tried_once_when_drafting_barely_pays(live):
    planner = _near_tie()
    trial = planner.choose(None, limit=64)
    assert trial.plain and trial.reason.startswith("auto: plain step; a 1-token pass never ran here: once, to price")
    assert "best drafting: k=1" in trial.reason
    planner.observe(_step([], verify_s=live * STEEP[1]), None, planned_plain=True)
    after = planner.choose(None, limit=64)  # priced live now: plain where it is cheaper than the curve said
    assert after.plain == (live < 1) and "never ran" not in after.reason


@pytest.mark.parametrize("live", [0.5, 1.3])
def test_a_drafting_shape_never_run_is_tried_once_when_near_the_best_and_then_priced_live(live):
    planner = AutoPlanner(VerifyCosts(STEEP), chain_lengths=(1, 2, 3))
    for _ in range(10):  # chains of 1 and 2 drafts ran; a 4-token pass (3 drafts) never did
        planner.observe(_step([1, 1], draft_s=0.002, verify_s=STEEP[3]), None)
        planner.observe(_step([1, None], draft_s=0.002, verify_s=STEEP[3]), None)
        planner.observe(_step([None], draft_s=0.001, verify_s=STEEP[2]), None)
    options = {o.depth: o for o in planner.candidates(None, 64, False)}
    assert options[3].untried and 0.85 * options[1].speedup < options[3].speedup < options[1].speedup
    trial = planner.choose(None, limit=64)
    assert trial.block_size == 3 and trial.reason.endswith("a 4-token pass never ran here: once, to price it live")
    planner.observe(_step([1, 1, 1], draft_s=0.006, verify_s=live * STEEP[4]), None)
    after = planner.choose(None, limit=64)  # priced live now: kept where it costs less than its curve said
    assert (after.block_size == 3) == (live < 1) and "never ran" not in after.reason


def test_acceptance_by_depth_and_rank_is_read_from_the_steps():
    acceptance = Acceptance()
    for _ in range(20):
        acceptance.observe(_step([2]))  # the verifier always wanted the drafter's second choice
    assert acceptance.hit(0, 1) < 0.1 < 0.9 < acceptance.hit(0, 2)
    assert acceptance.hit(1, 1) == pytest.approx(acceptance.hit(0, 1))  # never reached: as deep as seen


def test_a_drafter_the_verifier_agrees_with_gets_long_blocks_and_one_it_does_not_gets_short_ones():
    planner = AutoPlanner(VerifyCosts(STEEP))
    for _ in range(30):
        planner.observe(_step([1, 1, 1, 1], draft_s=0.004, verify_s=STEEP[5]), "lookup")  # passes as measured
        planner.observe(_step([None], draft_s=0.004, verify_s=STEEP[2]), "head")
    assert planner.choose("lookup", limit=64).block_size >= 6
    assert planner.choose("lookup", limit=3).block_size <= 3  # never past the tokens left
    head = planner.choose("head", limit=64)  # never agrees: a draft only costs, so a plain step
    assert head.plain and head.reason.startswith("auto: plain step; drafting (head drafts) would cost more")


def test_plain_steps_are_chosen_where_drafting_does_not_pay_and_a_block_is_drafted_now_and_then_to_see():
    planner = AutoPlanner(VerifyCosts(STEEP))
    for _ in range(20):  # a drafter right 20% of the time, whose pass costs a fifth of a plain step
        for ranks in ([1, None], [None], [None], [None], [None]):
            planner.observe(_step(ranks, draft_s=0.010 * len(ranks), verify_s=STEEP[len(ranks) + 1]), None)
    kinds = []
    for _ in range(3 * PROBE_EVERY):
        plan = planner.choose(None, limit=64)
        kinds.append("plain" if plan.plain else plan.label)
        step = _step([], verify_s=STEEP[1]) if plan.plain else _step([None], draft_s=0.010, verify_s=STEEP[2])
        planner.observe(step, None, planned_plain=plan.plain)
    # A re-measure that finds drafting still losing makes the next wait twice as long.
    assert kinds == ["plain"] * (PROBE_EVERY - 1) + ["k=1"] + ["plain"] * (2 * PROBE_EVERY - 1) + ["k=1"]
    # The planned plain steps do not count as misses: the estimate stays put.
    assert planner.acceptance(None).reached[0] == 100 + 2


def test_with_greedy_drafts_a_plain_run_re_measures_by_a_guess_not_by_a_block():
    """A guess beside a plain step costs a drafting pass and no verify row; it counts at depth 1 as a block's first
    draft would, and its pass times the drafter."""
    planner = AutoPlanner(VerifyCosts(STEEP))
    for _ in range(20):
        for ranks in ([1, None], [None], [None], [None], [None]):
            planner.observe(_step(ranks, draft_s=0.010 * len(ranks), verify_s=STEEP[len(ranks) + 1]), None)
    reached = planner.acceptance(None).reached[0]
    kinds = []
    for i in range(3 * PROBE_EVERY):
        plan = planner.choose(None, limit=64, guesses=True)
        kinds.append("guess" if plan.guess else "plain" if plan.plain else plan.label)
        step = _step([], draft_s=0.002 if plan.guess else 0.0, verify_s=STEEP[1])
        if plan.guess:
            assert plan.plain and plan.reason.startswith("auto: plain step; an unverified guess beside it, to re-measure")
            step = replace(step, guess=Guess("head", 7, "x", 1 if i < PROBE_EVERY else 3), step_s=0.052)
        planner.observe(step, None, planned_plain=plan.plain)
    assert kinds == ["plain"] * (PROBE_EVERY - 1) + ["guess"] + ["plain"] * (2 * PROBE_EVERY - 1) + ["guess"]
    acceptance = planner.acceptance(None)
    assert acceptance.reached[0] == reached + 2 and acceptance.at_rank[0][0] == 20 + 1 and acceptance.at_rank[0][2] == 1
    assert planner.drafting_s[None] < 0.010  # the guesses' 2 ms passes moved the drafting price


def test_a_guess_beside_a_plain_step_changes_no_token_and_no_later_draft(tiny_head, tiny_verifier, monkeypatch):
    """Auto forced into plain runs with a guess every other step: the text is plain greedy's, each guess is judged
    against the verifier's token, and the head's drafts after a guess are those of a head that never guessed."""
    from engine.planning import auto_plan
    from engine.session import prefill

    monkeypatch.setattr(auto_plan, "PLAIN_MARGIN", 1e6)  # a plain step always wins
    monkeypatch.setattr(auto_plan, "PROBE_EVERY", 2)
    monkeypatch.setattr(auto_plan, "PROBE_AT_MOST_EVERY", 2)  # no back-off: a guess every other step
    spec = f"head:{tiny_head[0]}"
    session = make_session(tiny_verifier, spec, block_size_schedule="auto", draft_mode="greedy", max_new_tokens=20)
    session.reset("print(")
    session.run()
    assert session.new_token_ids == plain_greedy(tiny_verifier, session.prompt_ids, 20)
    guesses = [(i, step) for i, step in enumerate(session.steps) if step.guess is not None]
    assert len(guesses) >= 5 and all(step.drafted == 0 for _, step in guesses)
    fresh = make_session(tiny_verifier, spec, block_size=1, draft_mode="greedy")
    for i, step in guesses:
        context = session.tokens[: len(session.prompt_ids) + sum(len(s.emitted) for s in session.steps[:i])]
        assert (step.guess.rank == 1) == (step.guess.token_id == step.emitted[0].token_id)
        prefill(fresh.verifier_lm, fresh.drafter, context)  # a head that never guessed, at the same context
        assert fresh.drafter.propose(context, 1, fresh._knobs(), fresh.generator).ids == [step.guess.token_id]
    ranks = [step.guess.rank for _, step in guesses]
    assert session.planner.acceptance(None).at_rank[0][0] >= ranks.count(1)


def test_a_drafter_with_a_card_starts_from_it_and_times_its_pass_first():
    card = (0.8, 0.9, 0.5)  # kept 80% at depth 1; of those that got there, 90% at depth 2 and 50% at depth 3
    planner = AutoPlanner(VerifyCosts(STEEP), prior_of=lambda source: card if source == "head" else ())
    first = planner.choose("head", limit=64)
    assert first.block_size == 1 and first.reason == "auto: chain k=1 (head drafts); first, to time its drafting pass"
    head, lookup = planner.acceptance("head"), planner.acceptance("lookup")
    assert head.hit(0, 1) == pytest.approx(0.8) and head.hit(1, 1) == pytest.approx(0.9) and head.hit(2, 1) == pytest.approx(0.5)
    assert head.hit(3, 1) == pytest.approx(0.5)  # past the card: as deep as known
    assert lookup.hit(0, 1) == pytest.approx(FIRST_PRIOR) and lookup.hit(1, 1) == pytest.approx(FIRST_PRIOR)
    planner.observe(_step([1], draft_s=0.001, verify_s=STEEP[2]), "head")
    assert planner.choose("head", limit=64).block_size == 2  # the card's cliff at depth 3 ends the chain
    no_cliff = AutoPlanner(VerifyCosts(STEEP), prior_of=lambda source: (0.8, 0.9, 0.9))
    no_cliff.observe(_step([1], draft_s=0.001, verify_s=STEEP[2]), "head")
    assert no_cliff.choose("head", limit=64).block_size > 2


def test_another_text_keeps_what_drafting_costs_and_another_drafter_does_not():
    planner = AutoPlanner(VerifyCosts(STEEP), prior_of=lambda source: (0.8, 0.9, 0.9))
    planner.observe(_step([1], draft_s=0.001, verify_s=STEEP[2]), "head")
    planner.forget_acceptance()  # a new prompt: acceptance starts from the card again, no k=1 block to time the head
    assert planner.acceptance("head").reached == [] and planner.choose("head", limit=64).block_size > 1
    planner.forget_drafter()
    assert "first, to time its drafting pass" in planner.choose("head", limit=64).reason


def test_the_shipped_heads_card_gives_its_acceptance_by_depth(embedded):
    from engine.drafting.drafters import build_drafter

    drafter = build_drafter(SpecConfig(verifier=embedded.name, drafter="ngram+head"), embedded)
    prior = drafter.acceptance_prior("head")
    assert len(prior) == 4 and 0.3 < prior[0] < 0.7 and all(0.3 < p < 0.7 for p in prior[1:])


def test_lookup_starts_from_its_card_in_each_drafter_that_runs_it(embedded):
    """Lookup's card (training/lookup_card.py): ngram+head's lookup drafts only after a 2-token match and kept most
    of its drafts on held-out texts; plain ngram also drafts after 1-token matches and counts a position without a
    match as a miss, so it starts lower at depth 1. Deeper, a copy that was right so far stays right more often."""
    from engine.drafting.drafters import build_drafter

    lookup = build_drafter(SpecConfig(verifier=embedded.name, drafter="ngram+head"), embedded).acceptance_prior("lookup")
    ngram = build_drafter(SpecConfig(verifier=embedded.name, drafter="ngram"), embedded).acceptance_prior(None)
    assert len(lookup) == len(ngram) == 8
    assert 0.6 < lookup[0] < 0.95 and ngram[0] < lookup[0] and all(share > 0.8 for share in lookup[1:])
    planner = AutoPlanner(VerifyCosts(STEEP), prior_of=lambda source: lookup)
    planner.observe(_step([1], verify_s=STEEP[2]), "lookup")  # timed: now the card alone decides
    assert planner.choose("lookup", limit=64).block_size >= 4  # FIRST_PRIOR's 0.4 would draft 1 or 2


def test_without_lookups_card_lookup_starts_from_the_generic_prior(tmp_path, monkeypatch):
    from engine.drafting import lookup_card

    monkeypatch.setattr(lookup_card, "CARD", tmp_path / "missing.json")
    lookup_card.lookup_prior.cache_clear()
    try:
        assert lookup_card.lookup_prior("ngram+head") == ()
        assert Acceptance(lookup_card.lookup_prior("ngram+head")).hit(0, 1) == pytest.approx(FIRST_PRIOR)
    finally:
        lookup_card.lookup_prior.cache_clear()


def test_a_plain_steps_bookkeeping_is_priced_apart_from_a_blocks():
    """A block's records cost more than a plain step's one column: mixed into one figure, plain steps were priced
    like blocks and lost to drafting that barely paid."""
    planner = AutoPlanner(VerifyCosts(STEEP))
    block = _step([1, None], draft_s=0.004, verify_s=STEEP[3])
    plain = _step([], verify_s=STEEP[1])
    for _ in range(10):
        planner.observe(replace(block, step_s=block.step_s + 0.010), None)
        planner.observe(replace(plain, step_s=plain.step_s + 0.001), None, planned_plain=True)
    assert planner.bookkeeping(plain=False) == pytest.approx(0.010) and planner.bookkeeping(plain=True) == pytest.approx(0.001)
    options = {option.label: option for option in planner.candidates(None, limit=8, trees=False)}
    assert options["k=0"].speedup == pytest.approx(1.0)  # the plain option is plain decoding at its own price
    tokens = options["k=2"].tokens
    assert options["k=2"].speedup == pytest.approx(tokens * (STEEP[1] + 0.001) / (2 * 0.002 + STEEP[3] + 0.010))


def test_trees_are_chosen_where_extra_rows_are_cheap_and_the_second_choice_often_wins():
    planner = AutoPlanner(VerifyCosts(FLAT))
    for _ in range(30):
        planner.observe(_step([2], verify_s=FLAT[2]), None)
        planner.observe(_step([1, 3], verify_s=FLAT[3]), None)
    plan = planner.choose(None, limit=64, trees=True)
    assert plan.tree is not None and plan.reason.startswith(f"auto: tree {plan.tree} at depth ")
    assert "expected" in plan.reason and "r(" in plan.reason
    assert planner.choose(None, limit=64, trees=False).tree is None
    steep = AutoPlanner(VerifyCosts({n: 0.05 * n for n in FLAT}))  # every row costs a full pass: no tree pays
    steep.by_source = planner.by_source
    assert steep.choose(None, limit=64, trees=True).tree is None


def test_auto_refuses_a_tree_with_a_fixed_k_and_heuristic_trees():
    with pytest.raises(ConfigError, match="--tree auto .* needs -k auto"):
        SpecConfig(tree="auto")
    with pytest.raises(ConfigError, match="heuristic schedule moves a chain's k, not a tree's shape"):
        SpecConfig(tree="3", block_size_schedule="heuristic")
    assert SpecConfig(tree="auto", block_size_schedule="auto").tree == "auto"


@pytest.mark.parametrize("tree", [None, "auto"])
@pytest.mark.parametrize("drafter_spec", ["drafter", "ngram", "same"])
def test_auto_output_equals_plain_greedy_and_each_step_says_what_it_chose(tiny, tiny_verifier, drafter_spec, tree):
    spec = tiny["drafter"] if drafter_spec == "drafter" else drafter_spec
    session = make_session(tiny_verifier, spec, block_size_schedule="auto", tree=tree, max_new_tokens=24)
    for prompt in ["In a distant future,", "def add(a, b):"]:
        session.reset(prompt)
        session.run()
        assert session.new_token_ids == plain_greedy(tiny_verifier, session.prompt_ids, 24), prompt
        assert all(step.plan and step.plan.startswith("auto: ") for step in session.steps)
        for step in session.steps:  # the step ran what its plan says (a chain may find no lookup match)
            if step.plan.startswith("auto: plain step"):
                assert step.drafted == 0 and ("would cost more than it saves" in step.plan
                                              or "a 1-token pass never ran here: once, to price it live" in step.plan
                                              or "an unverified guess beside it, to re-measure" in step.plan)
                assert (step.guess is not None) == ("unverified guess" in step.plan)
            else:
                assert step.plan.startswith(f"auto: {'tree' if step.tree is not None else 'chain'}"), step.plan


def test_auto_under_sampling_verification_drafts_chains(tiny, tiny_verifier):
    session = make_session(tiny_verifier, tiny["drafter"], block_size_schedule="auto", tree="auto",
                           verify="sampling", max_new_tokens=16)
    session.reset("In a distant future,")
    session.run()
    assert all(step.tree is None for step in session.steps)


def test_headless_summary_shows_the_choice(tiny, capsys):
    import json

    from specdec_tui.cli import main

    assert main(["--headless", "--json", "--verifier", tiny["verifier"], "--drafter", tiny["drafter"],
                 "--max-new-tokens", "12"]) == 0  # -k auto is the default
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    # The tiny drafter costs nearly what the verifier does: after the step that times it, plain steps
    assert summary["auto"].startswith("auto: plain step") and sum(summary["auto_choices"].values()) == summary["steps"]
    assert main(["--headless", "--verifier", tiny["verifier"], "--drafter", "ngram", "-k", "3", "--max-new-tokens", "6"]) == 0
    out = capsys.readouterr().out
    assert "auto:" not in out and "block_size" not in out  # a fixed k: no plan lines
    with pytest.raises(SystemExit, match="2"):
        main(["--headless", "--verifier", tiny["verifier"], "-k", "many"])
    assert "a block size is a number 1..16 or auto, got 'many'" in capsys.readouterr().err


def _stats_text(app) -> str:
    from textual.widgets import Static

    return str(app.query_one("#stats-text", Static).content)


@pytest.mark.anyio
async def test_the_app_shows_the_choice_and_a_key_fixes_k(tiny):
    from conftest import settle
    from specdec_tui.app import SpecDecApp
    from specdec_tui.widgets.status_bar import StatusBar

    app = SpecDecApp(config=SpecConfig(verifier=tiny["verifier"], drafter=tiny["drafter"], max_new_tokens=24,
                                       block_size_schedule="auto"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert "k=auto" in app.sub_title
        await pilot.press("n")
        await settle(pilot)
        assert "auto: chain k=1\n  first, to time its drafting pass" in _stats_text(app)
        await pilot.press("n")
        await settle(pilot)
        # A plain step, kept or (where a 1-token pass was only estimated, by the tiny models' noisy timings) a trial.
        stats = _stats_text(app)
        assert "auto: plain step\n  " in stats and "expected" in stats
        assert "drafting would cost more" in stats or "a 1-token pass never ran here: once, to price it live" in stats
        assert _stats_text(app).startswith("steps 2   k=0")
        from specdec_tui.widgets.verifier_row import VerifierRow

        p_draft_row = str(app.query_one(VerifierRow).content).splitlines()[2]
        assert "plain" in p_draft_row and "bonus" not in p_draft_row  # no drafts: no bonus token either
        await pilot.press("plus")
        assert "(fixed: auto off)" in app.query_one(StatusBar).message.plain
        await pilot.press("n")
        await settle(pilot)
        assert "auto:" not in _stats_text(app) and app.snap.steps[-1].plan is None
        assert "k=auto" not in app.sub_title


@pytest.mark.anyio
async def test_the_app_says_when_the_cpu_is_busy(tiny, monkeypatch):
    import test_cpu_load

    from conftest import settle
    from engine.forward import cpu_load
    from specdec_tui.app import SpecDecApp
    from specdec_tui.widgets.status_bar import StatusBar

    scripted = test_cpu_load.ScriptedCpu(others=1.0)
    monkeypatch.setattr(cpu_load.os, "sysconf", lambda name: 100)
    monkeypatch.setattr(cpu_load.Sample, "now", classmethod(lambda cls: scripted()))
    app = SpecDecApp(config=SpecConfig(verifier=tiny["verifier"], drafter="ngram", max_new_tokens=24, threads=1))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        assert "CPU busy: timings unreliable" in app.query_one(StatusBar).message.plain
        assert "CPU busy: timings unreliable" in _stats_text(app)
        assert "other processes used 1.0 cores" in _stats_text(app)
        await pilot.press("b")  # the speed check's two runs, both under the same load: not comparable
        await settle(pilot)
        assert "CPU busy: not comparable: other processes used 1.0 cores during the plain run" in \
            app.query_one(StatusBar).message.plain
