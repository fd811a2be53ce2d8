"""JSON Lines traces: a header, one line per step, an optional summary. Replayable without any model."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import stat
import tempfile
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from ..config import DRAFT_MODES, MAX_BLOCK_SIZE, VERIFY_MODES, SpecConfig
from ..drafting.tree_shape import MAX_TREE_NODES
from ..errors import ConfigError, TraceError
from .results import Alternative, Decision, Guess, Position, Source, StepResult, Token, TreeNode, TreeStep
from .safe_text import json_line

FORMAT = 1
MAX_TRACE_BYTES = 64 * 1024 * 1024  # a 500-step run with top-5 lists is a few MB; larger is not ours
MAX_ALTERNATIVES = 64


@dataclass(frozen=True)
class Trace:
    header: dict
    steps: tuple[StepResult, ...]
    summary: dict | None = None
    warnings: tuple[str, ...] = field(default=())

    @property
    def prompt_pieces(self) -> list[str]:
        return list(self.header.get("prompt_pieces", [self.header.get("prompt", "")]))


def header(config: dict, prompt: str, prompt_ids: list[int], prompt_pieces: list[str]) -> dict:
    return {
        "type": "header",
        "format": FORMAT,
        "config": config,
        "prompt": prompt,
        "prompt_ids": list(prompt_ids),
        "prompt_pieces": list(prompt_pieces),
    }


def _plain(value):
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def step_record(result: StepResult) -> dict:
    return {"type": "step", **_plain(result), "emitted_text": result.emitted_text}


def _legacy_plain(value: str, drafted) -> str:
    """Traces written before Decision.PLAIN recorded the token of a step with no drafts as a bonus."""
    return "plain" if value == "bonus" and drafted == 0 else value


def step_from_record(record: dict) -> StepResult:
    alternatives = lambda rows: tuple(Alternative(**row) for row in rows)  # noqa: E731
    drafted = record.get("drafted")
    positions = tuple(
        Position(
            **{
                **p,
                "decision": Decision(_legacy_plain(p["decision"], drafted)),
                "draft_top": alternatives(p.get("draft_top", ())),
                "verifier_top": alternatives(p.get("verifier_top", ())),
                "residual_top": alternatives(p.get("residual_top", ())),
            }
        )
        for p in record["positions"]
    )
    emitted = tuple(Token(t["token_id"], t["piece"], Source(_legacy_plain(t["source"], drafted))) for t in record["emitted"])
    known = {f.name for f in dataclasses.fields(StepResult)} - {"positions", "emitted", "tree", "guess"}
    tree = _tree_from_record(record["tree"], alternatives) if record.get("tree") else None
    guess = Guess(**record["guess"]) if record.get("guess") else None
    return StepResult(positions=positions, emitted=emitted, tree=tree, guess=guess,
                      **{k: v for k, v in record.items() if k in known})


def _tree_from_record(tree: dict, alternatives) -> TreeStep:
    nodes = tuple(
        TreeNode(**{**n, "decision": Decision(n["decision"]), "draft_top": alternatives(n.get("draft_top", ())),
                    "verifier_top": alternatives(n.get("verifier_top", ()))})
        for n in tree["nodes"]
    )
    rest = {k: v for k, v in tree.items() if k not in ("nodes", "path", "root_verifier_top")}
    return TreeStep(nodes=nodes, path=tuple(tree["path"]),
                    root_verifier_top=alternatives(tree.get("root_verifier_top", ())), **rest)


class TraceWriter:
    """Writes to a temporary file next to the target and renames it on close: never a half-written trace."""

    def __init__(self, path: str | os.PathLike, head: dict):
        self.path = Path(path)
        directory = self.path.parent if str(self.path.parent) else Path(".")
        try:
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{self.path.name}.", suffix=".partial")
        except OSError as error:
            raise TraceError(f"cannot write trace {self.path}: {error.strerror or error}") from error
        self._tmp = Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; a trace is an ordinary file
        self._file = os.fdopen(fd, "w", encoding="utf-8")
        self._write(head)

    def _write(self, record: dict) -> None:
        # One write per line: a signal handled between two writes never leaves half a record before the next.
        self._file.write(json_line(record) + "\n")
        self._file.flush()

    def step(self, result: StepResult) -> None:
        self._write(step_record(result))

    def summary(self, summary: dict) -> None:
        self._write({"type": "summary", **summary})

    def close(self) -> Path:
        if not self._file.closed:
            self._file.close()
            try:
                os.replace(self._tmp, self.path)
            except OSError as error:
                self._tmp.unlink(missing_ok=True)
                raise TraceError(f"cannot write trace {self.path}: {error.strerror or error}") from error
        return self.path

    def discard(self) -> None:
        if not self._file.closed:
            self._file.close()
        self._tmp.unlink(missing_ok=True)


def check_target(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Refuse, before any work, a trace path that could not (or should not) be written.

    The trace is written beside the target and renamed over it, so anything but a regular file (a folder, a
    device such as /dev/null, a pipe) is refused: a rename would replace the device node itself.
    """
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        info = None
    except OSError as error:
        raise TraceError(f"cannot write trace {path}: {error.strerror or error}") from error
    if info is not None:
        if stat.S_ISDIR(info.st_mode):
            raise TraceError(f"cannot write trace {path}: it is a folder; give a file name, e.g. {path / 'run.jsonl'}")
        if not stat.S_ISREG(info.st_mode):
            raise TraceError(f"cannot write trace {path}: it is not a regular file (a device or a pipe)")
        if not overwrite:
            raise TraceError(f"trace {path} already exists: choose another name, or pass --force to replace it")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise TraceError(f"cannot write trace {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise TraceError(f"cannot write trace {path}: the folder {folder} is not writable")
    return path


def unique_path(folder: str | os.PathLike, stem: str, suffix: str = ".jsonl") -> Path:
    """`stem.jsonl`, or `stem-2.jsonl`, `stem-3.jsonl`, ...: the first name not taken, so no save overwrites one."""
    folder = Path(folder)
    candidate = folder / f"{stem}{suffix}"
    number = 2
    while candidate.exists() or candidate.is_symlink():
        candidate = folder / f"{stem}-{number}{suffix}"
        number += 1
    return candidate


def write_trace(path, head: dict, steps, summary: dict | None = None) -> Path:
    writer = TraceWriter(path, head)
    try:
        for result in steps:
            writer.step(result)
        if summary is not None:
            writer.summary(summary)
    except BaseException:
        writer.discard()
        raise
    return writer.close()


def read_trace(path) -> Trace:
    """Read and validate a trace; a bad one raises TraceError naming the line and what is wrong with it."""
    path = Path(path)
    if not path.exists():
        raise TraceError(f"no such trace file: {path}")
    if path.is_dir():
        raise TraceError(f"{path} is a folder, not a trace file")
    if not path.is_file():
        raise TraceError(f"{path} is not a regular file (a device or a pipe), not a trace file")
    too_big = f"trace {path} is over {MAX_TRACE_BYTES // 2**20} MB, the most a trace is read up to"
    try:
        if path.stat().st_size > MAX_TRACE_BYTES:
            raise TraceError(too_big)
        with path.open("rb") as handle:
            data = handle.read(MAX_TRACE_BYTES + 1)  # a file growing while read is bounded too
        if len(data) > MAX_TRACE_BYTES:
            raise TraceError(too_big)
        lines = data.decode("utf-8").split("\n")  # not splitlines: U+2028 or \x85 inside a string is no line end
    except UnicodeDecodeError as error:
        raise TraceError(f"{path} is not a specdec-tui trace (not UTF-8 text: a binary file?)") from error
    except OSError as error:
        raise TraceError(f"cannot read trace {path}: {error}") from error
    numbered = [(number, line) for number, line in enumerate(lines, start=1) if line.strip()]
    if not numbered:
        raise TraceError(f"trace {path} is empty")
    records, warnings = [], []
    for count, (number, line) in enumerate(numbered, start=1):
        try:
            records.append((number, json.loads(line)))
        except (json.JSONDecodeError, RecursionError) as error:
            if count == len(numbered) and count > 1:
                # A run killed mid-write leaves a truncated last line: keep everything before it.
                warnings.append(f"the last line ({number}) was truncated and skipped")
                break
            if count == 1:  # not even the first line is JSON: some other file, not a damaged trace
                raise TraceError(f"{path} is not a specdec-tui trace (its first line is not JSON: a trace is "
                                 "JSON Lines, written by --trace or s)") from error
            raise TraceError(f"trace {path} is corrupt at line {number}: {getattr(error, 'msg', error)}") from error
    head = records[0][1]
    if not isinstance(head, dict) or head.get("type") != "header":
        raise TraceError(f"{path} is not a specdec-tui trace (its first line is not a header)")
    version = head.get("format")
    if not isinstance(version, int) or version > FORMAT:
        raise TraceError(f"trace {path} has format {version}; this version of specdec-tui reads format {FORMAT}: upgrade it")
    steps, summary, line = [], None, None
    try:
        _check_header(head)
        for line, record in records[1:]:
            if not isinstance(record, dict):
                raise _Bad("a record must be a JSON object")
            if record.get("type") == "step":
                _check_step(record, expected=len(steps) + 1)
                steps.append(step_from_record(record))
            elif record.get("type") == "summary":
                summary = record
    except _Bad as error:
        where = f"line {line}" if line else "its header (line 1)"
        raise TraceError(f"trace {path} is invalid at {where}: {error}") from None
    except (KeyError, TypeError, ValueError) as error:  # anything the checks above missed: still no traceback
        where = f"line {line}" if line else "its header (line 1)"
        raise TraceError(f"trace {path} has a malformed record at {where}: {error!r}") from error
    return Trace(head, tuple(steps), summary, tuple(warnings))


# ---- validation of what a trace claims (it may be hand-edited, truncated or hostile) ---------------------------


class _Bad(Exception):
    """One thing wrong with a record, said for the user."""


def _int(record: dict, key: str, low: int, high: int | None = None) -> int:
    value = record.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Bad(f"{key!r} must be a whole number, got {_short(value)}")
    if value < low or (high is not None and value > high):
        raise _Bad(f"{key!r} must be between {low} and {high}, got {value}" if high is not None
                   else f"{key!r} must be at least {low}, got {value}")
    return value


def _number(record: dict, key: str, low: float, high: float | None = None, optional: bool = False) -> None:
    value = record.get(key)
    if value is None and optional:
        return
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise _Bad(f"{key!r} must be a finite number, got {_short(value)}")
    if value < low or (high is not None and value > high):
        raise _Bad(f"{key!r} must lie in [{low}, {high if high is not None else '∞'}), got {value}")


def _text(record: dict, key: str, optional: bool = False) -> None:
    value = record.get(key)
    if not (isinstance(value, str) or (optional and value is None)):
        raise _Bad(f"{key!r} must be text, got {_short(value)}")


def _list(record: dict, key: str) -> list:
    value = record.get(key, [])
    if not isinstance(value, list):
        raise _Bad(f"{key!r} must be a list, got {_short(value)}")
    return value


def _short(value) -> str:
    text = json.dumps(value, ensure_ascii=True) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _check_header(head: dict) -> None:
    _text(head, "prompt")
    for piece in _list(head, "prompt_pieces"):
        if not isinstance(piece, str):
            raise _Bad(f"'prompt_pieces' must hold text, got {_short(piece)}")
    config = head.get("config", {})
    if not isinstance(config, dict):
        raise _Bad("'config' must be an object")
    try:
        SpecConfig.from_dict(config).validated()
    except (ConfigError, TypeError, ValueError, AttributeError) as error:
        raise _Bad(f"its config is not valid: {error}") from None


def _check_step(record: dict, expected: int) -> None:
    step = _int(record, "step", 1)
    if step != expected:
        raise _Bad(f"steps must follow each other from 1: expected step {expected}, got {step}")
    block = _int(record, "block_size", 1, MAX_BLOCK_SIZE)
    tree = record.get("tree")
    if tree is not None and not (isinstance(tree, dict) and isinstance(tree.get("nodes"), list)
                                 and len(tree["nodes"]) <= MAX_TREE_NODES):
        raise _Bad(f"'tree' must be an object with at most {MAX_TREE_NODES} nodes")
    # A tree step drafts every node; its positions are the accepted path plus the first refused child.
    drafted = _int(record, "drafted", 0, MAX_TREE_NODES if tree else block)
    accepted = _int(record, "accepted", 0, min(drafted, block))
    _int(record, "verifier_calls", 0, 1_000)
    for key in ("draft_s", "verify_s", "step_s"):
        _number(record, key, 0.0)
    if record.get("draft_mode") not in DRAFT_MODES or record.get("verify_mode") not in VERIFY_MODES:
        raise _Bad(f"unknown draft or verify mode ({_short(record.get('draft_mode'))}, {_short(record.get('verify_mode'))})")
    if "server_draws" in record:  # traces from before server draws have none
        _int(record, "server_draws", 0, 1_000)
    for key, longest in (("finish_reason", 40), ("drafted_by", 40), ("plan", 200), ("cpu_busy", 200), ("draw_note", 300)):
        value = record.get(key)
        if value is not None and not (isinstance(value, str) and len(value) <= longest):
            raise _Bad(f"'{key}' must be short text or null, got {_short(value)}")
    _check_guess(record.get("guess"), drafted)
    positions = _list(record, "positions")
    columns = len(positions) - 1 if tree else drafted  # draft columns shown
    if tree and not accepted + 1 <= len(positions) <= block + 1:
        raise _Bad(f"a tree step that kept {accepted} drafts shows {accepted + 1} to {block + 1} positions, "
                   f"this one {len(positions)}")
    if not tree and len(positions) != drafted + 1:
        raise _Bad(f"a step with {drafted} drafted tokens has {drafted + 1} positions, this one has {len(positions)}")
    decisions = []
    for index, position in enumerate(positions):
        if tree:  # the path's last column is a draft (the first refused child) or the verifier's own token
            columns = index + 1 if isinstance(position, dict) and position.get("draft_id") is not None else index
        decisions.append(_check_position(position, index, columns))
    if decisions[:accepted] != [Decision.ACCEPTED.value] * accepted or decisions.count(Decision.ACCEPTED.value) != accepted:
        raise _Bad(f"'accepted' is {accepted} but the positions' decisions say otherwise")
    emitted = _list(record, "emitted")
    if not 1 <= len(emitted) <= accepted + 1:
        raise _Bad(f"a step that kept {accepted} drafts emits {accepted} or {accepted + 1} tokens, this one {len(emitted)}")
    for token in emitted:
        if not isinstance(token, dict):
            raise _Bad("an emitted token must be an object")
        _int(token, "token_id", 0)
        _text(token, "piece")
        if token.get("source") not in {s.value for s in Source} - {Source.PROMPT.value}:
            raise _Bad(f"unknown token source {_short(token.get('source'))}")
    if sum(1 for t in emitted if t["source"] == Source.DRAFT.value) != accepted:
        raise _Bad(f"'accepted' is {accepted} but the emitted tokens say otherwise")


def _check_guess(guess, drafted: int) -> None:
    """A plain step's unverified guess (traces from before guesses have none)."""
    if guess is None:
        return
    if not isinstance(guess, dict) or set(guess) != {f.name for f in dataclasses.fields(Guess)}:
        raise _Bad(f"'guess' must be an object with {', '.join(f.name for f in dataclasses.fields(Guess))}, or null")
    if drafted:
        raise _Bad("only a step with nothing drafted carries a guess")
    if guess["token_id"] is not None:
        _int(guess, "token_id", 0)
    if guess["rank"] is not None:
        _int(guess, "rank", 1, 5)
    _text(guess, "piece")
    if guess["source"] is not None and not (isinstance(guess["source"], str) and len(guess["source"]) <= 40):
        raise _Bad(f"'source' of a guess must be short text or null, got {_short(guess['source'])}")


def _check_position(position, index: int, drafted: int) -> str:
    if not isinstance(position, dict):
        raise _Bad("a position must be an object")
    if position.get("index") != index:
        raise _Bad(f"position {index + 1} has index {_short(position.get('index'))}")
    is_draft = index < drafted
    if is_draft:
        _int(position, "draft_id", 0)
        _text(position, "draft_piece")
        _number(position, "q_drafter", 0.0, 1.0)
        _number(position, "p_verifier_of_draft", 0.0, 1.0)
    elif position.get("draft_id") is not None:
        raise _Bad(f"position {index + 1} is the bonus slot but has a draft")
    _int(position, "verifier_id", 0)
    _text(position, "verifier_piece")
    _number(position, "p_verifier", 0.0, 1.0)
    _number(position, "accept_prob", 0.0, 1.0, optional=True)
    _number(position, "draw", 0.0, 1.0, optional=True)
    _number(position, "residual_mass", 0.0, 1.0, optional=True)
    decision = position.get("decision")
    if decision not in {d.value for d in Decision}:
        raise _Bad(f"unknown decision {_short(decision)} at position {index + 1}")
    for key in ("draft_top", "verifier_top"):
        alternatives = _list(position, key)
        if len(alternatives) > MAX_ALTERNATIVES:
            raise _Bad(f"{key!r} holds {len(alternatives)} alternatives (at most {MAX_ALTERNATIVES})")
        for alt in alternatives:
            if not isinstance(alt, dict):
                raise _Bad(f"{key!r} must hold objects")
            _int(alt, "token_id", 0)
            _text(alt, "piece")
            _number(alt, "prob", 0.0, 1.0)
    return decision
