"""The one Redis client of the app, and the names of its keys.

With REDIS_URL unset the app uses fakeredis, an in-process Redis: enough for one local
process (`make run` without Redis), wrong for anything that runs several processes, since
each would have its own store. Production refuses to start without REDIS_URL.
"""

from __future__ import annotations

import fakeredis
import redis

_client: redis.Redis | None = None
_prefix = "wx:"
_in_process = False


def configure(url: str | None, prefix: str) -> None:
    global _client, _prefix, _in_process
    _prefix = prefix
    _in_process = not url
    if url:
        _client = redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=2,
                                       health_check_interval=30)
    else:
        _client = fakeredis.FakeRedis()


def client() -> redis.Redis:
    if _client is None:
        raise RuntimeError("store.configure() has not been called")
    return _client


def key(*parts: object) -> str:
    """`key("token", "access")` → `wx:token:access`; every key the app writes has the prefix."""
    return _prefix + ":".join(str(part) for part in parts)


def in_process() -> bool:
    return _in_process


def ping() -> dict:
    """State for /healthz."""
    try:
        client().ping()
    except redis.RedisError as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "mode": "in-process" if _in_process else "redis"}
