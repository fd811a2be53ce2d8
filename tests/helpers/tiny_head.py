"""Train a draft head for the tiny test verifier in seconds: its own greedy continuations, its own features."""

from __future__ import annotations

import torch

from engine.drafting.draft_head import HeadShape, save_head, tapped_rows
from engine.forward.fast_llama import FastLlamaLM, rms_norm
from training.head_training import IGNORE, TrainableHead, collate, head_loss, pack

PROMPTS = ["In a distant future,", "def add(a, b):", "The drafter proposes,", "Speculative decoding", "print(",
           "The future of AI", "the verifier checks", "a block of tokens"]


@torch.no_grad()
def verifier_sequences(verifier, n_new: int = 40, taps: tuple[int, ...] = ()):
    """(tokens, normalised features, next-token labels[, tapped inputs]) of the verifier's greedy continuations."""
    model = verifier.model
    sequences = []
    for prompt in PROMPTS:
        lm = FastLlamaLM(model, verifier.vocab_size, verifier.device)
        ids = verifier.tokenizer(prompt).input_ids
        logits = lm.extend(ids, keep=1)
        for _ in range(n_new):
            ids.append(int(logits[-1].argmax()))
            logits = lm.extend(ids[-1:])
        lm = FastLlamaLM(model, verifier.vocab_size, verifier.device)
        lm.tap_layers = taps
        logits = lm.extend(ids[:-1], keep=len(ids) - 1)
        size = model.config.hidden_size
        features = rms_norm(lm.hidden[:, -size:], model.model.norm.weight, model.config.rms_norm_eps)
        sequence = (torch.tensor(ids[:-1]), features, logits.argmax(-1))
        tapped = (tapped_rows(model, lm.hidden[:, :-size], taps),) if taps else ()
        sequences.append(sequence + tapped)
    return sequences


def train_tiny_head(verifier, folder, steps: int = 80, vocab: int = 160, depth: int = 3, seed: int = 0,
                    soft: float = 0.0, taps: tuple[int, ...] = ()):
    """Returns the losses; writes the head to `folder` with a card naming `verifier` (and its tapped layers)."""
    torch.manual_seed(seed)
    sequences = verifier_sequences(verifier, taps=taps)
    counts = torch.bincount(torch.cat([sequence[2] for sequence in sequences]), minlength=verifier.vocab_size)
    vocab_ids = counts.argsort(descending=True)[:vocab]
    index = torch.full((verifier.vocab_size,), IGNORE, dtype=torch.long)
    index[vocab_ids] = torch.arange(vocab)
    rows = pack([(t, f, index[labels], *tapped) for t, f, labels, *tapped in sequences], 128)
    model = verifier.model
    shape = HeadShape.of_verifier(model.config)
    head = TrainableHead(shape, model.model.embed_tokens.weight, model.lm_head.weight[vocab_ids], seed=seed,
                         taps=len(taps))
    optimizer = torch.optim.AdamW(head.parameters(), lr=3e-3)
    losses = []
    for step in range(steps):
        loss, _, _ = head_loss(head, collate(rows), depth, soft=soft)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    card = {"verifier": verifier.name, "vocab_size": verifier.vocab_size, "draft_vocab": vocab, "tap_layers": list(taps)}
    save_head(folder, shape, head.export(vocab_ids), card, dtype=torch.float32)
    return losses
