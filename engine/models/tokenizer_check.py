"""Drafter and verifier must speak the same token ids: check it for real before decoding."""

from __future__ import annotations

from ..errors import TokenizerMismatchError

PROBES = (
    "In a distant future, the world is in a state of flux.",
    "def speculative_decode(draft, verify):\n    return accepted + [bonus]  # 42",
    "Ünïcödé, emoji 🚀 and CJK 東京 with   spaces\tand\nnewlines.",
)


def check_same_tokenizer(verifier_name: str, verifier_tok, drafter_name: str, drafter_tok) -> None:
    """Raise TokenizerMismatchError (naming both models and the first difference) unless they tokenize alike."""
    if verifier_tok is drafter_tok:
        return

    def refuse(what: str) -> None:
        raise TokenizerMismatchError(
            f"drafter {drafter_name!r} and verifier {verifier_name!r} use different tokenizers ({what}); "
            "speculative decoding needs both to share one tokenizer"
        )

    for role in ("eos_token_id", "bos_token_id", "unk_token_id"):
        a, b = getattr(verifier_tok, role, None), getattr(drafter_tok, role, None)
        if a != b:
            refuse(f"{role.replace('_', ' ')}: {a} vs {b}")
    for text in PROBES:
        ids_v = verifier_tok(text, add_special_tokens=False).input_ids
        ids_d = drafter_tok(text, add_special_tokens=False).input_ids
        if ids_v != ids_d:
            refuse(f"{text[:24]!r}… encodes as {ids_v[:6]} vs {ids_d[:6]}")
    vocab_v, vocab_d = verifier_tok.get_vocab(), drafter_tok.get_vocab()
    if vocab_v != vocab_d:
        differing = len(set(vocab_v.items()) ^ set(vocab_d.items()))
        refuse(f"vocabularies of {len(vocab_v)} and {len(vocab_d)} entries, {differing} entries differ")
