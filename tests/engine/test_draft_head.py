"""The EAGLE-style draft head: training works, inference matches training, wrong heads are refused."""

import json
import shutil

import pytest
import torch

from conftest import make_session, plain_greedy
from engine import ConfigError, ModelLoadError
from engine.drafting.draft_head import LAYER_NAMES, HeadDrafter, load_head, tapped_rows
from engine.forward.fast_llama import FastLlamaLM, rms_norm
from engine.session import prefill
from training.head_training import Batch, TrainableHead, pass_mask, shift


def test_training_lowers_the_loss_and_the_head_drafts(tiny_head, tiny_verifier):
    folder, losses = tiny_head
    assert sum(losses[-10:]) / 10 < 0.6 * sum(losses[:5]) / 5
    session = make_session(tiny_verifier, f"head:{folder}", block_size=4, draft_mode="greedy", max_new_tokens=40)
    session.reset("In a distant future,")
    session.run()
    assert session.stats.drafted > 0 and session.stats.accepted > 0
    # The trained head beats chance by far on its own verifier's text: most steps keep at least one draft.
    assert session.stats.tokens_per_verifier_call > 1.5


def test_distillation_on_the_verifier_distribution_trains_a_head_that_drafts(tiny_verifier, tmp_path):
    """EAGLE's loss (soft = 1: cross-entropy against p_verifier, not its argmax) trains as well as the hard labels."""
    from helpers.tiny_head import train_tiny_head

    losses = train_tiny_head(tiny_verifier, tmp_path / "soft-head", soft=1.0)
    # Its floor is p_verifier's entropy (not 0), so it falls less than the hard loss does.
    assert sum(losses[-10:]) / 10 < 0.75 * sum(losses[:5]) / 5
    session = make_session(tiny_verifier, f"head:{tmp_path / 'soft-head'}", block_size=4, draft_mode="greedy",
                           max_new_tokens=40)
    session.reset("In a distant future,")
    session.run()
    assert session.stats.tokens_per_verifier_call > 1.5
    assert session.new_token_ids == plain_greedy(tiny_verifier, session.prompt_ids, 40)


def observed_drafter(folder, verifier):
    """A drafter over the head in `folder` that has observed one verifier pass (with the taps the head reads)."""
    head = load_head(folder, verifier)
    drafter = HeadDrafter("head", head, verifier)
    ids = verifier.tokenizer("The drafter proposes, the verifier checks").input_ids
    lm = FastLlamaLM(verifier.model, verifier.vocab_size, verifier.device)
    lm.tap_layers = head.tap_layers
    lm.extend(ids[:-1])
    drafter.reset(ids)
    drafter.observe(lm.hidden_start, lm.hidden)
    return head, drafter, lm, ids


def test_drafting_computes_what_training_computed(tiny_head, tiny_verifier):
    """Pass 1 of the training model and the drafter's real-feature entries agree (same weights, same maths)."""
    head, drafter, lm, ids = observed_drafter(tiny_head[0], tiny_verifier)
    model = tiny_verifier.model
    inference = drafter._forward(drafter.features[: len(ids) - 2], ids[1:-1], 1)
    trainable = TrainableHead(head.shape, model.model.embed_tokens.weight, drafter.head_rows)
    with torch.no_grad():
        trainable.fc.copy_(head.fc)
        for name, weight in zip(LAYER_NAMES, head.layer):
            trainable.layer[name].copy_(weight)
        features = rms_norm(lm.hidden, model.model.norm.weight, model.config.rms_norm_eps)[None]
        n = len(ids) - 1
        batch = Batch(torch.tensor(ids[:-1])[None], features, torch.zeros(1, n, dtype=torch.long),
                      torch.zeros(1, n, dtype=torch.long), torch.arange(n)[None])
        training, _ = trainable.one_pass(shift(features), batch.tokens, batch.pos, [], pass_mask(batch, 1)[0])
    assert torch.allclose(training[0, 1:], inference, atol=1e-4)


@pytest.fixture(scope="module")
def tapped_head(tiny_verifier, tmp_path_factory):
    """A head that fuses the inputs of verifier layers 1 and 2 with its final feature (EAGLE-3): (folder, losses)."""
    from helpers.tiny_head import train_tiny_head

    folder = tmp_path_factory.mktemp("tapped") / "tapped-head"
    return folder, train_tiny_head(tiny_verifier, folder, taps=(1, 2))


