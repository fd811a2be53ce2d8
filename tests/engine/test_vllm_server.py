"""The `vllm` tier: the embedded model exported for and served by a real vLLM server (make vllm-env) agrees with
the engine: the same greedy text, the same argmax at every position of a scored prompt, the same token ids; and
sampling verification through it keeps the server's own distribution (a chi-square against --max-logprobs -1).
Skipped, with the reason printed, where the server's environment is absent (tests/conftest.py: vllm_server)."""

from __future__ import annotations

import math

import pytest

from bench.prompts import PROMPTS
from bench.vllm_measure import PROBE_TEXTS, engine_greedy, engine_log_probs

# The server's start-up (~3 min on 2 cores) is set up by the first test: more than the default per-test limit.
pytestmark = [pytest.mark.vllm, pytest.mark.embedded, pytest.mark.timeout(1500)]

NAMES = ["open-ended", "code edit (grounded)"]


@pytest.mark.parametrize("name", NAMES)
def test_the_exported_model_serves_the_engines_greedy_text(vllm_server, embedded, name):
    ids = embedded.tokenizer(PROMPTS[name]).input_ids
    assert vllm_server.greedy(ids, 24) == engine_greedy(embedded, ids, 24)


@pytest.mark.parametrize("name", NAMES)
def test_the_servers_rank_one_tokens_are_the_engines_argmax(vllm_server, embedded, name):
    ids = embedded.tokenizer(PROMPTS[name]).input_ids
    ids = ids + engine_greedy(embedded, ids, 8)  # the tail is the engine's own greedy text: rank 1 throughout
    scored = vllm_server.score(ids, top_n=5)
    argmax = engine_log_probs(embedded, ids).argmax(dim=-1).tolist()
    assert len(scored.predictions) == len(ids)
    assert scored.argmax_ids() == argmax
    assert [p.rank == 1 for p in scored.predictions[:-1]] == [token == best for token, best in zip(ids[1:], argmax)]
    assert all(len(p.top) == 5 for p in scored.predictions)


def test_tokenize_agrees_with_the_engine_tokenizer(vllm_server, embedded):
    for text in PROBE_TEXTS:
        assert vllm_server.tokenize(text) == embedded.tokenizer(text, add_special_tokens=False).input_ids, text


@pytest.mark.parametrize("block_size", [1, 3])
def test_speculative_decoding_against_the_server_is_its_own_greedy_output(vllm_server, block_size):
    """`--verifier URL` end to end: the ngram drafter here, the verify passes there; output = the server's greedy."""
    from engine import Session, SpecConfig

    session = Session.from_config(SpecConfig(verifier=f"{vllm_server.base_url}/v1#{vllm_server.model}",
                                             drafter="ngram", block_size=block_size, max_new_tokens=24))
    for name in NAMES:
        session.reset(PROMPTS[name])
        session.run()
        expected, got = vllm_server.greedy(session.prompt_ids, 24), session.new_token_ids
        n = min(len(got), len(expected))
        assert got[:n] == expected[:n] and abs(len(got) - len(expected)) <= 1, name  # 1: an EOS one side lists


# A prompt whose ngram draft (" four", p = 0.23 by the engine's own forward) the server keeps about a quarter of the
# time: both the kept path and the corrections drawn from its samples happen often, and a rule that draws
# corrections from p instead of the residual moves the draft's frequency (to 0.41) far enough to be caught here.
SAMPLING_PROMPT = "one two three four one two three four one two three"
SAMPLING_RUNS = 400


def test_sampling_against_the_server_keeps_its_distribution(vllm_server, embedded):
    """The first emitted token of sampling verification (ngram drafts, server draws) against the server's whole
    distribution (--max-logprobs -1): it fits p, and it does not fit what a correction drawn from p would give."""
    import torch

    from engine import Session, SpecConfig
    from helpers.chi_square import chi_square_p_value
    from test_remote_sampling import first_tokens

    session = Session.from_config(SpecConfig(verifier=f"{vllm_server.base_url}/v1#{vllm_server.model}",
                                             drafter="ngram", block_size=2, verify="sampling", max_new_tokens=4))
    session.reset(SAMPLING_PROMPT)
    p = torch.zeros(session.vocab)
    for token, logprob in vllm_server.distribution(session.prompt_ids).items():
        if token < session.vocab:
            p[token] = math.exp(logprob)
    counts, steps = first_tokens(session, SAMPLING_PROMPT, SAMPLING_RUNS)
    draft = steps[0].positions[0].draft_id
    assert all(s.positions[0].draft_id == draft for s in steps)
    p_draft = float(p[draft])
    assert 0.1 < p_draft < 0.9, p_draft  # the prompt's premise: both paths are common
    assert sum(s.server_draws > 0 for s in steps) > SAMPLING_RUNS * (1 - p_draft) * 0.7  # corrections: server draws
    assert chi_square_p_value(counts, p.tolist()) > 0.001
    from_p = p * (1 - p_draft)  # a correction drawn from p: the draft again with probability p(x)(1 - p(x)) more
    from_p[draft] = p_draft + (1 - p_draft) * p_draft
    assert chi_square_p_value(counts, from_p.tolist()) < 1e-6
