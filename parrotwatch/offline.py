"""Score a JSONL file of inference events v1 offline (``parrotwatch score IN.jsonl -o OUT.jsonl``).

The same parse-and-score path as the stream (:mod:`parrotwatch.scoring`): each non-blank input
line gives exactly one output line, in input order. A scored line is
``ScoredEvent.as_record()``; a bad line is ``{"line": N, "request_id": ..., "error": reason}``,
with ``N`` the 1-based physical line number (blank lines count) and ``request_id`` recovered
when the line is a JSON object with a string ``request_id``, else ``null``. Nothing is dropped
and one bad line never stops the run.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson
from tqdm import tqdm

from parrotwatch.detectors.audits.ngram_index import NgramIndex, load_index
from parrotwatch.quality import QualityConfig
from parrotwatch.scoring import InvalidEvent, parse_inference, score_events_or_reasons

_CHUNK = 1 << 16


@dataclass(frozen=True)
class OfflineReport:
    """``lines``: non-blank input lines (= output lines); ``scored + len(errors) == lines``."""

    lines: int
    scored: int
    errors: list[tuple[int, str]]


def _read_lines(f: IO[bytes], max_bytes: int) -> Iterator[tuple[int, bytes | None, int]]:
    """Yield ``(bytes read, line without its newline or None when oversize, line size)``.

    A line longer than ``max_bytes`` is skipped through in chunks, never held in memory whole.
    """
    while chunk := f.readline(max_bytes + 2):
        read = len(chunk)
        if chunk.endswith(b"\n") or len(chunk) < max_bytes + 2:
            line = chunk.rstrip(b"\r\n")
            yield read, line, len(line)
            continue
        end = chunk[-2:]  # the line's last two bytes, for a "\r\n" split across reads
        while not end.endswith(b"\n") and (tail := f.readline(_CHUNK)):
            read += len(tail)
            end = (end + tail)[-2:]
        yield read, None, read - (len(end) - len(end.rstrip(b"\r\n")))


def _recover_request_id(raw: bytes) -> str | None:
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    rid = obj.get("request_id") if isinstance(obj, dict) else None
    return rid if isinstance(rid, str) and rid else None


CHUNK_EVENTS = 256  # events scored together (the model-based detectors batch)


def _score_chunk(chunk: list[tuple[int, bytes | None, int]], max_bytes: int,
                 index: NgramIndex | None, quality: QualityConfig | None) -> list[dict[str, Any]]:
    """Output records of ``(line number, line or None when oversize, size)`` items, in order."""
    records: list[dict[str, Any] | None] = [None] * len(chunk)
    events, where = [], []
    for i, (number, raw, size) in enumerate(chunk):
        try:
            if raw is None:
                raise InvalidEvent(f"event is {size} bytes, over the {max_bytes}-byte limit")
            events.append(parse_inference(raw, max_bytes))
            where.append(i)
        except InvalidEvent as exc:
            records[i] = _error(number, raw, str(exc))
    scored_events = score_events_or_reasons(events, index, quality)
    for i, event, scored in zip(where, events, scored_events, strict=True):
        number, raw, _ = chunk[i]
        records[i] = _error(number, raw, scored) if isinstance(scored, str) else scored.as_record()
        reference = (event.metadata or {}).get("reference")
        if quality is not None and isinstance(reference, str) and "error" not in records[i]:
            from parrotwatch.detectors.task_metrics import task_metrics

            records[i]["task_metrics"] = task_metrics(event.response, reference)
    return records


def _error(number: int, raw: bytes | None, reason: str) -> dict[str, Any]:
    rid = _recover_request_id(raw) if raw is not None else None
    return {"line": number, "request_id": rid, "error": reason}


def score_file(
    in_path: Path,
    out_path: Path,
    *,
    max_event_bytes: int = 1_048_576,
    progress: bool = True,
    regurgitation_index: str | Path | None = None,
    quality: QualityConfig | None = None,
) -> OfflineReport:
    """Score every inference event of ``in_path`` (JSONL) into ``out_path`` (JSONL); with a
    training-corpus index, ``regurgitation`` too (as the stream does with the same index)."""
    index = load_index(regurgitation_index) if regurgitation_index else None
    in_path, out_path = Path(in_path), Path(out_path)
    if in_path.resolve() == out_path.resolve():
        raise ValueError(f"output {out_path} would overwrite the input; choose another path")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    lines = scored = 0
    errors: list[tuple[int, str]] = []
    bar = tqdm(
        total=in_path.stat().st_size,
        unit="B",
        unit_scale=True,
        desc=f"scoring {in_path.name}",
        file=sys.stderr,
        disable=not progress,
    )
    chunk: list[tuple[int, bytes | None, int]] = []

    def flush() -> None:
        nonlocal scored
        for record in _score_chunk(chunk, max_event_bytes, index, quality):
            if "error" in record:
                errors.append((record["line"], record["error"]))
                bar.set_postfix(errors=len(errors), refresh=False)
            else:
                scored += 1
            dst.write(orjson.dumps(record))
            dst.write(b"\n")
        chunk.clear()

    with in_path.open("rb") as src, out_path.open("wb") as dst, bar:
        for number, (read, raw, size) in enumerate(_read_lines(src, max_event_bytes), start=1):
            bar.update(read)
            if raw is not None and not raw.strip():
                continue  # blank line: skipped, still counted in the numbering
            lines += 1
            chunk.append((number, raw, size))
            if len(chunk) >= CHUNK_EVENTS:
                flush()
        flush()
    return OfflineReport(lines=lines, scored=scored, errors=errors)
