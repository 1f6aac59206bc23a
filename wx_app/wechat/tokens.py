"""The access token and the JS-API ticket, shared by every process through Redis.

WeChat allows a limited number of token fetches a day, and a fetch invalidates nothing when
made through `stable_token`, but many processes fetching at once still waste the quota and
race each other. So the value lives in Redis; a process that finds it missing takes a Redis
lock, looks again (another process may have just fetched it), and only then asks WeChat. The
value is kept until `REFRESH_MARGIN` seconds before WeChat's expiry, so it is renewed ahead
of time. A call refused for an invalid or expired token refreshes once (`refresh(stale=…)`),
unless another process has already replaced that token.

https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/getStableAccessToken.html
"""

from __future__ import annotations

import logging

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


def _cache_key(kind: str) -> str:
    return store.key("wechat", current_app.config["WECHAT_APPID"], kind)


def cached(kind: str) -> str | None:
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
    lock = store.client().lock(_cache_key(kind) + ":lock", timeout=LOCK_SECONDS,
                               blocking_timeout=LOCK_SECONDS)
    try:
        with lock:
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
