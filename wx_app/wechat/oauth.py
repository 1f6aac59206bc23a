"""Web-page authorization (网页授权) with snsapi_base: who is this WeChat user (their openid)?

The browser goes to WeChat's authorize URL with a `state` and comes back to
/h5/oauth/callback with a `code`, which the server exchanges once for the openid. The `state`
is random, kept in Redis for a few minutes and in the browser's session, and taken (deleted)
by the callback, so it can be used once, only by the browser it was made for.

https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html
"""

from __future__ import annotations

import logging
import secrets

import requests
from flask import current_app
from wechatpy.exceptions import WeChatOAuthException
from wechatpy.oauth import WeChatOAuth

from .. import store
from ..errors import UpstreamError

log = logging.getLogger(__name__)

SCOPE = "snsapi_base"
#: Seconds between sending the browser to WeChat and its return with the code.
STATE_TTL = 300
CALLBACK_PATH = "/h5/oauth/callback"
HTTP_TIMEOUT = 5


class OAuthFailed(UpstreamError):
    """The code could not be exchanged: invalid, used, expired, or WeChat did not answer."""

    code = "oauth_failed"
    message = "微信授权未成功，请重新进入。"

    def __init__(self, message: str | None = None, *, errcode: int | None = None,
                 http_status: int = 400):
        super().__init__(message)
        self.errcode = errcode
        self.http_status = http_status


class _OAuthClient(WeChatOAuth):
    """wechatpy's client pointed at WECHAT_API_BASE / WECHAT_OPEN_BASE, with a timeout."""

    def __init__(self, redirect_uri: str = "", state: str = ""):
        config = current_app.config
        super().__init__(config["WECHAT_APPID"], config["WECHAT_SECRET"], redirect_uri,
                         scope=SCOPE, state=state)
        self.API_BASE_URL = config["WECHAT_API_BASE"]
        self.OAUTH_BASE_URL = config["WECHAT_OPEN_BASE"] + "connect/"

    def _request(self, method, url_or_endpoint, **kwargs):
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        return super()._request(method, url_or_endpoint, **kwargs)


def _state_key(state: str) -> str:
    return store.key("oauth", "state", state)


def new_state(next_path: str) -> str:
    """A fresh single-use state that remembers where the browser is going, for STATE_TTL s."""
    state = secrets.token_urlsafe(24)
    store.client().set(_state_key(state), next_path, ex=STATE_TTL)
    return state


def take_state(state: str) -> str | None:
    """The page the state was made for, once; None when it is unknown, used or expired."""
    if not state or len(state) > 64:
        return None
    stored = store.client().getdel(_state_key(state))
    return stored.decode() if stored is not None else None


def callback_url() -> str:
    return str(current_app.config["PUBLIC_BASE_URL"]).rstrip("/") + CALLBACK_PATH


def authorize_url(state: str) -> str:
    """WeChat's authorize page for snsapi_base, returning to /h5/oauth/callback."""
    return _OAuthClient(callback_url(), state).authorize_url


def openid_for_code(code: str) -> str:
    """Exchange an authorization code for the user's openid (sns/oauth2/access_token).

    https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html
    """
    if not code or len(code) > 256:
        raise OAuthFailed(errcode=None)
    try:
        answer = _OAuthClient().fetch_access_token(code)
    except WeChatOAuthException as exc:
        log.info("oauth code refused by wechat: errcode %s", exc.errcode)
        if exc.errcode is None:
            raise OAuthFailed(errcode=None, http_status=502) from exc
        raise OAuthFailed(errcode=exc.errcode) from exc
    except (requests.RequestException, ValueError) as exc:
        log.warning("oauth code exchange failed: %s", type(exc).__name__)
        raise OAuthFailed("暂时无法连接微信，请稍后重新进入。", http_status=502) from exc
    return answer["openid"]
