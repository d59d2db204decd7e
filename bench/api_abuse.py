"""Benchmark: the API under abusive bodies, with /healthz probed concurrently.

Cases (each sent ``--repeat`` times by two clients at once, while a prober GETs /healthz every
10 ms and a sampler reads the API's RSS):

* ``empty-8MiB``: an 8 MiB ``[{}, {}, ...]`` (2,097,152 events; exactly the body limit);
* ``deep-10000``: an event whose metadata nests 10,000 levels deep;
* ``batch-100k``: 100,000 minimal valid events (9.8 MB), with Content-Length;
* ``batch-100k-chunked``: the same streamed without Content-Length (read until over the limit);
* ``valid-1000``: for comparison, an accepted batch of 1,000 realistic events (the largest batch
  allowed), parsed, validated and produced.

For each: status, largest response body, /healthz p50/p99/max and failures, peak API RSS.
The acceptance bounds (issue 12) are checked and printed for the abuse cases: response <= 64 KB,
/healthz p99 < 100 ms (``valid-1000`` is only reported: it is accepted, and its 202 lists 1,000
ids). ``--json FILE`` writes the figures (the integration test reads them).

Usage: .venv/bin/python bench/api_abuse.py [--repeat 5] [--bootstrap HOST:PORT] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from api_common import ApiUnderTest, Prober, api_under_test, machine, percentile  # noqa: E402

from parrotwatch.traffic import generate_inference_events  # noqa: E402

MAX_RESPONSE_BYTES = 65_536
HEALTHZ_P99_MS = 100.0


def bodies() -> dict[str, bytes]:
    n = 2**21  # "[" + "{}, " * (n - 1) + "{}]" is 4n bytes: 8 MiB
    deep = (b'{"request_id": "deep", "timestamp": "2026-01-01T00:00:00Z", "model": "m", '
            b'"prompt": "p", "response": "r", "metadata": ' + b'{"a": ' * 10_000 + b"1"
            + b"}" * 10_000 + b"}")
    batch = orjson.dumps([{"request_id": f"abuse-{i:06d}", "timestamp": "2026-01-01T00:00:00Z",
                           "model": "m", "prompt": "p", "response": "r"} for i in range(100_000)])
    valid = orjson.dumps(generate_inference_events(1_000, seed=4, id_prefix="abuse-valid"))
    return {"empty-8MiB": b"[" + b"{}, " * (n - 1) + b"{}]", "deep-10000": deep,
            "batch-100k": batch, "batch-100k-chunked": batch, "valid-1000": valid}


EXPECTED = {"empty-8MiB": 422, "deep-10000": 422, "batch-100k": 413, "batch-100k-chunked": 413,
            "valid-1000": 202}


def _chunks(body: bytes, size: int = 65_536) -> Iterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i:i + size]


def send(api: ApiUnderTest, name: str, body: bytes) -> tuple[int, int, float]:
    """Status, response body bytes and seconds of one request."""
    content = _chunks(body) if name.endswith("chunked") else body
    started = time.perf_counter()
    with httpx.Client(timeout=120) as client:
        response = client.post(f"{api.url}/v1/inference", content=content,
                               headers={**api.headers, "Content-Type": "application/json"})
    return response.status_code, len(response.content), time.perf_counter() - started


def run_case(api: ApiUnderTest, name: str, body: bytes, repeat: int, clients: int = 2) -> dict:
    results: list[tuple[int, int, float]] = []
    errors: list[str] = []

    def client() -> None:
        for _ in range(repeat):
            try:
                results.append(send(api, name, body))
            except httpx.HTTPError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

    rss_before = api.rss_bytes()
    with Prober(api) as prober:
        time.sleep(0.2)
        threads = [threading.Thread(target=client) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        time.sleep(0.2)
    probes = prober.latencies
    return {
        "case": name, "body_bytes": len(body), "requests": len(results),
        "statuses": sorted({status for status, _, _ in results}),
        "max_response_bytes": max((size for _, size, _ in results), default=0),
        "max_request_s": round(max((s for _, _, s in results), default=0.0), 3),
        "client_errors": errors,
        "healthz_probes": len(probes), "healthz_failures": prober.failures,
        "healthz_p50_ms": round(percentile(probes, 0.5) * 1000, 2),
        "healthz_p99_ms": round(percentile(probes, 0.99) * 1000, 2),
        "healthz_max_ms": round(max(probes, default=0.0) * 1000, 2),
        "rss_before_mb": round(rss_before / 2**20, 1),
        "rss_peak_mb": round(prober.peak_rss / 2**20, 1),
    }


def within_bounds(row: dict) -> bool:
    return (row["requests"] > 0 and not row["client_errors"] and row["healthz_failures"] == 0
            and row["statuses"] == [EXPECTED[row["case"]]]
            and row["max_response_bytes"] <= MAX_RESPONSE_BYTES
            and row["healthz_p99_ms"] < HEALTHZ_P99_MS)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeat", type=int, default=10, help="requests per client and case")
    ap.add_argument("--bootstrap", help="an existing broker (default: start one)")
    ap.add_argument("--prefix", default="abuse.", help="topic prefix")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()
    cases = bodies()
    print(f"machine: {machine()}")
    rows = []
    with api_under_test(args.bootstrap, args.prefix) as api:
        idle = run_case(api, "idle (no request)", b"", 0)
        print(f"idle: /healthz p99 {idle['healthz_p99_ms']} ms, RSS {idle['rss_peak_mb']} MB")
        for name, body in cases.items():
            row = run_case(api, name, body, args.repeat)
            # valid-1000 is a legitimate request, shown for comparison, not an abuse case
            row["ok"] = within_bounds(row) or (name == "valid-1000"
                                               and row["statuses"] == [202])
            rows.append(row)
            print(f"{name:20} {len(body):>10,} B  {row['requests']} req  status "
                  f"{row['statuses']}  response <= {row['max_response_bytes']:,} B  "
                  f"slowest {row['max_request_s']} s  /healthz p50 {row['healthz_p50_ms']} ms "
                  f"p99 {row['healthz_p99_ms']} ms max {row['healthz_max_ms']} ms "
                  f"({row['healthz_probes']} probes, {row['healthz_failures']} failed)  RSS "
                  f"{row['rss_before_mb']} -> peak {row['rss_peak_mb']} MB  "
                  f"{'OK' if row['ok'] else 'OUT OF BOUNDS'}")
            if row["client_errors"]:
                print(f"  client errors: {row['client_errors'][:3]}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "idle": idle, "cases": rows},
                                        indent=2))
    sys.exit(0 if all(row["ok"] for row in rows) else 1)


if __name__ == "__main__":
    main()
