"""Text of single tokens in context, so byte-level pieces of emoji or CJK never show as mojibake."""

from __future__ import annotations

WINDOW = 6  # tokens of left context; enough to complete any UTF-8 character split across tokens


def _stable(text: str) -> str:
    # A trailing U+FFFD is an incomplete UTF-8 sequence that a later token completes.
    return text.rstrip("\ufffd")


class PieceDecoder:
    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def decode(self, ids) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def pieces(self, context: list[int], new_ids: list[int]) -> list[str]:
        """The text each of `new_ids` adds after `context`. A token that only starts a character adds ""."""
        window = list(context[-WINDOW:])
        before = _stable(self.decode(window))
        out = []
        for token_id in new_ids:
            window.append(token_id)
            after = _stable(self.decode(window))
            if after.startswith(before):
                out.append(after[len(before) :])
            else:  # the tokenizer re-spaced earlier text (rare): show this token on its own
                out.append(_stable(self.decode([token_id])))
            before = after
        return out

    def piece(self, context: list[int], token_id: int) -> str:
        return self.pieces(context, [token_id])[0]

    def alone(self, token_id: int) -> str:
        return self.decode([token_id])
