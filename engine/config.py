"""SpecConfig: every knob of a speculative-decoding session, mirrored 1:1 by the command-line options."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .drafting.tree_shape import AUTO_TREE, parse_tree
from .errors import ConfigError

MAX_BLOCK_SIZE = 16
DRAFT_MODES = ("greedy", "sampled")
VERIFY_MODES = ("greedy", "sampling")
SCHEDULES = ("constant", "heuristic", "auto")
FORWARDS = ("auto", "transformers", "bf16")
DEFAULT_PROMPT = "In a distant future,"
MAX_THREADS = 256


SERVER_SCHEMES = ("http://", "https://")


def is_remote(spec: str) -> bool:
    """A verifier spec that names a model server (`--verifier http://HOST:PORT/v1`) rather than a model to load."""
    return spec.strip().lower().startswith(SERVER_SCHEMES)


@dataclass(frozen=True)
class SpecConfig:
    verifier: str = "smollm2-135m"
    # "same" (the verifier's own weights), "head", "head:PATH", "ngram+head[:PATH]" (lookup where the text repeats,
    # else the head), "auto" (ngram+head where a head ships for the verifier, else "same"), "ngram", "early-exit:N",
    # or any model spec. Defaults: ngram+head at k = 2 with greedy drafts, the setting that beats plain decoding on
    # open-ended and on grounded text here (bench/results, README).
    drafter: str = "auto"
    block_size: int = 2
    draft_mode: str = "greedy"
    verify: str = "greedy"
    # Drafter knobs (the notebook's realistic mode); they never change what the verifier outputs.
    draft_temperature: float = 0.7
    draft_top_k: int = 40
    draft_top_p: float = 0.95
    repetition_penalty: float = 1.05
    no_repeat_ngram_size: int = 3
    # Stop a block early when the drafter's probability of its own draft is below this (0: off); as transformers'
    # assistant_confidence_threshold. A model drafter's chain only (trees and lookup have their own shapes).
    draft_confidence: float = 0.0
    # Verifier knobs, used in sampling verification and by the sampled baseline.
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 42
    max_new_tokens: int = 64
    device: str = "cpu"
    bonus: bool = True
    # "constant": every step drafts block_size; "heuristic": transformers' +2/-1 rule; "auto": each step's k (and with
    # tree="auto", its tree shape) chosen by measured verify costs and acceptance (engine/planning/auto_plan.py). The app and
    # the command line default to auto; a library caller who sets block_size gets that k.
    block_size_schedule: str = "constant"
    ngram_max: int = 3
    trust_remote_code: bool = False
    # "auto": the lean Llama forward (engine/forward/fast_llama.py) where it applies; "transformers": always the model's own;
    # "bf16": the lean forward with bf16 weight matrices (a Llama verifier on the CPU only), refused where this CPU's
    # bf16 kernels are not batch-invariant (engine/forward/bf16_probe.py), so that its output is always plain bf16 decoding's.
    forward: str = "auto"
    # None: a chain of block_size drafts. "3,2,1,1": a tree, top-3 at depth 1, top-2 under each, ...;
    # "dynamic:N": the N most probable nodes (EAGLE-2), as deep as block_size. See engine/drafting/tree_shape.py.
    # "auto" (with the auto schedule): a chain or a small tree, whichever is expected faster at each step.
    tree: str | None = None
    # Prompts are plain text (special-token strings are encoded as text); chat=True wraps the prompt in the
    # verifier's chat template as one user message, for instruct models.
    chat: bool = False
    # torch's intra-op threads for this process; None: one per core that other processes leave idle (engine/models/threads.py).
    threads: int | None = None

    def __post_init__(self) -> None:
        self.validated()  # a SpecConfig that exists is a valid one

    def validated(self) -> "SpecConfig":
        """Return self, or raise ConfigError naming the first bad setting and its allowed range."""
        if not isinstance(self.block_size, int) or not 1 <= self.block_size <= MAX_BLOCK_SIZE:
            raise ConfigError(f"block size must be between 1 and {MAX_BLOCK_SIZE}, got {self.block_size}")
        if self.draft_mode not in DRAFT_MODES:
            raise ConfigError(f"draft mode must be one of {', '.join(DRAFT_MODES)}, got {self.draft_mode!r}")
        if self.verify not in VERIFY_MODES:
            raise ConfigError(f"verify mode must be one of {', '.join(VERIFY_MODES)}, got {self.verify!r}")
        if self.block_size_schedule not in SCHEDULES:
            raise ConfigError(f"block-size schedule must be one of {', '.join(SCHEDULES)}, got {self.block_size_schedule!r}")
        if self.forward not in FORWARDS:
            raise ConfigError(f"forward must be one of {', '.join(FORWARDS)}, got {self.forward!r}")
        for name in ("temperature", "draft_temperature"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name.replace('_', ' ')} must be > 0, got {getattr(self, name)} (use greedy mode for argmax)")
        for name in ("top_p", "draft_top_p"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise ConfigError(f"{name.replace('_', ' ')} must be in (0, 1], got {value}")
        for name in ("top_k", "draft_top_k", "no_repeat_ngram_size"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name.replace('_', ' ')} must be >= 0 (0 turns it off), got {getattr(self, name)}")
        if self.repetition_penalty <= 0:
            raise ConfigError(f"repetition penalty must be > 0 (1 turns it off), got {self.repetition_penalty}")
        if not 0 <= self.draft_confidence < 1:
            raise ConfigError(f"draft confidence must be in [0, 1) (0 turns it off), got {self.draft_confidence}")
        if self.max_new_tokens < 1:
            raise ConfigError(f"max new tokens must be >= 1, got {self.max_new_tokens}")
        if not 1 <= self.ngram_max <= 8:
            raise ConfigError(f"ngram max must be between 1 and 8, got {self.ngram_max}")
        if self.threads is not None and (not isinstance(self.threads, int) or not 1 <= self.threads <= MAX_THREADS):
            raise ConfigError(f"threads must be between 1 and {MAX_THREADS}, got {self.threads}")
        if not self.verifier.strip():
            raise ConfigError("the verifier model spec is empty")
        if not self.drafter.strip():
            raise ConfigError("the drafter model spec is empty")
        parse_tree(self.tree)
        if self.tree == AUTO_TREE and self.block_size_schedule != "auto":
            raise ConfigError("--tree auto chooses chains and trees by measurement: it needs -k auto")
        if parse_tree(self.tree) is not None and self.block_size_schedule == "heuristic":
            raise ConfigError("the heuristic schedule moves a chain's k, not a tree's shape: use -k auto, or a chain")
        return self

    def replace(self, **changes) -> "SpecConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "SpecConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
