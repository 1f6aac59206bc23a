"""The access token and the JS-API ticket, shared by every process through Redis.

WeChat allows a limited number of token fetches a day, and a fetch invalidates nothing when
made through `stable_token`, but many processes fetching at once still waste the quota and
race each other. So the value lives in Redis; a process that finds it missing takes a Redis
lock, looks again (another process may have just fetched it), and only then asks WeChat. The
value is kept until `REFRESH_MARGIN` seconds before WeChat's expiry, so it is renewed ahead
of time. A call refused for an invalid or expired token refreshes once (`refresh(stale=…)`),
unless another process has already replaced that token. The JS-API ticket (which signs the H5
pages' wx.config) is kept the same way, under its own key and lock.

https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/getStableAccessToken.html
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager

import requests
from flask import current_app
from redis.exceptions import LockError

from .. import store
from ..errors import UpstreamError

log = logging.getLogger(__name__)

#: Seconds before WeChat's expiry at which the cached value is dropped and fetched anew.
REFRESH_MARGIN = 600
LOCK_SECONDS = 15
ACCESS_TOKEN = "access_token"
JSAPI_TICKET = "jsapi_ticket"
_thread_locks: dict[str, threading.Lock] = {}


def _cache_key(kind: str) -> str:
    return store.key("wechat", current_app.config["WECHAT_APPID"], kind)


def cached(kind: str) -> str | None:
    """The value of `kind` in Redis, if one is kept."""
    value = store.client().get(_cache_key(kind))
    return value.decode() if value else None


def get(kind: str, fetch) -> str:
    """The shared value of `kind`, fetched with `fetch(force)` by one process when missing."""
    return cached(kind) or refresh(kind, fetch, stale=None)


def refresh(kind: str, fetch, stale: str | None) -> str:
    """Fetch a new value under the lock, unless the cache already holds one other than `stale`.

    `fetch(force)` returns `(value, expires_in)`; `force` is true when replacing a value that
    WeChat refused.
    """
    try:
        with _lock(kind):
            current = cached(kind)
            if current and current != stale:
                return current
            value, expires_in = fetch(stale is not None)
            ttl = max(int(expires_in) - REFRESH_MARGIN, 60)
            store.client().set(_cache_key(kind), value, ex=ttl)
            log.info("wechat %s fetched (kept %d s, replacing a refused one: %s)",
                     kind, ttl, stale is not None)
            return value
    except LockError as exc:
        raise UpstreamError(code="wechat_token_unavailable") from exc


def _lock(kind: str):
    name = _cache_key(kind) + ":lock"
    if store.in_process():
        # The in-process store cannot run the Lua scripts redis-py's lock needs; with one
        # process there is nobody to coordinate with but its own threads.
        return _thread_lock(_thread_locks.setdefault(name, threading.Lock()))
    return store.client().lock(name, timeout=LOCK_SECONDS, blocking_timeout=LOCK_SECONDS)


@contextmanager
def _thread_lock(lock: threading.Lock):
    if not lock.acquire(timeout=LOCK_SECONDS):
        raise LockError("timed out waiting for the token lock")
    try:
        yield
    finally:
        lock.release()


def fetch_access_token(force: bool) -> tuple[str, int]:
    """POST cgi-bin/stable_token.

    https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/getStableAccessToken.html
    """
    config = current_app.config
    try:
        response = requests.post(
            config["WECHAT_API_BASE"] + "cgi-bin/stable_token",
            json={"grant_type": "client_credential", "appid": config["WECHAT_APPID"],
                  "secret": config["WECHAT_SECRET"], "force_refresh": force},
            timeout=5)
        result = response.json()
    except (requests.RequestException, ValueError) as exc:
        log.warning("wechat stable_token failed: %s", type(exc).__name__)
        raise UpstreamError(code="wechat_token_unavailable") from exc
    if result.get("errcode"):
        log.error("wechat stable_token refused: errcode=%s errmsg=%s",
                  result.get("errcode"), result.get("errmsg"))
        raise UpstreamError(code="wechat_token_refused")
    return result["access_token"], int(result.get("expires_in", 7200))


def access_token() -> str:
    """The account's access token, shared by every process."""
    return get(ACCESS_TOKEN, fetch_access_token)


def fetch_jsapi_ticket(force: bool) -> tuple[str, int]:
    """GET cgi-bin/ticket/getticket?type=jsapi, with the shared access token.

    https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/JS-SDK.html
    """
    from .client import client  # the client takes its token from this module

    result = client().get("ticket/getticket", params={"type": "jsapi"})
    return result["ticket"], int(result.get("expires_in", 7200))


def jsapi_ticket() -> str:
    """The account's JS-API ticket, shared by every process."""
    return get(JSAPI_TICKET, fetch_jsapi_ticket)
