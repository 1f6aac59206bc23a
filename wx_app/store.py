"""The one Redis client of the app, and the names of its keys.

With REDIS_URL unset the app uses fakeredis, an in-process Redis: enough for one local
process (`make run` without Redis), wrong for anything that runs several processes, since
each would have its own store. Production refuses to start without REDIS_URL.
"""

from __future__ import annotations

from dataclasses import dataclass

import fakeredis
import redis
from flask import Flask, current_app

EXTENSION = "wx_store"


@dataclass(frozen=True)
class Store:
    client: redis.Redis
    prefix: str
    in_process: bool


def init_app(app: Flask) -> None:
    """Create the app's client from REDIS_URL (or the in-process store when it is unset)."""
    url = app.config["REDIS_URL"]
    if url:
        client_ = redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=2,
                                       health_check_interval=30)
    else:
        client_ = fakeredis.FakeRedis()
    app.extensions[EXTENSION] = Store(client_, app.config["REDIS_KEY_PREFIX"], not url)


def _store() -> Store:
    return current_app.extensions[EXTENSION]


def client() -> redis.Redis:
    """The app's Redis client (needs an app context)."""
    return _store().client


def key(*parts: object) -> str:
    """`key("token", "access")` → `wx:token:access`; every key the app writes has the prefix."""
    return _store().prefix + ":".join(str(part) for part in parts)


def in_process() -> bool:
    return _store().in_process


def ping() -> dict:
    """State for /healthz."""
    try:
        client().ping()
    except redis.RedisError as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "mode": "in-process" if in_process() else "redis"}
