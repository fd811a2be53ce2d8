"""Command-line options, shared by the app and the headless run. Imports neither textual nor torch."""

from __future__ import annotations

import argparse

from engine import DEFAULT_PROMPT, DRAFT_MODES, FORWARDS, MAX_BLOCK_SIZE, SCHEDULES, VERIFY_MODES, ConfigError, SpecConfig

DEFAULTS = SpecConfig()
AUTO = "auto"


def block_size_arg(text: str) -> int | str:
    if text.strip().lower() == AUTO:
        return AUTO
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a block size is a number 1..{MAX_BLOCK_SIZE} or auto, got {text!r}") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="specdec-tui",
        description="Watch speculative decoding token by token (draft -> verify -> accept) on real models.",
    )
    p.add_argument("--prompt", default=DEFAULT_PROMPT, help=f"text to continue (default: {DEFAULT_PROMPT!r})")
    p.add_argument("--verifier", default=DEFAULTS.verifier, help="smollm2-135m (embedded), a hub id, a folder, a .gguf file, or a model server: http://HOST:PORT/v1[#MODEL] (an OpenAI-compatible vLLM server; greedy chains with --drafter ngram or a small local model of its family)")
    p.add_argument("--drafter", default=DEFAULTS.drafter, help="auto (ngram+head where a trained head ships, else same), ngram+head[:PATH] (prompt lookup where the text repeats, else the head), head, head:PATH, same, ngram, early-exit:N, or a model spec; comma-separated with --sweep")
    p.add_argument("--block-size", "-k", type=block_size_arg, default=AUTO,
                   help=f"drafted tokens per step, 1..{MAX_BLOCK_SIZE}, or auto (the default): each step's k chosen from "
                        "this machine's measured verify costs and the drafter's acceptance so far")
    p.add_argument("--tree", metavar="SHAPE", default=None,
                   help="draft a tree instead of a chain: widths per depth (3,2,1,1: top-3, then top-2 under each, ...) "
                        "or dynamic:N (the N most probable nodes, -k deep); auto (with -k auto): a chain or a small "
                        "tree, whichever is expected faster at each step")
    p.add_argument("--block-size-schedule", choices=SCHEDULES, default=None,
                   help="constant (with -k N), heuristic (transformers' +2/-1), auto (with -k auto)")
    p.add_argument("--draft-mode", choices=DRAFT_MODES, default=DEFAULTS.draft_mode)
    p.add_argument("--verify", choices=VERIFY_MODES, default=DEFAULTS.verify)
    p.add_argument("--draft-temperature", type=float, default=DEFAULTS.draft_temperature)
    p.add_argument("--draft-top-k", type=int, default=DEFAULTS.draft_top_k)
    p.add_argument("--draft-top-p", type=float, default=DEFAULTS.draft_top_p)
    p.add_argument("--repetition-penalty", type=float, default=DEFAULTS.repetition_penalty)
    p.add_argument("--draft-confidence", type=float, default=DEFAULTS.draft_confidence,
                   help="stop a block after a draft the drafter gave less than this probability (0: off; try 0.5)")
    p.add_argument("--no-repeat-ngram-size", type=int, default=DEFAULTS.no_repeat_ngram_size)
    p.add_argument("--temperature", type=float, default=DEFAULTS.temperature, help="verifier temperature (sampling verification)")
    p.add_argument("--top-k", type=int, default=DEFAULTS.top_k, help="verifier top-k (0: off)")
    p.add_argument("--top-p", type=float, default=DEFAULTS.top_p, help="verifier top-p (1: off)")
    p.add_argument("--seed", type=int, default=DEFAULTS.seed)
    p.add_argument("--max-new-tokens", type=int, default=DEFAULTS.max_new_tokens)
    p.add_argument("--device", default=DEFAULTS.device, help="cpu (default), cuda or auto")
    p.add_argument("--no-bonus", action="store_true", help="no extra verifier token after a fully accepted block (the notebook's counts)")
    p.add_argument("--ngram-max", type=int, default=DEFAULTS.ngram_max, help="longest suffix the ngram drafter looks up")
    p.add_argument("--forward", choices=FORWARDS, default=DEFAULTS.forward, help="auto: the engine's lean Llama forward where it applies; transformers: the model's own forward; bf16: the lean forward with bf16 weight matrices (a Llama verifier on the CPU; on CPUs with AMX a verify pass of 16 tokens costs about one of 1). Output is bit-identical to plain decoding in bf16 where this CPU's bf16 kernels are batch-invariant, which is probed at start; where they are not, bf16 is refused with the reason")
    p.add_argument("--chat", action="store_true", help="wrap the prompt in the verifier's chat template (instruct models); without it the prompt is plain text, special-token strings included")
    p.add_argument("--threads", type=int, default=DEFAULTS.threads, metavar="N", help="torch threads for decoding (default: one per core that other processes leave idle, measured at start); 1 holds up best beside other busy processes")
    p.add_argument("--trust-remote-code", action="store_true", help="allow models that ship their own Python code")
    p.add_argument("--headless", action="store_true", help="no UI: print one line per step, then the text")
    p.add_argument("--json", action="store_true", help="with --headless: JSON Lines instead of text")
    p.add_argument("--explain", action="store_true",
                   help="with --headless: under each step, the seed notebook's line per position "
                        "([0] draft=' the' vs greedy=' the' -> ACCEPT) and what the step did in plain words")
    p.add_argument("--trace", metavar="FILE", help="with --headless: write every step to a JSON Lines trace")
    p.add_argument("--force", action="store_true", help="with --trace: replace an existing trace file")
    p.add_argument("--compare-baseline", action="store_true", help="with --headless: also decode plainly and compare")
    p.add_argument("--sweep", metavar="A-B", help="with --headless: run each block size in A..B (and each drafter)")
    p.add_argument("--replay", metavar="FILE", help="open a recorded trace in the app, with no model loaded")
    return p


