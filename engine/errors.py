"""Errors the engine raises on purpose. Their message is written for the person using the tool."""


class EngineError(Exception):
    """Base class: str(error) is a complete, user-facing sentence."""


class ConfigError(EngineError):
    """A setting is out of range or inconsistent."""


class ModelLoadError(EngineError):
    """A model spec could not be turned into a model and tokenizer."""


class TokenizerMismatchError(ModelLoadError):
    """Drafter and verifier do not share a tokenizer."""


class PromptError(EngineError):
    """The prompt cannot be decoded from (empty, too long for the context window)."""


class TraceError(EngineError):
    """A trace file cannot be read or written."""


class ServerError(EngineError):
    """A model server (an OpenAI-compatible vLLM server) cannot be reached or answered something unusable."""


class ServerRefused(ServerError):
    """The server answered, with an HTTP error: it will not do what was asked (as opposed to not answering)."""
