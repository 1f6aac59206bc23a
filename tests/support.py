"""Helpers shared by the test modules and the fixtures."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import pytest
import requests

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
