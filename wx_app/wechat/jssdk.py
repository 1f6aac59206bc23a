"""wx.config parameters for the H5 pages, signed with the shared JS-API ticket.

The JS-SDK checks the signature against the page's own URL without its fragment, so the page
sends `location.href.split('#')[0]` and we sign exactly that text. Only pages of this site
(PUBLIC_BASE_URL's origin) are signed: the ticket is the account's, and a signature for any
other URL would lend it to someone else's page.

https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/JS-SDK.html (附录1 签名算法)
"""

from __future__ import annotations

import hashlib
import secrets
import time
from urllib.parse import urlsplit

from flask import current_app

from ..errors import InvalidInput
from . import tokens

#: The JS-SDK interfaces the H5 pages use.
JS_API_LIST = ("updateAppMessageShareData", "updateTimelineShareData", "hideMenuItems",
               "closeWindow")
URL_MAX_LENGTH = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}


class PageUrlRefused(InvalidInput):
    """The URL to sign is missing, malformed, or not a page of this site."""

    code = "jssdk_url_refused"
    message = "只能为本站的页面生成微信 JS-SDK 签名。"


def _origin(url: str) -> tuple[str, str, int] | None:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:
        return None
    if scheme not in DEFAULT_PORTS or not parts.hostname or parts.username is not None:
        return None
    return scheme, parts.hostname.lower(), port


def page_url(raw: str | None) -> str:
    """The text to sign: `raw` without its fragment, if it is a page on PUBLIC_BASE_URL."""
    if not raw:
        raise PageUrlRefused("缺少页面地址 url。", code="jssdk_url_missing")
    if len(raw) > URL_MAX_LENGTH or any(ord(character) <= 0x20 or ord(character) == 0x7F
                                        for character in raw):
        raise PageUrlRefused("页面地址 url 格式有误。", code="jssdk_url_invalid")
    url = raw.split("#", 1)[0]
    origin = _origin(url)
    if origin is None:
        raise PageUrlRefused("页面地址 url 格式有误。", code="jssdk_url_invalid")
    if origin != _origin(current_app.config["PUBLIC_BASE_URL"]):
        raise PageUrlRefused(code="jssdk_url_foreign")
    return url


def signature(jsapi_ticket: str, nonce_str: str, timestamp: int, url: str) -> str:
    """sha1 of `jsapi_ticket=…&noncestr=…&timestamp=…&url=…`, the fields in this order."""
    plain = f"jsapi_ticket={jsapi_ticket}&noncestr={nonce_str}&timestamp={timestamp}&url={url}"
    return hashlib.sha1(plain.encode("utf-8")).hexdigest()


def config_for(raw_url: str | None) -> dict:
    """wx.config's parameters for the page at `raw_url` (refused unless it is ours)."""
    url = page_url(raw_url)
    timestamp = int(time.time())
    nonce_str = secrets.token_hex(8)

    return {
        "appId": current_app.config["WECHAT_APPID"],
        "timestamp": timestamp,
        "nonceStr": nonce_str,
        "signature": signature(tokens.jsapi_ticket(), nonce_str, timestamp, url),
        "jsApiList": list(JS_API_LIST),
    }
