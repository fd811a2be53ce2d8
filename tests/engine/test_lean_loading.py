"""The warm start loads the cached checkpoint without transformers; it must be the same model and tokenizer."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import make_session
from engine.models.lean_llama import LeanLlamaForCausalLM, can_load
from engine.models.lean_tokenizer import LeanTokenizer
from engine.models.loading import load_model

PROBES = ["In a distant future,", "def add(a, b):\n    return a + b", "Ünïcödé 🚀 東京\tand  spaces", ""]


def test_lean_module_has_transformers_names_and_logits(tiny, tiny_verifier):
    folder = Path(tiny["verifier"])
    assert can_load(folder)
    lean = LeanLlamaForCausalLM.from_folder(folder)
    assert set(lean.state_dict()) == set(tiny_verifier.model.state_dict())
    ids = torch.tensor([[5, 17, 42, 9, 101, 7]])
    with torch.inference_mode():
        expected = tiny_verifier.model(input_ids=ids).logits
    assert torch.allclose(lean(input_ids=ids).logits, expected, atol=1e-4)


def test_lean_tokenizer_matches_transformers(tiny, tiny_verifier):
    lean = LeanTokenizer(Path(tiny["verifier"]))
    reference = tiny_verifier.tokenizer
    for text in PROBES:
        for special in (True, False):
            assert lean(text, add_special_tokens=special).input_ids == reference(text, add_special_tokens=special).input_ids
        ids = reference(text).input_ids + [reference.eos_token_id]
        for skip in (True, False):
            assert lean.decode(ids, skip_special_tokens=skip) == reference.decode(ids, skip_special_tokens=skip)
    assert lean.eos_token_id == reference.eos_token_id and lean.get_vocab() == reference.get_vocab()


@pytest.mark.embedded
def test_embedded_warm_start_equals_transformers_greedy(embedded):
    lean = load_model("smollm2-135m")
    assert isinstance(lean.model, LeanLlamaForCausalLM)
    reference = load_model("smollm2-135m", lean=False)
    prompt = "<|im_start|>user\nName three colours.<|im_end|>\n<|im_start|>assistant\n"
    assert lean.tokenizer(prompt).input_ids == reference.tokenizer(prompt).input_ids
    session = make_session(lean, "same", block_size=4, draft_mode="greedy", max_new_tokens=24, chat=True)
    session.reset("Name three colours.")
    session.run()
    ids = torch.tensor([session.prompt_ids])
    with torch.inference_mode():
        expected = reference.model.generate(ids, max_new_tokens=24, do_sample=False)[0, ids.shape[1] :].tolist()
    assert session.new_token_ids == expected[: len(session.new_token_ids)]
    assert session.generated_text == reference.tokenizer.decode(expected, skip_special_tokens=True)


@pytest.mark.embedded
def test_embedded_warm_start_never_imports_transformers(embedded):
    code = (
        "import sys\n"
        "from engine import Session, SpecConfig\n"
        "session = Session.from_config(SpecConfig(max_new_tokens=4))\n"
        "session.reset('In a distant future,')\n"
        "session.run()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('transformers', 'textual', 'rich')))\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
