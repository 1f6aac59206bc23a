"""What the benchmarks share: a scratch MariaDB database, the app under gunicorn, the
sandbox, and a bounded load loop on loopback."""

from __future__ import annotations

import contextlib
import http.client
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pymysql
import requests

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


@contextlib.contextmanager
def scratch_database() -> Iterator[str]:
    """A fresh utf8mb4 MariaDB database, dropped afterwards; yields its SQLAlchemy URL."""
    name = f"wx_app_bench_{secrets.token_hex(4)}"
    connection = pymysql.connect(host="127.0.0.1", user="root", password="")
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 "
                       "COLLATE utf8mb4_unicode_ci")
    try:
        yield f"mysql+pymysql://root@127.0.0.1:3306/{name}?charset=utf8mb4"
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        connection.close()


@dataclass
class Stack:
    """The app (under gunicorn) and the sandbox, with the environment they share."""

    env: dict[str, str]
    app_url: str
    sandbox_url: str

    def flask(self, *args: str) -> None:
        subprocess.run([PYTHON, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT,
                       env=self.env, check=True, stdout=subprocess.DEVNULL)


@contextlib.contextmanager
def running_stack(workers: int = 2, threads: int = 4) -> Iterator[Stack]:
    """Migrate a scratch database and serve the app with gunicorn beside a sandbox."""
    with scratch_database() as database_url, tempfile.TemporaryDirectory() as instance:
        app_port, sandbox_port = free_port(), free_port()
        sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        env = dict(os.environ, WX_APP_INSTANCE=instance, APP_ENV="testing",
                   DATABASE_URL=database_url, REDIS_URL=REDIS_URL, LOG_LEVEL="WARNING",
                   REDIS_KEY_PREFIX=f"bench{secrets.token_hex(3)}:",
                   PUBLIC_BASE_URL=f"http://127.0.0.1:{app_port}",
                   WECHAT_API_BASE=f"{sandbox_url}/api.weixin.qq.com/",
                   WECHAT_OPEN_BASE=f"{sandbox_url}/open.weixin.qq.com/",
                   WECHATPAY_API_BASE=f"{sandbox_url}/api.mch.weixin.qq.com/")
        processes = [subprocess.Popen(
            [PYTHON, "-m", "wx_app.sandbox", "--host", "127.0.0.1", "--port", str(sandbox_port)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        try:
            wait_for(f"{sandbox_url}/sandbox/api/health")
            stack = Stack(env, f"http://127.0.0.1:{app_port}", sandbox_url)
            stack.flask("db", "upgrade")
            processes.append(subprocess.Popen(
                [PYTHON, "-m", "gunicorn", "-w", str(workers), "--threads", str(threads),
                 "-b", f"127.0.0.1:{app_port}", "--log-level", "warning", "wsgi:app"],
                cwd=ROOT, env=env, stderr=subprocess.DEVNULL))
            wait_for(f"{stack.app_url}/healthz/live")
            yield stack
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=10)


Request = tuple[str, str, bytes | None, dict[str, str]]  # method, path, body, headers


def throughput(base_url: str, make_request: Callable[[int], Request], count: int,
               concurrency: int = 8) -> float:
    """Send `count` requests from `concurrency` keep-alive connections; return requests/s.

    Every response must be a 2xx: a benchmark of failures would measure nothing.
    """
    host, port = base_url.removeprefix("http://").split(":")
    counter = iter(range(count))
    lock = threading.Lock()
    failures: list[str] = []

    def worker() -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                break
            method, path, body, headers = make_request(index)
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            if not 200 <= response.status < 300:
                failures.append(f"{method} {path} → {response.status}")
        connection.close()

    started = time.perf_counter()
    workers = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} request(s) failed, first: {failures[0]}")
    return count / elapsed


def report(name: str, measured: float, baseline: float, goal: float, unit: str = "req/s") -> bool:
    """Print one line with both figures and their ratio; True when the goal is met."""
    ratio = measured / baseline
    verdict = "meets" if ratio >= goal else "MISSES"
    print(f"{name}: {measured:.0f} {unit} vs baseline {baseline:.0f} {unit} → ratio {ratio:.2f} "
          f"({verdict} the goal of {goal:.2f})")
    return ratio >= goal
