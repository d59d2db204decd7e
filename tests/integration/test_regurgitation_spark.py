"""Regurgitation acceptance on real Spark (local[2]): the index built as a Spark job equals the
in-process builder's, and a Spark scan of 10,000 logged outputs, 1% of which quote >= 50 tokens of
the corpus verbatim, finds every leak, attributes it to its document, keeps the Bloom filter's
false flags within its stated rate, and gives none with the exact index.

Corpus: Python's documentation topics (``pydoc_data.topics``), half as text files in a directory,
half as JSONL. Clean outputs are words drawn from the corpus vocabulary by frequency, so they share
its tokens but not a 50-token run (a chance 50-gram match has probability ~V^-50)."""

from __future__ import annotations

import math
from pathlib import Path
from pydoc_data.topics import topics

import numpy as np
import orjson
import pytest
from scipy.stats import poisson

from parrotwatch.detectors.audits.ngram_index import (
    WORD_PATTERN,
    BloomIndex,
    ExactIndex,
    load_index,
    tokenize,
)
from parrotwatch.detectors.audits.regurgitation import scan
from parrotwatch.streaming import regurgitation_jobs as jobs

pytestmark = pytest.mark.integration

N = 50
OUTPUTS = 10_000
LEAKS = 100  # 1%
BLOOM_FPR = 1e-4  # per n-gram: ~50 expected false flags over the ~0.5 M scanned n-grams
KEYS = sorted(topics)


@pytest.fixture(scope="module")
def spark(base_settings):
    """local[2] with the Kafka connector (the session's home and jars are the shared stack's)."""
    settings = base_settings.model_copy(update={"spark_master": "local[2]", "shuffle_partitions": 2})
    session = jobs.batch_session(settings, kafka=True)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[Path]:
    """The topics: the first half as ``<topic>.txt`` files of a directory, the rest as JSONL with ids."""
    root = tmp_path_factory.mktemp("corpus")
    (root / "docs").mkdir()
    half = len(KEYS) // 2
    for key in KEYS[:half]:
        (root / "docs" / f"{key}.txt").write_text(topics[key], encoding="utf-8")
    (root / "rest.jsonl").write_bytes(b"".join(orjson.dumps({"id": k, "text": topics[k]}) + b"\n"
                                               for k in KEYS[half:]))
    return [root / "docs", root / "rest.jsonl"]


