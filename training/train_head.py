"""Train the draft head for the embedded SmolLM2-135M (or another Llama verifier) on data from make_data.py.

    .venv/bin/python -m training.train_head [--data training/work/data-v5] [--vocab 8192] [--epochs 2] [--depth 3]

Phases, each resumable: prepare (labels and the head's vocabulary from the shards), train (a checkpoint every
few steps in training/work/), export (engine/drafting/heads/<verifier>/: head.safetensors + card.json) and evaluate
(greedy speculative decoding with the new head on the held-out prompts, through the engine itself).
`make train-head` runs make_data.py then this script.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

import torch

from engine.drafting.draft_head import HEADS_DIR, HeadShape, save_head, tapped_rows
from engine.forward.fast_llama import rms_norm
from training.head_training import IGNORE, TrainableHead, collate, head_loss, learning_rate, pack
from training.make_data import TIMING
from training.parts import PARTS

WORK = Path(__file__).resolve().parent / "work"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---- prepare ----------------------------------------------------------------------------------------------


@torch.no_grad()  # a transformers verifier's weights require grad: no graph may ride along in the rows
def prepare(data: Path, verifier, vocab_size: int, parts: str = "abc", use_taps: bool = True) -> dict:
    """Normalised features (and tapped layers' inputs, if recorded), the verifier's next-token labels, and the N
    most frequent labels as the vocabulary."""
    model = verifier.model
    norm, eps = model.model.norm.weight, model.config.rms_norm_eps
    head = model.get_output_embeddings().weight
    logits = torch.empty(256, head.shape[0])  # one buffer for every sequence's argmax (see verifier_argmax)
    sequences, counts, precisions, tap_layers = [], Counter(), set(), set()
    shards = sorted(path for part in parts for path in data.glob(PARTS[part].shard_glob))
    if not shards:
        raise SystemExit(f"no shards in {data}: run python -m training.make_data first")
    for path in shards:
        for record in torch.load(path):
            ids, prompt_len = record["ids"], record["prompt_len"]
            features = rms_norm(record["features"].float(), norm, eps)  # [n - 1, H]
            labels = torch.tensor(ids[1:])  # in a greedy continuation the next token IS the verifier's argmax
            # In the prompt, and everywhere in sampled text (parts c-f), ask the verifier what it would have said.
            asked = len(labels) if record.get("sampled") else prompt_len - 1
            labels[:asked] = verifier_argmax(features[:asked], head, logits)
            sequence = (torch.tensor(ids[:-1]), features.to(torch.float16), labels)
            if use_taps and "taps" in record:
                layers = record["tap_layers"]
                sequence += (tapped_rows(model, record["taps"].flatten(1), layers).to(torch.float16),)
                tap_layers.add(tuple(layers))
            sequences.append(sequence)
            counts.update(labels.tolist())
            # Shards from before the field: parts a and b were generated in fp32, the sampled parts in bf16.
            precisions.add(record.get("precision", "bf16" if record.get("sampled") else "fp32"))
    if len(tap_layers) > 1 or (tap_layers and any(len(s) == 3 for s in sequences)):
        raise SystemExit(f"the shards in {data} record different tapped layers ({sorted(tap_layers)} or none): "
                         "make them again with one --taps, or train with --no-taps")
    vocab_ids = torch.tensor([token for token, _ in counts.most_common(vocab_size)])
    total = sum(counts.values())
    coverage = {n: sum(c for _, c in counts.most_common(n)) / total for n in (4096, 8192, 16384)}
    timing_path = data / TIMING  # written by make_data.py as it makes each shard
    timing = json.loads(timing_path.read_text()) if timing_path.exists() else {}
    timed = [timing[path.name] for path in shards if path.name in timing]
    generation = round(sum(timed)) if len(timed) == len(shards) else None  # unknown if any shard lacks its time
    return {"sequences": sequences, "vocab_ids": vocab_ids, "coverage": coverage, "shards": len(shards),
            "generation_seconds": generation, "tap_layers": next(iter(tap_layers), ()),
            "positions": total, "precisions": precisions}


@torch.inference_mode()
def verifier_argmax(features: torch.Tensor, head: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """The verifier's next token after each (normalised) feature, in chunks of `logits`' rows through that buffer.

    One reused buffer, because fresh [n, 49152] products of varying n fragment the heap (+11 MB a sequence).
    """
    chunk = logits.shape[0]
    out = torch.empty(features.shape[0], dtype=torch.long)
    for start in range(0, features.shape[0], chunk):
        rows = features[start : start + chunk]
        scores = logits[: rows.shape[0]]
        torch.mm(rows, head.t(), out=scores)
        out[start : start + rows.shape[0]] = scores.argmax(-1)
    return out


def data_source(parts: str, precisions: set[str]) -> str:
    generated = " and ".join(sorted(precisions))
    return (f"SmolLM2's own text ({generated}), up to 128 new tokens per prompt of training/prompts.py: "
            + "; ".join(PARTS[p].description for p in parts) + "; held-out topics and styles never used")


def describe_loss(soft: float, depth: int) -> str:
    hard = "cross-entropy on the verifier's next token"
    distilled = "cross-entropy against the verifier's distribution over the draft vocabulary"
    if soft == 0:
        token_term = hard
    elif soft == 1:
        token_term = f"{distilled} (distillation)"
    else:
        token_term = f"{1 - soft:g} x {hard} + {soft:g} x {distilled}"
    return (f"{token_term} + 0.1 x smooth-L1 on its next feature, summed over {depth} unrolled drafting passes "
            "(training-time test)")


def to_vocab_index(labels: torch.Tensor, vocab_ids: torch.Tensor, full_vocab: int) -> torch.Tensor:
    index = torch.full((full_vocab,), IGNORE, dtype=torch.long)
    index[vocab_ids] = torch.arange(len(vocab_ids))
    return index[labels]


# ---- train ------------------------------------------------------------------------------------------------


def autocast(precision: str):
    """bf16: the head's matmuls in bfloat16 (AMX), weights, optimizer and the loss's softmaxes in fp32."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")


