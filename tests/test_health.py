"""GET /healthz tells an operator whether MySQL and Redis answer."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
import redis as redis_lib

from tests.support import free_port, unavailable


def make_app(tmp_path, monkeypatch, **overrides):
    from wx_app import create_app

    monkeypatch.setenv("WX_APP_INSTANCE", str(tmp_path))
    return create_app({"APP_ENV": "testing", **overrides})


@pytest.fixture
def own_redis():
    """A Redis server of this test's own, which the test may stop."""
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server")
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis_lib.Redis(port=port, socket_connect_timeout=1)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis_lib.ConnectionError:
            time.sleep(0.05)
    yield process, f"redis://127.0.0.1:{port}/0"
    process.kill()
    process.wait()


def test_ready_when_mysql_and_redis_answer(client):
    """Does /healthz say ok, with the database dialect, when both services answer?"""
    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == {"ok": True, "dialect": "mysql"}
    assert body["checks"]["redis"] == {"ok": True, "mode": "redis"}


def test_a_stopped_redis_is_reported_not_ready(tmp_path, monkeypatch, own_redis, mysql_url):
    """When Redis stops, does /healthz answer 503 and name Redis, not the database?"""
    process, url = own_redis
    health = make_app(tmp_path, monkeypatch, DATABASE_URL=mysql_url, REDIS_URL=url).test_client()
    assert health.get("/healthz").status_code == 200

    process.kill()
    process.wait()
    response = health.get("/healthz")

    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True


def test_an_unreachable_mysql_is_reported_not_ready(tmp_path, monkeypatch, redis_url):
    """With MySQL unreachable, does /healthz answer 503 quickly instead of hanging or failing?"""
    closed = f"mysql+pymysql://root@127.0.0.1:{free_port()}/nowhere?charset=utf8mb4"
    health = make_app(tmp_path, monkeypatch, DATABASE_URL=closed, REDIS_URL=redis_url)

    response = health.test_client().get("/healthz")

    assert response.status_code == 503
    body = response.get_json()
    assert body["checks"]["database"] == {"ok": False, "error": "OperationalError"}
    assert body["checks"]["redis"]["ok"] is True


def test_local_run_reports_the_in_process_store(tmp_path, monkeypatch):
    """Does a local run without REDIS_URL say it is using the in-process store?"""
    health = make_app(tmp_path, monkeypatch, REDIS_URL="")

    body = health.test_client().get("/healthz").get_json()

    assert body["checks"]["redis"] == {"ok": True, "mode": "in-process"}
    assert body["checks"]["database"]["dialect"] == "sqlite"
