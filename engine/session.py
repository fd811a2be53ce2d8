"""A speculative-decoding session: prefill, then steps of draft -> verify -> accept -> commit, with KV caches.

One loop for chains and trees: a chain is a tree with one branch (engine/drafting/tree.py), verified by a plain causal
pass; a tree is verified in one pass with a tree mask. One verifier forward pass per step scores every draft; both
caches keep the context plus the accepted path. The phases are flat functions (gpt-fast's shape); the accept rules
live in acceptance.py, the display records in positions.py, plain decoding in baseline.py, the drafters in
drafting.py (what the loop needs) and drafters.py (the drafters and their factory).
"""

from __future__ import annotations

import time
from typing import Callable

import torch

from .config import SpecConfig, is_remote
from .drafting.drafters import ModelDrafter, build_drafter
from .drafting.protocol import NO_PROPOSAL, DraftKnobs, Drafter, Proposal, TreeDraft, chain_tree
from .drafting.tree import DraftTree, verify_inputs
from .drafting.tree_shape import AUTO_TREE, TreeShape, parse_tree
from .errors import ConfigError, EngineError, PromptError, ServerError
from .forward.bf16_probe import require_exact_bf16
from .forward.cached_lm import DecodingStream, open_cached_lm, require_lean_forward
from .forward.costs import verify_curve
from .forward.cpu_load import BUSY_CORES, LoadWatch, Sample, busy_cores_between
from .models.loading import LoadedModel, Progress
from .models.prompting import encode_prompt_text
from .models.remote import refusal as server_refusal
from .models.threads import apply_threads, rechoose_threads
from .models.verifier import load_verifier
from .planning.auto_plan import MEASURED_PASSES, AutoPlanner, Plan, VerifyCosts
from .planning.schedule import next_block_size
from .records.pieces import PieceDecoder
from .records.positions import guess_record, step_records
from .records.results import BaselineResult, Comparison, Guess, SpeedCheck, Stats, StepResult
from .records.summary import RunSummary
from .verification.acceptance import accept, verifier_distribution
from .verification.baseline import compare, plain_decode
from .verification.server_draws import ServerDraws, draw_seed

__all__ = ["Session", "prefill", "draft", "guess", "verify", "accept", "commit", "build_drafter", "next_block_size"]


# ---- the phases of one step -------------------------------------------------------------------------------


def show_features(verifier_lm: DecodingStream, drafter: Drafter, rows: int | list[int] | None = None) -> None:
    """Hand the verifier's hidden states of its last pass (all rows, the first `rows`, or those listed) to a drafter
    that reads them (the draft head)."""
    if not drafter.reads_verifier_features:
        return
    if verifier_lm.hidden is None:
        raise EngineError(f"the {drafter.name} drafter needs the verifier's hidden states, which this model does not expose")
    hidden = verifier_lm.hidden
    drafter.observe(verifier_lm.hidden_start, hidden if rows is None else hidden[:rows] if isinstance(rows, int) else hidden[rows])


def prefill(verifier_lm: DecodingStream, drafter: Drafter, prompt_ids: list[int]) -> None:
    """Cache all prompt tokens but the last; the first step feeds it together with the drafts."""
    verifier_lm.reset()
    drafter.reset(prompt_ids)
    if len(prompt_ids) > 1:
        verifier_lm.extend(prompt_ids[:-1])
        show_features(verifier_lm, drafter)


def draft(drafter: Drafter, context: list[int], shape: TreeShape | None, depth: int, knobs: DraftKnobs,
          generator: torch.Generator) -> TreeDraft:
    """A chain of `depth` drafts (shape None: a one-branch tree) or a tree of that shape."""
    if depth <= 0:
        return TreeDraft(DraftTree())
    if shape is None:
        return chain_tree(drafter.propose(context, depth, knobs, generator))
    return drafter.draft_tree(context, shape, depth, knobs, generator)


def guess(drafter: Drafter, context: list[int], knobs: DraftKnobs, generator: torch.Generator) -> Proposal:
    """One draft beside a plain step, not verified: the plain step's own pass says whether it was right. The drafter's
    cache keeps only the context (commit cuts the draft off), so what it drafts next is as if it had not guessed."""
    return drafter.propose(context, 1, knobs, generator)


def verify(verifier_lm: DecodingStream, context: list[int], tree: DraftTree) -> torch.Tensor:
    """One verifier pass over [context tokens the cache lacks] + every node: logits [1 + nodes, V].

    Row 0 is the verifier's prediction after the context, row i + 1 its prediction after node i. A chain needs no
    mask (each draft sees the ones before it: the causal pass); a tree's nodes see only their ancestors.
    """
    cached = verifier_lm.length
    pending = list(context[cached:])
    if tree.is_chain:
        return verifier_lm.extend(pending + tree.ids, keep=len(tree) + 1)
    tokens, mask, positions = verify_inputs(tree, pending, cached)
    return verifier_lm.extend(tokens, keep=len(tree) + 1, positions=positions, mask=mask)


