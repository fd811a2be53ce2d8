"""Training a draft head (engine/drafting/draft_head.py) on the verifier's own features: the model, the masks, the loss.

Sequences are packed into rows of fixed length. Each training step unrolls D drafting passes (HASS / EAGLE-3
"training-time test"): pass 1 reads the verifier's real features, pass m reads the head's own outputs of pass
m - 1, exactly as drafting position m does at inference. The attention mask reproduces what a query at draft
depth m sees at inference: the head's cache entries made from real features up to the position drafting
started from, then one entry from each earlier pass, then its own.

The maths is the inference path's own (engine/forward/fast_llama.py's norm, rotary frequencies and rotation; the head's
format from engine/drafting/draft_head.py); a test checks pass-1 logits against the drafter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.drafting.draft_head import LAYER_NAMES, HeadShape, head_state
from engine.forward.fast_llama import apply_rotary as rotate, inverse_frequencies, rms_norm as rms

IGNORE = -100


@dataclass
class Batch:
    """Packed rows: B rows of T positions; seq == -1 marks padding."""

    tokens: torch.Tensor  # [B, T] token ids
    features: torch.Tensor  # [B, T, H] the verifier's normalised features (post final norm)
    labels: torch.Tensor  # [B, T] the verifier's next token as an index into the head's vocabulary, or IGNORE
    seq: torch.Tensor  # [B, T] which sequence of the row a position belongs to
    pos: torch.Tensor  # [B, T] position within its sequence
    taps: torch.Tensor | None = None  # [B, T, n x H] tapped layers' normalised inputs, for a head that fuses them


class TrainableHead(nn.Module):
    def __init__(self, shape: HeadShape, embed: torch.Tensor, head_rows: torch.Tensor, seed: int = 0, taps: int = 0):
        super().__init__()
        self.shape = shape
        h, kv = shape.hidden_size, shape.n_kv_heads * shape.head_dim
        g = torch.Generator().manual_seed(seed)
        # fuse starts by passing the final feature through and ignoring the taps: the taps' design begins as the
        # plain one, and training decides how much of the lower layers to mix in.
        self.fuse = nn.Parameter(torch.cat((torch.zeros(h, taps * h), torch.eye(h)), dim=1)) if taps else None

        def init(*size, std=0.02):
            return nn.Parameter(torch.randn(*size, generator=g) * std)

        # fc starts as feature + embedding (an identity on each half), so the first pass already carries both.
        self.fc = nn.Parameter(torch.cat((torch.eye(h), torch.eye(h)), dim=1) * 0.5)
        q_out = shape.n_heads * shape.head_dim
        sizes = {
            "input_layernorm": None, "q_proj": (q_out, h), "k_proj": (kv, h), "v_proj": (kv, h), "o_proj": (h, q_out),
            "post_attention_layernorm": None, "gate_proj": (shape.intermediate_size, h),
            "up_proj": (shape.intermediate_size, h), "down_proj": (h, shape.intermediate_size),
        }
        self.layer = nn.ParameterDict({
            name: nn.Parameter(torch.ones(h)) if size is None else init(*size) for name, size in sizes.items()
        })
        self.register_buffer("embed", embed.detach(), persistent=False)
        self.register_buffer("head_rows", head_rows.detach(), persistent=False)
        self.register_buffer("inv_freq", inverse_frequencies(shape.rope_theta, shape.head_dim), persistent=False)

    def weights(self) -> tuple[torch.Tensor, ...]:
        return tuple(self.layer[name] for name in LAYER_NAMES)

    def export(self, vocab_ids: torch.Tensor) -> dict:
        return head_state(self.fc, self.weights(), vocab_ids, self.fuse)

    def first_inputs(self, batch: "Batch") -> torch.Tensor:
        """What the first drafting pass reads at each position: the final feature, fused with the taps if any."""
        if self.fuse is None:
            return batch.features
        return torch.cat((batch.taps, batch.features), dim=-1) @ self.fuse.T

    def one_pass(self, inputs: torch.Tensor, tokens: torch.Tensor, pos: torch.Tensor, earlier: list, mask: torch.Tensor):
        """inputs [B, T, H] (features of the previous position) -> outputs [B, T, H], this pass's (keys, values)."""
        s = self.shape
        B, T, H = inputs.shape
        x = torch.cat((inputs, self.embed[tokens]), dim=-1) @ self.fc.T
        w = self.layer
        hn = rms(x, w["input_layernorm"], s.eps)
        angles = pos[..., None].float() * self.inv_freq
        angles = torch.cat((angles, angles), dim=-1)[:, None]  # [B, 1, T, D]
        cos, sin = angles.cos(), angles.sin()
        q = (hn @ w["q_proj"].T).view(B, T, s.n_heads, s.head_dim).transpose(1, 2)
        k = (hn @ w["k_proj"].T).view(B, T, s.n_kv_heads, s.head_dim).transpose(1, 2)
        v = (hn @ w["v_proj"].T).view(B, T, s.n_kv_heads, s.head_dim).transpose(1, 2)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        keys = torch.cat([e[0] for e in earlier] + [k], dim=2)
        values = torch.cat([e[1] for e in earlier] + [v], dim=2)
        attended = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask[:, None], enable_gqa=True)
        x = x + attended.transpose(1, 2).reshape(B, T, -1) @ w["o_proj"].T
        hn = rms(x, w["post_attention_layernorm"], s.eps)
        x = x + (F.silu(hn @ w["gate_proj"].T) * (hn @ w["up_proj"].T)) @ w["down_proj"].T
        return x, (k, v)

    def logits(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs @ self.head_rows.T


def shift(x: torch.Tensor) -> torch.Tensor:
    """x at position i - 1, for every i (row start: zeros; masked out anyway)."""
    return torch.cat((torch.zeros_like(x[:, :1]), x[:, :-1]), dim=1)


def pass_mask(batch: Batch, depth: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For pass `depth` (1-based): the attention mask [B, T, depth*T] and which queries are real drafting positions.

    A query at i drafts from position i - depth + 1: it sees pass-1 entries j <= i - depth + 1 of its sequence
    (real features, j >= 1), and from each later pass m the single entry j = i - depth + m.
    """
    B, T = batch.seq.shape
    idx = torch.arange(T)
    same = (batch.seq[:, :, None] == batch.seq[:, None, :]) & (batch.seq[:, :, None] >= 0)
    has_entry = batch.pos >= 1  # position 0 of a sequence has no previous feature
    origin = idx[:, None] - depth + 1  # where drafting started, per query
    blocks = [same & (idx[None, None, :] <= origin[None]) & has_entry[:, None, :]]
    for m in range(2, depth + 1):
        blocks.append(same & (idx[None, None, :] == (idx[:, None] - depth + m)[None]))
    mask = torch.cat(blocks, dim=2)
    valid = (batch.pos - depth + 1 >= 1) & (batch.seq >= 0)
    mask[:, idx, (depth - 1) * T + idx] = True  # every query sees its own entry: no all-masked (NaN) rows
    return mask, valid


def head_loss(model: TrainableHead, batch: Batch, depth: int, feature_weight: float = 0.1, soft: float = 0.0):
    """Cross-entropy on the verifier's next token + feature regression, summed over `depth` unrolled passes.

    `soft` mixes in distillation (EAGLE's loss): cross-entropy against the verifier's whole distribution over the
    draft vocabulary, p_verifier = softmax(feature @ head_rows), instead of its argmax alone. The features are the
    verifier's post-norm states, so its logits come free from the same rows the head scores with.
    Returns (loss, per-pass top-1 accuracy over real drafting positions, per-pass CE).
    """
    earlier: list = []
    inputs = shift(model.first_inputs(batch))
    total, accuracies, ces = 0.0, [], []
    p_verifier = None
    if soft:
        with torch.autocast("cpu", enabled=False):  # the teacher in fp32 even when the student trains in bf16
            p_verifier = model.logits(batch.features).softmax(-1)
    for depth_m in range(1, depth + 1):
        mask, valid = pass_mask(batch, depth_m)
        outputs, kv = model.one_pass(inputs, batch.tokens, batch.pos, earlier, mask)
        earlier.append(kv)
        logits = model.logits(outputs)
        # One log-softmax serves both terms, and masked means instead of boolean indexing (no [N, V] copies).
        log_q = logits.float().log_softmax(-1)
        labels = batch.labels.masked_fill(~valid, IGNORE)
        counted = labels != IGNORE
        hard = -(log_q.gather(-1, labels.clamp(min=0)[..., None])[..., 0] * counted).sum() / counted.sum().clamp(min=1)
        weight = valid.float() / valid.sum().clamp(min=1)
        if soft:
            distilled = -((p_verifier * log_q).sum(-1) * weight).sum()
            ce = (1 - soft) * hard + soft * distilled
        else:
            ce = hard
        regression = (F.smooth_l1_loss(outputs.float(), batch.features, reduction="none").mean(-1) * weight).sum()
        total = total + ce + feature_weight * regression
        with torch.no_grad():
            hit = (logits.argmax(-1) == batch.labels) & valid
            accuracies.append(float(hit.sum()) / max(1, int(valid.sum())))
            ces.append(float(ce))
        inputs = shift(outputs)  # the next pass drafts on this pass's predicted features
    return total, accuracies, ces


def pack(sequences: list[tuple[torch.Tensor, ...]], row_length: int) -> list[Batch]:
    """(tokens [n], features [n, H], labels [n][, taps [n, m x H]]) sequences -> rows of `row_length` (B=1 each)."""
    rows, current, used = [], [], 0
    for sequence in sequences:
        sequence = tuple(part[:row_length] for part in sequence)
        if used + len(sequence[0]) > row_length and current:
            rows.append(current)
            current, used = [], 0
        current.append(sequence)
        used += len(sequence[0])
    if current:
        rows.append(current)
    batches = []
    hidden, dtype = sequences[0][1].shape[1], sequences[0][1].dtype
    tap_width = sequences[0][3].shape[1] if len(sequences[0]) > 3 else 0
    for row in rows:
        tokens = torch.zeros(row_length, dtype=torch.long)
        # Rows keep the sequences' dtype (fp16 from train_head.py: 1.2 KB a position, not 2.3); collate makes fp32.
        features = torch.zeros(row_length, hidden, dtype=dtype)
        taps = torch.zeros(row_length, tap_width, dtype=dtype) if tap_width else None
        labels = torch.full((row_length,), IGNORE, dtype=torch.long)
        seq = torch.full((row_length,), -1, dtype=torch.long)
        pos = torch.zeros(row_length, dtype=torch.long)
        at = 0
        for number, (t, f, l, *tapped) in enumerate(row):
            n = len(t)
            tokens[at : at + n], features[at : at + n], labels[at : at + n] = t, f, l
            if taps is not None:
                taps[at : at + n] = tapped[0]
            seq[at : at + n], pos[at : at + n] = number, torch.arange(n)
            at += n
        batches.append(Batch(tokens[None], features[None], labels[None], seq[None], pos[None],
                             None if taps is None else taps[None]))
    return batches


def collate(rows: list[Batch]) -> Batch:
    batch = Batch(*(torch.cat([getattr(r, f) for r in rows]) for f in ("tokens", "features", "labels", "seq", "pos")))
    batch.features = batch.features.float()
    if rows[0].taps is not None:
        batch.taps = torch.cat([r.taps for r in rows]).float()
    return batch


def learning_rate(step: int, total: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))
