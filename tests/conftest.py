"""Test harness: real MariaDB, real Redis, the WeChat sandbox over HTTP, no internet.

- A fresh MariaDB database is created for the run and built by the migrations; every test
  starts with empty tables (reference data such as districts stays).
- Redis is used on its own database index, flushed before each test.
- The sandbox runs as a separate process on a free port; the app reaches it by URL.
- Any connection outside the loopback range fails the test.
- With CI set, a missing MariaDB, Redis or Chromium fails the run instead of skipping.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pymysql
import pytest
import redis as redis_lib
from sqlalchemy import text

from tests.support import free_port, unavailable, wait_for_http

ROOT = Path(__file__).resolve().parent.parent
MYSQL_SERVER_URL = os.environ.get("TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")
REDIS_TEST_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
# Tables that hold reference data written by the migrations; never emptied between tests.
REFERENCE_TABLES = {"districts", "alembic_version"}


# --- no internet -------------------------------------------------------------------------

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check_address(sock: socket.socket, address) -> None:
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    host = address[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = ipaddress.ip_address(socket.gethostbyname(host))
    if not ip.is_loopback:
        raise ConnectionRefusedError(f"test tried to reach {host}, outside the loopback range")


def _guarded_connect(self, address):
    _check_address(self, address)
    return _real_connect(self, address)


def _guarded_connect_ex(self, address):
    _check_address(self, address)
    return _real_connect_ex(self, address)


socket.socket.connect = _guarded_connect
socket.socket.connect_ex = _guarded_connect_ex


# --- services ------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def instance_dir(tmp_path_factory) -> Path:
    """The instance folder shared by the app and the sandbox (generated keys live here)."""
    return tmp_path_factory.mktemp("instance")


@pytest.fixture(scope="session")
def mysql_url() -> str:
    """URL of a fresh, empty utf8mb4 database for this run; dropped at the end."""
    name = f"wx_app_test_{secrets.token_hex(4)}"
    try:
        connection = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="",
                                     connect_timeout=3)
    except pymysql.err.OperationalError:
        unavailable("MariaDB on 127.0.0.1:3306")
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 "
                       "COLLATE utf8mb4_unicode_ci")
    yield f"{MYSQL_SERVER_URL}/{name}?charset=utf8mb4"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name}")
    connection.close()


@pytest.fixture(scope="session")
def redis_url() -> str:
    client = redis_lib.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis_lib.RedisError:
        unavailable("Redis on 127.0.0.1:6379")
    client.close()
    return REDIS_TEST_URL


@pytest.fixture(scope="session")
def sandbox_url(instance_dir) -> str:
    """Origin of a WeChat sandbox started for this run, as a separate process."""
    port = free_port()
    env = dict(os.environ, WX_APP_INSTANCE=str(instance_dir), APP_ENV="testing")
    log_path = instance_dir / "sandbox.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "wx_app.sandbox", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    origin = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{origin}/sandbox/api/health", process=process)
    except RuntimeError:
        process.kill()
        raise RuntimeError("sandbox did not start:\n" + log_path.read_text()) from None
    yield origin
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="session")
def app_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def app_settings(mysql_url, redis_url, sandbox_url, instance_dir, app_port) -> dict:
    """Environment overrides that point the app at the test services."""
    return {
        "APP_ENV": "testing",
        "DATABASE_URL": mysql_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": "wxtest:",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{app_port}",
        "WECHAT_API_BASE": f"{sandbox_url}/api.weixin.qq.com/",
        "WECHAT_OPEN_BASE": f"{sandbox_url}/open.weixin.qq.com/",
        "WECHATPAY_API_BASE": f"{sandbox_url}/api.mch.weixin.qq.com/",
    }


@pytest.fixture(scope="session")
def app(app_settings, instance_dir):
    """The app under test, on MariaDB built by the migrations."""
    os.environ["WX_APP_INSTANCE"] = str(instance_dir)
    from flask_migrate import upgrade

    from wx_app import create_app

    application = create_app(app_settings)
    with application.app_context():
        upgrade()
    return application


@pytest.fixture(autouse=True)
def _clean_state(request):
    """Empty every table and the Redis test database before each test that uses them."""
    if "app" not in request.fixturenames:
        yield
        return
    application = request.getfixturevalue("app")
    from wx_app import store
    from wx_app.extensions import db

    with application.app_context():
        store.client().flushdb()
        tables = [t.name for t in reversed(db.metadata.sorted_tables)
                  if t.name not in REFERENCE_TABLES]
        with db.engine.begin() as connection:
            connection.execute(text("SET FOREIGN_KEY_CHECKS = 0"))
            for table in tables:
                # Table names come from our own metadata, never from input.
                connection.execute(text(f"DELETE FROM {table}"))  # noqa: S608
            connection.execute(text("SET FOREIGN_KEY_CHECKS = 1"))
    yield


@pytest.fixture
def ctx(app):
    """An app context for tests that call the domain directly."""
    from wx_app.extensions import db

    with app.app_context():
        yield
        db.session.rollback()
        db.session.remove()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def live_server(app, app_port):
    """The app served over real HTTP by a WSGI server thread at PUBLIC_BASE_URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", app_port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app.config["PUBLIC_BASE_URL"]
    server.shutdown()


# --- browser -------------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
# Chromium sends loopback requests directly and everything else to a proxy on a closed port,
# so a page that tries to load something from the internet fails instead of reaching it.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--no-first-run", "--proxy-server=http://127.0.0.1:9"]
WECHAT_USER_AGENT = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.50(0x1800323b) "
    "NetType/WIFI Language/zh_CN")
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        unavailable(f"Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.stash.setdefault(_report_key, {})[report.when] = report
    return report


_report_key = pytest.StashKey[dict]()


@pytest.fixture
def page(browser, live_server, request):
    """A phone-sized page in a WeChat-like browser; a screenshot is kept when the test fails."""
    context = browser.new_context(viewport={"width": 375, "height": 812},
                                  device_scale_factor=2, is_mobile=True, has_touch=True,
                                  user_agent=WECHAT_USER_AGENT, locale="zh-CN")
    context.set_default_timeout(10_000)
    tab = context.new_page()
    yield tab
    report = request.node.stash.get(_report_key, {}).get("call")
    if report is not None and report.failed:
        _keep_screenshot(tab, request.node.name)
    context.close()


def _keep_screenshot(tab, test_name: str) -> None:
    """Save the page as test-artifacts/<test>.png; a page that cannot be shot is only noted."""
    from playwright.sync_api import Error as PlaywrightError

    # Parametrized names hold brackets and paths ("test_x[/h5/]"): keep a flat file name.
    path = ARTIFACTS / (re.sub(r"[^\w.-]+", "_", test_name).strip("_") + ".png")
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        tab.screenshot(path=str(path), full_page=True)
    except PlaywrightError as exc:
        print(f"no screenshot of {test_name}: {exc}", file=sys.stderr)
    else:
        print(f"screenshot of {test_name}: {path}", file=sys.stderr)
