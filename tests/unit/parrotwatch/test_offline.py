"""Offline scoring of a JSONL file (parrotwatch/offline.py)."""

from __future__ import annotations

import orjson
import pytest

from parrotwatch.offline import OfflineReport, score_file
from parrotwatch.scoring import parse_inference, score_event


def _event(i: int, response: str, logprobs: list[float] | None = None) -> dict:
    event = {
        "request_id": f"req-{i}",
        "timestamp": "2024-05-01T12:00:00Z",
        "model": "gpt-4o-mini",
        "prompt": f"question {i}",
        "response": response,
        "latency_ms": 200.0,
        "usage": {"input_tokens": 5, "output_tokens": 4},
    }
    if logprobs is not None:
        event["logprobs"] = [{"token": f"t{j}", "logprob": lp} for j, lp in enumerate(logprobs)]
    return event


GOOD = [
    _event(1, "The capital of France is Paris.", [-0.1, -2.3, -0.5]),
    _event(2, "I am not sure. " * 20),
    _event(3, "Rain is likely tomorrow afternoon.", [-0.2, -0.4, -0.05, -1.0]),
]


def _write(path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def _read(path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_good_and_bad_lines_each_give_one_output_line_in_order(tmp_path):
    missing_response = {k: v for k, v in _event(5, "x").items() if k != "response"}
    src, out = tmp_path / "in.jsonl", tmp_path / "out" / "scores.jsonl"
    bad_json = b'{"request_id": "req-4", '
    _write(src, [orjson.dumps(e) for e in GOOD] + [bad_json, orjson.dumps(missing_response)])

    report = score_file(src, out, progress=False)

    rows = _read(out)
    assert len(rows) == 5
    for row, event in zip(rows[:3], GOOD, strict=True):
        expected = score_event(parse_inference(orjson.dumps(event))).as_record()
        assert row == expected  # orjson round-trips floats exactly
    assert rows[0]["surprisal_mean"] == pytest.approx(2.9 / 3)  # (0.1 + 2.3 + 0.5) / 3
    assert rows[1]["surprisal_mean"] is None  # no logprobs
    assert rows[1]["repetition_rate"] > 0.9
    assert rows[3]["line"] == 4
    assert rows[3]["request_id"] is None  # not JSON: nothing recoverable
    assert rows[3]["error"].startswith("not valid JSON")
    assert rows[4] == {"line": 5, "request_id": "req-5", "error": "response: Field required"}
    assert report == OfflineReport(
        lines=5,
        scored=3,
        errors=[(4, rows[3]["error"]), (5, "response: Field required")],
    )


def test_blank_lines_are_skipped_but_counted_in_numbering(tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    bad = orjson.dumps({**GOOD[0], "latency_ms": "12"})
    _write(src, [orjson.dumps(GOOD[0]), b"", b"   ", bad, orjson.dumps(GOOD[2])])

    report = score_file(src, out, progress=False)

    rows = _read(out)
    assert [r["request_id"] for r in rows] == ["req-1", "req-1", "req-3"]
    assert rows[1] == {
        "line": 4,
        "request_id": "req-1",
        "error": "latency_ms: Input should be a valid number",
    }
    assert (report.lines, report.scored, [n for n, _ in report.errors]) == (3, 2, [4])


def test_oversize_invalid_utf8_and_crlf_lines(tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    small = orjson.dumps(GOOD[0])
    big = orjson.dumps({**GOOD[2], "response": "word " * 200})
    src.write_bytes(small + b"\r\n" + big + b"\n" + b'{"request_id": "r\xff"}' + b"\n" + small)

    report = score_file(src, out, max_event_bytes=len(small), progress=False)

    rows = _read(out)
    assert len(rows) == 4
    assert rows[0]["request_id"] == rows[3]["request_id"] == "req-1"
    assert "error" not in rows[0] and "error" not in rows[3]
    assert rows[1] == {
        "line": 2,
        "request_id": None,
        "error": f"event is {len(big)} bytes, over the {len(small)}-byte limit",
    }
    assert rows[2]["line"] == 3
    assert rows[2]["error"].startswith("payload is not valid UTF-8")
    assert (report.scored, [n for n, _ in report.errors]) == (2, [2, 3])


def test_progress_bar_goes_to_stderr_only_when_asked(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    _write(src, [orjson.dumps(e) for e in GOOD])
    score_file(src, tmp_path / "quiet.jsonl", progress=False)
    assert capsys.readouterr() == ("", "")
    score_file(src, tmp_path / "loud.jsonl", progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "scoring in.jsonl" in captured.err
    assert (tmp_path / "quiet.jsonl").read_bytes() == (tmp_path / "loud.jsonl").read_bytes()


def test_refuses_to_overwrite_its_input(tmp_path):
    src = tmp_path / "in.jsonl"
    _write(src, [orjson.dumps(GOOD[0])])
    with pytest.raises(ValueError, match="overwrite the input"):
        score_file(src, src, progress=False)
    assert orjson.loads(src.read_bytes()) == GOOD[0]


def test_oversize_size_excludes_a_crlf_split_across_reads(tmp_path):
    # limit = len - 1: the bounded read stops between "\r" and "\n"; the size is the event's
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    big = orjson.dumps(GOOD[0])
    src.write_bytes(big + b"\r\n" + big + b"\r\n")
    report = score_file(src, out, max_event_bytes=len(big) - 1, progress=False)
    reason = f"event is {len(big)} bytes, over the {len(big) - 1}-byte limit"
    assert report.errors == [(1, reason), (2, reason)]
    assert [row["line"] for row in _read(out)] == [1, 2]


def test_a_reference_answer_in_metadata_gives_task_metrics(tmp_path):
    from parrotwatch.quality import QualityConfig

    event = {"request_id": "r1", "timestamp": "2026-11-28T00:00:00Z", "model": "m",
             "prompt": "Where did the cat sit?", "response": "The cat sat on the mat.",
             "metadata": {"reference": "The cat sat on the red mat."}}
    plain = {**event, "request_id": "r2", "metadata": None}
    src = tmp_path / "in.jsonl"
    src.write_bytes(orjson.dumps(event) + b"\n" + orjson.dumps(plain) + b"\n")
    score_file(src, tmp_path / "out.jsonl", progress=False,
               quality=QualityConfig(detectors=("toxicity",)))
    first, second = map(orjson.loads, (tmp_path / "out.jsonl").read_bytes().splitlines())
    metrics = first["task_metrics"]
    assert metrics["exact_match"] == 0.0
    assert abs(metrics["token_f1"] - 2 * (4 / 4) * (4 / 5) / (4 / 4 + 4 / 5)) < 1e-9  # cat sat on mat
    assert 0.0 < metrics["rouge_l_f"] < 1.0 and 0.0 < metrics["chrf"] < 1.0
    assert "task_metrics" not in second
