"""Web-page authorization (网页授权): the consent page and the sns endpoints behind it.

On open.weixin.qq.com the authorize page lets a person play the WeChat user: pick which
sandbox user consents (or create one), and be sent back to `redirect_uri?code=…&state=…`.
On api.weixin.qq.com/sns the app exchanges the code and reads the user's profile.

https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from flask import Blueprint, current_app, redirect, render_template, request, url_for

from . import errcodes, state
from .errcodes import WeChatError
from .official import API, check_app_credentials
from .responses import wechat_json

log = logging.getLogger(__name__)

bp = Blueprint("sandbox_oauth", __name__)

OPEN = "/open.weixin.qq.com"
SCOPES = ("snsapi_base", "snsapi_userinfo")
NICKNAME_MAX = 32


@dataclass(frozen=True)
class AuthorizeRequest:
    appid: str
    redirect_uri: str
    scope: str
    state: str


class AuthorizeRefused(Exception):
    """The authorize page cannot go on; WeChat shows `message` (and `errcode`) instead."""

    def __init__(self, message: str, errcode: int | None = None):
        super().__init__(message)
        self.message = message
        self.errcode = errcode


def parse_authorize_request(params) -> AuthorizeRequest:
    """Check the authorize parameters as WeChat's page does, refusing with its page errcodes.

    https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html
    """
    appid = (params.get("appid") or "").strip()
    redirect_uri = (params.get("redirect_uri") or "").strip()
    scope = (params.get("scope") or "").strip()
    if not appid:
        raise AuthorizeRefused("appid 不能为空", 10012)
    if appid != current_app.config["WECHAT_APPID"]:
        raise AuthorizeRefused(f"appid 参数错误：{appid} 不是本沙箱公众号的 AppID"
                               f"（应为 {current_app.config['WECHAT_APPID']}）")
    if not redirect_uri:
        raise AuthorizeRefused("redirect_uri 不能为空", 10011)
    allowed_host = authorized_domain()
    parts = urlsplit(redirect_uri)
    if parts.scheme not in ("http", "https") or parts.hostname != allowed_host:
        raise AuthorizeRefused(f"redirect_uri 域名与后台配置不一致：网页授权域名为 "
                               f"{allowed_host}（取自 PUBLIC_BASE_URL）", 10003)
    if (params.get("response_type") or "code") != "code":
        raise AuthorizeRefused("response_type 参数错误，应为 code")
    if not scope:
        raise AuthorizeRefused("scope 不能为空", 10010)
    if scope not in SCOPES:
        raise AuthorizeRefused(f"此公众号并没有这些 scope 的权限：{scope}", 10005)
    return AuthorizeRequest(appid, redirect_uri, scope, params.get("state") or "")


def authorized_domain() -> str:
    """The host the account allows OAuth redirects to (网页授权域名): PUBLIC_BASE_URL's."""
    return urlsplit(str(current_app.config["PUBLIC_BASE_URL"])).hostname or ""


def consent(authorize: AuthorizeRequest, openid: str) -> str:
    """The user `openid` consents: the URL WeChat sends the browser to, with a fresh code."""
    code = state.current().issue_code(authorize.appid, openid, authorize.scope)
    log.info("user consented to %s; code issued", authorize.scope)
    return redirect_location(authorize.redirect_uri, {"code": code.value,
                                                      "state": authorize.state})


def redirect_location(redirect_uri: str, params: dict) -> str:
    """`redirect_uri` with `params` added to its query, as WeChat appends code and state."""
    parts = urlsplit(redirect_uri)
    query = "&".join(part for part in (parts.query, urlencode(params)) if part)
    return urlunsplit(parts._replace(query=query, fragment=""))


# --- open.weixin.qq.com --------------------------------------------------------------------

