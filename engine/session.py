"""A speculative-decoding session: prefill, then steps of draft -> verify -> accept, with KV caches.

One verifier forward pass per step scores all k drafts; both caches are cropped back to the accepted length.
The phases are flat functions (gpt-fast's shape); the rules live in acceptance.py, the display records in
positions.py, plain decoding in baseline.py, the drafters and their factory in drafters.py.
"""

from __future__ import annotations

import time
from typing import Callable

import torch

from .acceptance import Verdict, accept
from .auto_plan import MEASURED_PASSES, AutoPlanner, Plan, VerifyCosts
from .baseline import compare, plain_decode
from .bf16_probe import require_exact_bf16
from .cached_lm import DecodingStream, open_cached_lm, require_lean_forward
from .config import SpecConfig
from .drafters import DraftKnobs, Drafter, ModelDrafter, Proposal, build_drafter
from .errors import ConfigError, EngineError, PromptError
from .models import LoadedModel, Progress, load_model
from .pieces import PieceDecoder
from .positions import build_positions, verifier_source
from .prompting import encode_prompt_text
from .results import BaselineResult, Comparison, Source, SpeedCheck, Stats, StepResult, Token
from .schedule import next_block_size
from .costs import pass_seconds
from .cpu_load import BUSY_CORES, LoadWatch, Sample, busy_cores_between
from .threads import apply_threads, rechoose_threads
from .tree_shape import AUTO_TREE, parse_tree
from .tree_step import tree_step

__all__ = ["Session", "prefill", "draft", "verify", "accept", "Verdict", "build_drafter", "next_block_size"]


# ---- the phases of one step -------------------------------------------------------------------------------


def _show_features(verifier_lm: DecodingStream, drafter: Drafter) -> None:
    """Hand the verifier's hidden states of its last pass to a drafter that reads them (the draft head)."""
    if drafter.reads_verifier_features:
        if verifier_lm.hidden is None:
            raise EngineError(f"the {drafter.name} drafter needs the verifier's hidden states, which this model does not expose")
        drafter.observe(verifier_lm.hidden_start, verifier_lm.hidden)


def prefill(verifier_lm: DecodingStream, drafter: Drafter, prompt_ids: list[int]) -> None:
    """Cache all prompt tokens but the last; the first step feeds it together with the drafts."""
    verifier_lm.reset()
    drafter.reset(prompt_ids)
    if len(prompt_ids) > 1:
        verifier_lm.extend(prompt_ids[:-1])
        _show_features(verifier_lm, drafter)


def draft(drafter: Drafter, context: list[int], k: int, knobs: DraftKnobs, generator: torch.Generator) -> Proposal:
    return drafter.propose(context, k, knobs, generator)


def verify(verifier_lm: DecodingStream, drafter: Drafter, context: list[int], draft_ids: list[int]) -> torch.Tensor:
    """One forward pass over [pending context tokens] + drafts: verifier logits for the k + 1 positions."""
    logits = verifier_lm.catch_up(context, extra=draft_ids, keep=len(draft_ids) + 1)
    _show_features(verifier_lm, drafter)
    return logits


def _source_of(drafter: Drafter, context: list[int]) -> str | None:
    """Which part of a combined drafter will draft after `context` (lookup or head in ngram+head); None otherwise."""
    pick = getattr(drafter, "pick", None)
    return drafter.source(pick(context)) if pick is not None else None


def _name_auto(config: SpecConfig, drafter: Drafter) -> SpecConfig:
    """`auto` names the drafter it chose (head or same), so screens and traces say which."""
    return config.replace(drafter=drafter.name) if config.drafter.strip() == "auto" else config


# ---- the session --------------------------------------------------------------------------------------------


