"""The regurgitation audit as Spark batch jobs: build the training-corpus n-gram index, scan logged
outputs for verbatim overlaps and attribute them to corpus documents.

Spark only adapts. Tokens, n-gram hashes, indexes and overlaps are the pure functions of
:mod:`parrotwatch.detectors.audits.ngram_index` and :mod:`parrotwatch.detectors.audits.regurgitation`,
called in the
executors through ``mapInArrow``; the same jobs run in ``local[*]`` and on a cluster.

Build: documents ``(doc_id, text)`` -> per Arrow batch the distinct n-gram hashes of its documents
(none spanning two documents) -> Spark ``distinct`` -> one partial index per partition, shipped as
its ``save()``d bytes -> merged on the driver. The result is the in-process builder's index bit for
bit: the exact index is the sorted union of the hashes, and a Bloom filter sized for the N distinct
n-grams (``m``, ``k`` from N and the target rate, as ``BloomIndex.from_documents`` does) is the OR of
the filters of the disjoint partitions.

Scan: outputs ``(output_id, text)`` -> per Arrow batch ``scan(texts, index, min_tokens=n)`` with the
index loaded once per Python worker (the path travels in the closure; a bare file name shipped with
``spark-submit --files`` resolves through ``SparkFiles``) -> per output its longest overlap in tokens
(0 or >= n), and per batch its n-gram count. The driver collects the flagged outputs (overlap >=
``min_tokens``) into a :class:`~parrotwatch.detectors.audits.regurgitation.ScanReport`. Its
``expected_false_flags`` is the union bound over all scanned windows, ``n_ngrams * p^r`` with
``r = min_tokens - n + 1``: at least the per-output bound of the in-process ``scan``.

Attribution: the flagged spans' n-gram hashes are broadcast; one pass over the corpus keeps the
documents holding any of them (at most ``max_candidates``, those holding the most first), and
``top_documents`` runs on the driver over those candidates only (ties between documents go to the
smaller ``doc_id``).
"""

from __future__ import annotations

import io
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial, reduce
from pathlib import Path

import numpy as np
import pyarrow as pa
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from parrotwatch.corpus import NON_BLANK, corpus_files, is_jsonl, jsonl_document
from parrotwatch.detectors.audits.ngram_index import (
    BloomIndex,
    ExactIndex,
    NgramIndex,
    load_index,
    sorted_unique,
)
from parrotwatch.detectors.audits.regurgitation import Attribution, Overlap, ScanReport, scan, top_documents
from parrotwatch.settings import Settings

DOCUMENTS = "doc_id string, text string"
HASHES = "h long"  # uint64 n-gram hashes, bit-cast to Spark's signed long
BLOBS = "blob binary"
SCAN_ROWS = ("kind string, output_id string, overlap_tokens int, overlap_start int, overlap_end int, "
             "text string, ngrams long, outputs long, skipped long")
CANDIDATES = "doc_id string, text string, hits long"
CHUNK_CHARS = 4_000_000  # texts tokenised at once, as in ``add_documents``


def batch_session(settings: Settings, app_name: str = "parrotwatch-regurgitation",
                  kafka: bool = False) -> SparkSession:
    """A SparkSession for the batch jobs: ``parrotwatch.streaming.session.build_session`` when the job reads
    Kafka (connector jars), else a plain session with the same master, shuffle partitions and
    scratch directory (no Maven needed)."""
    if kafka:
        from parrotwatch.streaming.session import build_session

        return build_session(settings, app_name)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (SparkSession.builder.appName(app_name)
               .config("spark.sql.shuffle.partitions", str(settings.shuffle_partitions))
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.driver.memory", "2g")
               .config("spark.python.worker.reuse", "true")
               .config("spark.local.dir", str(Path(settings.home) / "spark-tmp")))
    if settings.spark_master.startswith("local"):
        builder = (builder.master(settings.spark_master).config("spark.driver.host", "127.0.0.1")
                   .config("spark.driver.bindAddress", "127.0.0.1"))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


# ---------------------------------------------------------------- sources


def _jsonl_documents(lines: Iterator[tuple[str, int]], path: str) -> Iterator[tuple[str, str]]:
    for line, index in lines:
        doc = jsonl_document(line, path, index + 1)
        if doc is not None:
            yield doc.id, doc.text


