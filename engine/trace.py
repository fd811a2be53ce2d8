"""JSON Lines traces: a header, one line per step, an optional summary. Replayable without any model."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from .errors import TraceError
from .results import Alternative, Decision, Position, Source, StepResult, Token, TreeNode, TreeStep

FORMAT = 1


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
    known = {f.name for f in dataclasses.fields(StepResult)} - {"positions", "emitted", "tree"}
    tree = _tree_from_record(record["tree"], alternatives) if record.get("tree") else None
    return StepResult(positions=positions, emitted=emitted, tree=tree, **{k: v for k, v in record.items() if k in known})


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
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()

    def step(self, result: StepResult) -> None:
        self._write(step_record(result))

    def summary(self, summary: dict) -> None:
        self._write({"type": "summary", **summary})

    def close(self) -> Path:
        if not self._file.closed:
            self._file.close()
            os.replace(self._tmp, self.path)
        return self.path


def write_trace(path, head: dict, steps, summary: dict | None = None) -> Path:
    writer = TraceWriter(path, head)
    try:
        for result in steps:
            writer.step(result)
        if summary is not None:
            writer.summary(summary)
    except BaseException:
        writer._file.close()
        writer._tmp.unlink(missing_ok=True)
        raise
    return writer.close()


def read_trace(path) -> Trace:
    path = Path(path)
    if not path.exists():
        raise TraceError(f"no such trace file: {path}")
    if path.is_dir():
        raise TraceError(f"{path} is a folder, not a trace file")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise TraceError(f"cannot read trace {path}: {error}") from error
    lines = [line for line in lines if line.strip()]
    if not lines:
        raise TraceError(f"trace {path} is empty")
    records, warnings = [], []
    for number, line in enumerate(lines, start=1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            if number == len(lines) and number > 1:
                # A run killed mid-write leaves a truncated last line: keep everything before it.
                warnings.append(f"the last line ({number}) was truncated and skipped")
                break
            raise TraceError(f"trace {path} is corrupt at line {number}: {error.msg}") from error
    head = records[0]
    if not isinstance(head, dict) or head.get("type") != "header":
        raise TraceError(f"{path} is not a specdec-tui trace (its first line is not a header)")
    version = head.get("format")
    if not isinstance(version, int) or version > FORMAT:
        raise TraceError(f"trace {path} has format {version}; this version of specdec-tui reads format {FORMAT}: upgrade it")
    steps, summary = [], None
    try:
        for record in records[1:]:
            if record.get("type") == "step":
                steps.append(step_from_record(record))
            elif record.get("type") == "summary":
                summary = record
    except (KeyError, TypeError, ValueError) as error:
        raise TraceError(f"trace {path} has a malformed step record ({error})") from error
    return Trace(head, tuple(steps), summary, tuple(warnings))
