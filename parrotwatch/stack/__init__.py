"""The local stack: Kafka broker, PostgreSQL server, streaming job and API as managed processes."""

from parrotwatch.stack.errors import StackError

__all__ = ["StackError"]