def read_documents(spark: SparkSession, paths: Sequence[str | Path]) -> DataFrame:
    """Corpus documents ``(doc_id, text)`` by the one document rule of :mod:`parrotwatch.corpus`: a
    ``.jsonl`` file holds one document per line (its ``text``; id: ``id``, ``doc_id`` or
    ``path:line``), any other file is one document (id: its path as Spark names it, ``file:/...``);
    blank documents are skipped. A local directory is listed as ``corpus_files`` lists it; a URI or
    glob goes to Spark as it is."""
    files = corpus_files(paths)
    texts = [f for f in files if not is_jsonl(f)]
    parts = []
    if texts:
        parts.append(spark.read.text(texts, wholetext=True)
                     .select(F.col("_metadata.file_path").alias("doc_id"), F.col("value").alias("text"))
                     .filter(F.col("text").rlike(NON_BLANK)))
    for path in filter(is_jsonl, files):
        rdd = spark.sparkContext.textFile(path).zipWithIndex().mapPartitions(
            partial(_jsonl_documents, path=path))
        parts.append(spark.createDataFrame(rdd, DOCUMENTS))
    if not parts:
        raise ValueError(f"no corpus documents under {[str(p) for p in paths]}")
    return reduce(DataFrame.unionByName, parts)


def read_outputs(spark: SparkSession, paths: Sequence[str | Path], id_field: str = "request_id",
                 text_field: str = "response", dedupe: bool = True) -> DataFrame:
    """Logged outputs ``(output_id, text)`` from JSONL files, by default inference events v1
    (``request_id``, ``response``); with ``dedupe`` one row per id (the log is at-least-once).
    A line without the id or the text keeps a null there and is counted as skipped by the scan."""
    schema = f"`{id_field}` string, `{text_field}` string"
    df = spark.read.schema(schema).json([str(p) for p in paths])
    df = df.select(F.col(id_field).alias("output_id"), F.col(text_field).alias("text"))
    return df.dropDuplicates(["output_id"]) if dedupe else df


def read_kafka_outputs(spark: SparkSession, bootstrap: str, topic: str, id_field: str = "request_id",
                       text_field: str = "response", dedupe: bool = True) -> DataFrame:
    """A snapshot of a topic of inference events (earliest to latest offsets) as ``(output_id, text)``;
    needs a session with the Kafka connector (``batch_session(..., kafka=True)``)."""
    schema = f"`{id_field}` string, `{text_field}` string"
    df = (spark.read.format("kafka").option("kafka.bootstrap.servers", bootstrap)
          .option("subscribe", topic).option("startingOffsets", "earliest")
          .option("endingOffsets", "latest").load()
          .select(F.from_json(F.col("value").cast("string"), schema).alias("e"))
          .select(F.col(f"e.{id_field}").alias("output_id"), F.col(f"e.{text_field}").alias("text")))
    return df.dropDuplicates(["output_id"]) if dedupe else df


# ---------------------------------------------------------------- index build


def _chunks(texts: list[str]) -> Iterator[list[str]]:
    start, size = 0, 0
    for i, t in enumerate(texts):
        size += len(t)
        if size >= CHUNK_CHARS:
            yield texts[start:i + 1]
            start, size = i + 1, 0
    if start < len(texts):
        yield texts[start:]


def _hash_batches(batches: Iterator[pa.RecordBatch], n: int) -> Iterator[pa.RecordBatch]:
    hasher = ExactIndex(n)  # its tokenizer and n only
    for batch in batches:
        texts = [t for t in batch.column("text").to_pylist() if t is not None]
        for chunk in _chunks(texts):
            h = sorted_unique(hasher.hashes(chunk)[0])
            yield pa.record_batch([pa.array(h.view(np.int64))], names=["h"])


def ngram_hashes_step(n: int):
    """``(doc_id, text)`` -> ``h``: the distinct n-gram hashes of each Arrow batch of documents."""
    return lambda docs: docs.select("text").mapInArrow(partial(_hash_batches, n=n), HASHES)


def _partial_index(batches: Iterator[pa.RecordBatch], make) -> Iterator[pa.RecordBatch]:
    """One partition's hashes -> its index, ``save()``d into one binary row (none if it is empty)."""
    index, exact, seen = make(), [], False
    for batch in batches:
        h = batch.column("h").to_numpy().view(np.uint64)
        seen = seen or len(h) > 0
        if isinstance(index, ExactIndex):
            exact.append(h)  # sorted once at the end
        else:
            index.add_hashes(h)  # a Bloom filter's memory stays fixed
    if not seen:
        return
    if exact:
        index.add_hashes(np.concatenate(exact))
    buf = io.BytesIO()
    index.save(buf)
    yield pa.record_batch([pa.array([buf.getvalue()], pa.binary())], names=["blob"])


