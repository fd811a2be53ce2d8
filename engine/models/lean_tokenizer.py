"""The part of transformers' tokenizer API the engine uses, over the `tokenizers` library alone.

Importing transformers costs seconds on a small CPU; the `tokenizers` library it wraps loads in milliseconds.
Used for the dequantized-GGUF cache the engine writes itself (a byte-level BPE tokenizer.json), where the two
give the same ids and text (tests/engine/test_lean_loading.py checks it against transformers).
"""

from __future__ import annotations

import json
from pathlib import Path

from .prompting import read_chat_template


class Encoded(dict):
    """`tokenizer(text)` result: both `["input_ids"]` and `.input_ids`, as transformers returns."""

    @property
    def input_ids(self) -> list[int]:
        return self["input_ids"]


class LeanTokenizer:
    def __init__(self, folder: Path):
        from tokenizers import Tokenizer

        self.folder = Path(folder)  # engine/models/vllm_export.py copies the tokenizer's files from here
        self.backend = Tokenizer.from_file(str(folder / "tokenizer.json"))
        config_path = folder / "tokenizer_config.json"
        config = json.loads(config_path.read_text()) if config_path.exists() else {}
        for role in ("eos", "bos", "unk", "pad"):
            token = config.get(f"{role}_token")
            if isinstance(token, dict):  # older configs store AddedToken dicts
                token = token.get("content")
            setattr(self, f"{role}_token", token)
            setattr(self, f"{role}_token_id", self.backend.token_to_id(token) if token else None)
        self.chat_template = read_chat_template(folder)

    def __call__(self, text: str, add_special_tokens: bool = True, split_special_tokens: bool = False) -> Encoded:
        # split_special_tokens: `<|im_end|>` in the text is encoded as its characters, as transformers does.
        self.backend.encode_special_tokens = split_special_tokens
        try:
            return Encoded(input_ids=self.backend.encode(text, add_special_tokens=add_special_tokens).ids)
        finally:
            self.backend.encode_special_tokens = False

    def decode(self, token_ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces: bool | None = None) -> str:
        # transformers skips the clean-up for BPE tokenizers too (it would strip spaces before punctuation).
        return self.backend.decode(list(token_ids), skip_special_tokens=skip_special_tokens)

    def get_vocab(self) -> dict[str, int]:
        return self.backend.get_vocab(with_added_tokens=True)

    def __len__(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)
