"""Training data for the draft head: SmolLM2's own continuations and its hidden states, made offline.

For every prompt of training/prompts.py the verifier continues the text (batched, left-padded); a hook on its
final norm records the final hidden state (before the norm) of every real position, prompt and generated alike,
and hooks on the tapped layers (--taps, EAGLE-3's low and middle features) record their inputs.
Those features are what the head reads at inference (the verify pass hands them back), and the verifier's
distribution over them is what the head learns. Shards are written as they finish, so a killed run resumes.

Parts a and b continue greedily; parts c-f sample (top-p 0.95) to reach contexts greedy text never does (the head
memorised its greedy training text without them); training/train_head.py recomputes their labels.

Speed (2 cores): generation runs in bfloat16 (AMX), 512 rows a batch, with its own loop (a preallocated cache
and a top-p draw among the 256 most likely tokens): 720-970 new tokens/s a shard, six parts in 28 min, against
210-240 tokens/s for transformers' `generate` at batch 128, whose full-vocabulary sort and draw took 3/4 of the time.

    .venv/bin/python -m training.make_data [--part a|b|c|d|e|f] [--out training/work/data-v5] [--taps 2,15]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from engine.forward.cached_lm import feature_hooks
from training.parts import PARTS, help_text as parts_help


def load_verifier(spec: str):
    """The verifier through transformers (batched `generate` with padding), from the engine's dequantized cache."""
    from engine.models.loading import load_model

    loaded = load_model(spec, lean=False)  # makes sure the cache exists; its folder holds config + tokenizer
    return loaded.model, loaded.tokenizer


def preallocated_cache(layers: int, capacity: int):
    """A transformers cache whose layers write into buffers sized for the whole generation.

    DynamicCache concatenates every layer's keys and values at each step (40% of the profile at batch 128 and 128
    new tokens); StaticCache attends over its full length every step (slower than either here).
    """
    from transformers.cache_utils import Cache, DynamicLayer

    class PreallocatedLayer(DynamicLayer):
        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
                batch, heads, _, dim = key_states.shape
                self.key_buffer = key_states.new_empty(batch, heads, capacity, dim)
                self.value_buffer = value_states.new_empty(batch, heads, capacity, dim)
                self.length = 0
            end = self.length + key_states.shape[-2]
            self.key_buffer[:, :, self.length : end] = key_states
            self.value_buffer[:, :, self.length : end] = value_states
            self.length = end
            self.keys, self.values = self.key_buffer[:, :, :end], self.value_buffer[:, :, :end]
            return self.keys, self.values

    return Cache(layers=[PreallocatedLayer() for _ in range(layers)])


TOP_CANDIDATES = 256  # top-p is applied within the 256 most likely tokens (see next_tokens)


def next_tokens(logits: torch.Tensor, temperature: float, top_p: float = 0.95) -> torch.Tensor:
    """[B, V] logits -> [B] tokens: argmax at temperature 0, else top-p sampling within the TOP_CANDIDATES most likely tokens.

    transformers' top-p sorts all 49,152 logits of every row and its multinomial draws an exponential per entry:
    at batch 128 those two took 3/4 of generation time. topk + a 256-way draw gives the same text up to the
    (rare) rows whose top-p set is wider than 256 tokens.
    """
    if temperature == 0:
        return logits.argmax(-1)
    values, index = (logits.float() / temperature).topk(TOP_CANDIDATES, dim=-1)  # sorted, most likely first
    probs = values.softmax(-1)
    before = probs.cumsum(-1) - probs
    probs = probs.masked_fill(before >= top_p, 0.0)  # keep the smallest prefix whose mass reaches top_p
    return index.gather(-1, torch.multinomial(probs, 1))[:, 0]


@torch.inference_mode()
def generate_shard(model, tokenizer, prompts: list[str], max_new_tokens: int, temperature: float = 0.0,
                   taps: tuple[int, ...] = ()) -> list[dict]:
    """Continue a batch of left-padded prompts; record the final hidden state (before the norm) of every position,
    and the input of each tapped layer."""
    captured: list[torch.Tensor] = []
    tapped: dict[int, list[torch.Tensor]] = {index: [] for index in taps}
    eos_ids = model.generation_config.eos_token_id
    eos = torch.tensor(eos_ids if isinstance(eos_ids, list) else [eos_ids])
    precision = {torch.bfloat16: "bf16", torch.float32: "fp32"}.get(model.dtype, str(model.dtype))
    # The engine's own hooks (engine/forward/cached_lm.py), so training reads the features inference hands over.
    with feature_hooks(model, taps, lambda states: captured.append(states.detach()),
                       lambda index, states: tapped[index].append(states.detach())):
        tokenizer.padding_side = "left"
        batch = tokenizer(prompts, return_tensors="pt", padding=True)
        mask = batch.attention_mask
        cache = preallocated_cache(model.config.num_hidden_layers, mask.shape[1] + max_new_tokens)
        ids, positions = batch.input_ids, (mask.cumsum(-1) - 1).clamp(min=0)
        done = torch.zeros(len(prompts), dtype=torch.bool)
        generated = []
        for _ in range(max_new_tokens):
            out = model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache,
                        use_cache=True, logits_to_keep=1)
            token = next_tokens(out.logits[:, -1], temperature)
            token = token.masked_fill(done, tokenizer.pad_token_id)
            generated.append(token)
            done |= torch.isin(token, eos)
            if bool(done.all()):
                break
            ids, positions = token[:, None], positions[:, -1:] + 1
            mask = torch.cat((mask, torch.ones(len(prompts), 1, dtype=mask.dtype)), dim=-1)
    # captured[0]: the prompt pass [B, P, H]; then one [B, 1, H] per generated token fed back (the last is not fed).
    features = torch.cat(captured, dim=1)
    layer_inputs = torch.stack([torch.cat(tapped[index], dim=1) for index in taps], dim=2) if taps else None
    width = batch.input_ids.shape[1]
    new = torch.stack(generated, dim=1)
    records = []
    for row, prompt in enumerate(prompts):
        pad = int((batch.attention_mask[row] == 0).sum())
        continuation = new[row].tolist()
        for i, token in enumerate(continuation):
            if token in eos:
                continuation = continuation[: i + 1]
                break
        ids = batch.input_ids[row, pad:].tolist() + continuation
        # Features exist for every fed position: all but the last token.
        feats = features[row, pad : pad + len(ids) - 1].to(torch.float16).clone()
        record = {"prompt": prompt, "ids": ids, "prompt_len": width - pad, "features": feats,
                  "sampled": temperature > 0, "precision": precision}
        if taps:  # [n - 1, len(taps), H]: before each tapped layer's own input norm, like `features`
            record["taps"] = layer_inputs[row, pad : pad + len(ids) - 1].to(torch.float16).clone()
            record["tap_layers"] = list(taps)
        records.append(record)
    return records


