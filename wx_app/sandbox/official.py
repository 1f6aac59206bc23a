"""api.weixin.qq.com/cgi-bin: the official account's access tokens and user information.

Later endpoints (menu, QR tickets, template messages, JS-API ticket) call `require_token()`
first, as WeChat checks the access token before anything else.
"""

from __future__ import annotations

import hmac
import logging
import re

from flask import Blueprint, current_app, request

from . import errcodes, state
from .errcodes import WeChatError
from .responses import wechat_json

log = logging.getLogger(__name__)

bp = Blueprint("sandbox_official", __name__)

API = "/api.weixin.qq.com"
#: An AppSecret is 32 hexadecimal digits; anything else is refused as malformed (40125).
SECRET_SHAPE = re.compile(r"[0-9a-f]{32}")


def check_app_credentials(appid: str | None, secret: str | None) -> None:
    """Refuse an unknown AppID or a wrong AppSecret with WeChat's errcodes.

    https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/Get_access_token.html
    """
    if not appid:
        raise WeChatError(errcodes.APPID_MISSING)
    if appid != current_app.config["WECHAT_APPID"]:
        raise WeChatError(errcodes.INVALID_APPID)
    if not secret:
        raise WeChatError(errcodes.APPSECRET_MISSING)
    if not SECRET_SHAPE.fullmatch(secret):
        raise WeChatError(errcodes.INVALID_APPSECRET)
    if not hmac.compare_digest(secret, current_app.config["WECHAT_SECRET"]):
        raise WeChatError(errcodes.INVALID_CREDENTIAL)


def require_token(kinds: tuple[str, ...] = (state.BASIC, state.STABLE)) -> state.AccessToken:
    """The valid access token of this request's `access_token` parameter, or WeChat's refusal.

    Missing gives 41001, unknown or replaced 40001, expired 42001.
    https://developers.weixin.qq.com/doc/offiaccount/Getting_Started/Global_Return_Code.html
    """
    value = request.args.get("access_token", "")
    if not value:
        raise WeChatError(errcodes.ACCESS_TOKEN_MISSING)
    return state.current().check_token(value, kinds)


@bp.get(f"{API}/cgi-bin/token")
def token():
    """GET cgi-bin/token: a new access token on every call.

    https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/Get_access_token.html
    """
    if request.args.get("grant_type") != "client_credential":
        raise WeChatError(errcodes.INVALID_GRANT_TYPE)
    check_app_credentials(request.args.get("appid"), request.args.get("secret"))

    issued = state.current().issue_access_token(request.args["appid"])
    log.info("issued an access token (cgi-bin/token)")
    return wechat_json({"access_token": issued.value, "expires_in": state.TOKEN_TTL})


@bp.route(f"{API}/cgi-bin/stable_token", methods=["GET", "POST"])
def stable_token():
    """POST cgi-bin/stable_token (JSON): the same token while valid, unless force_refresh.

    https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/getStableAccessToken.html
    """
    if request.method != "POST":
        raise WeChatError(errcodes.REQUIRE_POST)
    if not request.get_data():
        raise WeChatError(errcodes.EMPTY_POST_DATA)
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise WeChatError(errcodes.DATA_FORMAT_ERROR)
    if body.get("grant_type") != "client_credential":
        raise WeChatError(errcodes.INVALID_GRANT_TYPE)
    check_app_credentials(body.get("appid"), body.get("secret"))

    force_refresh = body.get("force_refresh") is True
    issued = state.current().issue_stable_token(body["appid"], force_refresh)
    remaining = int(issued.expires_at - state.current().now())
    log.info("answered a stable access token (force_refresh=%s)", force_refresh)
    return wechat_json({"access_token": issued.value, "expires_in": remaining})


@bp.get(f"{API}/cgi-bin/user/info")
def user_info():
    """GET cgi-bin/user/info: whether a user follows the account, and since when.

    As WeChat has done since late 2021, the answer carries no nickname, avatar, sex or
    region; those come only from sns/userinfo after the user consents (snsapi_userinfo).
    https://developers.weixin.qq.com/doc/offiaccount/User_Management/Get_users_basic_information_UnionID.html
    """
    require_token()
    openid = request.args.get("openid", "")
    if not openid:
        raise WeChatError(errcodes.OPENID_MISSING)
    user = state.current().user(openid)
    if user is None:
        raise WeChatError(errcodes.INVALID_OPENID)

    if not user.subscribed:
        return wechat_json({"subscribe": 0, "openid": user.openid, "unionid": user.unionid})
    return wechat_json({
        "subscribe": 1,
        "openid": user.openid,
        "language": user.language,
        "subscribe_time": user.subscribe_time,
        "unionid": user.unionid,
        "remark": "",
        "groupid": 0,
        "tagid_list": [],
        "subscribe_scene": "ADD_SCENE_QR_CODE",
        "qr_scene": 0,
        "qr_scene_str": "",
    })
