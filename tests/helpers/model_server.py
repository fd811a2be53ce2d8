"""A stand-in for a vLLM server on the loopback, backed by a real (tiny) model: it answers the requests a server
verifier sends (/v1/models, /tokenize, /v1/completions with prompt logprobs) the way vLLM 0.32 shapes them, from
the model's own logits recomputed over the whole prompt, greedy or drawn with a seed. `make test-vllm` runs the same
checks on a real server."""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch


class ModelServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, model, tokenizer, name: str, max_model_len: int = 256):
        super().__init__(("127.0.0.1", 0), Handler)
        self.model, self.tokenizer, self.name, self.max_model_len = model, tokenizer, name, max_model_len
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.delay_s = 0.0  # a slow server
        self.tokenize_shift = 0  # a server whose tokenizer is not ours: every id moved by this much
        self.max_logprobs = 20  # vLLM's default; -1: the whole vocabulary (--max-logprobs -1)
        self.logit_scale = 1.0  # > 1: a more peaked model than the tiny one (the sampling tests' power)
        self.fail_draws = False  # a server that breaks on the draw requests of sampling verification (they ask n)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    @torch.inference_mode()
    def log_probs(self, ids: list[int]) -> torch.Tensor:
        with self.lock:
            return (self.model(input_ids=torch.tensor([ids])).logits[0].float() * self.logit_scale).log_softmax(-1)

    def completion(self, body: dict) -> dict:
        """vLLM's answer: `n` choices (greedy at temperature 0, else drawn with `seed + i` for choice i), each with
        its tokens' logprobs and top-N (`logprobs: -1`: the whole vocabulary), and the prompt logprobs if asked."""
        ids, n = list(body["prompt"]), body.get("logprobs") or 0
        self.check_logprobs(n, body.get("prompt_logprobs"))
        if n == -1:
            n = self.vocab_size
        temperature, seed = body.get("temperature", 1.0), body.get("seed")
        rows = self.log_probs(ids)
        choices = []
        for child in range(body.get("n", 1)):
            generator = torch.Generator().manual_seed(seed + child) if seed is not None else None
            generated, token_logprobs, tops, row = [], [], [], rows[-1]
            for _ in range(body.get("max_tokens", 1)):
                if temperature == 0:
                    token = int(row.argmax())
                else:
                    token = int(torch.multinomial((row / temperature).softmax(-1), 1, generator=generator))
                generated.append(token)
                token_logprobs.append(float(row[token]))  # raw logprobs, as vLLM's default logprobs_mode
                values, index = row.topk(max(n, 1))
                top = {f"token_id:{int(i)}": float(v) for v, i in zip(values[:n], index[:n])}
                top[f"token_id:{token}"] = float(row[token])
                tops.append(top)
                if len(generated) < body.get("max_tokens", 1):
                    row = self.log_probs(ids + generated)[-1]
            choices.append({"logprobs": {"tokens": [f"token_id:{t}" for t in generated],
                                         "token_logprobs": token_logprobs, "top_logprobs": tops}})
        if body.get("prompt_logprobs") is not None:
            k = body["prompt_logprobs"] if body["prompt_logprobs"] != -1 else self.vocab_size
            entries = [None]
            for j in range(1, len(ids)):
                row = rows[j - 1]
                values, index = row.topk(k)
                entry = {str(int(i)): {"logprob": float(v), "rank": r + 1} for r, (v, i) in enumerate(zip(values, index))}
                rank = int((row > row[ids[j]]).sum()) + 1
                entry[str(ids[j])] = {"logprob": float(row[ids[j]]), "rank": rank}
                entries.append(entry)
            choices[0]["prompt_logprobs"] = entries
        return {"choices": choices}

    @property
    def vocab_size(self) -> int:
        return self.model.get_output_embeddings().weight.shape[0]

    def check_logprobs(self, *asked) -> None:
        """vLLM refuses more logprobs than its --max-logprobs (-1: the whole vocabulary) with an HTTP 400."""
        limit = self.vocab_size if self.max_logprobs == -1 else self.max_logprobs
        for number in asked:
            if number is not None and (self.vocab_size if number == -1 else number) > limit:
                raise Refused(f"Requested logprobs of {number}, which is greater than max allowed: {self.max_logprobs}")


class Refused(Exception):
    """An HTTP 400 with vLLM's error shape."""


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    def answer(self, status: int, body: dict) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self):
        server = self.server
        if self.path == "/v1/models":
            self.answer(200, {"data": [{"id": server.name, "max_model_len": server.max_model_len}]})
        elif self.path == "/health":
            self.answer(200, {})
        else:
            self.answer(404, {"error": {"message": "no such route"}})

    def do_POST(self):
        server = self.server
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        server.requests.append(body)
        time.sleep(server.delay_s)
        if self.path == "/tokenize":
            ids = server.tokenizer(body["prompt"], add_special_tokens=body.get("add_special_tokens", True)).input_ids
            self.answer(200, {"tokens": [i + server.tokenize_shift for i in ids]})
        elif self.path == "/v1/completions" and server.fail_draws and "n" in body:
            self.answer(500, {"error": {"message": "engine core died"}})
        elif self.path == "/v1/completions":
            try:
                self.answer(200, server.completion(body))
            except Refused as refused:
                self.answer(400, {"error": {"message": str(refused), "type": "BadRequestError", "code": 400}})
        else:
            self.answer(404, {"error": {"message": "no such route"}})


@contextmanager
def serving(loaded_model, name: str | None = None, max_model_len: int = 256):
    """A ModelServer for a LoadedModel (its transformers forward), running until the block ends."""
    server = ModelServer(loaded_model.model, loaded_model.tokenizer, name or loaded_model.name, max_model_len)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
