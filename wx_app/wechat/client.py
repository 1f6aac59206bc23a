"""wechatpy's official-account client, pointed at WECHAT_API_BASE and using shared tokens.

Every call to WeChat's official-account API goes through `client()`. wechatpy errors stay
inside this package: callers see `UpstreamError` with a stable code.
"""

from __future__ import annotations

import logging

from flask import current_app
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

from . import tokens

log = logging.getLogger(__name__)

EXTENSION = "wx_wechat_client"
#: errcodes meaning the access token we sent is no longer good.
TOKEN_ERRCODES = {40001, 40014, 42001}


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
            return super()._request(method, url_or_endpoint, **kwargs)
        except WeChatClientException as exc:
            if exc.errcode not in TOKEN_ERRCODES:
                raise
            refused = params.pop("access_token", None)
            log.info("wechat refused the access token (errcode %s); refreshing once",
                     exc.errcode)
            tokens.refresh(tokens.ACCESS_TOKEN, tokens.fetch_access_token, stale=refused)
            return super()._request(method, url_or_endpoint, **kwargs)


def client() -> OfficialAccountClient:
    """The app's client (one per app; requests' session is safe to share between threads)."""
    app = current_app._get_current_object()
    if EXTENSION not in app.extensions:
        config = app.config
        app.extensions[EXTENSION] = OfficialAccountClient(
            config["WECHAT_APPID"], config["WECHAT_SECRET"], config["WECHAT_API_BASE"])
    return app.extensions[EXTENSION]
