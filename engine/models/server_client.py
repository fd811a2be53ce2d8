"""A small client for an OpenAI-compatible vLLM server: what a verify step needs, in one request.

`score(token_ids, top_n)` sends the whole token list as the prompt of a one-token completion with prompt logprobs:
the server answers, for every position after the first, the actual token's logprob and vocabulary rank and its
top-N, then the next token it picks (temperature 0: its argmax). A drafted token is accepted under greedy
verification while its rank is 1. vLLM does not read its prefix cache for a request with prompt logprobs, so each
call recomputes the whole context (docs/vllm.md has the cost).

Standard library only (urllib): the engine installs no HTTP client. Every request has a timeout, and every failure
is a ServerError whose message names the server and says what to check. Everything the server sends is data:
token ids and numbers are checked as such, text is returned as it came, never formatted as markup here.
"""

from __future__ import annotations

import json
import math
import socket
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass

from ..errors import ServerError, ServerRefused

TIMEOUT_S = 10.0
TOKEN_ID_PREFIX = "token_id:"  # how vLLM names a token with `return_tokens_as_token_ids`
# Sampling at the raw distribution, said explicitly: a server applies its model's generation_config.json defaults
# (often a temperature below 1, a top-p) to every knob a request leaves out.
RAW = {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "min_p": 0.0, "repetition_penalty": 1.0}


@dataclass(frozen=True)
class Prediction:
    """The server's distribution at one position, given every token before it."""

    top: tuple[tuple[int, float], ...]  # (token id, logprob), best first: the server's top-N
    token: int  # the token that stands at this position (for the last prediction: the server's next token)
    logprob: float  # that token's logprob
    rank: int | None  # its rank in the whole vocabulary, 1 = the server's argmax (None where the server gave none)


@dataclass(frozen=True)
class Scored:
    """`predictions[j]` is the server's distribution after `token_ids[: j + 1]`: one per prompt position after the
    first, then one for the next token (whose `token` is the one the server picked)."""

    token_ids: tuple[int, ...]
    predictions: tuple[Prediction, ...]

    @property
    def next_token(self) -> int:
        return self.predictions[-1].token

    def argmax_ids(self) -> list[int]:
        """The server's top-1 after each prefix: what greedy verification compares each drafted token with."""
        return [p.top[0][0] if p.top else p.token for p in self.predictions]


