"""Sampling verification's draws when the verifier is on a server, which sends p(draft) and its top-N, never the
whole distribution: what would be drawn from p or from the residual max(0, p - q) is drawn from the server's own
samples instead.

- A bonus token (after the last draft) and a plain step's token: the verify request itself drew it (the pass's next
  token at temperature 1), so it costs nothing more.
- A correction after a rejected draft x: rejection sampling from p. Draw y ~ p on the server (several per request,
  each with its logprob) and keep y with probability max(0, 1 - q(y) / p(y)). A kept y is distributed as
  max(0, p - q) normalized, exactly: P(draw y and keep it) = p(y) max(0, 1 - q(y)/p(y)) = max(0, p(y) - q(y)).
  Each draw is kept with probability sum max(0, p - q), the residual's mass, so a request asks for about 3 / mass
  draws (a greedy draft's q is a point mass: the mass is 1 - p(x), known exactly), at most `BATCH` a request and
  `REQUESTS` requests. When none is kept by then (a residual of under ~5% of p), the correction comes from the
  server's whole distribution where it sends one (`--max-logprobs -1`), exact again; else from its top-N with the
  rest spread evenly, which is not exact, and the step says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..drafting.sampling import sample
from ..errors import ServerError, ServerRefused
from .acceptance import residual

BATCH = 16  # draws per request at most (vLLM's n; each one costs the server a sampled token, not a pass)
REQUESTS = 4  # requests per correction at most
TARGET_HITS = 3.0  # draws per request ~ this / the residual's mass: one request is enough ~95% of the time


def draw_seed(generator: torch.Generator) -> int:
    """A seed for one server request, from the session's generator: the same seed and server give the same run."""
    return int(torch.randint(0, 2**31 - 1, (), generator=generator))


@dataclass
class ServerDraws:
    """The `draw` of accept_sampled for one step over a RemoteLM's last pass; counts the server's draws it tried."""

    lm: object  # the RemoteLM that ran the step's pass
    context: list[int]  # the tokens before the pass's first row
    node_ids: list[int]  # the drafted tokens (a chain: node i is the i-th draft)
    p_rows: torch.Tensor  # the session's p_verifier rows: a correction's row is made exact for the drawn token
    generator: torch.Generator
    draws: int = 0
    notes: list[str] = field(default_factory=list)

    def __call__(self, node: int, refused_q: list[torch.Tensor]) -> int:
        """The token after `node` (-1: the root) from p, or from the residual after the drafts of `refused_q`."""
        row = node + 1
        last_row = len(self.lm.rows) - 1
        if not refused_q:
            if row != last_row:  # chains only: p itself is drawn only after the last draft
                raise ServerError("a server verifier draws from p only after the last draft")
            return self.lm.rows[-1].token  # the verify request's own draw at temperature 1
        if len(refused_q) > 1:
            raise ServerError("a server verifier cannot resample after several refused siblings (trees are refused)")
        return self._correction(row, refused_q[0])

    def _correction(self, row: int, q_drafter: torch.Tensor) -> int:
        prefix = self.context + self.node_ids[:row]
        p_row = self.p_rows[row]
        mass = float(torch.clamp(p_row - q_drafter, min=0.0).sum())  # exact for a point-mass q, else an estimate
        n = max(1, min(BATCH, math.ceil(TARGET_HITS / max(mass, 1e-3))))
        client = self.lm.client
        for _ in range(REQUESTS):
            draws = client.sample(prefix, n, draw_seed(self.generator))
            for token, logprob in draws:
                self.draws += 1
                if token >= len(q_drafter):
                    raise ServerError(f"the server drew token id {token}, beyond the local tokenizer's {len(q_drafter)} "
                                      "tokens: is it serving another model?")
                keep = max(0.0, 1.0 - float(q_drafter[token]) / math.exp(logprob))
                if float(torch.rand((), generator=self.generator)) < keep:
                    self._show(row, token, logprob)
                    return token
        return self._fallback(row, prefix, q_drafter)

    def _fallback(self, row: int, prefix: list[int], q_drafter: torch.Tensor) -> int:
        tried = self.draws
        try:
            whole = self.lm.client.distribution(prefix)
        except ServerRefused:  # started without --max-logprobs -1 (a server that does not answer fails the step)
            whole = None
        if whole is not None:
            p_exact = torch.full((len(q_drafter),), 0.0)
            ids = torch.tensor([t for t in whole if t < len(q_drafter)], dtype=torch.long)
            p_exact[ids] = torch.tensor([whole[int(t)] for t in ids], dtype=torch.float32).exp()
            self.p_rows[row] = p_exact  # the screen's p at this row is now the server's whole distribution
            self.notes.append(f"none of {tried} server draws fell in max(0, p − q): drawn from the server's whole "
                              "distribution instead (exact)")
            return sample(residual(p_exact, q_drafter), self.generator)
        self.notes.append(f"none of {tried} server draws fell in max(0, p − q), and the server sends only its "
                          "top-N (start it with --max-logprobs -1): drawn from an approximation, NOT exact")
        return sample(residual(self.p_rows[row], q_drafter), self.generator)

    def _show(self, row: int, token: int, logprob: float) -> None:
        self.p_rows[row] = self.lm.learn(row, token, logprob).softmax(-1)
