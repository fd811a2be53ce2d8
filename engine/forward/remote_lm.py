"""A decoding stream whose passes are requests to a model server (engine/models/server_client.py).

The server keeps no state between requests that the engine can rely on, so the stream holds the token ids a KV
cache would cover and sends all of them with every pass. A pass that needs one row (plain decoding, the prefill)
asks for the next token only, which vLLM answers from its prefix cache; a verify pass needs a row per draft and
asks for prompt logprobs, which vLLM computes over the whole context every time (docs/vllm.md has the cost).

The server answers the top-N of each row, not the whole vocabulary. Each row is turned into logits whose softmax
gives exactly the probabilities the server sent (the top-N and the row's own token), with the mass left over spread
evenly over the other tokens: the argmax is the server's rank-1 token, so greedy verification is exact, and what
the screen shows of p is the server's own numbers. Sampling verification decides with p(draft), which is exact;
what it draws (the bonus token, a correction from the residual max(0, p - q)) comes from the server's own samples:
with `draw_seed` set, each pass's next token is a draw at its last row, and engine/verification/server_draws.py
draws the rest.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch

from ..errors import EngineError, ServerError

TOP_N = 5  # the server's top-N per row: what the screen shows; vLLM's default --max-logprobs is 20


class RemoteModel:
    """The verifier's "model" when it runs on a server: the client, and nothing to compute locally."""

    def __init__(self, client, top_n: int = TOP_N):
        self.client = client
        self.top_n = top_n


class RemoteLM:
    """DecodingStream over a server: `length` tokens held, sent in full with each pass."""

    on_this_cpu = False  # a pass's time is the server's and the network's, not this CPU's

    def __init__(self, model: RemoteModel, vocab_size: int):
        self.model = model
        self.vocab_size = vocab_size
        self.tokens: list[int] = []
        self.hidden = None  # a server exposes no hidden states: drafters that read them are refused
        self.hidden_start = 0
        self.tap_layers: tuple[int, ...] = ()
        self.rows: list = []  # the last pass's server rows (Prediction), oldest first
        self.draw_seed = None  # sampling verification: a callable giving each pass's seed; its next token is a draw

    @property
    def client(self):
        return self.model.client

    @property
    def length(self) -> int:
        return len(self.tokens)

    def reset(self) -> None:
        self.tokens = []

    def extend(self, token_ids: list[int], keep: int = 1, positions: list[int] | None = None,
               mask: torch.Tensor | None = None) -> torch.Tensor:
        """Append `token_ids`; the server's rows for the last `keep` of them, as logits [keep, vocab]."""
        if mask is not None:
            raise EngineError("a server verifier takes no tree attention mask: use chains with --verifier URL")
        tokens = self.tokens + list(token_ids)
        client = self.model.client
        seed = self.draw_seed() if self.draw_seed is not None else None
        if keep == 1:
            rows = [client.next_token(tokens, self.model.top_n, seed)]
        else:
            rows = list(client.score(tokens, self.model.top_n, seed).predictions[-keep:])
        self.tokens = tokens  # only once the server answered: a failed pass leaves the stream as it was
        self.rows = rows
        return logits_of(rows, self.vocab_size)

    def learn(self, row: int, token: int, logprob: float) -> torch.Tensor:
        """Row `row` of the last pass as logits again, now also knowing `token`'s logprob (a draw's): the screen's p
        of a correction drawn outside the top-N is then the server's, not the evenly spread rest."""
        prediction = self.rows[row]
        known = dict(prediction.top)
        known.setdefault(token, logprob)
        self.rows[row] = replace(prediction, top=tuple(sorted(known.items(), key=lambda item: -item[1])))
        return logits_of([self.rows[row]], self.vocab_size)[0]

    def catch_up(self, context: list[int], extra: list[int] = (), keep: int = 1) -> torch.Tensor:
        return self.extend(list(context[self.length:]) + list(extra), keep)

    def rollback(self, length: int) -> None:
        del self.tokens[length:]

    def compact(self, start: int, rows: list[int]) -> None:
        self.tokens = self.tokens[:start] + [self.tokens[row] for row in rows]


def logits_of(rows, vocab: int) -> torch.Tensor:
    """Logits [len(rows), vocab] whose softmax is each row's known probabilities, the rest spread evenly."""
    out = torch.empty(len(rows), vocab)
    for i, row in enumerate(rows):
        known = dict(row.top)
        known.setdefault(row.token, row.logprob)
        if max(known) >= vocab:
            raise ServerError(f"the server sent token id {max(known)}, beyond the local tokenizer's {vocab} tokens: "
                              "is it serving another model?")
        left = max(0.0, 1.0 - sum(math.exp(v) for v in known.values()))
        others = vocab - len(known)
        # Every other token is less likely than the row's known ones (they are outside the top-N), so the evenly
        # spread rest stays below them; the clamp only guards rounding.
        fill = math.log(left / others) if others and left > 0 else -math.inf
        out[i].fill_(min(fill, min(known.values())))
        ids = torch.tensor(list(known), dtype=torch.long)
        out[i, ids] = torch.tensor(list(known.values()), dtype=torch.float32)
        if row.rank == 1 and int((out[i] == out[i, row.token]).sum()) > 1:  # a tie: the server's own pick wins it
            out[i, row.token] = torch.nextafter(out[i, row.token], torch.tensor(math.inf))
    return out
