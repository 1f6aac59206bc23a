"""The test harness itself: no test can reach the internet, and CI never skips a service."""

from __future__ import annotations

import socket

import pytest

from tests import support


def test_a_connection_outside_loopback_fails_the_test():
    """Would a test that talks to a public host (here WeChat's API address) be stopped?"""
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError, match="outside"):
        sock.connect(("203.205.239.162", 443))


def test_a_private_range_address_is_refused_too():
    """Is a private-range address refused as well, since no server of ours is there?"""
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError, match="outside"):
        sock.connect_ex(("10.0.0.1", 80))


def test_loopback_stays_reachable(sandbox_url):
    """Do loopback connections (the sandbox, MariaDB, Redis) still work?"""
    import requests

    assert requests.get(f"{sandbox_url}/sandbox/api/health", timeout=5).ok


def test_in_ci_a_missing_service_fails_instead_of_skipping(monkeypatch):
    """With CI set, does a missing MariaDB, Redis or Chromium fail the run rather than skip?"""
    monkeypatch.setattr(support, "IN_CI", True)

    with pytest.raises(pytest.fail.Exception):
        support.unavailable("MariaDB on 127.0.0.1:3306")


def test_locally_a_missing_service_skips(monkeypatch):
    """Without CI, is a missing service a skip with its reason?"""
    monkeypatch.setattr(support, "IN_CI", False)

    with pytest.raises(pytest.skip.Exception, match="Redis"):
        support.unavailable("Redis on 127.0.0.1:6379")
