"""Corpus documents: the one rule for what a document is, shared by every reader of texts from files.

Readers: the n-gram index build (``parrotwatch index build``, in process and as the Spark job of
:mod:`parrotwatch.streaming.regurgitation_jobs`), the regurgitation scan's attribution (``--corpus``),
and the audits' member, non-member and canary files (:mod:`parrotwatch.audits.inputs`).

The rule:

- **A path** is a file or a directory (the Spark job also takes URIs and globs, passed to Spark as they
  are). A directory stands for its files, recursively, sorted by path, skipping files whose name starts
  with ``.`` or ``_`` (``.crc``, ``_SUCCESS``, ...).
- **A ``.jsonl`` file** holds one document per non-blank line: a JSON object with a string ``text``.
  Its id is the ``id`` field, else the ``doc_id`` field, else ``<path>:<line number>`` (from 1; lines
  end at ``\\n``, ``\\r\\n`` or ``\\r``, as Hadoop splits them). The object's other fields travel with
  the document (:attr:`Document.record`), e.g. an audit's ``repetitions``.
- **Any other file is one document**: the whole file, decoded as UTF-8 (undecodable bytes replaced, as
  Spark does); its id is its path (in the Spark job, the path as Spark names it, ``file:/...``). Text
  across line breaks stays one document, so an n-gram may span lines. For one document per line, write
  a ``.jsonl`` file.
- **A blank document** (no character other than ASCII whitespace) is skipped.

This module is core-level: the standard library, ``orjson`` and nothing of Spark, so that the Spark
job, the CLI and the audit jobs all call the same functions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

JSONL_SUFFIX = ".jsonl"
#: a document holds some character matching this (Python ``re`` with ``re.ASCII`` and Java regex agree)
NON_BLANK = r"\S"
_NON_BLANK = re.compile(NON_BLANK, re.ASCII)


@dataclass(frozen=True)
class Document:
    """One corpus document: ``id``, ``text`` and, for a JSONL line, its whole ``record``."""

    id: str
    text: str
    record: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


def is_blank(text: str) -> bool:
    """True for a text with no character other than ASCII whitespace (such a document is skipped)."""
    return _NON_BLANK.search(text) is None


def is_jsonl(path: str | Path) -> bool:
    """Whether ``path`` is read as JSONL (one document per line) rather than as one document."""
    return str(path).endswith(JSONL_SUFFIX)


def _paths(paths: str | Path | Iterable[str | Path]) -> list[str | Path]:
    return [paths] if isinstance(paths, str | Path) else list(paths)


def corpus_files(paths: str | Path | Iterable[str | Path]) -> list[str]:
    """The files ``paths`` stand for, in order: a local directory is listed recursively (sorted, names
    starting with ``.`` or ``_`` skipped); anything else (a file, a URI, a glob) is kept as it is."""
    files = []
    for p in map(str, _paths(paths)):
        local = Path(p)
        if "://" not in p and local.is_dir():
            files += [str(f) for f in sorted(local.rglob("*"))
                      if f.is_file() and not f.name.startswith((".", "_"))]
        else:
            files.append(p)
    return files


def jsonl_document(line: str | bytes, path: str, number: int) -> Document | None:
    """The document of line ``number`` (from 1) of the JSONL file ``path``; None for a blank line or a
    blank text. A line that is not a JSON object with a string ``text`` raises ValueError."""
    if not line.strip():
        return None
    try:
        record = orjson.loads(line)
        text = record["text"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        text = None
    if not isinstance(text, str):
        raise ValueError(f"{path}:{number}: expected a JSON object with a string 'text' field")
    if is_blank(text):
        return None
    doc_id = record.get("id", record.get("doc_id"))
    return Document(f"{path}:{number}" if doc_id is None else str(doc_id), text, record)


def text_document(text: str, doc_id: str) -> Document | None:
    """A whole non-JSONL file as one document; None when it is blank."""
    return None if is_blank(text) else Document(doc_id, text)


def read_file(path: str | Path) -> Iterator[Document]:
    """The documents of one local file, by the rule of this module."""
    path = Path(path)
    if is_jsonl(path):
        for number, line in enumerate(path.read_bytes().splitlines(), start=1):
            doc = jsonl_document(line, str(path), number)
            if doc is not None:
                yield doc
    else:
        doc = text_document(path.read_bytes().decode("utf-8", errors="replace"), str(path))
        if doc is not None:
            yield doc


def read_documents(paths: str | Path | Iterable[str | Path]) -> Iterator[Document]:
    """The documents under local ``paths`` (files or directories), in order. A missing path raises
    FileNotFoundError."""
    for f in corpus_files(paths):
        if not Path(f).is_file():
            raise FileNotFoundError(f"corpus path {f} is not a file or directory")
        yield from read_file(f)


def read_texts(paths: str | Path | Iterable[str | Path]) -> Iterator[str]:
    """The texts of :func:`read_documents` (what an index is built from)."""
    return (d.text for d in read_documents(paths))
