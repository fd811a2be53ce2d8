"""The parts of the draft head's training data, in one table: make_data.py reads what to generate from it,
train_head.py which shards to load and how to describe them on the head's card.

Every part is SmolLM2's own text (up to 128 new tokens a prompt of training/prompts.py); greedy parts (a, b) are
continuations whose next token is the verifier's argmax, sampled parts (c-f) reach contexts greedy text never does
and get their labels from the recorded features in train_head.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from training import prompts as prompt_sets


@dataclass(frozen=True)
class Part:
    name: str
    prompts: Callable[[], list[str]]
    description: str
    temperature: float = 0.0  # 0: greedy; else top-p 0.95 sampling at this temperature
    seed_offset: int = 0  # shard i samples with seed i + offset: the same text on a rerun, other text per part

    @property
    def sampled(self) -> bool:
        return self.temperature > 0

    def shard_name(self, index: int) -> str:
        return f"shard-{index:04d}.pt" if self.name == "a" else f"shard-{self.name}-{index:04d}.pt"

    @property
    def shard_glob(self) -> str:
        return "shard-[0-9]*.pt" if self.name == "a" else f"shard-{self.name}-*.pt"


def _both_grids() -> list[str]:
    return prompt_sets.training_prompts() + prompt_sets.training_prompts_b()


PARTS = {part.name: part for part in (
    Part("a", prompt_sets.training_prompts,
         "greedy continuations of grid A (103 topics x 10 plain + 10 chat styles)"),
    Part("b", prompt_sets.training_prompts_b,
         "greedy continuations of grid B (140 more topics x 4 plain + 4 chat styles)"),
    Part("c", _both_grids, "sampled continuations (T 0.8, top-p 0.95) of both grids' prompts, the shortest 2,048",
         temperature=0.8),
    Part("d", prompt_sets.free_prompts,
         "sampled text (T 1.0, top-p 0.95) from 60 topic-free openers (40 plain, 20 chat), 2,048 sequences",
         temperature=1.0),
    Part("e", prompt_sets.free_prompts, "a second draw of the same openers with other seeds, 2,048 sequences",
         temperature=1.0, seed_offset=10_000),
    Part("f", prompt_sets.genre_prompts,
         "sampled text (T 0.8, top-p 0.95) from 80 openers of other genres (dialogue, lists, letters, news, recipes, "
         "poems, code comments; 40 plain, 40 chat), 2,048 sequences", temperature=0.8, seed_offset=20_000),
)}


def help_text() -> str:
    return "; ".join(f"{part.name}: {part.description}" for part in PARTS.values())
