"""A verifier on a model server: `--verifier http://HOST:PORT/v1` (an OpenAI-compatible vLLM server), optionally
`URL#MODEL` to pick one of the served models. The verify pass of each step is one request.

What a session needs of a verifier, without its weights: a tokenizer (the drafter runs here and must tokenize as
the server does: checked against the server's /tokenize), its end-of-text ids, its context window (the server's
max_model_len) and the vocabulary size. The tokenizer is the drafter model's when the drafter is a model (a small
model of the served model's family), else the one the served model's name loads (a hub id or a folder).

What a server cannot give is refused with the reason (`refusal`): drafters that read the verifier's hidden states
or weights (head, same, early-exit, ngram+head), trees (no tree attention mask over the API), a temperature, top-k or
top-p on the verifier under sampling verification (the server's logprobs are its raw distribution; the draws of
sampling verification are the server's own: engine/verification/server_draws.py) and bf16.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..errors import ConfigError, ModelLoadError, ServerError, TokenizerMismatchError
from ..forward.remote_lm import RemoteModel
from .server_client import ServerClient
from .tokenizer_check import PROBES

PASS_TIMEOUT_S = 30.0  # a long context on a busy server; still an answer or an error, never a hang
FALLBACK_WINDOW = 2048

REFUSED_DRAFTERS = {
    "same": "it is the verifier's own weights, which stay on the server",
    "early-exit": "it runs the verifier's first layers, which stay on the server",
    "head": "it reads the verifier's hidden states, which a server's API does not return",
    "ngram+head": "its head reads the verifier's hidden states, which a server's API does not return",
}


def split_spec(spec: str) -> tuple[str, str | None]:
    """`http://host:port/v1#model` -> ("http://host:port/v1", "model"); no `#`: the server's first model."""
    url, _, model = spec.strip().partition("#")
    return url, (model.strip() or None)


def refusal(config) -> str | None:
    """Why `config` cannot run against a server verifier, or None."""
    drafter = config.drafter.strip().partition(":")[0]
    if drafter in REFUSED_DRAFTERS:
        return (f"the {drafter} drafter cannot run with a verifier on a server: {REFUSED_DRAFTERS[drafter]}. "
                "Use --drafter ngram or a small local model of the served model's family")
    if config.tree:
        return "trees need a tree attention mask, which a server's API cannot take: use chains (-k) with --verifier URL"
    if config.verify == "sampling" and (config.temperature != 1.0 or config.top_k or config.top_p < 1.0):
        return ("sampling verification against a server verifies at the server's raw distribution: its logprobs "
                "are taken at temperature 1, and a temperature, top-k or top-p would need its whole distribution at "
                "every position of every step. Use --temperature 1 --top-k 0 --top-p 1 (the drafter's own knobs, "
                "--draft-temperature and the rest, are free)")
    if config.forward == "bf16":
        return "--forward bf16 runs this machine's forward; with --verifier URL the server computes the verifier"
    return None


@dataclass
class RemoteVerifier:
    """What a session reads of its verifier (LoadedModel's fields), for a model served over HTTP."""

    name: str
    model: RemoteModel
    tokenizer: object
    vocab_size: int
    context_window: int
    eos_ids: frozenset[int]
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    notes: tuple[str, ...] = ()


def connect(config, progress=None, timeout_s: float = PASS_TIMEOUT_S) -> RemoteVerifier:
    """The server of `config.verifier`, checked: it answers, serves the model, and tokenizes as our tokenizer does."""
    reason = refusal(config)
    if reason:
        raise ConfigError(reason)
    report = progress or (lambda message, fraction: None)
    url, model = split_spec(config.verifier)
    client = ServerClient(url, model, timeout_s=timeout_s)
    report(f"{url}: asking for its model", 0.05)
    served = client.model  # a ServerError names the server if nothing answers
    tokenizer_spec = _tokenizer_spec(config.drafter, served)
    report(f"{served}: loading its tokenizer ({tokenizer_spec})", 0.3)
    tokenizer = load_tokenizer(tokenizer_spec, config.trust_remote_code)
    report(f"{served}: checking the tokenizer against the server", 0.7)
    check_server_tokenizer(client, served, tokenizer, tokenizer_spec)
    window = client.context_window()
    notes = () if window else (f"{url} does not list its context window: {FALLBACK_WINDOW} tokens assumed",)
    report(f"{served} on {url}: ready", 1.0)
    eos = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    return RemoteVerifier(name=f"{url}#{served}", model=RemoteModel(client), tokenizer=tokenizer,
                          vocab_size=len(tokenizer), context_window=window or FALLBACK_WINDOW,
                          eos_ids=frozenset(eos), notes=notes)


def _tokenizer_spec(drafter: str, served: str) -> str:
    from ..drafting.drafters import built_in

    drafter = drafter.strip()
    return served if drafter in ("", "auto") or built_in(drafter) is not None else drafter


def load_tokenizer(spec: str, trust_remote_code: bool = False):
    """The tokenizer of a model spec, without its weights where that can be done (a hub id, a folder)."""
    from .loading import EMBEDDED, load_model

    if spec in EMBEDDED or spec.lower().endswith(".gguf"):
        return load_model(spec).tokenizer  # the tokenizer lives in the GGUF: its cache holds both
    from transformers import AutoTokenizer

    from .loading import _explain_missing

    try:
        return AutoTokenizer.from_pretrained(spec, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise ModelLoadError(_explain_missing(spec, error)) from error


def check_server_tokenizer(client: ServerClient, served: str, tokenizer, tokenizer_name: str) -> None:
    """The server's /tokenize must give our token ids, special tokens included; else both are named."""
    probes = list(PROBES) + [t for t in (tokenizer.eos_token, tokenizer.bos_token) if t]
    for text in probes:
        ours = list(tokenizer(text, add_special_tokens=False).input_ids)
        try:
            theirs = client.tokenize(text)
        except ServerError as error:
            raise ServerError(f"{error} (the tokenizer check needs vLLM's /tokenize)") from error
        if ours != theirs:
            raise TokenizerMismatchError(
                f"the server's model {served!r} and the local tokenizer {tokenizer_name!r} tokenize differently "
                f"({text[:24]!r} encodes as {theirs[:6]} there, {ours[:6]} here): drafts would be other tokens")
