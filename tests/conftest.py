"""Shared fixtures: tiny real models built in the test session (no hub, no download), and the embedded model."""

from __future__ import annotations

import os

# Tests never reach the model hub; without this an unknown name retries the network for ~50 s.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")
# The fp32 matmul layout is chosen by timing in a real run (engine/forward/matmul.py): a noisy moment could flip it between
# runs and so the last bits of a verify pass. Tests pin it; test_greedy_lossless.py runs the other layout too.
os.environ.setdefault("SPECDEC_MATMUL", "linear")
os.environ.setdefault("SPECDEC_NO_GUIDE", "1")  # apps started by tests open on the main screen (test_guide shows it)

import pytest


@pytest.fixture
def anyio_backend():
    """Async app tests (`pytest.mark.anyio`) run on asyncio, as Textual does."""
    return "asyncio"


async def settle(pilot) -> None:
    """Wait for the app's thread workers (`pilot.press` does not), then for the screen to catch up."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def headless_run_past_first_step(trace, signals):
    """A headless decode of the embedded model that cannot finish soon (100,000 tokens, `--trace trace`), in a child
    process, returned once it has printed its first step. `signals` get their default disposition in the child:
    it inherits ignored ones (some earlier test in the session leaves SIGINT ignored, and Python then installs no
    KeyboardInterrupt handler), where a terminal would give the default."""
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "specdec_tui.cli", "--headless", "--verifier", "smollm2-135m", "--max-new-tokens", "100000",
         "--block-size", "1", "--trace", str(trace), "--prompt", "a"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=lambda: [signal.signal(s, signal.SIG_DFL) for s in signals],
    )
    deadline = time.time() + 120
    while not proc.stdout.readline().startswith("[step") and time.time() < deadline:
        pass
    return proc


CORPUS = (
    "In a distant future, the world is in a state of flux. The future of AI is not yet clear. "
    "def add(a, b):\n    return a + b\n\nprint(add(1, 2))\n"
    "Speculative decoding drafts a block of tokens and verifies the whole block in one pass. "
    "The drafter proposes, the verifier checks, and the longest agreeing prefix is accepted. "
) * 3


def build_tokenizer(folder, corpus: str, vocab_size: int) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<eos>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator([corpus], trainer)
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>").save_pretrained(str(folder))


def build_model(folder, tokenizer_folder, layers: int, seed: int, vocab_pad: int = 0, hidden: int = 64):
    import shutil

    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_folder))
    config = LlamaConfig(
        vocab_size=len(tokenizer) + vocab_pad,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        pad_token_id=None,
        tie_word_embeddings=False,
        initializer_range=0.25,  # peaked distributions, so greedy and sampled decoding behave like a real model's
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(str(folder))
    for name in os.listdir(tokenizer_folder):
        shutil.copy(os.path.join(tokenizer_folder, name), os.path.join(folder, name))
    return model


def truncate_layers(source_folder, folder, layers: int) -> None:
    """A genuinely separate drafter model: the verifier's first `layers` layers, saved on its own."""
    import shutil

    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(source_folder))
    model.model.layers = model.model.layers[:layers]
    model.config.num_hidden_layers = layers
    model.save_pretrained(str(folder))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        if os.path.exists(os.path.join(source_folder, name)):
            shutil.copy(os.path.join(source_folder, name), os.path.join(folder, name))


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """Folders of tiny Llama models: verifier, a 1-layer drafter, a padded-vocab twin, and a foreign tokenizer."""
    root = tmp_path_factory.mktemp("tiny")
    tok = root / "tok"
    build_tokenizer(tok, CORPUS, 320)
    build_model(root / "verifier", tok, layers=4, seed=0)
    truncate_layers(root / "verifier", root / "drafter", layers=1)
    build_model(root / "padded", tok, layers=2, seed=1, vocab_pad=16)
    other_tok = root / "other_tok"
    build_tokenizer(other_tok, CORPUS.upper() + "zzz yyy", 300)
    build_model(root / "foreign", other_tok, layers=2, seed=2)
    return {name: str(root / name) for name in ("verifier", "drafter", "padded", "foreign")}


@pytest.fixture(scope="session")
def tiny_verifier(tiny):
    from engine.models.loading import load_model

    return load_model(tiny["verifier"])


def make_session(verifier, drafter_spec="same", **config):
    """A Session over an already loaded verifier (fast: no reload per test)."""
    from engine import Session, SpecConfig
    from engine.drafting.drafters import build_drafter

    cfg = SpecConfig(verifier=verifier.name, drafter=drafter_spec, **config).validated()
    drafter = build_drafter(cfg, verifier)
    return Session(cfg, verifier, drafter)


def plain_greedy(verifier, prompt_ids, n):
    """Reference: the verifier's own greedy decoding, recomputing the whole context each token (no cache)."""
    import torch

    ids = list(prompt_ids)
    with torch.inference_mode():
        for _ in range(n):
            logits = verifier.model(input_ids=torch.tensor([ids])).logits[0, -1]
            ids.append(int(logits.argmax()))
            if ids[-1] in verifier.eos_ids:
                break
    return ids[len(prompt_ids):]


@pytest.fixture(scope="session")
def embedded():
    from engine.models.loading import load_model

    return load_model("smollm2-135m")


@pytest.fixture(scope="session")
def tiny_head(tiny_verifier, tmp_path_factory):
    """A draft head trained for the tiny verifier in this session: (folder, losses)."""
    from helpers.tiny_head import train_tiny_head

    folder = tmp_path_factory.mktemp("head") / "tiny-head"
    losses = train_tiny_head(tiny_verifier, folder)
    return str(folder), losses


@pytest.fixture(scope="session")
def vllm_server(request, tmp_path_factory):
    """A ServerClient for a real vLLM server serving the embedded model (the `vllm` tier, issue 27).

    SPECDEC_VLLM_URL: use a server already running (started by `python -m bench.vllm_server`); otherwise the
    embedded model is exported and a server started from `make vllm-env`'s environment (~3 min on 2 cores),
    stopped at the end of the session. Skips, with the reason, where that environment is absent.
    """
    from bench.vllm_server import DEFAULT_NAME, missing_environment, running_server
    from engine.models.server_client import ServerClient
    from engine.models.vllm_export import export_for_vllm

    url = os.environ.get("SPECDEC_VLLM_URL")
    if url:
        yield ServerClient(url, timeout_s=60)
        return
    why = missing_environment()
    if why:
        pytest.skip(why)
    folder = export_for_vllm(request.getfixturevalue("embedded"), tmp_path_factory.mktemp("vllm") / DEFAULT_NAME)
    # --max-logprobs -1: the whole distribution, the sampling test's reference (a verify asks for its top-5 only).
    with running_server(folder, DEFAULT_NAME, max_logprobs=-1, log_dir=folder.parent) as server:
        yield ServerClient(server.url, DEFAULT_NAME, timeout_s=60)


def pytest_terminal_summary(terminalreporter):
    """Say why the vllm tier did not run, even under -q (a skip's reason is otherwise shown only with -rs)."""
    skipped = [report for report in terminalreporter.stats.get("skipped", []) if "vllm" in report.keywords]
    if skipped:
        longrepr = skipped[0].longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        terminalreporter.write_line(f"vllm tier: {len(skipped)} tests skipped: {reason.removeprefix('Skipped: ')}")
