"""SpecConfig (engine/config.py): every setting out of range is refused with a message that names it, and a
config survives a trace (to_dict / from_dict) unchanged."""

import pytest

from engine import ConfigError, SpecConfig


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"block_size": 0}, "block size must be between 1 and 16"),
        ({"block_size": -3}, "block size"),
        ({"block_size": 17}, "block size"),
        ({"temperature": 0}, "temperature must be > 0"),
        ({"temperature": -1.0}, "temperature"),
        ({"top_p": 0.0}, "top p must be in"),
        ({"top_p": 1.5}, "top p"),
        ({"top_k": -1}, "top k must be >= 0"),
        ({"verify": "beam"}, "verify mode"),
        ({"draft_confidence": 1.0}, r"draft confidence must be in \[0, 1\)"),
        ({"draft_confidence": -0.1}, "draft confidence"),
    ],
)
def test_bad_settings_are_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        SpecConfig(**changes).validated()


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"tree": "auto"}, "needs -k auto"),
        ({"tree": "3,2", "block_size_schedule": "heuristic"}, "heuristic schedule moves a chain's k"),
        ({"tree": "0"}, "tree"),
        ({"max_new_tokens": 0}, "max new tokens"),
        ({"ngram_max": 9}, "ngram max"),
        ({"verifier": "  "}, "verifier model spec is empty"),
    ],
)
def test_settings_that_cannot_work_together_are_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        SpecConfig(**changes).validated()


def test_auto_everything_is_valid_and_the_defaults_are_the_apps():
    SpecConfig(block_size_schedule="auto", tree="auto").validated()
    assert SpecConfig().validated() == SpecConfig()


def test_a_config_round_trips_through_a_trace_and_ignores_fields_it_does_not_know():
    config = SpecConfig(drafter="ngram", block_size=5, tree="4,2", verify="sampling", seed=7)
    data = config.to_dict()
    assert SpecConfig.from_dict(data) == config
    assert SpecConfig.from_dict({**data, "a_field_from_a_newer_version": 1}) == config
    assert config.replace(block_size=2).block_size == 2 and config.block_size == 5  # frozen: a copy
