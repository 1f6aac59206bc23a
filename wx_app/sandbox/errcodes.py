"""WeChat's global error codes, as the sandbox answers them, in one place.

https://developers.weixin.qq.com/doc/offiaccount/Getting_Started/Global_Return_Code.html
"""

from __future__ import annotations

import secrets
import time
from typing import NamedTuple


class ErrCode(NamedTuple):
    errcode: int
    errmsg: str


INVALID_CREDENTIAL = ErrCode(40001, "invalid credential, access_token is invalid or not latest")
INVALID_GRANT_TYPE = ErrCode(40002, "invalid grant_type")
INVALID_OPENID = ErrCode(40003, "invalid openid")
INVALID_APPID = ErrCode(40013, "invalid appid")
INVALID_CODE = ErrCode(40029, "invalid code")
INVALID_REFRESH_TOKEN = ErrCode(40030, "invalid refresh_token")
INVALID_APPSECRET = ErrCode(40125, "invalid appsecret")
CODE_BEEN_USED = ErrCode(40163, "code been used")
ACCESS_TOKEN_MISSING = ErrCode(41001, "access_token missing")
APPID_MISSING = ErrCode(41002, "appid missing")
APPSECRET_MISSING = ErrCode(41004, "appsecret missing")
CODE_MISSING = ErrCode(41008, "missing code")
OPENID_MISSING = ErrCode(41009, "missing openid")
ACCESS_TOKEN_EXPIRED = ErrCode(42001, "access_token expired")
REFRESH_TOKEN_EXPIRED = ErrCode(42002, "refresh_token expired")
REQUIRE_POST = ErrCode(43002, "require POST method")
EMPTY_POST_DATA = ErrCode(44002, "empty post data")
DATA_FORMAT_ERROR = ErrCode(47001, "data format error")
INVALID_URL = ErrCode(40066, "invalid url")
API_UNAUTHORIZED = ErrCode(48001, "api unauthorized")
# Menus, QR tickets, template messages and the JS-API ticket.
SYSTEM_ERROR = ErrCode(-1, "system error")
INVALID_BUTTON_SIZE = ErrCode(40016, "invalid button size")
INVALID_BUTTON_TYPE = ErrCode(40017, "invalid button type")
INVALID_BUTTON_NAME_SIZE = ErrCode(40018, "invalid button name size")
INVALID_BUTTON_KEY_SIZE = ErrCode(40019, "invalid button key size")
INVALID_BUTTON_URL_SIZE = ErrCode(40020, "invalid button url size")
INVALID_SUB_MENU_LEVEL = ErrCode(40022, "invalid sub_menu level")
INVALID_SUB_BUTTON_SIZE = ErrCode(40023, "invalid sub button size")
INVALID_SUB_BUTTON_TYPE = ErrCode(40024, "invalid sub button type")
INVALID_SUB_BUTTON_NAME_SIZE = ErrCode(40025, "invalid sub button name size")
INVALID_SUB_BUTTON_KEY_SIZE = ErrCode(40026, "invalid sub button key size")
INVALID_SUB_BUTTON_URL_SIZE = ErrCode(40027, "invalid sub button url size")
INVALID_TEMPLATE_ID = ErrCode(40037, "invalid template_id")
INVALID_SUB_BUTTON_URL_DOMAIN = ErrCode(40054, "invalid sub button url domain")
INVALID_BUTTON_URL_DOMAIN = ErrCode(40055, "invalid button url domain")
INVALID_ARGS = ErrCode(40097, "invalid args")
REQUIRE_SUBSCRIBE = ErrCode(43004, "require subscribe")
MENU_NO_EXIST = ErrCode(46003, "menu no exist")
ARGUMENT_INVALID = ErrCode(47003, "argument invalid!")


class WeChatError(Exception):
    """A refusal WeChat answers as HTTP 200 with `errcode` and `errmsg`."""

    def __init__(self, error: ErrCode, detail: str = ""):
        super().__init__(f"{error.errcode} {error.errmsg}")
        self.error = error
        self.detail = detail

    def to_body(self) -> dict:
        """The JSON body, with the `rid` (request id) WeChat appends to every errmsg."""
        detail = f" ({self.detail})" if self.detail else ""
        return {"errcode": self.error.errcode,
                "errmsg": f"{self.error.errmsg}{detail}, rid: {request_id()}"}


def request_id() -> str:
    """An id shaped like WeChat's `rid` (three groups of eight hex digits)."""
    return f"{int(time.time()):08x}-{secrets.token_hex(4)}-{secrets.token_hex(4)}"