@bp.route(f"{OPEN}/connect/oauth2/authorize", methods=["GET", "POST"])
def authorize():
    """The consent page: choose (or create) the WeChat user who consents, or refuse.

    https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html
    """
    params = request.form if request.method == "POST" else request.args
    try:
        authorize_request = parse_authorize_request(params)
    except AuthorizeRefused as refused:
        log.info("authorize page refused: %s", refused.errcode or refused.message)
        return render_template("authorize_refused.html", refused=refused), 400
    if request.method == "GET":
        return _authorize_page(authorize_request)

    action = request.form.get("action", "allow")
    if action == "refuse":
        # WeChat sends a refusing user back with the state only, no code.
        return redirect(redirect_location(authorize_request.redirect_uri,
                                          {"state": authorize_request.state}))
    if action == "create":
        nickname = (request.form.get("nickname") or "").strip()
        if not nickname or len(nickname) > NICKNAME_MAX:
            return _authorize_page(authorize_request,
                                   error=f"请填写昵称（1 至 {NICKNAME_MAX} 个字）", status=400)
        user = state.current().add_user(nickname, request.form.get("subscribed") == "1")
        return redirect(consent(authorize_request, user.openid))
    user = state.current().user(request.form.get("openid", ""))
    if user is None:
        return _authorize_page(authorize_request, error="请选择一位微信用户", status=400)
    return redirect(consent(authorize_request, user.openid))


def _authorize_page(authorize_request: AuthorizeRequest, error: str | None = None,
                    status: int = 200):
    users = state.current().list_users()
    return render_template("authorize.html", authorize=authorize_request, users=users,
                           error=error, nickname_max=NICKNAME_MAX), status


# --- api.weixin.qq.com/sns -----------------------------------------------------------------

@bp.get(f"{API}/sns/oauth2/access_token")
def oauth_access_token():
    """GET sns/oauth2/access_token: exchange a code, once, within five minutes.

    https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html
    """
    args = request.args
    check_app_credentials(args.get("appid"), args.get("secret"))
    if args.get("grant_type") != "authorization_code":
        raise WeChatError(errcodes.INVALID_GRANT_TYPE)
    if not args.get("code"):
        raise WeChatError(errcodes.CODE_MISSING)

    token, refresh = state.current().redeem_code(args["appid"], args["code"])
    return wechat_json(_oauth_token_body(token, refresh))


@bp.get(f"{API}/sns/oauth2/refresh_token")
def oauth_refresh_token():
    """GET sns/oauth2/refresh_token: a new OAuth access token; the refresh token lasts 30 days.

    https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html
    """
    args = request.args
    if not args.get("appid"):
        raise WeChatError(errcodes.APPID_MISSING)
    if args["appid"] != current_app.config["WECHAT_APPID"]:
        raise WeChatError(errcodes.INVALID_APPID)
    if args.get("grant_type") != "refresh_token":
        raise WeChatError(errcodes.INVALID_GRANT_TYPE)

    token, refresh = state.current().refresh_oauth_token(args["appid"],
                                                         args.get("refresh_token", ""))
    return wechat_json(_oauth_token_body(token, refresh))


def _oauth_token_body(token: state.AccessToken, refresh: state.RefreshToken) -> dict:
    user = state.current().user(token.openid or "")
    body = {"access_token": token.value, "expires_in": state.TOKEN_TTL,
            "refresh_token": refresh.value, "openid": token.openid, "scope": token.scope}
    if user is not None:
        body["unionid"] = user.unionid
    return body


@bp.get(f"{API}/sns/auth")
def oauth_check_token():
    """GET sns/auth: whether an OAuth access token is valid for this openid.

    https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html
    """
    _oauth_token_for(request.args.get("openid", ""))
    return wechat_json({"errcode": 0, "errmsg": "ok"})


@bp.get(f"{API}/sns/userinfo")
def oauth_userinfo():
    """GET sns/userinfo: the consenting user's profile; only for the snsapi_userinfo scope.

    Sex and region are answered empty, as WeChat has done since late 2021.
    https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html
    """
    token = _oauth_token_for(request.args.get("openid", ""))
    if token.scope != "snsapi_userinfo":
        raise WeChatError(errcodes.API_UNAUTHORIZED)
    user = state.current().user(token.openid or "")
    if user is None:
        raise WeChatError(errcodes.INVALID_OPENID)

    return wechat_json({
        "openid": user.openid,
        "nickname": user.nickname,
        "sex": 0,
        "province": "",
        "city": "",
        "country": "",
        "headimgurl": url_for("sandbox_admin.avatar", openid=user.openid, _external=True),
        "privilege": [],
        "unionid": user.unionid,
    })


def _oauth_token_for(openid: str) -> state.AccessToken:
    value = request.args.get("access_token", "")
    if not value:
        raise WeChatError(errcodes.ACCESS_TOKEN_MISSING)
    token = state.current().check_token(value, (state.OAUTH,))
    if not openid or openid != token.openid:
        raise WeChatError(errcodes.INVALID_OPENID)
    return token