class Session:
    def __init__(self, config: SpecConfig, verifier: LoadedModel, drafter: Drafter):
        self.config = _name_auto(config, drafter)
        self.threads = apply_threads(self.config.threads)
        self.verifier = verifier
        self.drafter = drafter
        self.vocab = verifier.vocab_size
        self.decoder = PieceDecoder(verifier.tokenizer)
        require_lean_forward(verifier.model, verifier.name, self.config.forward)
        self.verifier_lm = open_cached_lm(verifier.model, self.vocab, verifier.device, self.config.forward)
        if self.config.forward == "bf16":
            require_exact_bf16(self.verifier_lm)  # exactness is this CPU's property: probed, not assumed
        self._share_vocab()
        self._tap_features()
        self.prompt = ""
        self.prompt_ids: list[int] = []
        self.tokens: list[int] = []
        self.steps: list[StepResult] = []
        self.stats = Stats()
        self.finish_reason: str | None = None
        self.block_size = self.config.block_size
        self.generator = torch.Generator().manual_seed(self.config.seed)
        self.planner: AutoPlanner | None = None  # made at the first auto step, over the verify costs it times
        self.plan: Plan | None = None  # the auto schedule's choice for the step being taken
        self.load = LoadWatch()
        if hasattr(self.verifier_lm, "plan"):  # time the matmul layouts of a verify pass now, not in the first step
            shape = parse_tree(self.config.tree)
            tree_rows = [shape.max_nodes(self.block_size) + 1] if shape else []
            auto_rows = list(MEASURED_PASSES) if self.config.block_size_schedule == "auto" else []
            self.verifier_lm.plan([*range(2, self.block_size + 2), *tree_rows, *auto_rows])

    @classmethod
    def from_config(cls, config: SpecConfig, progress: Progress | None = None) -> "Session":
        apply_threads(config.threads)  # before loading: a first start dequantizes with torch
        verifier = load_model(
            config.verifier, config.device, progress, config.trust_remote_code, lean=config.forward != "transformers"
        )
        return cls.from_loaded(config, verifier, progress)

    @classmethod
    def from_loaded(cls, config: SpecConfig, verifier: LoadedModel, progress: Progress | None = None) -> "Session":
        """A session over an already loaded verifier (a sweep or a bench loads it once for many sessions)."""
        return cls(config, verifier, build_drafter(config, verifier, progress))

    def _share_vocab(self) -> None:
        """A padded embedding matrix gives different vocab sizes for one tokenizer: use the shared part."""
        vocab = self.verifier.vocab_size
        if isinstance(self.drafter, ModelDrafter) and not self.drafter.shares_verifier_weights:
            vocab = min(vocab, self.drafter.lm.model.get_output_embeddings().weight.shape[0])
            self.drafter.lm.vocab_size = vocab
        self.vocab = self.verifier_lm.vocab_size = vocab

    def _tap_features(self) -> None:
        """A head trained on fused features (EAGLE-3) reads the inputs of some verifier layers beside the last."""
        self.verifier_lm.tap_layers = tuple(getattr(self.drafter, "tap_layers", ()))

    def switch_drafter(self, spec: str, progress: Progress | None = None) -> None:
        """Swap in another drafter (the verifier stays loaded) and restart from the current prompt."""
        config = self.config.replace(drafter=spec)
        drafter = build_drafter(config, self.verifier, progress)
        self.config, self.drafter = _name_auto(config, drafter), drafter
        if self.planner is not None:
            self.planner.by_source.clear()  # acceptance was the old drafter's; the verify costs still hold
        self._share_vocab()
        self._tap_features()
        if self.prompt:
            self.reset(self.prompt)

    # -- state ---------------------------------------------------------------------------------------------

    @property
    def warnings(self) -> tuple[str, ...]:
        """Things the user should know that did not stop the session (e.g. the model cache could not be written)."""
        return tuple(getattr(self.verifier, "notes", ()))

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
        if self.config.block_size_schedule != "auto":
            self.plan = None
        return self.config

    def encode_prompt(self, prompt: str) -> list[int]:
        if not prompt:
            raise PromptError("the prompt is empty: type some text to continue")
        if not prompt.strip():
            raise PromptError("the prompt is only whitespace: type some text to continue")
        ids = encode_prompt_text(self.verifier.tokenizer, prompt, self.config.chat)
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
        self.load = LoadWatch()
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
            stop_below=c.draft_confidence,
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
        limit = max(0, min(remaining, room))
        self.plan = self._choose(context, limit) if self.config.block_size_schedule == "auto" else None
        if self.plan is not None:
            self.block_size = max(1, self.plan.block_size)
        k = max(0, min(self.block_size, limit))
        shape = parse_tree(self.plan.tree if self.plan is not None else self.config.tree)
        if shape is not None:  # a tree step: its own module (tree_step.py), same caches and records
            depth = max(0, min(shape.depth(self.block_size), remaining, room))
            return tree_step(self, shape, depth, start)

        proposal = draft(self.drafter, context, k, self._knobs(), self.generator)
        drafted = time.perf_counter()
        logits = verify(self.verifier_lm, self.drafter, context, proposal.ids)
        verified = time.perf_counter()
        verdict = accept(proposal.ids, proposal.q_drafter, logits, self.config, self.generator)

        emitted_ids = proposal.ids[: verdict.accepted] + ([verdict.next_token] if verdict.next_token is not None else [])
        emitted_ids, finish_reason = self._cut_at_end(context, emitted_ids)
        positions = build_positions(self.decoder, context, proposal, verdict, len(emitted_ids))
        # The positions already hold these texts: the kept drafts, then the verifier's token after them.
        pieces = [p.draft_piece for p in positions[: verdict.accepted]] + [positions[verdict.accepted].verifier_piece]
        sources = [Source.DRAFT] * verdict.accepted + [verifier_source(len(proposal.ids), verdict.accepted)]
        emitted = tuple(Token(t, piece, src) for t, piece, src in zip(emitted_ids, pieces, sources))
        accepted = sum(1 for t in emitted if t.source is Source.DRAFT)

        self.tokens = context + emitted_ids
        # Roll both caches back to the accepted length; the newest token is fed with the next step's drafts.
        self.verifier_lm.rollback(len(self.tokens) - 1)
        self.drafter.rollback(len(self.tokens) - 1)
        self.finish_reason = finish_reason
        result = self.record(self.block_size, len(proposal.ids), accepted, positions, emitted,
                             (start, drafted, verified), finish_reason, drafted_by=proposal.source)
        self._schedule(result)
        return result

    def _choose(self, context: list[int], limit: int) -> Plan:
        """The auto schedule: the shape with the most expected tokens per second for the part about to draft."""
        if self.planner is None:
            self.planner = AutoPlanner(VerifyCosts({n: pass_seconds(self, n, repeats=2) for n in MEASURED_PASSES}))
        # Trees only where their rule is the greedy one and the drafts are the drafter's top candidates.
        c = self.config
        trees = c.tree == AUTO_TREE and c.verify == "greedy" and c.draft_mode == "greedy"
        return self.planner.choose(_source_of(self.drafter, context), limit, trees)

    def record(self, block_size: int, drafted: int, accepted: int, positions, emitted, times: tuple[float, float, float],
               finish_reason: str | None, tree=None, drafted_by: str | None = None) -> StepResult:
        """The frozen record of the step just taken (chain or tree), added to the steps and the running stats."""
        start, drafted_at, verified_at = times
        cpu_busy = self.load.check(drafted + 1, verified_at - drafted_at)
        if self.config.threads is None and self.load.busy_cores is not None:
            self.threads = rechoose_threads(self.load.busy_cores)  # one thread per core the others leave idle
        result = StepResult(
            step=len(self.steps) + 1,
            block_size=block_size,
            drafted=drafted,
            accepted=accepted,
            positions=positions,
            emitted=emitted,
            draft_s=drafted_at - start,
            verify_s=verified_at - drafted_at,
            step_s=time.perf_counter() - start,
            verifier_calls=1,
            draft_mode=self.config.draft_mode,
            verify_mode=self.config.verify,
            finish_reason=finish_reason,
            tree=tree,
            drafted_by=drafted_by,
            plan=self.plan.reason if self.plan is not None else None,
            cpu_busy=cpu_busy,
        )
        self.steps.append(result)
        self.stats = self.stats.with_step(result)
        if self.planner is not None and self.plan is not None:
            self.planner.observe(result, self.plan.source)
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

    # -- the baseline ---------------------------------------------------------------------------------------

    def baseline(self, max_new_tokens: int | None = None) -> BaselineResult:
        """Plain decoding with the verifier alone (own KV cache, same knobs). Leaves the session untouched."""
        if not self.prompt_ids:
            raise EngineError("no prompt yet: call reset(prompt) first")
        budget = max_new_tokens or self.config.max_new_tokens
        return plain_decode(self.verifier, self.config, self.prompt_ids, budget, self.vocab)

    def compare(self, baseline: BaselineResult) -> Comparison:
        return compare(self.new_token_ids, len(self.prompt_ids), self.stats, baseline)

    def speed_check(self) -> SpeedCheck:
        """Plain decoding, then this prompt's whole speculative run with the current settings, both in tight loops.

        The live run is put back afterwards (steps, stats, caches re-filled over its tokens), so stepping goes on
        where it was. Its own tokens/s is no fair comparison: it idles between steps (see SpeedCheck).
        """
        self.baseline(max_new_tokens=8)  # warm-up: after idle time the first passes are slow, whichever runs first
        before = Sample.now()
        plain = self.baseline()
        between = Sample.now()
        live = (self.tokens, self.steps, self.stats, self.finish_reason, self.block_size, self.generator, self.load)
        try:
            self.reset(self.prompt)  # same seed: for greedy verification the same text the user is watching
            self.run()
            ran, stats = tuple(self.new_token_ids), self.stats
        finally:
            self.tokens, self.steps, self.stats, self.finish_reason, self.block_size, self.generator, self.load = live
            prefill(self.verifier_lm, self.drafter, self.tokens)
        loads = {"plain": busy_cores_between(before, between), "speculative": busy_cores_between(between, Sample.now())}
        busy = [f"{cores:.1f} cores during the {run} run" for run, cores in loads.items()
                if cores is not None and cores >= BUSY_CORES]
        reason = f"not comparable: other processes used {' and '.join(busy)}" if busy else None
        return SpeedCheck(plain=plain, speculative_token_ids=ran, stats=stats, busy=reason)