def config_from_args(args: argparse.Namespace, drafter: str | None = None, block_size: int | None = None) -> SpecConfig:
    """Build and validate the config; raises ConfigError with the option's own name in the message."""
    k = block_size if block_size is not None else args.block_size
    schedule = args.block_size_schedule or (AUTO if k == AUTO else DEFAULTS.block_size_schedule)
    try:
        return SpecConfig(
            verifier=args.verifier,
            drafter=drafter if drafter is not None else args.drafter,
            block_size=DEFAULTS.block_size if k == AUTO else k,  # under auto: only the k before the first choice
            block_size_schedule=schedule,
            draft_mode=args.draft_mode,
            verify=args.verify,
            draft_temperature=args.draft_temperature,
            draft_top_k=args.draft_top_k,
            draft_top_p=args.draft_top_p,
            repetition_penalty=args.repetition_penalty,
            no_repeat_ngram_size=args.no_repeat_ngram_size,
            draft_confidence=args.draft_confidence,
            temperature=args.temperature,
            top_k=args.top_k,
            top_p=args.top_p,
            seed=args.seed,
            max_new_tokens=args.max_new_tokens,
            device=args.device,
            bonus=not args.no_bonus,
            ngram_max=args.ngram_max,
            trust_remote_code=args.trust_remote_code,
            forward=args.forward,
            tree=args.tree,
            chat=args.chat,
            threads=args.threads,
        ).validated()
    except ConfigError as error:
        raise ConfigError(f"{error} (see specdec-tui --help)") from error


def parse_sweep(text: str) -> list[int]:
    start, _, end = text.partition("-")
    try:
        low, high = int(start), int(end or start)
    except ValueError:
        raise ConfigError(f"--sweep takes a range like 1-8, got {text!r}") from None
    if not 1 <= low <= high <= MAX_BLOCK_SIZE:
        raise ConfigError(f"--sweep range must lie within 1-{MAX_BLOCK_SIZE}, got {text!r}")
    return list(range(low, high + 1))