def commit(verifier_lm: DecodingStream, drafter: Drafter, draft: TreeDraft, context: list[int],
           path: tuple[int, ...], length: int) -> None:
    """Keep the context and the accepted path in both caches (a chain's path is in place already; a tree's rows are
    copied, not recomputed), then cut them to `length` - 1 tokens: the newest is fed with the next step's drafts."""
    verifier_lm.compact(len(context), [len(context) + node for node in path])
    drafter.keep_path(draft, path)
    verifier_lm.rollback(length - 1)
    drafter.rollback(length - 1)


def _name_auto(config: SpecConfig, drafter: Drafter) -> SpecConfig:
    """`auto` names the drafter it chose (head or same), so screens and traces say which."""
    return config.replace(drafter=drafter.name) if config.drafter.strip() == "auto" else config


# ---- the session --------------------------------------------------------------------------------------------


def _check_for_server(config: SpecConfig, verifier: LoadedModel) -> None:
    """A verifier on a server cannot serve every setting: refuse those with the reason, before anything is built."""
    reason = server_refusal(config) if is_remote(verifier.name) else None
    if reason:
        raise ConfigError(reason)


class Session:
    def __init__(self, config: SpecConfig, verifier: LoadedModel, drafter: Drafter):
        _check_for_server(config, verifier)
        if is_remote(config.verifier):  # URL#MODEL: the title and traces name the server and the model it served
            config = config.replace(verifier=verifier.name)
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
            # 1 row: plain steps, and a drafting pass of a head or a model drafter (it uses the plan it finds)
            self.verifier_lm.plan([*range(1, self.block_size + 2), *tree_rows, *auto_rows])

    @classmethod
    def from_config(cls, config: SpecConfig, progress: Progress | None = None) -> "Session":
        apply_threads(config.threads)  # before loading: a first start dequantizes with torch
        return cls.from_loaded(config, load_verifier(config, progress), progress)

    @classmethod
    def from_loaded(cls, config: SpecConfig, verifier: LoadedModel, progress: Progress | None = None) -> "Session":
        """A session over an already loaded verifier (a sweep or a bench loads it once for many sessions)."""
        _check_for_server(config, verifier)  # before a drafter is built over a verifier that is not here
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
        self.verifier_lm.tap_layers = tuple(self.drafter.tap_layers)

    def switch_drafter(self, spec: str, progress: Progress | None = None) -> None:
        """Swap in another drafter (the verifier stays loaded) and restart from the current prompt."""
        config = self.config.replace(drafter=spec)
        _check_for_server(config, self.verifier)
        drafter = build_drafter(config, self.verifier, progress)
        self.config, self.drafter = _name_auto(config, drafter), drafter
        if self.planner is not None:
            self.planner.forget_drafter()  # acceptance and drafting cost were the old drafter's; verify costs hold
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
        config = self.config.replace(**changes)
        _check_for_server(config, self.verifier)
        self.config = config
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
        """One step, chain or tree: draft -> verify -> accept -> commit, and its frozen record."""
        if not self.tokens:
            raise EngineError("no prompt yet: call reset(prompt) first")
        if self.finished:
            raise EngineError(f"decoding has finished ({self.finish_reason}): reset to start again")
        context = self.tokens
        remaining = self.config.max_new_tokens - len(self.new_token_ids)
        room = self.context_window - len(context) - 1  # the verify pass must fit in the context window
        limit = max(0, min(remaining, room))
        # Before the clock starts: the first auto step times the verify costs (start-up work, not drafting).
        self.plan = self._choose(context, limit) if self.config.block_size_schedule == "auto" else None
        start = time.perf_counter()
        if self.plan is not None and not self.plan.plain:
            self.block_size = self.plan.block_size
        shape = parse_tree(self.plan.tree if self.plan is not None else self.config.tree)
        depth = max(0, min(shape.depth(self.block_size) if shape else self.block_size, limit))
        if self.plan is not None and self.plan.plain:
            depth = 0  # auto chose a plain step (the session's k stays what it was, for the keys that change it)

        drafted = draft(self.drafter, context, shape, depth, self._knobs(), self.generator)
        guessing = self.plan is not None and self.plan.guess  # a plain step with a guess beside it (auto)
        guessed = guess(self.drafter, context, self._knobs(), self.generator) if guessing else NO_PROPOSAL
        tree = drafted.tree
        drafted_at = time.perf_counter()
        pending = len(context) - self.verifier_lm.length
        cached = self.verifier_lm.length
        self._seed_server_draws(self.config.verify == "sampling")
        try:
            logits = verify(self.verifier_lm, context, tree)
            verified_at = time.perf_counter()
            p_verifier = verifier_distribution(self.config, logits)
            argmax = logits.argmax(dim=-1).tolist()  # the greedy rule's and the records' (one pass over the rows)
            draws = self._server_draws(context, tree, p_verifier)
            verdict = accept(self.config, tree, logits, self.generator, p_verifier, draws, argmax)
        except ServerError:  # a server that failed mid-step: both caches as before the step, so the next key retries
            self.verifier_lm.rollback(cached)
            self.drafter.rollback(min(cached, len(context) - 1))
            raise
        finally:
            self._seed_server_draws(False)  # only a verify pass draws: a prefill or a cost probe does not
        path = verdict.path
        # The drafter reads the verifier's features of the context and the kept drafts (a chain's: the first rows).
        show_features(self.verifier_lm, self.drafter, pending + len(path) if tree.is_chain
                      else list(range(pending)) + [pending + node for node in path])

        at_leaf = not tree.children(path[-1] if path else -1)
        next_token = None if (at_leaf and path and not self.config.bonus) else verdict.next_token
        emitted_ids = [tree.ids[node] for node in path] + ([next_token] if next_token is not None else [])
        emitted_ids, finish_reason = self._cut_at_end(context, emitted_ids)
        commit(self.verifier_lm, self.drafter, drafted, context, path, len(context) + len(emitted_ids))
        self.tokens = context + emitted_ids
        self.finish_reason = finish_reason

        positions, emitted, tree_record = step_records(
            self.decoder, context, tree, verdict, p_verifier, argmax, next_token,
            len(emitted_ids), shape.spec if shape else None)
        guessed_record = guess_record(self.decoder, context, guessed.ids, guessed.drafter_probs,
                                      guessed.source or self.plan.source, verdict.next_token) if guessing else None
        result = self.record(depth if shape else self.block_size, len(tree), min(len(path), len(emitted_ids)),
                             positions, emitted, (start, drafted_at, verified_at), finish_reason, tree_record,
                             drafted.source, draws, guessed_record)
        self._schedule(result)
        return result

    def _choose(self, context: list[int], limit: int) -> Plan:
        """The auto schedule: the shape with the most expected tokens per second for the part about to draft."""
        if self.planner is None:
            self.planner = AutoPlanner(VerifyCosts(verify_curve(self, MEASURED_PASSES)),
                                       prior_of=self.drafter.acceptance_prior)
        # Trees only where their rule is the greedy one and the drafts are the drafter's top candidates.
        c = self.config
        greedy = c.verify == "greedy" and c.draft_mode == "greedy"
        # Guesses too: a greedy guess is right where the verifier's argmax is its token, as a greedy block's draft.
        return self.planner.choose(self.drafter.source_for(context), limit, greedy and c.tree == AUTO_TREE, greedy)

    def _seed_server_draws(self, on: bool) -> None:
        """Sampling against a server: the verify pass's next token is a server draw, seeded from this session's
        generator (the same server then gives the same run again)."""
        if not self.verifier_lm.on_this_cpu:
            self.verifier_lm.draw_seed = (lambda: draw_seed(self.generator)) if on else None

    def _server_draws(self, context: list[int], tree: DraftTree, p_verifier: torch.Tensor) -> ServerDraws | None:
        """Where sampling verification draws from a server's samples, not from rows here (server_draws.py)."""
        if self.verifier_lm.on_this_cpu or self.config.verify != "sampling":
            return None
        return ServerDraws(self.verifier_lm, list(context), list(tree.ids), p_verifier, self.generator)

    def record(self, block_size: int, drafted: int, accepted: int, positions, emitted, times: tuple[float, float, float],
               finish_reason: str | None, tree=None, drafted_by: str | None = None,
               draws: ServerDraws | None = None, guessed: Guess | None = None) -> StepResult:
        """The frozen record of the step just taken (chain or tree), added to the steps and the running stats."""
        start, drafted_at, verified_at = times
        # Only this CPU's passes say whether it is busy. A server's pass time grows with the context and the network,
        # and a server on this machine is itself the "other process" the watch would see: no watch with a server.
        cpu_busy = self.load.check(drafted + 1, verified_at - drafted_at) if self.verifier_lm.on_this_cpu else None
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
            server_draws=draws.draws if draws else 0,
            draw_note="; ".join(draws.notes) if draws and draws.notes else None,
            guess=guessed,
        )
        self.steps.append(result)
        self.stats = self.stats.with_step(result)
        if self.planner is not None and self.plan is not None:
            self.planner.observe(result, self.plan.source, self.plan.plain)
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

    def summary(self, plain_step_s: float | None = None) -> RunSummary:
        """The run so far in one record: counts, theory, the auto schedule's choices, and what ran."""
        return RunSummary.of(self.steps, self.stats, self.config, self.finish_reason, self.text, self.generated_text,
                             plain_step_s, self.threads)

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