@pytest.fixture(scope="module")
def indexes(spark, corpus, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("indexes")
    docs = jobs.read_documents(spark, corpus)
    paths = {"exact": out / "exact.npz", "bloom": out / "bloom.npz"}
    jobs.build_index(docs, n=N, fpr=0).save(paths["exact"])
    jobs.build_index(docs, n=N, fpr=BLOOM_FPR).save(paths["bloom"])
    return paths


def topic_of(doc_id: str) -> str:
    """``file:/.../<topic>.txt`` or the JSONL id ``<topic>`` -> the topic."""
    return Path(doc_id).stem


def make_outputs(seed: int = 4) -> tuple[dict[str, str], dict[str, tuple[str, int, str]]]:
    """10,000 responses; ``leaks``: request id -> (source topic, tokens quoted, the quoted passage)."""
    rng = np.random.default_rng(seed)
    counts: dict[str, int] = {}
    for key in KEYS:
        for t in tokenize(topics[key]):
            if t.isalpha():
                counts[t] = counts.get(t, 0) + 1
    vocab = np.array(sorted(counts))
    weight = np.array([counts[w] for w in vocab], dtype=float)
    weight /= weight.sum()

    def words(count: int) -> str:
        return " ".join(rng.choice(vocab, size=count, p=weight))

    outputs = {f"req-{i:05d}": words(int(rng.integers(40, 161))) for i in range(OUTPUTS)}
    sources = [k for k in KEYS if len(tokenize(topics[k])) >= 200]
    normal = {k: f" {' '.join(tokenize(topics[k]))} " for k in KEYS}  # as the index reads them
    leaks = {}
    for i in sorted(rng.choice(OUTPUTS, size=LEAKS, replace=False)):
        while True:  # a passage of one topic only, as the index normalises it (topics quote each other)
            key = sources[int(rng.integers(len(sources)))]
            spans = [m.span() for m in WORD_PATTERN.finditer(topics[key])]  # the norm-v1 words, raw text
            length = int(rng.integers(N, 121))
            start = int(rng.integers(len(spans) - length))
            passage = topics[key][spans[start][0]:spans[start + length - 1][1]]  # raw text, newlines and all
            length = len(tokenize(passage))  # the same words, but for a re-spaced region cut in two
            quoted = f" {' '.join(tokenize(passage))} "
            if length >= N and sum(quoted in normal[k] for k in KEYS) == 1:
                break
        assert f" {' '.join(tokenize(passage))} " in normal[key]
        rid = f"req-{i:05d}"
        outputs[rid] = f"{words(int(rng.integers(0, 40)))} {passage} {words(int(rng.integers(0, 40)))}"
        leaks[rid] = (key, length, passage)
    return outputs, leaks


@pytest.fixture(scope="module")
def logged(tmp_path_factory) -> tuple[Path, dict[str, str], dict[str, tuple[str, int, str]]]:
    """The outputs as inference events v1 in JSONL, plus 5 repeated lines (an at-least-once log)
    and 3 events without a response (skipped, counted)."""
    outputs, leaks = make_outputs()
    events = [{"request_id": rid, "timestamp": "2025-01-01T00:00:00Z", "model": "m", "response": text}
              for rid, text in outputs.items()]
    events += events[:5] + [{"request_id": f"bad-{i}", "model": "m"} for i in range(3)]
    path = tmp_path_factory.mktemp("logged") / "events.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return path, outputs, leaks


def test_spark_index_build_equals_the_in_process_builder(indexes):
    texts = [topics[k] for k in KEYS]
    reference = {"exact": ExactIndex.from_documents(texts, n=N),
                 "bloom": BloomIndex.from_documents(texts, n=N, target_fpr=BLOOM_FPR)}
    for kind, path in indexes.items():
        ref_path = path.with_name(f"{kind}-in-process.npz")
        reference[kind].save(ref_path)
        with np.load(path) as got, np.load(ref_path) as want:
            assert sorted(got.files) == sorted(want.files)
            for name in want.files:
                np.testing.assert_array_equal(got[name], want[name], err_msg=f"{kind}: {name}")
    assert len(reference["exact"]) > 40_000  # the corpus's distinct 50-word grams (49 k): a real index
    assert 0.5 * BLOOM_FPR < load_index(indexes["bloom"]).false_positive_rate < 2 * BLOOM_FPR


def test_bloom_scan_finds_every_leak_and_false_flags_stay_within_the_stated_rate(spark, corpus, indexes,
                                                                               logged):
    path, outputs, leaks = logged
    result = jobs.scan_outputs(jobs.read_outputs(spark, [path]), indexes["bloom"], min_tokens=N,
                               docs=jobs.read_documents(spark, corpus), top=10)
    report = result.report
    assert (report.n_outputs, result.skipped) == (OUTPUTS, 3)
    flagged = dict(report.flagged)
    for rid, (_, length, _) in leaks.items():
        assert flagged[rid].tokens >= length, (rid, flagged.get(rid), length)

    # false flags: binomial with the stated per-n-gram rate p; Poisson quantiles bound it on both
    # sides (the lower one shows the stated rate is the real one, not merely an upper bound)
    false = set(flagged) - set(leaks)
    expected = report.expected_false_flags
    assert math.isclose(expected, report.n_ngrams * report.ngram_fpr)
    assert 300_000 < report.n_ngrams < 1_000_000
    low, high = poisson.ppf(1e-6, expected), poisson.ppf(1 - 1e-6, expected)
    assert low <= len(false) <= high, (len(false), expected)
    print(f"Bloom p={report.ngram_fpr:.3g}: {len(false)} false flags, {expected:.1f} expected "
          f"({low:.0f}..{high:.0f}) over {report.n_ngrams:,} n-grams")
    assert report.rate == pytest.approx((LEAKS + len(false)) / OUTPUTS)

    # parity with the in-process scan over the same outputs and index
    local = scan(outputs, load_index(indexes["bloom"]), min_tokens=N)
    assert dict(local.flagged) == flagged
    assert local.n_ngrams == report.n_ngrams

    # attribution: each leak verified in the document it quotes; false flags unverified
    attribution = result.attribution
    verified = dict(attribution.outputs)
    attributed: dict[str, int] = {}
    for rid, (key, length, passage) in leaks.items():
        assert topic_of(verified[rid].doc_id) == key and verified[rid].tokens >= length, (rid, verified[rid])
        # overlaps are in norm-v1 token positions (re-spaced letters joined): compare as tokens
        matched = tokenize(outputs[rid])[verified[rid].start:verified[rid].end]
        assert f" {' '.join(tokenize(passage))} " in f" {' '.join(matched)} ", rid
        attributed[key] = attributed.get(key, 0) + 1
    assert set(attribution.unverified) == false
    ranked = [(topic_of(d.doc_id), d.n_outputs) for d in attribution.documents]
    assert len(ranked) == min(10, len(attributed)) and all(attributed[d] == c for d, c in ranked)
    assert [c for _, c in ranked] == sorted(attributed.values(), reverse=True)[:len(ranked)]


def test_exact_scan_flags_exactly_the_leaks(spark, indexes, logged, tmp_path):
    path, _, leaks = logged
    result = jobs.scan_outputs(jobs.read_outputs(spark, [path]), indexes["exact"], min_tokens=N,
                               per_output=tmp_path / "overlaps")
    assert set(dict(result.report.flagged)) == set(leaks)  # 0 false positives
    assert result.report.expected_false_flags < 1e-6
    rows = spark.read.parquet(str(tmp_path / "overlaps")).collect()
    assert len(rows) == OUTPUTS
    assert {r.output_id for r in rows if r.overlap_tokens > 0} == set(leaks)
    assert all(r.overlap_tokens >= leaks[r.output_id][1] for r in rows if r.output_id in leaks)


def test_cli_builds_the_same_index_with_and_without_spark_and_scans(spark, corpus, logged, tmp_path,
                                                                    monkeypatch):
    from typer.testing import CliRunner

    from parrotwatch.cli.index import index_app, regurgitation_app

    monkeypatch.setenv("PARROTWATCH_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    for flag in ("--spark", "--no-spark"):
        done = runner.invoke(index_app, ["build", *map(str, corpus), "-o", str(tmp_path / f"{flag}.npz"),
                                         "--n", str(N), "--fpr", "0", flag])
        assert done.exit_code == 0, done.output
    with np.load(tmp_path / "--spark.npz") as a, np.load(tmp_path / "--no-spark.npz") as b:
        assert all(np.array_equal(a[f], b[f]) for f in b.files) and sorted(a.files) == sorted(b.files)
    path, _, leaks = logged
    done = runner.invoke(regurgitation_app, ["scan", str(path), "--index", str(tmp_path / "--spark.npz"),
                                             "--json"])
    assert done.exit_code == 0, done.output
    summary = orjson.loads(done.stdout)
    assert (summary["n_outputs"], summary["n_flagged"], summary["skipped"]) == (OUTPUTS, LEAKS, 3)
    assert {f["output_id"] for f in summary["flagged"]} <= set(leaks)


def test_scan_reads_a_kafka_topic_snapshot(spark, namespace, indexes, logged):
    """The same scan over a snapshot of llm.inference.v1 on the real broker; the log's duplicates
    (at-least-once producers) count once."""
    _, outputs, leaks = logged
    ids = sorted(outputs)[:1000]
    events = [{"request_id": rid, "timestamp": "2025-01-01T00:00:00Z", "model": "m", "response": outputs[rid]}
              for rid in ids]
    namespace.produce_events(events + events[:10])
    topic = jobs.read_kafka_outputs(spark, namespace.settings.bootstrap, namespace.topic("llm.inference.v1"))
    result = jobs.scan_outputs(topic, indexes["exact"], min_tokens=N)
    assert result.report.n_outputs == len(ids)
    assert set(dict(result.report.flagged)) == set(leaks) & set(ids) != set()