def train(args, verifier, prepared: dict) -> dict:
    torch.manual_seed(args.seed)
    model = verifier.model
    vocab_ids = prepared["vocab_ids"]
    sequences = [(t, f, to_vocab_index(l, vocab_ids, verifier.vocab_size), *taps)
                 for t, f, l, *taps in prepared.pop("sequences")]  # popped: the packed rows are the only copy kept
    random.Random(args.seed).shuffle(sequences)
    n_valid = max(1, len(sequences) // 33)
    valid_rows, train_rows = pack(sequences[:n_valid], args.row), pack(sequences[n_valid:], args.row)
    del sequences
    shape = HeadShape.of_verifier(model.config)
    embed = model.get_input_embeddings().weight if hasattr(model, "get_input_embeddings") else model.model.embed_tokens.weight
    head = TrainableHead(shape, embed, model.get_output_embeddings().weight[vocab_ids], seed=args.seed,
                         taps=len(prepared["tap_layers"]))
    if args.init:  # warm start: fc and the layer do not depend on the draft vocabulary
        from engine.drafting.draft_head import LAYER_NAMES, load_head

        start = load_head(args.init, verifier)
        with torch.no_grad():
            head.fc.copy_(start.fc)
            for name, weight in zip(LAYER_NAMES, start.layer):
                head.layer[name].copy_(weight)
        log(f"warm start from {args.init}")
    optimizer = torch.optim.AdamW(head.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.0)
    steps_per_epoch = -(-len(train_rows) // args.batch)
    total = steps_per_epoch * args.epochs
    checkpoint = WORK / "checkpoint.pt"
    history, step, started, spent = [], 0, time.perf_counter(), 0.0
    if checkpoint.exists() and not args.restart:
        saved = torch.load(checkpoint)
        if (saved["total"] == total and saved["vocab"] == len(vocab_ids) and saved.get("soft", 0.0) == args.soft
                and saved.get("taps", []) == list(prepared["tap_layers"])):
            head.load_state_dict(saved["head"])
            optimizer.load_state_dict(saved["optimizer"])
            step, history, spent = saved["step"], saved["history"], saved["spent"]
            log(f"resumed at step {step}/{total}")
    log(f"train: {len(train_rows)} rows of {args.row} positions, {total} steps of {args.batch} rows, depth {args.depth}")
    while step < total:
        epoch, within = divmod(step, steps_per_epoch)
        order = list(range(len(train_rows)))
        random.Random(args.seed + epoch).shuffle(order)  # the same order on resume
        rows = [train_rows[i] for i in order[within * args.batch : (within + 1) * args.batch]]
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, total, args.lr, warmup=min(100, total // 10))
        batch = collate(rows)  # outside autocast: its cat of fp16 rows is refused there
        with autocast(args.precision):
            loss, accuracy, _ = head_loss(head, batch, args.depth, soft=args.soft)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
        optimizer.step()
        step += 1
        history.append({"step": step, "loss": loss.item(), "accuracy": accuracy})
        if step % args.log_every == 0 or step == total:
            elapsed = spent + time.perf_counter() - started
            recent = history[-args.log_every :]
            mean_loss = sum(h["loss"] for h in recent) / len(recent)
            mean_acc = [sum(h["accuracy"][d] for h in recent) / len(recent) for d in range(args.depth)]
            eta = elapsed / step * (total - step) if step else 0
            bar = "#" * int(30 * step / total)
            log(f"[{bar:<30}] step {step}/{total} loss {mean_loss:.3f} top-1 by depth "
                f"{' '.join(f'{a:.2f}' for a in mean_acc)}  {elapsed / 60:.1f} min, ETA {eta / 60:.1f} min")
        if step % args.checkpoint_every == 0 or step == total:
            torch.save({"head": head.state_dict(), "optimizer": optimizer.state_dict(), "step": step, "total": total,
                        "vocab": len(vocab_ids), "soft": args.soft, "history": history,
                        "taps": list(prepared["tap_layers"]),
                        "spent": spent + time.perf_counter() - started}, checkpoint.with_suffix(".tmp"))
            checkpoint.with_suffix(".tmp").replace(checkpoint)
    with torch.no_grad():
        losses, accuracies = [], []
        for i in range(0, len(valid_rows), args.batch):
            batch = collate(valid_rows[i : i + args.batch])
            with autocast(args.precision):
                loss, accuracy, _ = head_loss(head, batch, args.depth, soft=args.soft)
            losses.append(float(loss))
            accuracies.append(accuracy)
    validation = {"loss": sum(losses) / len(losses),
                  "top1_by_depth": [sum(a[d] for a in accuracies) / len(accuracies) for d in range(args.depth)]}
    log(f"validation (held-out sequences of the training grid): {validation}")
    return {"head": head, "history": history, "validation": validation, "train_rows": len(train_rows),
            "steps": total, "seconds": spent + time.perf_counter() - started}


# ---- evaluate ---------------------------------------------------------------------------------------------


def held_out_slice(limit: int, rest: bool = False) -> list[str]:
    """Every (48 // limit)-th held-out prompt (the card's evaluation set), or with `rest` the prompts it skips."""
    from training.prompts import held_out_prompts

    prompts = held_out_prompts()
    chosen = prompts[:: max(1, len(prompts) // limit)][:limit]
    return [p for p in prompts if p not in chosen] if rest else chosen


def evaluate(folder: Path, verifier_spec: str, k: int, max_new_tokens: int, limit: int, rest: bool = False,
             tree: str | None = None) -> dict:
    """Greedy speculative decoding with the exported head on held-out prompts, through the engine: chains of k, or
    the `tree` shape (engine/drafting/tree_shape.py) k deep."""
    from engine import Session, SpecConfig
    from engine.models.loading import load_model

    from training.prompts import for_engine

    verifier = load_model(verifier_spec)
    config = SpecConfig(verifier=verifier_spec, drafter=f"head:{folder}", block_size=k, draft_mode="greedy",
                        max_new_tokens=max_new_tokens, tree=tree)
    session = Session.from_loaded(config, verifier)
    drafted = accepted = tokens = calls = 0
    per_position = [[0, 0] for _ in range(k)]
    prompts = held_out_slice(limit, rest)
    for prompt in prompts:
        text, chat = for_engine(prompt)
        session.configure(chat=chat)
        session.reset(text)
        session.run()
        stats = session.stats
        drafted, accepted = drafted + stats.drafted, accepted + stats.accepted
        tokens, calls = tokens + stats.new_tokens, calls + stats.verifier_calls
        for i, (d, a) in enumerate(zip(stats.per_position_drafted, stats.per_position_accepted)):
            per_position[i][0] += d
            per_position[i][1] += a
    result = {"prompts": len(prompts), "k": k, "max_new_tokens": max_new_tokens,
              "acceptance_rate": accepted / max(1, drafted), "tokens_per_verifier_call": tokens / max(1, calls),
              "per_position_acceptance": [a / max(1, d) for d, a in per_position]}
    if tree:  # a tree's acceptance rate counts every node as a draft: tokens per call is the comparable figure
        result = {"tree": tree, **result}
    log(f"held-out greedy decoding (k={k}{', tree ' + tree if tree else ''}): {result}")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verifier", default="smollm2-135m")
    parser.add_argument("--data", default=str(WORK / "data-v5"))
    parser.add_argument("--out", default=None, help="head folder (default engine/drafting/heads/<verifier>)")
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--depth", type=int, default=3, help="drafting passes unrolled in training")
    parser.add_argument("--row", type=int, default=512)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--checkpoint-every", type=int, default=25)
    parser.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    parser.add_argument("--eval-prompts", type=int, default=16)
    parser.add_argument("--skip-eval", action="store_true")
    parser.add_argument("--soft", type=float, default=1.0,
                        help="weight of distillation on the verifier's distribution (0: its argmax only, 1: EAGLE's loss)")
    parser.add_argument("--precision", choices=("bf16", "fp32"), default="bf16",
                        help="bf16: mixed precision (about 2x faster steps on a CPU with AMX); fp32 trained heads v1-v4")
    parser.add_argument("--no-taps", action="store_true",
                        help="ignore the tapped layers' inputs the data recorded: the head reads the final feature only")
    parser.add_argument("--init", default=None, help="start from this head folder's weights (warm start)")
    parser.add_argument("--parts", default="abcdef", help="which data parts to train on (make_data.py --part): any of " + "".join(PARTS))
    parser.add_argument("--evaluate-only", metavar="FOLDER", default=None,
                        help="only evaluate this head folder (--eval-k, --eval-rest) and print the result")
    parser.add_argument("--eval-k", type=int, default=4)
    parser.add_argument("--eval-tree", default=None, metavar="SHAPE",
                        help="with --evaluate-only: draft trees of this shape (e.g. dynamic:32) --eval-k deep")
    parser.add_argument("--eval-rest", action="store_true",
                        help="evaluate on the held-out prompts the card's set skips (32 of 48 by default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.evaluate_only:
        result = evaluate(Path(args.evaluate_only), args.verifier, args.eval_k, 64, args.eval_prompts, args.eval_rest,
                          args.eval_tree)
        print(json.dumps(result))
        return 0
    from engine.models.loading import load_model

    WORK.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    verifier = load_model(args.verifier)
    log("prepare: labels and vocabulary")
    prepared = prepare(Path(args.data), verifier, args.vocab, args.parts, use_taps=not args.no_taps)
    n_sequences = len(prepared["sequences"])
    log(f"prepare: {n_sequences} sequences, {prepared['positions']} positions, tapped layers "
        f"{list(prepared['tap_layers'])}; share of labels covered by the top-N vocabulary: {prepared['coverage']}")
    trained = train(args, verifier, prepared)
    folder = Path(args.out) if args.out else HEADS_DIR / args.verifier
    curve = [round(sum(h["loss"] for h in trained["history"][i : i + 10]) / len(trained["history"][i : i + 10]), 4)
             for i in range(0, len(trained["history"]), 10)]
    taps = list(prepared["tap_layers"])
    fused = (f"fuse(({len(taps) + 1} x h)->h) over the inputs of verifier layers {taps} (each through that layer's "
             "input norm) and the final feature, wherever the head reads the verifier's rows (EAGLE-3's fused "
             "features; further ahead it reads its own output); then ")
    card = {
        "verifier": args.verifier,
        "tap_layers": taps,
        "vocab_size": verifier.vocab_size,
        "draft_vocab": len(prepared["vocab_ids"]),
        "recipe": {
            "design": "EAGLE-style: " + (fused if taps else "") + "fc(2h->h) over [verifier feature (after final "
                      "norm), token embedding], one decoder layer of the verifier's shape, the verifier's LM head "
                      "restricted to the draft vocabulary",
            "loss": describe_loss(args.soft, args.depth),
            "soft": args.soft,
            "optimizer": f"AdamW lr {args.lr} (warm-up, cosine to 10%), betas (0.9, 0.95), clip 1.0",
            "precision": args.precision,
            "epochs": args.epochs, "rows": f"{args.batch} x {args.row} packed positions per step",
            "seed": args.seed, "script": "training/make_data.py + training/train_head.py",
            "init": args.init, "parts": args.parts,
        },
        "data": {
            "source": data_source(args.parts, prepared["precisions"]),
            "sequences": n_sequences, "positions": prepared["positions"],
            "generation_seconds": prepared["generation_seconds"],  # make_data.py, shard by shard (no model loads)
            "vocabulary_coverage": prepared["coverage"],
        },
        "training": {"steps": trained["steps"], "seconds": round(trained["seconds"]),
                     "final_loss": curve[-1] if curve else None, "loss_curve_every_10_steps": curve,
                     "validation": trained["validation"]},
    }
    save_head(folder, trained["head"].shape, trained["head"].export(prepared["vocab_ids"]), card)
    log(f"exported to {folder}")
    if not args.skip_eval:
        card["held_out"] = evaluate(folder, args.verifier, 4, 64, args.eval_prompts)
    card["training"]["end_to_end_seconds"] = round(time.perf_counter() - started)
    save_head(folder, trained["head"].shape, trained["head"].export(prepared["vocab_ids"]), card)
    log(f"done in {(time.perf_counter() - started) / 60:.1f} min; card: {folder / 'card.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