def build_index(docs: DataFrame, n: int = 8, fpr: float = 1e-6,
                partitions: int | None = None) -> ExactIndex | BloomIndex:
    """The corpus index of ``docs`` (``read_documents``): exact when ``fpr == 0``, else a Bloom filter
    at per-n-gram rate ``fpr``, sized for the distinct n-grams. ``partitions``: of the distinct step
    (default ``spark.sql.shuffle.partitions``); each ships one partial index to the driver."""
    hashes = docs.transform(ngram_hashes_step(n))
    distinct = (hashes.repartition(partitions, "h") if partitions else hashes).distinct()
    if fpr == 0:
        index: ExactIndex | BloomIndex = ExactIndex(n)
        partials = distinct.mapInArrow(partial(_partial_index, make=partial(ExactIndex, n)), BLOBS)
        found = [load_index(io.BytesIO(r.blob)) for r in partials.collect()]
        while len(found) > 1:  # pairwise: each merge sorts, so a tree keeps it O(N log N log P)
            for a, b in zip(found[::2], found[1::2], strict=False):
                a.merge(b)
            found = found[::2]
        if found:
            index.merge(found[0])
        return index
    distinct = distinct.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        index = BloomIndex(n, max(1, distinct.count()), fpr)
        make = partial(BloomIndex, n, index.expected_ngrams, fpr, m=index.m, k=index.k)
        for row in distinct.mapInArrow(partial(_partial_index, make=make), BLOBS).toLocalIterator():
            index.merge(load_index(io.BytesIO(row.blob)))
    finally:
        distinct.unpersist()
    return index


# ---------------------------------------------------------------- scan

_WORKER_INDEXES: dict[tuple[str, int, int], NgramIndex] = {}


def worker_index(path: str) -> NgramIndex:
    """The index at ``path`` (or, if no such file, the ``SparkFiles`` file of that name), loaded once
    per process and reloaded when the file changes."""
    local = path
    if not os.path.exists(local):
        from pyspark import SparkFiles

        local = SparkFiles.get(os.path.basename(path))
    st = os.stat(local)
    key = (os.path.abspath(local), st.st_mtime_ns, st.st_size)
    if key not in _WORKER_INDEXES:
        _WORKER_INDEXES[key] = load_index(local)
    return _WORKER_INDEXES[key]


def _scan_batches(batches: Iterator[pa.RecordBatch], index_path: str,
                  min_tokens: int) -> Iterator[pa.RecordBatch]:
    index = worker_index(index_path)
    for batch in batches:
        pairs = zip(batch.column("output_id").to_pylist(), batch.column("text").to_pylist(), strict=True)
        kept = [(i, t) for i, t in pairs if i is not None and t is not None]
        report = scan([t for _, t in kept], index, min_tokens=index.n)
        found = dict(report.flagged)
        overlaps = [found.get(j, Overlap(0, 0, 0)) for j in range(len(kept))]
        none = [None] * len(kept)
        yield pa.RecordBatch.from_pydict({
            "kind": ["output"] * len(kept), "output_id": [i for i, _ in kept],
            "overlap_tokens": [o.tokens for o in overlaps], "overlap_start": [o.start for o in overlaps],
            "overlap_end": [o.end for o in overlaps],
            "text": [t if o.tokens >= min_tokens else None for (_, t), o in zip(kept, overlaps, strict=True)],
            "ngrams": none, "outputs": none, "skipped": none,
        }, schema=_SCAN_ARROW)
        yield pa.RecordBatch.from_pydict({
            "kind": ["batch"], "output_id": [None], "overlap_tokens": [None], "overlap_start": [None],
            "overlap_end": [None], "text": [None], "ngrams": [report.n_ngrams], "outputs": [len(kept)],
            "skipped": [batch.num_rows - len(kept)]}, schema=_SCAN_ARROW)


_SCAN_ARROW = pa.schema([("kind", pa.string()), ("output_id", pa.string()), ("overlap_tokens", pa.int32()),
                         ("overlap_start", pa.int32()), ("overlap_end", pa.int32()), ("text", pa.string()),
                         ("ngrams", pa.int64()), ("outputs", pa.int64()), ("skipped", pa.int64())])


def overlaps_step(index_path: str | Path, min_tokens: int):
    """``(output_id, text)`` -> rows of ``SCAN_ROWS``: ``kind = 'output'`` per output (its longest
    overlap over tokens ``[overlap_start, overlap_end)``, 0 if none; ``text`` kept only when the
    overlap is >= ``min_tokens``) and ``kind = 'batch'`` per Arrow batch (``ngrams`` scanned,
    ``outputs`` scanned, ``skipped`` rows without id or text)."""
    fn = partial(_scan_batches, index_path=str(index_path), min_tokens=min_tokens)
    return lambda outputs: outputs.select("output_id", "text").mapInArrow(fn, SCAN_ROWS)


