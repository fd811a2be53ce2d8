"""engine: speculative decoding on real models, headless.

Light imports (config, results, traces) load without torch, so the app can replay traces with no model;
`Session` and friends import torch on first use.
"""

from .config import DEFAULT_PROMPT, DRAFT_MODES, FORWARDS, MAX_BLOCK_SIZE, SCHEDULES, VERIFY_MODES, SpecConfig
from .errors import ConfigError, EngineError, ModelLoadError, PromptError, ServerError, TokenizerMismatchError, TraceError
from .records.results import (Alternative, BaselineResult, Comparison, Decision, Position, Source, SpeedCheck, Stats, StepResult,
                      Token, TreeNode, TreeStep, Guess)
from .records.safe_text import from_argv, json_line, shown
from .models.precheck import check_drafter_spec
from .records.theory import expected_speedup
from .records.summary import RunSummary, Theory, measured_block_size
from .records.trace import Trace, TraceWriter, check_target, read_trace, unique_path, write_trace
from .records.trace import header as trace_header

_LAZY = {
    "Session": ".session",
    "load_model": ".models.loading",
    "load_verifier": ".models.verifier",
    "LoadedModel": ".models.loading",
    "Drafter": ".drafting.drafters",
    "build_drafter": ".drafting.drafters",
    "drafter_choices": ".drafting.drafters",
    "resolve_spec": ".drafting.drafters",
    "plain_step_seconds": ".forward.costs",
    "pass_seconds": ".forward.costs",
    "parse_tree": ".drafting.tree_shape",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")


__all__ = [
    "DEFAULT_PROMPT", "MAX_BLOCK_SIZE", "SpecConfig", "ConfigError", "EngineError", "ModelLoadError", "PromptError",
    "ServerError", "TokenizerMismatchError", "TraceError", "Alternative", "BaselineResult", "Comparison", "Decision", "Position",
    "SpeedCheck", "Source", "Stats", "StepResult", "Token", "Session", "load_model", "load_verifier", "LoadedModel",
    "Drafter", "build_drafter", "drafter_choices", "resolve_spec", "DRAFT_MODES", "VERIFY_MODES", "FORWARDS",
    "SCHEDULES", "RunSummary", "Theory", "measured_block_size", "Trace", "TraceWriter", "read_trace", "write_trace", "trace_header",
    "plain_step_seconds", "pass_seconds", "TreeNode", "TreeStep", "Guess", "shown", "from_argv", "json_line", "check_target", "unique_path",
    "parse_tree", "check_drafter_spec", "expected_speedup",
]