class ServerClient:
    """One OpenAI-compatible server (`base_url` like http://127.0.0.1:8000) and the model it serves."""

    def __init__(self, base_url: str, model: str | None = None, timeout_s: float = TIMEOUT_S):
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self.timeout_s = timeout_s
        self._model = model

    @property
    def model(self) -> str:
        """The served model's name: as given, else the first one `/v1/models` lists."""
        if self._model is None:
            listed = self._request("GET", "/v1/models").get("data")
            if not isinstance(listed, list) or not listed or not isinstance(listed[0], dict) or not isinstance(listed[0].get("id"), str):
                raise ServerError(f"the server at {self.base_url} lists no model at /v1/models")
            self._model = listed[0]["id"]
        return self._model

    def healthy(self) -> bool:
        """True when `/health` answers 200 (the server has loaded its model); False for anything else."""
        try:
            with urllib.request.urlopen(self.base_url + "/health", timeout=self.timeout_s) as response:
                return response.status == 200
        except (OSError, ValueError):
            return False

    def tokenize(self, text: str, add_special_tokens: bool = False) -> list[int]:
        """The server's token ids for `text` (its own tokenizer), to compare with the local one's."""
        answer = self._request("POST", "/tokenize", {"model": self.model, "prompt": text, "add_special_tokens": add_special_tokens})
        return _int_list(answer.get("tokens"), f"{self.base_url}/tokenize")

    def score(self, token_ids: list[int], top_n: int = 5, seed: int | None = None) -> Scored:
        """The server's distribution at every position of `token_ids` and its next token, in one request: its greedy
        pick, or with a `seed` a draw from its raw distribution (temperature 1; sampling verification's bonus token).

        `top_n` must not exceed the server's `--max-logprobs`; a server started without enough says so in the error.
        """
        if len(token_ids) < 1:
            raise ServerError("scoring needs at least one token")
        body = {
            "model": self.model, "prompt": list(token_ids), "max_tokens": 1, **_picking(seed),
            "prompt_logprobs": top_n, "logprobs": top_n, "return_tokens_as_token_ids": True,
        }
        choice = self._first_choice(self._request("POST", "/v1/completions", body))
        where = f"{self.base_url}/v1/completions"
        rows = choice.get("prompt_logprobs")
        if not isinstance(rows, list) or len(rows) != len(token_ids):
            raise ServerError(f"the server at {self.base_url} returned no prompt logprobs for {len(token_ids)} tokens "
                              "(is it vLLM, started with --max-logprobs at least the top-N asked?)")
        predictions = [_prompt_prediction(row, token, top_n, where) for row, token in zip(rows[1:], token_ids[1:])]
        predictions.append(_next_prediction(choice.get("logprobs"), top_n, where))
        return Scored(token_ids=tuple(token_ids), predictions=tuple(predictions))

    def next_token(self, token_ids: list[int], top_n: int = 5, seed: int | None = None) -> Prediction:
        """The server's distribution after `token_ids` (its top-N) and the token it picks there (temperature 0), or
        with a `seed` draws there (temperature 1).

        No prompt logprobs: vLLM reads its prefix cache for this request, so it costs one decoding step, which is
        what a plain decoding step through the server costs."""
        if len(token_ids) < 1:
            raise ServerError("a next-token request needs at least one token")
        body = {"model": self.model, "prompt": list(token_ids), "max_tokens": 1, **_picking(seed),
                "logprobs": top_n, "return_tokens_as_token_ids": True}
        choice = self._first_choice(self._request("POST", "/v1/completions", body))
        return _next_prediction(choice.get("logprobs"), top_n, f"{self.base_url}/v1/completions")

    def sample(self, token_ids: list[int], n: int, seed: int) -> list[tuple[int, float]]:
        """`n` independent draws of the next token from the server's raw distribution (temperature 1, no top-k or
        top-p), each with its logprob, in one request (vLLM gives each of the n a seed of its own: seed + i)."""
        if len(token_ids) < 1 or n < 1:
            raise ServerError("a draw needs at least one token of context and one draw")
        body = {"model": self.model, "prompt": list(token_ids), "max_tokens": 1, "n": n, **_picking(seed),
                "logprobs": 0, "return_tokens_as_token_ids": True}
        choices = self._request("POST", "/v1/completions", body).get("choices")
        where = f"{self.base_url}/v1/completions"
        if not isinstance(choices, list) or len(choices) != n:
            raise ServerError(f"{where}: asked for {n} draws, the answer has {len(choices) if isinstance(choices, list) else 'no'} choices")
        draws = []
        for choice in choices:
            prediction = _next_prediction(choice.get("logprobs") if isinstance(choice, dict) else None, 0, where)
            draws.append((prediction.token, prediction.logprob))
        return draws

    def distribution(self, token_ids: list[int]) -> dict[int, float]:
        """The server's whole next-token distribution after `token_ids` ({token id: logprob}); only a server started
        with `--max-logprobs -1` sends it, others refuse with an HTTP error (ServerRefused)."""
        body = {"model": self.model, "prompt": list(token_ids), "max_tokens": 1, "temperature": 0.0,
                "logprobs": -1, "return_tokens_as_token_ids": True}
        choice = self._first_choice(self._request("POST", "/v1/completions", body))
        whole = _next_prediction(choice.get("logprobs"), sys.maxsize, f"{self.base_url}/v1/completions")
        return dict(whole.top)

    def context_window(self) -> int | None:
        """The served model's context length (`max_model_len` in vLLM's /v1/models), None where it is not listed."""
        listed = self._request("GET", "/v1/models").get("data")
        for entry in listed if isinstance(listed, list) else ():
            if isinstance(entry, dict) and entry.get("id") == self.model and _is_count(entry.get("max_model_len")):
                return entry["max_model_len"]
        return None

    def greedy(self, token_ids: list[int], max_tokens: int) -> list[int]:
        """The server's own greedy continuation of `token_ids` (temperature 0), as token ids; stops at its EOS."""
        body = {"model": self.model, "prompt": list(token_ids), "max_tokens": max_tokens, "temperature": 0.0,
                "logprobs": 0, "return_tokens_as_token_ids": True}
        choice = self._first_choice(self._request("POST", "/v1/completions", body))
        logprobs = choice.get("logprobs")
        tokens = logprobs.get("tokens") if isinstance(logprobs, dict) else None
        if not isinstance(tokens, list):
            raise ServerError(f"the server at {self.base_url} returned no tokens for a completion")
        return [_token_id(token, f"{self.base_url}/v1/completions") for token in tokens]

    def _first_choice(self, answer: dict) -> dict:
        choices = answer.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise ServerError(f"the server at {self.base_url} answered a completion without choices")
        return choices[0]

    def _request(self, method: str, path: str, body: dict | None = None) -> dict:
        url = self.base_url + path
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            raise ServerRefused(f"the server at {self.base_url} refused {method} {path}: HTTP {error.code} "
                              f"{_error_detail(error)}") from error
        except urllib.error.URLError as error:
            reason = error.reason
            if isinstance(reason, ConnectionRefusedError):
                raise ServerError(f"nothing answers at {self.base_url} (connection refused): is the vLLM server running?") from error
            if isinstance(reason, (TimeoutError, socket.timeout)):
                raise self._timed_out(path) from error
            raise ServerError(f"cannot reach the server at {self.base_url}: {reason}") from error
        except (TimeoutError, socket.timeout) as error:  # a timeout while reading the answer
            raise self._timed_out(path) from error
        except (ConnectionError, OSError) as error:
            raise ServerError(f"the connection to the server at {self.base_url} broke during {path}: {error}") from error
        try:
            answer = json.loads(raw)
        except ValueError as error:
            raise ServerError(f"the server at {self.base_url} answered {path} with something that is not JSON") from error
        if not isinstance(answer, dict):
            raise ServerError(f"the server at {self.base_url} answered {path} with JSON that is not an object")
        return answer

    def _timed_out(self, path: str) -> ServerError:
        return ServerError(f"the server at {self.base_url} did not answer {path} within {self.timeout_s:g} s: is it running, or busy?")


