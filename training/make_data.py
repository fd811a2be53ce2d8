"""Training data for the draft head: SmolLM2's own greedy continuations and its hidden states, made offline.

For every prompt of training/prompts.py the verifier generates greedily (batched, left-padded); a hook on its
final norm records the final hidden state (before the norm) of every real position, prompt and generated alike.
Those features are what the head reads at inference (the verify pass hands them back), and the verifier's argmax
over them is the label the head must predict. Shards are written as they finish, so a killed run resumes.

Part c samples instead (temperature 0.8, top-p 0.95) from the prompts of both grids, in bfloat16 (AMX makes it
1.6x faster here; the features differ from fp32 by bf16 rounding): new contexts the greedy parts never reach,
which is what the head lacked (it memorised its greedy training text). Its labels are the verifier's argmax at
every position, computed in training/train_head.py; `--shards` (or `--minutes`) bounds the run.

    .venv/bin/python training/make_data.py [--part a|b|c|d|e|f] [--out training/work/data] [--max-new-tokens 128]
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


def generate_shard(model, tokenizer, prompts: list[str], max_new_tokens: int, sampled: bool = False,
                   temperature: float = 0.8) -> list[dict]:
    captured: list[torch.Tensor] = []
    hook = model.model.norm.register_forward_hook(lambda module, args, output: captured.append(args[0].detach()))
    try:
        tokenizer.padding_side = "left"
        batch = tokenizer(prompts, return_tensors="pt", padding=True)
        with torch.inference_mode():
            sampling = ({"do_sample": True, "temperature": temperature, "top_p": 0.95, "top_k": 0} if sampled
                        else {"do_sample": False})
            out = model.generate(**batch, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id, **sampling)
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
        records.append({"prompt": prompt, "ids": ids, "prompt_len": width - pad, "features": feats, "sampled": sampled})
    return records


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verifier", default="smollm2-135m")
    parser.add_argument("--out", default=str(Path(__file__).parent / "work" / "data"))
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--limit", type=int, default=0, help="only the first N prompts (for a quick run)")
    parser.add_argument("--part", choices=("a", "b", "c", "d", "e", "f"), default="a",
                        help="a, b: greedy continuations of the first or second training grid; c: sampled ones of "
                             "both; d: sampled at temperature 1.0 from topic-free openers; e: d again with other seeds; "
                             "f: sampled at 0.8 from openers of other genres (dialogue, lists, letters, code comments)")
    parser.add_argument("--minutes", type=float, default=0, help="stop starting new shards after this long (0: no limit)")
    parser.add_argument("--shards", type=int, default=0, help="only the first N shards (0: all)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model, tokenizer = load_verifier(args.verifier)
    sampled = args.part in "cdef"
    if sampled:
        model = model.to(torch.bfloat16)
    prompts = {"a": prompt_sets.training_prompts, "b": prompt_sets.training_prompts_b,
               "c": lambda: prompt_sets.training_prompts() + prompt_sets.training_prompts_b(),
               "d": prompt_sets.free_prompts, "e": prompt_sets.free_prompts, "f": prompt_sets.genre_prompts}[args.part]()
    if args.limit:
        prompts = prompts[: args.limit]
    # Similar lengths in one batch waste less padding; the order is fixed, so shard i is always the same prompts.
    prompts = sorted(prompts, key=lambda p: len(tokenizer(p).input_ids))
    shards = [prompts[i : i + args.batch] for i in range(0, len(prompts), args.batch)]
    if args.shards:
        shards = shards[: args.shards]
    start, made = time.perf_counter(), 0
    for index, shard in enumerate(shards):
        path = out / (f"shard-{index:04d}.pt" if args.part == "a" else f"shard-{args.part}-{index:04d}.pt")
        if path.exists():
            continue
        if args.minutes and time.perf_counter() - start > 60 * args.minutes:
            print(f"stopped after {args.minutes} min: {index} of {len(shards)} shards", flush=True)
            break
        t0 = time.perf_counter()
        # Parts c-e: the same shard samples the same text on a rerun; e is a second draw of d (other seeds).
        torch.manual_seed(index + {"e": 10_000, "f": 20_000}.get(args.part, 0))
        records = generate_shard(model, tokenizer, shard, args.max_new_tokens, sampled,
                                 temperature=1.0 if args.part in "de" else 0.8)
        torch.save(records, path.with_suffix(".tmp"))
        path.with_suffix(".tmp").rename(path)
        tokens = sum(len(r["ids"]) - r["prompt_len"] for r in records)
        made += tokens
        print(f"shard {index + 1}/{len(shards)}: {tokens} new tokens in {time.perf_counter() - t0:.0f} s "
              f"({made / (time.perf_counter() - start):.0f} tok/s overall)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
