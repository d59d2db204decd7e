"""The one document rule (parrotwatch/corpus.py) and its readers: the audits' data files and the Spark
job's JSONL lines agree with it."""

from __future__ import annotations

import logging

import orjson
import pytest

from parrotwatch.corpus import Document, corpus_files, is_blank, read_documents, read_texts


def _jsonl(*rows) -> bytes:
    return b"".join((r if isinstance(r, bytes) else orjson.dumps(r)) + b"\n" for r in rows)


def test_a_jsonl_line_is_a_document_and_ids_fall_back_to_path_and_line(tmp_path):
    f = tmp_path / "c.jsonl"
    f.write_bytes(_jsonl({"id": 7, "text": "seven"}, b"   ", {"doc_id": "d", "text": "dee"},
                         {"text": "no id", "repetitions": 4}, {"text": " \n\t"}, {"text": "a\u2028b"}))
    docs = list(read_documents([f]))
    assert [(d.id, d.text) for d in docs] == [("7", "seven"), ("d", "dee"), (f"{f}:4", "no id"),
                                             (f"{f}:6", "a\u2028b")]  # U+2028 is no line end
    assert docs[2].record["repetitions"] == 4 and docs[2] == Document(f"{f}:4", "no id")


@pytest.mark.parametrize("line", [b"not json", b"[1, 2]", b'{"id": 1}', b'{"text": 3}', b'"text"'])
def test_a_bad_jsonl_line_names_its_file_and_line(tmp_path, line):
    f = tmp_path / "bad.jsonl"
    f.write_bytes(_jsonl({"text": "fine"}, line))
    with pytest.raises(ValueError, match=f"{f}:2: expected a JSON object with a string 'text' field"):
        list(read_documents(f))


def test_any_other_file_is_one_document_newlines_and_all(tmp_path):
    f = tmp_path / "a.txt"
    f.write_bytes(b"line one\n\nline two\r\nbad byte \xff\n")
    (tmp_path / "blank.md").write_text(" \n\n")
    assert list(read_documents([f, tmp_path / "blank.md"])) == [
        Document(str(f), "line one\n\nline two\r\nbad byte \ufffd\n")]


def test_a_directory_is_its_files_sorted_recursively_without_hidden_ones(tmp_path):
    root = tmp_path / "corpus"
    (root / "b").mkdir(parents=True)
    (root / "b" / "z.txt").write_text("zed")
    (root / "a.jsonl").write_bytes(_jsonl({"text": "first"}, {"text": "second"}))
    (root / ".hidden.txt").write_text("no")
    (root / "_SUCCESS").write_text("no")
    extra = tmp_path / "extra.txt"
    extra.write_text("extra")
    assert corpus_files([root, extra, "s3://bucket/x/*.jsonl"]) == [
        str(root / "a.jsonl"), str(root / "b" / "z.txt"), str(extra), "s3://bucket/x/*.jsonl"]
    assert list(read_texts([root, extra])) == ["first", "second", "zed", "extra"]
    with pytest.raises(FileNotFoundError):
        list(read_documents([tmp_path / "missing.txt"]))


def test_blank_means_ascii_whitespace_only():
    assert is_blank("") and is_blank(" \t\r\n\x0b\x0c") and not is_blank(" x ") and not is_blank("\u00a0")


def test_audit_data_files_follow_the_rule(tmp_path, caplog):
    from parrotwatch.audits.inputs import read_texts as audit_texts

    members = tmp_path / "m.jsonl"
    members.write_bytes(_jsonl({"id": "a", "text": "alpha", "repetitions": 3}, {"text": "beta"}))
    texts = audit_texts(members, default_repetitions=1)
    assert [(t.id, t.text, t.repetitions) for t in texts] == [("a", "alpha", 3), (f"{members}:2", "beta", 1)]
    held_out = tmp_path / "held_out.txt"
    held_out.write_text("one\ntwo\n")
    with caplog.at_level(logging.WARNING, logger="parrotwatch.audits.inputs"):
        (only,) = audit_texts(held_out, default_repetitions=0)
    assert (only.id, only.text, only.repetitions) == (str(held_out), "one\ntwo\n", 0)
    assert "write a .jsonl file" in caplog.text
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(ValueError, match="holds no text"):
        audit_texts(tmp_path / "empty.txt")
    with pytest.raises(FileNotFoundError):
        audit_texts(tmp_path / "nope.jsonl")


def test_the_spark_job_reads_jsonl_lines_by_the_same_rule(tmp_path):
    pytest.importorskip("pyspark")
    from parrotwatch.streaming.regurgitation_jobs import _jsonl_documents

    f = tmp_path / "c.jsonl"
    f.write_bytes(_jsonl({"id": 1, "text": "one"}, b"", {"text": "two"}, {"text": "  "},
                         {"doc_id": "x", "text": "3"}))
    # as textFile + zipWithIndex give them: 0-based indexes
    lines = [(line.decode(), i) for i, line in enumerate(f.read_bytes().splitlines())]
    assert list(_jsonl_documents(iter(lines), str(f))) == [(d.id, d.text) for d in read_documents(f)]