@dataclass(frozen=True)
class RegurgitationScan:
    """A Spark scan: the ``report`` (flagged outputs by longest overlap, then id), the texts of the
    flagged outputs, the ``attribution`` (None without a corpus) and the rows skipped."""

    report: ScanReport
    flagged_texts: dict[str, str]
    attribution: Attribution | None
    skipped: int


def collect_scan(rows: DataFrame, index: NgramIndex, min_tokens: int, started: float) -> RegurgitationScan:
    """One action over ``overlaps_step`` rows: the batch totals and the flagged outputs."""
    wanted = rows.filter((F.col("kind") == "batch") | (F.col("overlap_tokens") >= min_tokens))
    got = wanted.collect()
    batches = [r for r in got if r.kind == "batch"]
    flagged = sorted(((r.output_id, Overlap(r.overlap_tokens, r.overlap_start, r.overlap_end), r.text)
                      for r in got if r.kind == "output"), key=lambda x: (-x[1].tokens, x[0]))
    n_outputs, n_ngrams = sum(r.outputs for r in batches), sum(r.ngrams for r in batches)
    p, r = index.false_positive_rate, min_tokens - index.n + 1
    report = ScanReport(n_outputs, len(flagged), len(flagged) / max(n_outputs, 1), min_tokens,
                        tuple((i, o) for i, o, _ in flagged), n_ngrams, time.perf_counter() - started,
                        p, n_ngrams * p**r)
    return RegurgitationScan(report, {i: t for i, _, t in flagged}, None, sum(r.skipped for r in batches))


def _holding_docs(batches: Iterator[pa.RecordBatch], n: int, wanted) -> Iterator[pa.RecordBatch]:
    spans = ExactIndex(n)
    spans.add_hashes(wanted.value)
    for batch in batches:
        ids, texts = batch.column("doc_id").to_pylist(), batch.column("text").to_pylist()
        h, offsets = spans.hashes([t or "" for t in texts])
        hits = np.concatenate([[0], np.cumsum(spans.contains_many(h))])
        count = hits[offsets[1:]] - hits[offsets[:-1]]
        keep = np.flatnonzero(count)
        yield pa.RecordBatch.from_pydict({"doc_id": [ids[j] for j in keep], "text": [texts[j] for j in keep],
                                          "hits": count[keep].astype(np.int64)})


def attribute(result: RegurgitationScan, docs: DataFrame, index: NgramIndex, top: int = 10,
              max_candidates: int = 10_000) -> Attribution:
    """``top_documents`` of the flagged outputs over the corpus documents holding their spans."""
    n = index.n
    spans = [index.hashes([result.flagged_texts[i]])[0][o.start:o.start + max(o.tokens - n + 1, 0)]
             for i, o in result.report.flagged]
    wanted = sorted_unique(np.concatenate([np.zeros(0, dtype=np.uint64), *spans]))
    corpus: dict[str, str] = {}
    if len(wanted):
        spark = docs.sparkSession
        shared = spark.sparkContext.broadcast(wanted)
        try:
            rows = (docs.mapInArrow(partial(_holding_docs, n=n, wanted=shared), CANDIDATES)
                    .orderBy(F.desc("hits"), "doc_id").limit(max_candidates).collect())
        finally:
            shared.unpersist()
        corpus = dict(sorted((r.doc_id, r.text) for r in rows))
    return top_documents(result.report, result.flagged_texts, corpus, index, k=top)


def scan_outputs(outputs: DataFrame, index_path: str | Path, min_tokens: int | None = None,
                 docs: DataFrame | None = None, top: int = 10, max_candidates: int = 10_000,
                 per_output: str | Path | None = None) -> RegurgitationScan:
    """The scan job: overlaps of ``outputs`` (``read_outputs``) with the index at ``index_path``,
    flagged at ``min_tokens`` (default the index's n), attributed to ``docs`` when given; with
    ``per_output``, every output's overlap is also written there as Parquet."""
    started = time.perf_counter()
    index = load_index(index_path)
    min_tokens = index.n if min_tokens is None else min_tokens
    if min_tokens < index.n:
        raise ValueError(f"min_tokens={min_tokens} < the index's n={index.n}: build an index with "
                         f"n <= min_tokens")
    rows = outputs.transform(overlaps_step(index_path, min_tokens))
    if per_output is not None:
        rows = rows.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        result = collect_scan(rows, index, min_tokens, started)
        if per_output is not None:
            (rows.filter(F.col("kind") == "output")
             .select("output_id", "overlap_tokens", "overlap_start", "overlap_end")
             .write.mode("overwrite").parquet(str(per_output)))
    finally:
        rows.unpersist()
    if docs is None:
        return result
    attribution = attribute(result, docs, index, top, max_candidates)
    return RegurgitationScan(result.report, result.flagged_texts, attribution, result.skipped)