def _picking(seed: int | None) -> dict:
    """How the server picks the next token: greedy, or (with a seed, for reproducible draws) from its raw distribution."""
    return {"temperature": 0.0} if seed is None else {**RAW, "seed": seed}


def _error_detail(error: urllib.error.HTTPError) -> str:
    """The server's own message, one line and short (vLLM answers {"error": {"message": ...}}, older ones {"message": ...})."""
    try:
        body = json.loads(error.read() or b"{}")
    except (ValueError, OSError):
        return str(error.reason or "")
    detail = body.get("error", body) if isinstance(body, dict) else {}
    message = detail.get("message") if isinstance(detail, dict) else detail
    text = str(message if message else error.reason or "")
    return (text.strip().splitlines() or [""])[0][:300]


def _prompt_prediction(row, token: int, top_n: int, where: str) -> Prediction:
    """One entry of vLLM's `prompt_logprobs`: {"<token id>": {"logprob", "rank", "decoded_token"}}, the top-N and
    the actual token (one entry more when it is outside the top-N)."""
    if not isinstance(row, dict):
        raise ServerError(f"{where}: a prompt position without logprobs")
    entries = {}
    for key, value in row.items():
        if not isinstance(value, dict):
            raise ServerError(f"{where}: a prompt logprob that is not an object")
        entries[_token_id(key, where)] = (_number(value.get("logprob"), where), value.get("rank"))
    if token not in entries:
        raise ServerError(f"{where}: the prompt logprobs do not include the prompt's own token {token}")
    logprob, rank = entries[token]
    # An actual token outside the top-N has a lower logprob than all of them, so the N best are the top-N.
    best = sorted(entries.items(), key=lambda item: -item[1][0])[:top_n]
    top = tuple((token_id, value[0]) for token_id, value in best)
    return Prediction(top=top, token=token, logprob=logprob, rank=rank if _is_count(rank) else None)


def _next_prediction(logprobs, top_n: int, where: str) -> Prediction:
    """The completion's own logprobs: its one token and that position's top-N ({"token_id:<id>": logprob}, the
    sampled token included, so N + 1 entries when it is outside the top-N)."""
    if not isinstance(logprobs, dict):
        raise ServerError(f"{where}: the completion came without logprobs")
    tokens, values, tops = logprobs.get("tokens"), logprobs.get("token_logprobs"), logprobs.get("top_logprobs")
    if not (isinstance(tokens, list) and len(tokens) == 1 and isinstance(values, list) and isinstance(tops, list) and tops):
        raise ServerError(f"{where}: the completion's logprobs do not describe one token")
    token, logprob = _token_id(tokens[0], where), _number(values[0], where)
    top_map = tops[0] if isinstance(tops[0], dict) else {}
    top = tuple(sorted(((_token_id(key, where), _number(value, where)) for key, value in top_map.items()),
                       key=lambda pair: -pair[1])[:top_n])
    rank = next((i + 1 for i, (token_id, _) in enumerate(top) if token_id == token), None)
    return Prediction(top=top, token=token, logprob=logprob, rank=rank)


def _token_id(value, where: str) -> int:
    """A token id as vLLM writes it: a dict key "123", or "token_id:123" with `return_tokens_as_token_ids`."""
    text = value.removeprefix(TOKEN_ID_PREFIX) if isinstance(value, str) else None
    if text is None or not text.isdigit():
        raise ServerError(f"{where}: expected a token id, got {str(value)[:40]!r} (does the server support "
                          "return_tokens_as_token_ids?)")
    return int(text)


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ServerError(f"{where}: expected a logprob, got {str(value)[:40]!r}")
    number = float(value)
    if math.isnan(number) or number > 1e-4:  # log_softmax can round a certain token's 0 up by an ulp
        raise ServerError(f"{where}: a logprob of {number} is not a log-probability")
    return number


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _int_list(value, where: str) -> list[int]:
    if not isinstance(value, list) or not all(_is_count(v) for v in value):
        raise ServerError(f"{where}: expected a list of token ids")
    return list(value)
