"""The `regurgitation` score in the stream: a training-corpus index built by the CLI, loaded by
the scoring job, fills the score; the offline scorer with the same index agrees."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import orjson
import pytest

from parrotwatch.offline import score_file
from parrotwatch.traffic import encode, generate_inference_events
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


def corpus(rng: random.Random) -> list[str]:
    vocab = [f"w{i}" for i in range(5000)]  # disjoint from the traffic's English text
    return [" ".join(rng.choice(vocab) for _ in range(300)) for _ in range(40)]


def test_stream_fills_regurgitation_from_the_corpus_index(namespace, stream_job, tmp_path):
    rng = random.Random(5)
    docs = corpus(rng)
    paths = []
    for i, doc in enumerate(docs):
        paths.append(tmp_path / f"doc{i}.txt")
        paths[-1].write_text(doc)
    index_path = tmp_path / "corpus-index.npz"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARROTWATCH_")}
    built = subprocess.run([sys.executable, "-m", "parrotwatch.cli", "index", "build", *map(str, paths),
                            "-o", str(index_path), "--n", "8"], env=env, capture_output=True,
                           text=True, timeout=120)
    assert built.returncode == 0, built.stderr

    events = generate_inference_events(60, seed=8, id_prefix="regurg")
    leaked = {}
    for e in events[::6]:  # 10 responses quote a 64-word passage of a training document
        words = docs[rng.randrange(len(docs))].split()
        start = rng.randrange(len(words) - 64)
        e["response"] = f"As I recall: {' '.join(words[start:start + 64])}. Hope this helps."
        leaked[e["request_id"]] = 64
    namespace.produce_events(events)

    job = stream_job(regurgitation_index=index_path).start()
    wait_for(lambda: namespace.scalar("SELECT count(*) FROM inference_scores") >= 60,
             timeout=180, what="60 scored rows", job=job)
    scores = dict(namespace.sql("SELECT request_id, regurgitation FROM inference_scores"))
    for request_id, value in scores.items():
        if request_id in leaked:
            assert value >= leaked[request_id], (request_id, value)
        else:
            assert value == 0, (request_id, value)
    assert namespace.scalar("SELECT sum(flagged) FROM window_metrics "
                            "WHERE metric = 'regurgitation'") == len(leaked)

    jsonl = tmp_path / "events.jsonl"
    jsonl.write_bytes(b"\n".join(encode(e) for e in events) + b"\n")
    score_file(jsonl, tmp_path / "out.jsonl", progress=False, regurgitation_index=index_path)
    offline = {r["request_id"]: r["regurgitation"]
               for r in map(orjson.loads, (tmp_path / "out.jsonl").read_bytes().splitlines())}
    assert offline == scores