@pytest.mark.parametrize("forward", ["lean", "transformers"])
def test_a_head_on_fused_layer_features_trains_and_drafts_losslessly(tapped_head, tiny_verifier, tiny, forward):
    from engine.models.loading import load_model

    folder, losses = tapped_head
    assert sum(losses[-10:]) / 10 < 0.6 * sum(losses[:5]) / 5
    verifier = tiny_verifier if forward == "lean" else load_model(tiny["verifier"], lean=False)
    session = make_session(verifier, f"head:{folder}", block_size=4, draft_mode="greedy", max_new_tokens=40,
                           forward="auto" if forward == "lean" else "transformers")
    assert session.drafter.head.tap_layers == (1, 2) and session.verifier_lm.tap_layers == (1, 2)
    session.reset("In a distant future,")
    session.run()
    assert session.stats.tokens_per_verifier_call > 1.5
    assert session.new_token_ids == plain_greedy(tiny_verifier, session.prompt_ids, 40)
    session.switch_drafter("same")  # a drafter that reads no taps: the verifier stops handing them back
    assert session.verifier_lm.tap_layers == ()


def test_drafting_on_fused_features_computes_what_training_computed(tapped_head, tiny_verifier):
    """The drafter fuses the verifier's tapped rows exactly as the training model fuses prepared ones."""
    head, drafter, lm, ids = observed_drafter(tapped_head[0], tiny_verifier)
    model = tiny_verifier.model
    assert lm.hidden.shape[1] == 3 * model.config.hidden_size
    trainable = TrainableHead(head.shape, model.model.embed_tokens.weight, drafter.head_rows, taps=2)
    with torch.no_grad():
        trainable.fuse.copy_(head.fuse)
        size = model.config.hidden_size
        final = rms_norm(lm.hidden[:, -size:], model.model.norm.weight, model.config.rms_norm_eps)
        n = len(ids) - 1
        batch = Batch(torch.tensor(ids[:-1])[None], final[None], torch.zeros(1, n, dtype=torch.long),
                      torch.zeros(1, n, dtype=torch.long), torch.arange(n)[None],
                      tapped_rows(model, lm.hidden[:, :-size], head.tap_layers)[None])
        assert torch.allclose(trainable.first_inputs(batch)[0], drafter.features[:n], atol=1e-5)
    assert not torch.allclose(head.fuse[:, : 2 * model.config.hidden_size], torch.zeros(()))  # it uses the taps


def test_a_head_that_reads_layers_the_verifier_lacks_is_refused(tapped_head, tiny_verifier, tmp_path):
    deeper = copy_head(tapped_head[0], tmp_path / "deeper", tap_layers=[1, 15])
    with pytest.raises(ConfigError, match=r"reads layers \[1, 15\] but .* has 4"):
        make_session(tiny_verifier, f"head:{deeper}")
    fewer = copy_head(tapped_head[0], tmp_path / "fewer", tap_layers=[1])
    with pytest.raises(ModelLoadError, match="fuse weight of shape"):
        make_session(tiny_verifier, f"head:{fewer}")


def test_a_rejected_block_leaves_the_head_as_if_it_never_drafted(tiny_head, tiny_verifier):
    """The head's cache after steps with rejections equals a fresh head fed the accepted text."""
    spec = f"head:{tiny_head[0]}"
    session = make_session(tiny_verifier, spec, block_size=4, draft_mode="greedy", max_new_tokens=30)
    session.reset("The future of AI")
    session.run()
    assert session.stats.accepted < session.stats.drafted  # some rejections happened
    context = session.tokens[:-1]
    fresh = make_session(tiny_verifier, spec, block_size=4, draft_mode="greedy")
    prefill(fresh.verifier_lm, fresh.drafter, context)
    knobs, generator = session._knobs(), torch.Generator()
    assert session.drafter.propose(context, 4, knobs, generator).ids == fresh.drafter.propose(context, 4, knobs, generator).ids


def test_the_draft_vocabulary_bounds_q(tiny_head, tiny_verifier):
    """q is the head's distribution: zero outside its reduced vocabulary, so speculative sampling stays exact."""
    session = make_session(tiny_verifier, f"head:{tiny_head[0]}", block_size=3, draft_mode="sampled")
    session.reset("In a distant future,")
    proposal = session.drafter.propose(session.tokens, 3, session._knobs(), torch.Generator().manual_seed(0))
    outside = torch.ones(tiny_verifier.vocab_size, dtype=torch.bool)
    outside[session.drafter.head.vocab_ids] = False
    assert proposal.q_drafter[:, outside].sum() == 0
    assert torch.allclose(proposal.q_drafter.sum(-1), torch.ones(3))


def copy_head(source, target, **card_changes):
    shutil.copytree(source, target)
    card = json.loads((target / "card.json").read_text())
    card.update(card_changes)
    (target / "card.json").write_text(json.dumps(card))
    return target


def test_a_head_for_another_model_is_refused(tiny_head, tiny_verifier, tmp_path):
    other = copy_head(tiny_head[0], tmp_path / "other", verifier="HuggingFaceTB/SmolLM2-360M")
    with pytest.raises(ConfigError, match="trained for HuggingFaceTB/SmolLM2-360M"):
        make_session(tiny_verifier, f"head:{other}")
    wider = copy_head(tiny_head[0], tmp_path / "wider", shape={**json.loads((other / "card.json").read_text())["shape"],
                                                                "hidden_size": 576})
    with pytest.raises(ConfigError, match="hidden size 576"):
        make_session(tiny_verifier, f"head:{wider}")
    vocab = copy_head(tiny_head[0], tmp_path / "vocab", vocab_size=49152)
    with pytest.raises(ConfigError, match="vocabulary of 49152"):
        make_session(tiny_verifier, f"head:{vocab}")