TIMING = "timing.json"  # seconds each shard took to generate: train_head.py puts their sum on the head's card


def record_seconds(out: Path, shard: str, seconds: float) -> None:
    path = out / TIMING
    timing = json.loads(path.read_text()) if path.exists() else {}
    timing[shard] = round(seconds, 1)
    path.write_text(json.dumps(timing, indent=0))


def check_layout(out: Path, layout: dict) -> None:
    """Shard i is the i-th `batch` prompts: a folder resumes only with the settings that made its shards."""
    path = out / "layout.json"
    if path.exists():
        made = {"taps": [], **json.loads(path.read_text())}  # folders from before --taps recorded none
        if made != layout:
            raise SystemExit(f"{out} holds shards made with {made}, not {layout}: use another --out, or the same settings")
    elif any(out.glob("shard-*.pt")):
        raise SystemExit(f"{out} holds shards from an older make_data.py (no layout.json): use another --out")
    else:
        path.write_text(json.dumps(layout))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verifier", default="smollm2-135m")
    parser.add_argument("--out", default=str(Path(__file__).parent / "work" / "data-v5"))
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--limit", type=int, default=0, help="only the first N prompts (for a quick run)")
    parser.add_argument("--part", choices=tuple(PARTS), default="a", help=parts_help())
    parser.add_argument("--precision", choices=("bf16", "fp32"), default="bf16",
                        help="the verifier's dtype while generating (bf16: ~1.6x faster with AMX; heads v1-v4 had "
                             "parts a and b in fp32)")
    parser.add_argument("--minutes", type=float, default=0, help="stop starting new shards after this long (0: no limit)")
    parser.add_argument("--shards", type=int, default=0, help="only the first N shards (0: all)")
    parser.add_argument("--taps", default="",
                        help="verifier layers whose inputs to record beside the final features, for a head that "
                             "fuses them (EAGLE-3), e.g. 2,15; none by default (the shipped head reads none)")
    args = parser.parse_args()
    taps = tuple(int(i) for i in args.taps.split(",") if i.strip())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    check_layout(out, {"batch": args.batch, "max_new_tokens": args.max_new_tokens, "precision": args.precision,
                       "limit": args.limit, "taps": list(taps)})
    model, tokenizer = load_verifier(args.verifier)
    part = PARTS[args.part]
    if args.precision == "bf16":
        model = model.to(torch.bfloat16)
    prompts = part.prompts()
    if args.limit:
        prompts = prompts[: args.limit]
    # Similar lengths in one batch waste less padding; the order is fixed, so shard i is always the same prompts.
    prompts = sorted(prompts, key=lambda p: len(tokenizer(p).input_ids))
    shards = [prompts[i : i + args.batch] for i in range(0, len(prompts), args.batch)]
    if args.shards:
        shards = shards[: args.shards]
    start, made = time.perf_counter(), 0
    for index, shard in enumerate(shards):
        path = out / part.shard_name(index)
        if path.exists():
            continue
        if args.minutes and time.perf_counter() - start > 60 * args.minutes:
            print(f"stopped after {args.minutes} min: {index} of {len(shards)} shards", flush=True)
            break
        t0 = time.perf_counter()
        torch.manual_seed(index + part.seed_offset)  # the same shard samples the same text on a rerun
        records = generate_shard(model, tokenizer, shard, args.max_new_tokens, part.temperature, taps)
        torch.save(records, path.with_suffix(".tmp"))
        path.with_suffix(".tmp").rename(path)
        record_seconds(out, path.name, time.perf_counter() - t0)
        tokens = sum(len(r["ids"]) - r["prompt_len"] for r in records)
        made += tokens
        print(f"shard {index + 1}/{len(shards)}: {tokens} new tokens in {time.perf_counter() - t0:.0f} s "
              f"({made / (time.perf_counter() - start):.0f} tok/s overall)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
