"""wechatpy's official-account client, pointed at WECHAT_API_BASE and using shared tokens.

Every call to WeChat's official-account API goes through `client()`. wechatpy errors stay
inside this package: callers see `WeChatAPIError` (WeChat answered with an errcode, kept on
the exception) or `UpstreamError` with code `wechat_unreachable` (no usable answer). Because
errors are translated here, call endpoints with `client().get(…)` / `client().post(…)` rather
than through wechatpy helpers that catch wechatpy's own exception.
"""

from __future__ import annotations

import logging

import requests
from flask import current_app
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

from ..errors import UpstreamError
from . import tokens

log = logging.getLogger(__name__)

EXTENSION = "wx_wechat_client"
#: errcodes meaning the access token we sent is no longer good.
TOKEN_ERRCODES = {40001, 40014, 42001}


class WeChatAPIError(UpstreamError):
    """WeChat answered a call with a non-zero errcode."""

    code = "wechat_refused"

    def __init__(self, errcode: int, errmsg: str):
        super().__init__()
        self.errcode = errcode
        self.errmsg = errmsg

    def __str__(self) -> str:
        return f"WeChat errcode {self.errcode}: {self.errmsg}"


class OfficialAccountClient(WeChatClient):
    """WeChatClient whose token comes from Redis and which retries once on a refused token."""

    def __init__(self, appid: str, secret: str, api_base: str):
        super().__init__(appid, secret, timeout=5, auto_retry=False)
        self.API_BASE_URL = api_base + "cgi-bin/"

    @property
    def access_token(self) -> str:
        return tokens.access_token()

    def fetch_access_token(self):
        return tokens.refresh(tokens.ACCESS_TOKEN, tokens.fetch_access_token, stale=None)

    def _request(self, method, url_or_endpoint, **kwargs):
        params = kwargs.setdefault("params", {})
        try:
            return self._translated(method, url_or_endpoint, kwargs)
        except WeChatAPIError as exc:
            if exc.errcode not in TOKEN_ERRCODES:
                raise
            refused = params.pop("access_token", None)
            log.info("wechat refused the access token (errcode %s); refreshing once",
                     exc.errcode)
        # One retry only: a token refused again right after a refresh is a real refusal.
        tokens.refresh(tokens.ACCESS_TOKEN, tokens.fetch_access_token, stale=refused)
        return self._translated(method, url_or_endpoint, kwargs)

    def _translated(self, method, url_or_endpoint, kwargs: dict):
        """wechatpy's request, with its exceptions turned into ours."""
        endpoint = url_or_endpoint.rsplit("/cgi-bin/", 1)[-1]
        try:
            return super()._request(method, url_or_endpoint, **kwargs)
        except WeChatClientException as exc:
            if exc.errcode is None:  # an HTTP error status, not a WeChat answer
                log.warning("wechat %s answered HTTP %s", endpoint,
                            getattr(exc.response, "status_code", "?"))
                raise UpstreamError(code="wechat_unreachable") from exc
            log.info("wechat %s refused: errcode=%s errmsg=%s", endpoint, exc.errcode,
                     exc.errmsg)
            raise WeChatAPIError(int(exc.errcode), str(exc.errmsg)) from exc
        except requests.RequestException as exc:
            log.warning("wechat %s unreachable: %s", endpoint, type(exc).__name__)
            raise UpstreamError(code="wechat_unreachable") from exc


def client() -> OfficialAccountClient:
    """The app's client (one per app; requests' session is safe to share between threads)."""
    app = current_app._get_current_object()
    if EXTENSION not in app.extensions:
        config = app.config
        app.extensions[EXTENSION] = OfficialAccountClient(
            config["WECHAT_APPID"], config["WECHAT_SECRET"], config["WECHAT_API_BASE"])
    return app.extensions[EXTENSION]
