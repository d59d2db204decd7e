"""Free local ports for tests and benchmarks: distinct within one call, and bindable."""

from __future__ import annotations

import socket

from parrotwatch.stack import processes
from parrotwatch.stack.processes import free_ports, stack_ports


def test_free_ports_are_distinct_and_bindable():
    ports = free_ports(16)
    assert len(set(ports)) == 16
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", port))


def test_every_port_stays_bound_until_all_are_read(monkeypatch):
    """Distinct by construction, not by luck: a port released before the next bind can come back."""
    bound, most = set(), []

    class Tracked(socket.socket):
        def bind(self, address):
            super().bind(address)
            bound.add(self)
            most.append(len(bound))

        def close(self):
            bound.discard(self)
            super().close()

    monkeypatch.setattr(processes.socket, "socket", Tracked)
    assert len(free_ports(5)) == 5
    assert max(most) == 5 and not bound


def test_stack_ports_name_the_four_settings():
    ports = stack_ports()
    assert set(ports) == {"kafka_port", "kafka_controller_port", "postgres_port", "api_port"}
    assert len(set(ports.values())) == 4
