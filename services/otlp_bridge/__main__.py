"""``python -m parrotwatch.services.otlp_bridge``: bridge OTLP traces from Kafka until SIGTERM.

Reads the stack from ``PARROTWATCH_*`` (Kafka bootstrap and security, topic prefix,
``PARROTWATCH_OTLP_KAFKA_TOPIC``, ``PARROTWATCH_OTLP_KAFKA_ENCODING``). SIGTERM or SIGINT stops
polling, lets the batch in hand finish, and exits 0.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from parrotwatch.services.otlp_bridge.bridge import OtlpBridge
from parrotwatch.settings import load_settings

log = logging.getLogger("parrotwatch.services.otlp_bridge")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m parrotwatch.services.otlp_bridge",
        description="Consume OpenTelemetry traces that a Collector's kafka exporter writes, and "
                    "publish their LLM spans as inference events v1 (others are skipped; spans "
                    "that cannot be mapped are dead-lettered with their reason).")
    parser.add_argument("--topic", help="the exporter's topic (default: PARROTWATCH_OTLP_KAFKA_TOPIC, "
                                        "otlp_spans, after the topic prefix)")
    parser.add_argument("--encoding", choices=["otlp_proto", "otlp_json"],
                        help="the exporter's encoding (default: PARROTWATCH_OTLP_KAFKA_ENCODING, otlp_proto)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    bridge = OtlpBridge(load_settings(), stop, topic=args.topic, encoding=args.encoding)
    bridge.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
