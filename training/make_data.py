"""Training data for the draft head: SmolLM2's own greedy continuations and its hidden states, made offline.

For every prompt of training/prompts.py the verifier generates greedily (batched, left-padded); a hook on its
final norm records the final hidden state (before the norm) of every real position, prompt and generated alike.
Those features are what the head reads at inference (the verify pass hands them back), and the verifier's argmax
over them is the label the head must predict. Shards are written as they finish, so a killed run resumes.

    .venv/bin/python training/make_data.py [--part a|b] [--out training/work/data] [--max-new-tokens 128]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import prompts as prompt_sets  # noqa: E402


def load_verifier(spec: str):
    """The verifier through transformers (batched `generate` with padding), from the engine's dequantized cache."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from engine.models import load_model

    loaded = load_model(spec, lean=False)  # makes sure the cache exists; its folder holds config + tokenizer
    return loaded.model, loaded.tokenizer


def generate_shard(model, tokenizer, prompts: list[str], max_new_tokens: int) -> list[dict]:
    captured: list[torch.Tensor] = []
    hook = model.model.norm.register_forward_hook(lambda module, args, output: captured.append(args[0].detach()))
    try:
        tokenizer.padding_side = "left"
        batch = tokenizer(prompts, return_tensors="pt", padding=True)
        with torch.inference_mode():
            out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
    finally:
        hook.remove()
    # captured[0]: the prompt pass [B, P, H]; then one [B, 1, H] per generated token (the last one is not fed).
    features = torch.cat(captured, dim=1)
    width = batch.input_ids.shape[1]
    eos = set(model.generation_config.eos_token_id if isinstance(model.generation_config.eos_token_id, list)
              else [model.generation_config.eos_token_id])
    records = []
    for row, prompt in enumerate(prompts):
        pad = int((batch.attention_mask[row] == 0).sum())
        ids = out[row, pad:].tolist()
        generated = ids[width - pad :]
        for i, token in enumerate(generated):
            if token in eos:
                generated = generated[: i + 1]
                break
        ids = ids[: width - pad] + generated
        # Features exist for every fed position: all but the last token.
        feats = features[row, pad : pad + len(ids) - 1].to(torch.float16).clone()
        records.append({"prompt": prompt, "ids": ids, "prompt_len": width - pad, "features": feats})
    return records


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verifier", default="smollm2-135m")
    parser.add_argument("--out", default=str(Path(__file__).parent / "work" / "data"))
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--limit", type=int, default=0, help="only the first N prompts (for a quick run)")
    parser.add_argument("--part", choices=("a", "b"), default="a", help="the first or the second training grid")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model, tokenizer = load_verifier(args.verifier)
    prompts = prompt_sets.training_prompts() if args.part == "a" else prompt_sets.training_prompts_b()
    if args.limit:
        prompts = prompts[: args.limit]
    # Similar lengths in one batch waste less padding; the order is fixed, so shard i is always the same prompts.
    prompts = sorted(prompts, key=lambda p: len(tokenizer(p).input_ids))
    shards = [prompts[i : i + args.batch] for i in range(0, len(prompts), args.batch)]
    start, made = time.perf_counter(), 0
    for index, shard in enumerate(shards):
        path = out / (f"shard-{index:04d}.pt" if args.part == "a" else f"shard-b-{index:04d}.pt")
        if path.exists():
            continue
        t0 = time.perf_counter()
        records = generate_shard(model, tokenizer, shard, args.max_new_tokens)
        torch.save(records, path.with_suffix(".tmp"))
        path.with_suffix(".tmp").rename(path)
        tokens = sum(len(r["ids"]) - r["prompt_len"] for r in records)
        made += tokens
        print(f"shard {index + 1}/{len(shards)}: {tokens} new tokens in {time.perf_counter() - t0:.0f} s "
              f"({made / (time.perf_counter() - start):.0f} tok/s overall)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
