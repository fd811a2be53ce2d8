"""Plain decoding with the verifier alone (the baseline), and speculative output compared against it."""

from __future__ import annotations

import time

import torch

from ..forward.cached_lm import open_cached_lm
from ..records.results import BaselineResult, Comparison, Stats
from .acceptance import EMPTY, accept
from .server_draws import draw_seed


@torch.inference_mode()
def plain_decode(verifier, config, prompt_ids: list[int], max_new_tokens: int, vocab: int) -> BaselineResult:
    """Greedy (or sampled, with the verifier's knobs) decoding over its own KV cache, one token per pass."""
    lm = open_cached_lm(verifier.model, vocab, verifier.device, config.forward)
    generator = torch.Generator().manual_seed(config.seed)
    # A server verifier under sampling: each request draws its token there (its rows here are only its top-N).
    on_server = not getattr(lm, "on_this_cpu", True) and config.verify == "sampling"
    draw = None
    if on_server:
        lm.draw_seed = lambda: draw_seed(generator)
        draw = lambda node, refused: lm.rows[-1].token  # noqa: E731  (the last request's own draw)
    tokens = list(prompt_ids)
    logits = lm.extend(tokens)[-1]
    start = time.perf_counter()  # decode throughput, excluding the prefill (as for the session's stats)
    finish = "max_new_tokens"
    for n in range(1, max_new_tokens + 1):
        token = accept(config, EMPTY, logits[None], generator, draw=draw).next_token  # the steps' rule, nothing drafted
        tokens.append(token)
        if token in verifier.eos_ids:
            finish = "eos"
            break
        if len(tokens) >= verifier.context_window:
            finish = "context_window"
            break
        if n < max_new_tokens:
            logits = lm.extend([token])[-1]
    wall = time.perf_counter() - start
    new = tokens[len(prompt_ids) :]
    decode = verifier.tokenizer.decode
    return BaselineResult(
        token_ids=tuple(tokens),
        text=decode(tokens, skip_special_tokens=True),
        generated_text=decode(new, skip_special_tokens=True),
        new_tokens=len(new),
        wall_s=wall,
        finish_reason=finish,
    )


def compare(new_token_ids: list[int], prompt_length: int, stats: Stats, baseline: BaselineResult) -> Comparison:
    theirs = list(baseline.token_ids[prompt_length:])
    n = min(len(new_token_ids), len(theirs))
    first_difference = next((i for i in range(n) if new_token_ids[i] != theirs[i]), None)
    speedup = stats.tokens_per_s / baseline.tokens_per_s if baseline.tokens_per_s else 0.0
    return Comparison(
        lossless=first_difference is None,
        compared_tokens=n,
        first_difference=first_difference,
        speedup=speedup,
        baseline=baseline,
    )