def test_a_missing_or_broken_head_says_what_is_wrong(tiny_head, tiny_verifier, tmp_path):
    with pytest.raises(ModelLoadError, match="not a draft head"):
        make_session(tiny_verifier, f"head:{tmp_path}")
    broken = copy_head(tiny_head[0], tmp_path / "broken")
    (broken / "head.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ModelLoadError, match="cannot read the draft head"):
        make_session(tiny_verifier, f"head:{broken}")
    with pytest.raises(ConfigError, match="no trained head ships for"):
        make_session(tiny_verifier, "head")


def test_greedy_with_the_head_is_lossless_at_every_k(tiny_head, tiny_verifier):
    for k in (1, 3, 6):
        session = make_session(tiny_verifier, f"head:{tiny_head[0]}", block_size=k, draft_mode="greedy", max_new_tokens=30)
        session.reset("print(")
        session.run()
        assert session.new_token_ids == plain_greedy(tiny_verifier, session.prompt_ids, 30)


def test_ngram_plus_head_copies_where_the_text_repeats_and_the_head_drafts_elsewhere(tiny_head, tiny_verifier):
    session = make_session(tiny_verifier, f"ngram+head:{tiny_head[0]}", block_size=3, draft_mode="greedy",
                           max_new_tokens=30)
    drafter = session.drafter
    assert drafter.name == f"ngram+head:{tiny_head[0]}"
    assert drafter.pick([5, 6, 7, 5, 6]) is drafter.lookup  # the last two tokens occurred before
    assert drafter.pick([5, 6, 7, 8, 6]) is drafter.head  # a one-token match copies noise: the head drafts
    assert drafter.pick([5, 6, 7, 8, 9]) is drafter.head
    for tree in (None, "2,2"):
        session.configure(tree=tree)
        for prompt, first in [("x = 1\nx = 1\nx = 1\nx = 1", "lookup"), ("print(", "head")]:
            session.reset(prompt)
            assert drafter.pick(session.tokens) is (drafter.lookup if first == "lookup" else drafter.head), prompt
            session.run()
            assert session.steps[0].drafted_by == first
            assert session.new_token_ids == plain_greedy(tiny_verifier, session.prompt_ids, 30)


@pytest.mark.parametrize("drafter", ["same", "head"])
def test_a_confidence_stop_ends_blocks_early_and_stays_lossless(tiny_head, tiny_verifier, drafter):
    """--draft-confidence: a block ends after the first draft the drafter gave less than the threshold."""
    spec = f"head:{tiny_head[0]}" if drafter == "head" else drafter
    for threshold in (0.0, 0.05, 0.999):
        session = make_session(tiny_verifier, spec, block_size=4, draft_mode="greedy", max_new_tokens=30,
                               draft_confidence=threshold)
        session.reset("print(")
        session.run()
        assert session.new_token_ids == plain_greedy(tiny_verifier, session.prompt_ids, 30)
        for step in session.steps[:-1]:  # the last block may be cut by max_new_tokens
            shown = [next(a.prob for a in p.draft_top if a.token_id == p.draft_id)
                     for p in step.positions[: step.drafted]]
            assert all(q >= threshold for q in shown[:-1])  # it drafted on only while it was confident
            assert step.drafted == 4 or shown[-1] < threshold
        if threshold == 0.0:
            assert all(step.drafted == 4 for step in session.steps[:-1])
        if threshold == 0.999:  # tiny models are never that sure
            assert all(step.drafted == 1 for step in session.steps)


@pytest.mark.embedded
def test_the_shipped_head_drafts_above_a_floor_on_new_prompts(embedded):
    """The committed head for SmolLM2 loads, stays lossless, and keeps drafts on prompts it was not trained on.

    Floor: 1.2 tokens per verifier call at k = 4, well under what the shipped head keeps (docs/draft-head.md); a
    broken head or a format change falls to ~1.0."""
    from conftest import make_session as session_for

    session = session_for(embedded, "head", block_size=4, draft_mode="greedy", max_new_tokens=40)
    calls = tokens = 0
    for prompt in ["The main reason people enjoy hiking in the mountains is", "In a distant future,"]:
        session.reset(prompt)
        session.run()
        assert session.new_token_ids == list(session.baseline().token_ids[len(session.prompt_ids):])
        calls, tokens = calls + session.stats.verifier_calls, tokens + session.stats.new_tokens
    assert tokens / calls >= 1.2, tokens / calls
    card = session.drafter.head.card
    assert card["verifier"] == "smollm2-135m" and card["draft_vocab"] == session.drafter.vocabulary == 8192
