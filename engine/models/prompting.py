"""Prompt text -> token ids. A prompt is plain text: a string such as `<|im_end|>` typed or pasted into it is
encoded as the characters it is made of, never as the control token (which would end the turn, or the text).

With `chat`, the prompt becomes one user message in the model's own chat template (instruct models answer
far better so). The template's markup is encoded with its control tokens; the user's text inside it stays plain
text, so a prompt can never close its own turn. transformers' apply_chat_template would encode it all at once.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import PromptError

_SURROGATE = re.compile("[\ud800-\udfff]")
_SLOT = "\x00specdec-user-text\x00"  # stands in for the user's text while the template is rendered


def encode_prompt_text(tokenizer, prompt: str, chat: bool = False) -> list[int]:
    # A lone surrogate (undecodable bytes, a broken paste) cannot be encoded at all: show it as U+FFFD.
    prompt = _SURROGATE.sub("\ufffd", prompt)
    if not chat:
        return list(tokenizer(prompt, split_special_tokens=True).input_ids)
    before, after = chat_frame(tokenizer)
    return (
        list(tokenizer(before, add_special_tokens=False).input_ids)
        + list(tokenizer(prompt, add_special_tokens=False, split_special_tokens=True).input_ids)
        + list(tokenizer(after, add_special_tokens=False).input_ids)
    )


def chat_frame(tokenizer) -> tuple[str, str]:
    """The chat template's text before and after one user message, with the assistant's turn opened."""
    template = chat_template(tokenizer)
    if not template:
        raise PromptError("this verifier has no chat template (not an instruct model): run without --chat")
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def refuse(message):
        raise TemplateError(message)

    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)  # as transformers renders it
    environment.filters["tojson"] = lambda value, indent=None: json.dumps(value, ensure_ascii=False, indent=indent)
    environment.globals["raise_exception"] = refuse
    try:
        text = environment.from_string(template).render(
            messages=[{"role": "user", "content": _SLOT}],
            add_generation_prompt=True,
            bos_token=getattr(tokenizer, "bos_token", None) or "",
            eos_token=getattr(tokenizer, "eos_token", None) or "",
        )
    except Exception as error:  # a template is code from the model's files: any failure is the model's
        raise PromptError(f"the verifier's chat template failed ({error}): run without --chat") from error
    if text.count(_SLOT) != 1:
        raise PromptError("the verifier's chat template does not place the user's message once: run without --chat")
    before, _, after = text.partition(_SLOT)
    return before, after


def chat_template(tokenizer) -> str | None:
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):  # several named templates: the default one
        template = template.get("default")
    return template if isinstance(template, str) else None


def read_chat_template(folder: Path) -> str | None:
    """A saved tokenizer's chat template: `chat_template.jinja` (transformers 5) or the tokenizer config's."""
    path = folder / "chat_template.jinja"
    if path.is_file():
        return path.read_text(encoding="utf-8")
    config = folder / "tokenizer_config.json"
    if config.is_file():
        try:
            template = json.loads(config.read_text(encoding="utf-8")).get("chat_template")
        except (ValueError, AttributeError):
            return None
        return template if isinstance(template, str) else None
    return None
