"""``bench/api_abuse.py`` in short (3 requests per client and case) on the session's broker: an
8 MiB ``[{}...]``, JSON 10,000 levels deep and a 100,000-event batch (with and without
Content-Length) each get a 4xx of at most 64 KB while /healthz keeps answering, and the API's
memory stays bounded.

The bench checks /healthz p99 < 100 ms (the acceptance bound) and prints its figures; on a
shared CI machine this test allows 500 ms, so that only a blocked event loop (seconds) fails it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from parrotwatch.stack.local import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

CASES = {"empty-8MiB": 422, "deep-10000": 422, "batch-100k": 413, "batch-100k-chunked": 413,
         "valid-1000": 202}


def test_abusive_bodies_get_small_answers_and_healthz_keeps_answering(namespace, tmp_path):
    out = tmp_path / "abuse.json"
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / "api_abuse.py"), "--repeat", "3",
         "--bootstrap", namespace.settings.bootstrap,
         "--prefix", f"{namespace.settings.topic_prefix}abuse.", "--json", str(out)],
        capture_output=True, text=True, timeout=540, cwd=REPO_ROOT)
    print(done.stdout)
    assert out.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    rows = {row["case"]: row for row in json.loads(out.read_text())["cases"]}
    assert set(rows) == set(CASES)
    for name, status in CASES.items():
        row = rows[name]
        assert row["statuses"] == [status], row
        assert row["requests"] == 6 and row["client_errors"] == [], row
        if status != 202:  # an accepted batch's answer lists its ids
            assert row["max_response_bytes"] <= 65_536, row
        assert row["healthz_probes"] > 0 and row["healthz_failures"] == 0, row
        assert row["healthz_p99_ms"] < 500, row
        assert row["rss_peak_mb"] < 1024, row  # the Kubernetes memory limit
