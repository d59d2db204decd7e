"""``python -m parrotwatch.services.dispatcher --receivers FILE``: consume alerts and deliver them until
SIGTERM.

Reads the stack from ``PARROTWATCH_*`` (Kafka bootstrap, database URL, topic prefix), applies the
schema migrations, then runs the consumer and the delivery workers. SIGTERM or SIGINT stops
consuming, lets in-flight deliveries finish (bounded by the receivers' timeouts) and exits 0.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys

import psycopg

from parrotwatch.db import migrate
from parrotwatch.services.dispatcher.config import ConfigError, load_receivers
from parrotwatch.services.dispatcher.outbox import requeue_dead
from parrotwatch.services.dispatcher.service import Dispatcher
from parrotwatch.settings import load_settings
from parrotwatch.stack.urls import database_url

log = logging.getLogger("parrotwatch.services.dispatcher")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m parrotwatch.services.dispatcher",
        description="Deliver llm.alerts.v1 to signed webhooks, Slack and Alertmanager until SIGTERM.")
    parser.add_argument("--receivers", required=True, help="receivers YAML file")
    parser.add_argument("--requeue-dead", action="store_true",
                        help="make dead deliveries pending again (all receivers, or --receiver)")
    parser.add_argument("--receiver", help="with --requeue-dead: only this receiver")
    parser.add_argument("--check", action="store_true", help="validate the receivers file and exit")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(threadName)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("kafka").setLevel(logging.WARNING)
    try:
        config = load_receivers(args.receivers)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.check:
        print(f"{args.receivers}: {len(config.receivers)} receiver(s) OK")
        return 0
    settings = load_settings()
    url = database_url(settings)
    migrate(url)
    if args.requeue_dead:
        with psycopg.connect(url, autocommit=True) as conn:
            print(f"requeued {requeue_dead(conn, args.receiver)} dead deliveries")
        return 0

    dispatcher = Dispatcher(settings, config, url)

    def on_signal(signum: int, _frame: object) -> None:
        log.info("%s received: stopping", signal.Signals(signum).name)
        dispatcher.stop_event.set()
        dispatcher.wake()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("dispatcher starting: kafka %s, topic prefix %r, %d receiver(s)", settings.bootstrap,
             settings.topic_prefix, len(config.receivers))
    dispatcher.start()
    while not dispatcher.wait(1.0):
        pass
    dispatcher.stop()
    log.info("dispatcher stopped%s", " after a thread crashed" if dispatcher.failed else "")
    return 1 if dispatcher.failed else 0


if __name__ == "__main__":
    sys.exit(main())
