"""The draft head's held-out prompts and the benchmark's prompts are really absent from its training data."""

from training import prompts


def training_text() -> list[str]:
    return (prompts.training_prompts() + prompts.training_prompts_b() + prompts.free_prompts()
            + prompts.genre_prompts())


def opening(text: str, words: int = 3) -> str:
    return " ".join(text.split()[:words]).lower()


def test_held_out_topics_and_styles_appear_in_no_training_prompt():
    text = "\n".join(training_text()).lower()
    for topic in prompts.HELD_OUT_TOPICS:
        assert topic.lower() not in text, topic
    openings = {opening(prompts.for_engine(p)[0]) for p in training_text()}
    for style in prompts.HELD_OUT_PLAIN + prompts.HELD_OUT_CHAT:
        assert opening(style) not in openings, style


def test_the_benchmark_prompts_are_neither_trained_on_nor_held_out():
    from bench.prompts import AUTO_EXTRA, PROMPTS

    seen = {prompts.for_engine(p)[0] for p in training_text() + prompts.held_out_prompts() + prompts.grounded_prompts()}
    for name, prompt in {**PROMPTS, **AUTO_EXTRA}.items():
        assert prompt not in seen, name
    text = "\n".join(seen).lower()
    for topic in ("lighthouse", "hiking", "distant future", "compute_total_price", "salt marsh"):
        assert topic not in text, topic
