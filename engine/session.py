"""A speculative-decoding session: prefill, then steps of draft -> verify -> accept, with KV caches.

One verifier forward pass per step scores all k drafts; both caches are cropped back to the accepted length.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch

from .acceptance import accept_greedy, accept_sampled
from .cached_lm import DecodingStream, open_cached_lm
from .config import MAX_BLOCK_SIZE, SpecConfig
from .drafters import DraftKnobs, ModelDrafter, NgramDrafter, Proposal, early_exit_view
from .errors import ConfigError, EngineError, PromptError
from .models import LoadedModel, Progress, load_model
from .pieces import PieceDecoder
from .results import (
    Alternative,
    BaselineResult,
    Comparison,
    Decision,
    Position,
    Source,
    Stats,
    StepResult,
    Token,
)
from .sampling import sample, warp
from .tokenizer_check import check_same_tokenizer

TOP_ALTERNATIVES = 5


def build_drafter(config: SpecConfig, verifier: LoadedModel, progress: Progress | None = None):
    """The drafter a config names; its vocabulary starts as the verifier's (Session narrows it if needed)."""
    vocab = verifier.vocab_size
    spec = config.drafter.strip()
    if spec == "same":
        # The verifier's own instance (no second copy of the weights), drafting with its own cache.
        return ModelDrafter("same", open_cached_lm(verifier.model, vocab, verifier.device, config.forward), shares_verifier_weights=True)
    if spec == "ngram":
        return NgramDrafter(vocab, config.ngram_max)
    if spec.startswith("early-exit"):
        _, _, count = spec.partition(":")
        layers = len(getattr(getattr(verifier.model, "model", None), "layers", ()))
        if count == "":
            count = str(max(1, layers // 2))  # plain `early-exit`: half the verifier's layers
        if not count.isdigit():
            raise ConfigError(f"early-exit drafter needs a layer count, e.g. early-exit:8 (got {spec!r})")
        view = early_exit_view(verifier.model, int(count))
        return ModelDrafter(spec, open_cached_lm(view, vocab, verifier.device, config.forward), shares_verifier_weights=True)
    drafter = load_model(spec, config.device, progress, config.trust_remote_code, lean=config.forward == "auto")
    check_same_tokenizer(verifier.name, verifier.tokenizer, drafter.name, drafter.tokenizer)
    return ModelDrafter(spec, open_cached_lm(drafter.model, vocab, drafter.device, config.forward), shares_verifier_weights=False)


# ---- the phases of one step -------------------------------------------------------------------------------


def prefill(verifier_lm: DecodingStream, drafter, prompt_ids: list[int]) -> None:
    """Cache all prompt tokens but the last; the first step feeds it together with the drafts."""
    verifier_lm.reset()
    if len(prompt_ids) > 1:
        verifier_lm.extend(prompt_ids[:-1])
    drafter.reset(prompt_ids)


def draft(drafter, context: list[int], k: int, knobs: DraftKnobs, generator: torch.Generator) -> Proposal:
    return drafter.propose(context, k, knobs, generator)


def verify(verifier_lm: DecodingStream, context: list[int], draft_ids: list[int]) -> torch.Tensor:
    """One forward pass over [pending context tokens] + drafts: verifier logits for the k + 1 positions."""
    return verifier_lm.catch_up(context, extra=draft_ids, keep=len(draft_ids) + 1)


@dataclass(frozen=True)
class Verdict:
    accepted: int
    next_token: int | None  # None when all k were accepted and bonus tokens are off
    verifier_ids: list[int]  # the verifier row: its token at each of the k + 1 positions
    p_verifier: torch.Tensor  # [k + 1, V]
    accept_probs: tuple[float, ...] = ()
    draws: tuple[float, ...] = ()


def accept(
    config: SpecConfig, proposal: Proposal, logits: torch.Tensor, generator: torch.Generator
) -> Verdict:
    k = len(proposal.ids)
    argmax = logits.argmax(dim=-1).tolist()
    if config.verify == "greedy":
        p_verifier = logits.softmax(dim=-1)
        accepted = accept_greedy(proposal.ids, argmax)
        next_token = argmax[accepted]
        verifier_ids = argmax
        probs, draws = (), ()
    else:
        p_verifier = warp(logits, config.temperature, config.top_k, config.top_p)
        # With no drafts (an n-gram miss) this samples the verifier's own token from p.
        verdict = accept_sampled(proposal.ids, p_verifier, proposal.q_drafter, generator)
        accepted, next_token = verdict.accepted, verdict.next_token
        probs, draws = verdict.accept_probs, verdict.draws
        # Row shown for sampling: kept drafts, then the token the verifier drew; argmax where never reached.
        verifier_ids = proposal.ids[:accepted] + [next_token] + argmax[accepted + 1 :]
    if accepted == k and not config.bonus and k > 0:
        next_token = None
    return Verdict(accepted, next_token, verifier_ids, p_verifier, probs, draws)


# ---- the session --------------------------------------------------------------------------------------------


class Session:
    def __init__(self, config: SpecConfig, verifier: LoadedModel, drafter):
        self.config = config.validated()
        self.verifier = verifier
        self.drafter = drafter
        self.vocab = verifier.vocab_size
        self.decoder = PieceDecoder(verifier.tokenizer)
        self.verifier_lm = open_cached_lm(verifier.model, self.vocab, verifier.device, self.config.forward)
        self._share_vocab()
        self.prompt = ""
        self.prompt_ids: list[int] = []
        self.tokens: list[int] = []
        self.steps: list[StepResult] = []
        self.stats = Stats()
        self.finish_reason: str | None = None
        self.block_size = self.config.block_size
        self.generator = torch.Generator().manual_seed(self.config.seed)

    @classmethod
    def from_config(cls, config: SpecConfig, progress: Progress | None = None) -> "Session":
        config = config.validated()
        verifier = load_model(
            config.verifier, config.device, progress, config.trust_remote_code, lean=config.forward == "auto"
        )
        return cls(config, verifier, build_drafter(config, verifier, progress))

    def _share_vocab(self) -> None:
        """A padded embedding matrix gives different vocab sizes for one tokenizer: use the shared part."""
        vocab = self.verifier.vocab_size
        if isinstance(self.drafter, ModelDrafter) and not self.drafter.shares_verifier_weights:
            vocab = min(vocab, self.drafter.lm.model.get_output_embeddings().weight.shape[0])
            self.drafter.lm.vocab_size = vocab
        self.vocab = self.verifier_lm.vocab_size = vocab

    def switch_drafter(self, spec: str, progress: Progress | None = None) -> None:
        """Swap in another drafter (the verifier stays loaded) and restart from the current prompt."""
        config = self.config.replace(drafter=spec)
        drafter = build_drafter(config, self.verifier, progress)
        self.config, self.drafter = config, drafter
        self._share_vocab()
        if self.prompt:
            self.reset(self.prompt)

    # -- state ---------------------------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None

    @property
    def new_token_ids(self) -> list[int]:
        return self.tokens[len(self.prompt_ids) :]

    @property
    def text(self) -> str:
        return self.verifier.tokenizer.decode(self.tokens, skip_special_tokens=True)

    @property
    def generated_text(self) -> str:
        return self.verifier.tokenizer.decode(self.new_token_ids, skip_special_tokens=True)

    @property
    def prompt_pieces(self) -> list[str]:
        return self.decoder.pieces([], self.prompt_ids)

    @property
    def context_window(self) -> int:
        return self.verifier.context_window

    def configure(self, **changes) -> SpecConfig:
        """Change knobs between steps (block size, modes, sampling knobs). Models cannot change here."""
        if {"verifier", "drafter", "device", "trust_remote_code"} & changes.keys():
            raise ConfigError("changing models needs a new session")
        self.config = self.config.replace(**changes)
        if "block_size" in changes:
            self.block_size = self.config.block_size
        return self.config

    def encode_prompt(self, prompt: str) -> list[int]:
        if not prompt:
            raise PromptError("the prompt is empty: type some text to continue")
        if not prompt.strip():
            raise PromptError("the prompt is only whitespace: type some text to continue")
        ids = self.verifier.tokenizer(prompt).input_ids
        if not ids:
            raise PromptError("the prompt encodes to no tokens")
        limit = self.context_window - 1
        if len(ids) > limit:
            raise PromptError(
                f"the prompt is {len(ids)} tokens but {self.verifier.name}'s context window is "
                f"{self.context_window} tokens: shorten it to at most {limit} tokens (it was not truncated)"
            )
        return ids

    def reset(self, prompt: str, seed: int | None = None) -> None:
        """Start over from `prompt`. On a bad prompt, raises PromptError and keeps the current state."""
        ids = self.encode_prompt(prompt)
        if seed is not None:
            self.config = self.config.replace(seed=seed)
        self.generator = torch.Generator().manual_seed(self.config.seed)
        self.prompt, self.prompt_ids, self.tokens = prompt, ids, list(ids)
        self.steps, self.stats, self.finish_reason = [], Stats(), None
        self.block_size = self.config.block_size
        prefill(self.verifier_lm, self.drafter, ids)

    # -- stepping ------------------------------------------------------------------------------------------

    def _knobs(self) -> DraftKnobs:
        c = self.config
        return DraftKnobs(
            sampled=c.draft_mode == "sampled",
            temperature=c.draft_temperature,
            top_k=c.draft_top_k,
            top_p=c.draft_top_p,
            repetition_penalty=c.repetition_penalty,
            no_repeat_ngram_size=c.no_repeat_ngram_size,
        )

    def step(self) -> StepResult:
        if not self.tokens:
            raise EngineError("no prompt yet: call reset(prompt) first")
        if self.finished:
            raise EngineError(f"decoding has finished ({self.finish_reason}): reset to start again")
        start = time.perf_counter()
        context = self.tokens
        remaining = self.config.max_new_tokens - len(self.new_token_ids)
        room = self.context_window - len(context) - 1  # the verify pass must fit in the context window
        k = max(0, min(self.block_size, remaining, room))

        proposal = draft(self.drafter, context, k, self._knobs(), self.generator)
        drafted = time.perf_counter()
        logits = verify(self.verifier_lm, context, proposal.ids)
        verified = time.perf_counter()
        verdict = accept(self.config, proposal, logits, self.generator)

        emitted_ids = proposal.ids[: verdict.accepted] + ([verdict.next_token] if verdict.next_token is not None else [])
        emitted_ids, finish_reason = self._cut_at_end(context, emitted_ids)
        positions = self._positions(context, proposal, verdict, len(emitted_ids))
        # The positions already hold these texts: the kept drafts, then the verifier's token after them.
        pieces = [p.draft_piece for p in positions[: verdict.accepted]] + [positions[verdict.accepted].verifier_piece]
        sources = [Source.DRAFT] * verdict.accepted + [Source.BONUS if verdict.accepted == len(proposal.ids) else Source.CORRECTION]
        emitted = tuple(Token(t, piece, src) for t, piece, src in zip(emitted_ids, pieces, sources))
        accepted = sum(1 for t in emitted if t.source is Source.DRAFT)

        self.tokens = context + emitted_ids
        # Roll both caches back to the accepted length; the newest token is fed with the next step's drafts.
        self.verifier_lm.rollback(len(self.tokens) - 1)
        self.drafter.rollback(len(self.tokens) - 1)
        self.finish_reason = finish_reason
        result = StepResult(
            step=len(self.steps) + 1,
            block_size=self.block_size,
            drafted=len(proposal.ids),
            accepted=accepted,
            positions=positions,
            emitted=emitted,
            draft_s=drafted - start,
            verify_s=verified - drafted,
            step_s=time.perf_counter() - start,
            verifier_calls=1,
            draft_mode=self.config.draft_mode,
            verify_mode=self.config.verify,
            finish_reason=finish_reason,
        )
        self.steps.append(result)
        self.stats = self.stats.with_step(result)
        self._schedule(result)
        return result

    def run(self, on_step: Callable[[StepResult], None] | None = None) -> list[StepResult]:
        results = []
        while not self.finished:
            result = self.step()
            results.append(result)
            if on_step:
                on_step(result)
        return results

    def _cut_at_end(self, context: list[int], emitted_ids: list[int]) -> tuple[list[int], str | None]:
        """Stop inside the block at EOS, at max_new_tokens, or at the context window."""
        generated = len(context) - len(self.prompt_ids)
        eos = self.verifier.eos_ids
        for i, token_id in enumerate(emitted_ids):
            if token_id in eos:
                return emitted_ids[: i + 1], "eos"
            if generated + i + 1 >= self.config.max_new_tokens:
                return emitted_ids[: i + 1], "max_new_tokens"
            if len(context) + i + 1 >= self.context_window:
                return emitted_ids[: i + 1], "context_window"
        return emitted_ids, None

    def _schedule(self, result: StepResult) -> None:
        if self.config.block_size_schedule != "heuristic":
            return
        self.block_size = next_block_size(self.block_size, result.drafted, result.accepted)

    def _top(self, probs: torch.Tensor) -> tuple[Alternative, ...]:
        values, indices = torch.topk(probs, min(TOP_ALTERNATIVES, probs.shape[-1]))
        return tuple(
            Alternative(i, self.decoder.alone(i), v) for v, i in zip(values.tolist(), indices.tolist())
        )

    def _positions(self, context, proposal: Proposal, verdict: Verdict, n_emitted: int) -> tuple[Position, ...]:
        k = len(proposal.ids)
        draft_pieces = self.decoder.pieces(context, proposal.ids)
        positions = []
        for i in range(k + 1):
            draft_id = proposal.ids[i] if i < k else None
            verifier_id = verdict.verifier_ids[i]
            p_row = verdict.p_verifier[i]
            if i < verdict.accepted:
                decision = Decision.ACCEPTED
            elif i == verdict.accepted and i < k:
                decision = Decision.REJECTED
            elif i == k and verdict.accepted == k and verdict.next_token is not None:
                decision = Decision.BONUS
            else:
                decision = Decision.NOT_REACHED
            if decision in (Decision.ACCEPTED, Decision.BONUS) and i >= n_emitted:
                decision = Decision.STOPPED
            examined = i < len(verdict.accept_probs)
            positions.append(
                Position(
                    index=i,
                    draft_id=draft_id,
                    draft_piece=draft_pieces[i] if i < k else None,
                    q_drafter=float(proposal.q_drafter[i, draft_id]) if i < k else None,
                    verifier_id=verifier_id,
                    verifier_piece=self.decoder.piece(context + proposal.ids[:i], verifier_id),
                    p_verifier=float(p_row[verifier_id]),
                    p_verifier_of_draft=float(p_row[draft_id]) if i < k else None,
                    decision=decision,
                    accept_prob=verdict.accept_probs[i] if examined else None,
                    draw=verdict.draws[i] if examined else None,
                    draft_top=self._top(proposal.shown[i]) if i < k else (),
                    verifier_top=self._top(p_row),
                )
            )
        return tuple(positions)

    # -- the baseline ---------------------------------------------------------------------------------------

    @torch.inference_mode()
    def baseline(self, max_new_tokens: int | None = None) -> BaselineResult:
        """Plain decoding with the verifier alone (own KV cache, same knobs). Leaves the session untouched."""
        if not self.prompt_ids:
            raise EngineError("no prompt yet: call reset(prompt) first")
        budget = max_new_tokens or self.config.max_new_tokens
        lm = open_cached_lm(self.verifier.model, self.vocab, self.verifier.device, self.config.forward)
        generator = torch.Generator().manual_seed(self.config.seed)
        tokens = list(self.prompt_ids)
        logits = lm.extend(tokens)[-1]
        start = time.perf_counter()  # decode throughput, excluding the prefill (as for the session's stats)
        finish = "max_new_tokens"
        for n in range(1, budget + 1):
            if self.config.verify == "greedy":
                token = int(logits.argmax())
            else:
                token = sample(warp(logits, self.config.temperature, self.config.top_k, self.config.top_p), generator)
            tokens.append(token)
            if token in self.verifier.eos_ids:
                finish = "eos"
                break
            if len(tokens) >= self.context_window:
                finish = "context_window"
                break
            if n < budget:
                logits = lm.extend([token])[-1]
        wall = time.perf_counter() - start
        new = tokens[len(self.prompt_ids) :]
        decode = self.verifier.tokenizer.decode
        return BaselineResult(
            token_ids=tuple(tokens),
            text=decode(tokens, skip_special_tokens=True),
            generated_text=decode(new, skip_special_tokens=True),
            new_tokens=len(new),
            wall_s=wall,
            finish_reason=finish,
        )

    def compare(self, baseline: BaselineResult) -> Comparison:
        ours = self.new_token_ids
        theirs = list(baseline.token_ids[len(self.prompt_ids) :])
        n = min(len(ours), len(theirs))
        first_difference = next((i for i in range(n) if ours[i] != theirs[i]), None)
        speedup = self.stats.tokens_per_s / baseline.tokens_per_s if baseline.tokens_per_s else 0.0
        return Comparison(
            lossless=first_difference is None,
            compared_tokens=n,
            first_difference=first_difference,
            speedup=speedup,
            baseline=baseline,
        )


def next_block_size(k: int, drafted: int, accepted: int) -> int:
    """transformers' heuristic schedule: +2 after a fully accepted block, -1 (not below 1) otherwise."""
    if drafted and accepted == drafted:
        return min(MAX_BLOCK_SIZE, k + 2)
    return max(1, k - 1)
