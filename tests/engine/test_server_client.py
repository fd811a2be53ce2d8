"""engine/models/server_client.py against a stand-in server on the loopback (no vLLM): it reads vLLM's answer shapes, and
every failure is one clear sentence naming the server, never a hang or a traceback from urllib."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from engine.errors import ServerError
from engine.models.server_client import ServerClient

# vLLM 0.32's answer to {"prompt": [7, 8, 9], "max_tokens": 1, "prompt_logprobs": 2, "logprobs": 2,
# "return_tokens_as_token_ids": true}, trimmed to what the client reads: position 1's token (8) is outside the
# top-2 (listed as a third entry), position 2's token (9) is the argmax.
SCORED = {"choices": [{
    "prompt_logprobs": [
        None,
        {"8": {"logprob": -3.5, "rank": 7, "decoded_token": "b"}, "4": {"logprob": -0.5, "rank": 1, "decoded_token": "x"},
         "5": {"logprob": -1.5, "rank": 2, "decoded_token": "y"}},
        {"9": {"logprob": -0.25, "rank": 1, "decoded_token": "c"}, "6": {"logprob": -2.0, "rank": 2, "decoded_token": "z"}},
    ],
    "logprobs": {"tokens": ["token_id:11"], "token_logprobs": [-0.125],
                 "top_logprobs": [{"token_id:11": -0.125, "token_id:12": -2.5}]},
}]}


class StandIn(BaseHTTPRequestHandler):
    routes: dict = {}

    def log_message(self, *args):  # quiet
        pass

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.server.bodies.append(json.loads(self.rfile.read(length)) if length else None)
        status, body, delay = self.server.routes.get(self.path, (404, {"error": {"message": "no such route"}}, 0))
        time.sleep(delay)
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_POST = _answer


@pytest.fixture
def stand_in():
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    server.routes, server.bodies = {}, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def client_for(server, **kwargs) -> ServerClient:
    return ServerClient(f"http://127.0.0.1:{server.server_address[1]}/v1", **kwargs)


def test_score_reads_every_position_and_the_next_token(stand_in):
    stand_in.routes["/v1/models"] = (200, {"data": [{"id": "served-model"}]}, 0)
    stand_in.routes["/v1/completions"] = (200, SCORED, 0)
    scored = client_for(stand_in).score([7, 8, 9], top_n=2)
    first, second, nxt = scored.predictions
    assert (first.token, first.rank, first.logprob, first.top) == (8, 7, -3.5, ((4, -0.5), (5, -1.5)))
    assert (second.token, second.rank, second.top) == (9, 1, ((9, -0.25), (6, -2.0)))
    assert (nxt.token, nxt.rank, nxt.top) == (11, 1, ((11, -0.125), (12, -2.5)))
    assert scored.argmax_ids() == [4, 9, 11] and scored.next_token == 11
    body = stand_in.bodies[-1]
    assert body["model"] == "served-model" and body["prompt"] == [7, 8, 9]
    assert (body["max_tokens"], body["temperature"], body["prompt_logprobs"], body["logprobs"]) == (1, 0.0, 2, 2)


def test_tokenize_and_greedy(stand_in):
    stand_in.routes["/tokenize"] = (200, {"count": 2, "max_model_len": 8192, "tokens": [3, 4]}, 0)
    stand_in.routes["/v1/completions"] = (200, {"choices": [{"logprobs": {"tokens": ["token_id:5", "token_id:6"]}}]}, 0)
    client = client_for(stand_in, model="m")
    assert client.tokenize("hi") == [3, 4]
    assert stand_in.bodies[-1] == {"model": "m", "prompt": "hi", "add_special_tokens": False}
    assert client.greedy([1, 2], 2) == [5, 6]


def test_a_refused_connection_says_nothing_answers(stand_in):
    port = stand_in.server_address[1]
    stand_in.shutdown()
    stand_in.server_close()
    with pytest.raises(ServerError, match=rf"nothing answers at http://127.0.0.1:{port} \(connection refused\)"):
        ServerClient(f"http://127.0.0.1:{port}", model="m").tokenize("x")


def test_a_slow_server_times_out_with_the_limit_named(stand_in):
    stand_in.routes["/tokenize"] = (200, {"tokens": []}, 2.0)
    start = time.monotonic()
    with pytest.raises(ServerError, match=r"did not answer /tokenize within 0.5 s"):
        client_for(stand_in, model="m", timeout_s=0.5).tokenize("x")
    assert time.monotonic() - start < 1.8


def test_an_http_error_carries_the_servers_message(stand_in):
    message = "Requested prompt logprobs of 50, which is greater than max allowed: 20"
    stand_in.routes["/v1/completions"] = (400, {"error": {"message": message, "type": "BadRequestError"}}, 0)
    with pytest.raises(ServerError, match=r"refused POST /v1/completions: HTTP 400 Requested prompt logprobs of 50"):
        client_for(stand_in, model="m").score([1, 2], top_n=50)


@pytest.mark.parametrize("answer, expected", [
    (b"<html>busy</html>", "not JSON"),
    ({"choices": []}, "without choices"),
    ({"choices": [{"prompt_logprobs": None}]}, "no prompt logprobs"),
    ({"choices": [{"prompt_logprobs": [None, {"x": {"logprob": -1.0}}], "logprobs": None}]}, "expected a token id"),
    ({"choices": [{"prompt_logprobs": [None, {"2": {"logprob": "high"}}]}]}, "expected a logprob"),
    ({"choices": [{"prompt_logprobs": [None, {"3": {"logprob": -1.0, "rank": 1}}]}]}, "own token 2"),
])
def test_a_malformed_answer_is_a_server_error(stand_in, answer, expected):
    stand_in.routes["/v1/completions"] = (200, answer, 0)
    with pytest.raises(ServerError, match=expected):
        client_for(stand_in, model="m").score([1, 2], top_n=1)


def test_no_model_listed_is_a_server_error(stand_in):
    stand_in.routes["/v1/models"] = (200, {"data": []}, 0)
    with pytest.raises(ServerError, match="lists no model"):
        client_for(stand_in).model
