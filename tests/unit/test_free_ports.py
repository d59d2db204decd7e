"""Free local ports for tests and benchmarks: distinct within one call, and bindable."""

from __future__ import annotations

import socket

from parrotwatch.stack.processes import free_ports, stack_ports


def test_free_ports_are_distinct_and_bindable():
    ports = free_ports(16)
    assert len(set(ports)) == 16
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", port))


def test_stack_ports_name_the_four_settings():
    ports = stack_ports()
    assert set(ports) == {"kafka_port", "kafka_controller_port", "postgres_port", "api_port"}
    assert len(set(ports.values())) == 4
