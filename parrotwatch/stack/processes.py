"""Background processes tracked by pid files under ``$PARROTWATCH_HOME/run``."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

from parrotwatch.stack.errors import StackError, log_tail


class ManagedProcess:
    """A daemon started once, found again by its pid file, stopped by ``stop()``."""

    def __init__(self, name: str, run_dir: Path, log_path: Path) -> None:
        self.name = name
        self.pid_file = run_dir / f"{name}.pid"
        self.log_path = log_path

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
        except psutil.NoSuchProcess:
            return None
        return pid

    def alive(self) -> bool:
        return self.pid() is not None

    def start(
        self, argv: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> int:
        if (pid := self.pid()) is not None:
            return pid
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(
                list(argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        self.pid_file.write_text(str(proc.pid))
        return proc.pid

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the process group, then SIGKILL what is left after ``timeout``."""
        pid = self.pid()
        if pid is not None:
            _signal_group(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and _exists(pid):
                time.sleep(0.2)
            if _exists(pid):
                _signal_group(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """``kill -9`` the process group, as a crash would (used by recovery tests)."""
        pid = self.pid()
        if pid is not None:
            _signal_group(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and _exists(pid):
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)

    def fail(self, what: str) -> StackError:
        return StackError(f"{what}; log: {self.log_path}\n--- last lines ---\n{log_tail(self.log_path)}")


def _exists(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports free on 127.0.0.1 now: all n sockets stay bound until every number is read
    (n separate ``free_port()`` calls can return the same port twice)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(n)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


def wait_until(check, *, timeout: float, interval: float = 0.5, proc: ManagedProcess, what: str):
    """Poll ``check()`` until truthy; fail fast with the log tail when ``proc`` dies."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # readiness probes fail in many ways until ready
            last_exc = exc
        if not proc.alive():
            raise proc.fail(f"{proc.name} exited before {what}")
        time.sleep(interval)
    raise proc.fail(f"{proc.name}: timed out after {timeout:.0f}s waiting for {what} ({last_exc})")


def stack_ports() -> dict[str, int]:
    """The local stack's four port settings, distinct and free now (tests and benchmarks)."""
    names = ("kafka_port", "kafka_controller_port", "postgres_port", "api_port")
    return dict(zip(names, free_ports(len(names)), strict=True))
