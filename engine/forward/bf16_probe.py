"""Is the bf16 forward exact on this CPU? Probed at run time on the model's own matrices, never assumed.

--forward bf16 promises output bit-identical to plain decoding at bf16. That holds only where a row's result does
not depend on how many rows share the pass, which is a property of the CPU's kernels, not of the code: on an Intel
Xeon with AMX (oneDNN) bf16 products were batch-invariant up to 32 rows; on an AMD EPYC with avx512_bf16 and no AMX
a 2-row product already differs from the same rows one at a time. So a bf16 session first runs the real pass
(decoder layer 0 with its padded attention, then the LM head) on a few rows one at a time and in blocks of
2..33 rows, and compares the bits. Tens of milliseconds, once per model and process.
"""

from __future__ import annotations

import torch

from ..errors import EngineError

# Block sizes checked against one row at a time: chains (2..17 rows), trees up to 32 nodes + the pending token, and
# both sides of the 32-row pieces (fast_llama._BF16_ROWS). Not every size: the LM head's product is the cost here.
ROW_COUNTS = (2, 3, 4, 5, 8, 9, 16, 17, 31, 32, 33)
_CONTEXT = 5  # rows already in the cache before the probed ones, as in a step after the prompt

_RESULTS: dict[int, str | None] = {}  # id of the bf16 head copy -> None (exact) or why not


def refusal(reason: str) -> str:
    return (f"--forward bf16 is not exact on this CPU: bf16 products here depend on the batch size ({reason}), so "
            "speculative output would differ from plain decoding. Use the default forward (--forward auto, fp32).")


def require_exact_bf16(lm) -> None:
    """Refuse a bf16 verifier stream whose pass is not batch-invariant on this CPU (a drafter's may differ freely)."""
    reason = batch_variance(lm)
    if reason is not None:
        raise EngineError(refusal(reason))


def batch_variance(lm) -> str | None:
    """None when every probed row has the same bits alone and in a block; else where the first difference was."""
    key = id(lm.head)
    if key not in _RESULTS:
        _RESULTS[key] = _probe(lm)
    return _RESULTS[key]


@torch.inference_mode()
def _probe(lm) -> str | None:
    from .fast_llama import KVCache, decoder_layer, padded_mask, rms_norm, rotary

    rows = max(ROW_COUNTS)
    ids = torch.arange(_CONTEXT + rows) * 7919 % lm.vocab_size  # spread over the vocabulary: unlike rows
    x = lm.embed[ids]
    shape = lm.shape
    cache = KVCache(1, shape.n_kv_heads, shape.head_dim, torch.bfloat16)
    cache.reserve(_CONTEXT + rows, keep=0)

    def layer(block: torch.Tensor, start: int) -> torch.Tensor:
        cos, sin = rotary(lm.inv_freq, start, start + len(block))
        mask = padded_mask(None, len(block), start)
        return decoder_layer(block, lm.layers[0], cache.keys[0], cache.values[0], start, cos, sin, mask, shape,
                             lm.product, lm.attention)

    layer(x[:_CONTEXT], 0)
    alone = torch.cat([layer(x[_CONTEXT + i:_CONTEXT + i + 1], _CONTEXT + i) for i in range(rows)])
    for count in ROW_COUNTS:
        block = layer(x[_CONTEXT:_CONTEXT + count], _CONTEXT)
        if not torch.equal(block, alone[:count]):
            return f"a decoder layer's pass of {count} rows differs from the same rows one at a time"
    # The head reads 49k x 576 weights a row: compare each block's first and last rows only, each computed alone once.
    normed = rms_norm(alone, lm.final_norm, shape.eps)
    head_alone = {i: lm.product(normed[i:i + 1], lm.head)[0] for c in ROW_COUNTS for i in (0, c - 1)}
    for count in ROW_COUNTS:
        block = lm.product(normed[:count], lm.head)
        if not all(torch.equal(block[i], head_alone[i]) for i in (0, count - 1)):
            return f"the LM head's product of {count} rows differs from the same rows one at a time"
    return None
