"""Helpers shared by the test modules and the fixtures."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import pytest
import requests
from sqlalchemy import event

IN_CI = bool(os.environ.get("CI"))


def unavailable(what: str) -> None:
    """Skip locally; in CI a missing service is a failure, never a skip."""
    if IN_CI:
        pytest.fail(f"{what} is not available, and CI must test against it", pytrace=False)
    pytest.skip(f"{what} is not available")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout: float = 20.0, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {process.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


class StatementCounter:
    """Collects the SQL statements sent through `engine` while active (executemany counts once).

    Used by tests and benchmarks that show a page or an import does not send a query per row.
    """

    def __init__(self, engine):
        self.engine = engine
        self.statements: list[str] = []

    @property
    def count(self) -> int:
        return len(self.statements)

    def __enter__(self) -> StatementCounter:
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, conn, cursor, statement, *args) -> None:
        self.statements.append(statement)
