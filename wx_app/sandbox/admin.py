"""The sandbox's own pages (/sandbox/…) and JSON API (/sandbox/api/…), for people and tests.

None of this exists at WeChat; it is how a developer or a test sees and steers the sandbox.
JSON errors have the shape {"code": …, "message": …}.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from markupsafe import escape

from . import state
from .oauth import NICKNAME_MAX, AuthorizeRefused, consent, parse_authorize_request

log = logging.getLogger(__name__)

bp = Blueprint("sandbox_admin", __name__, url_prefix="/sandbox")

AVATAR_COLOURS = ("#07c160", "#10aeff", "#fa9d3b", "#fa5151", "#576b95", "#6467f0")


def _refusal(code: str, message: str, status: int = 400):
    return jsonify({"code": code, "message": message}), status


def _json_body() -> dict:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


# --- pages ---------------------------------------------------------------------------------

@bp.get("/")
def index():
    """What the sandbox offers, its users, and the counters."""
    return render_template("index.html", users=state.current().list_users(),
                           stats=state.current().stats(), settings=current_app.config,
                           nickname_max=NICKNAME_MAX)


@bp.post("/users")
def create_user_form():
    """The index page's form: add a WeChat user."""
    nickname = (request.form.get("nickname") or "").strip()
    if nickname and len(nickname) <= NICKNAME_MAX:
        state.current().add_user(nickname, request.form.get("subscribed") == "1")
    return redirect(url_for(".index") + "#users")


@bp.post("/tokens/expire")
def expire_tokens_form():
    """The index page's button: every access token issued so far now reads as expired."""
    state.current().expire_tokens()
    return redirect(url_for(".index"))


@bp.get("/avatars/<openid>.svg")
def avatar(openid: str):
    """A user's head image (headimgurl): the first character of the nickname on a colour."""
    user = state.current().user(openid)
    if user is None:
        return Response("", status=404)
    colour = AVATAR_COLOURS[hashlib.sha256(openid.encode()).digest()[0] % len(AVATAR_COLOURS)]
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="132" height="132" '
        'viewBox="0 0 132 132">'
        f'<rect width="132" height="132" rx="12" fill="{colour}"/>'
        '<text x="66" y="66" dy="0.35em" text-anchor="middle" font-size="64" '
        f'font-family="sans-serif" fill="#fff">{escape(user.nickname[:1])}</text></svg>')
    return Response(svg, content_type="image/svg+xml; charset=utf-8",
                    headers={"Cache-Control": "max-age=3600"})


# --- JSON API ------------------------------------------------------------------------------

@bp.get("/api/health")
def health():
    """Liveness: the sandbox answers."""
    return jsonify({"ok": True})


@bp.get("/api/stats")
def stats():
    """Counters: token_fetches, oauth_consents, oauth_code_exchanges, and calls per endpoint."""
    return jsonify(state.current().stats())


@bp.post("/api/stats/reset")
def reset_stats():
    """Zero every counter; answers the zeroed counters."""
    state.current().reset_stats()
    return jsonify(state.current().stats())


@bp.get("/api/users")
def list_users():
    """Every sandbox user, as the authorize page lists them."""
    return jsonify({"users": [user.to_dict() for user in state.current().list_users()]})


@bp.post("/api/users")
def create_user():
    """Add a WeChat user: {"nickname": …, "subscribed": true}."""
    body = _json_body()
    nickname = str(body.get("nickname") or "").strip()
    if not nickname or len(nickname) > NICKNAME_MAX:
        return _refusal("invalid_nickname", f"nickname must be 1 to {NICKNAME_MAX} characters")

    user = state.current().add_user(nickname, bool(body.get("subscribed", True)))
    return jsonify(user.to_dict()), 201


@bp.post("/api/tokens/expire")
def expire_tokens():
    """Every access token issued so far (cgi-bin and sns) now answers 42001."""
    expired = state.current().expire_tokens()
    log.info("expired %d access tokens on request", expired)
    return jsonify({"expired": expired})


@bp.post("/api/tokens/refuse")
def refuse_tokens():
    """The next {"count": n} access-token checks answer 42001, however valid the token."""
    count = _count(_json_body().get("count", 0))
    if count is None:
        return _refusal("invalid_count", "count must be a whole number from 0 to 100")
    return jsonify({"refusing_next": state.current().set_token_refusals(count)})


@bp.get("/api/menu")
def current_menu():
    """The custom menu as menu/get would answer it, or null: what the app last pushed."""
    return jsonify({"menu": state.current().current_menu()})


@bp.get("/api/qrcodes")
def qr_tickets():
    """Every QR ticket issued: ticket, action_name, scene, url, expires_at (null: permanent)."""
    return jsonify({"tickets": [ticket.to_dict() for ticket in state.current().list_qr_tickets()]})


@bp.get("/api/templates")
def sent_templates():
    """The template messages accepted, oldest first, each with the text the user reads."""
    sandbox = state.current()
    return jsonify({"sent": [message.to_dict() for message in sandbox.sent_templates()],
                    "failing_next": sandbox.template_failures})


@bp.post("/api/templates/fail")
def fail_templates():
    """The next {"count": n} template sends fail with {"errcode": e} (default -1, busy)."""
    body = _json_body()
    count = _count(body.get("count", 1))
    try:
        errcode = int(body.get("errcode", -1))
    except (TypeError, ValueError):
        errcode = None
    if count is None or errcode is None or errcode == 0:
        return _refusal("invalid_failure",
                        "count must be a whole number from 0 to 100, errcode a non-zero number")
    return jsonify({"failing_next": state.current().set_template_failures(count, errcode)})


@bp.get("/api/jsapi-tickets")
def jsapi_tickets():
    """The JS-API tickets that are still valid, newest last."""
    return jsonify({"tickets": state.current().valid_jsapi_tickets()})


@bp.post("/api/jssdk/verify")
def verify_jssdk_config():
    """Check wx.config as WeChat does: {appId, timestamp, nonceStr, signature, url}.

    The page URL is taken without its fragment, as the JS-SDK sends it; its host must be the
    JS-API safe domain (JS接口安全域名), which is the host of PUBLIC_BASE_URL.
    https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/JS-SDK.html
    """
    body = _json_body()
    url = str(body.get("url") or "").split("#", 1)[0]
    if body.get("appId") != current_app.config["WECHAT_APPID"]:
        return jsonify({"ok": False, "errMsg": "config:invalid appid"})
    safe_domain = urlsplit(current_app.config["PUBLIC_BASE_URL"]).hostname
    if urlsplit(url).hostname != safe_domain:
        return jsonify({"ok": False, "errMsg": "config:invalid url domain"})

    for ticket in state.current().valid_jsapi_tickets():
        plain = (f"jsapi_ticket={ticket}&noncestr={body.get('nonceStr')}"
                 f"&timestamp={body.get('timestamp')}&url={url}")
        expected = hashlib.sha1(plain.encode()).hexdigest()
        if hmac.compare_digest(expected, str(body.get("signature") or "")):
            return jsonify({"ok": True, "errMsg": "config:ok"})
    return jsonify({"ok": False, "errMsg": "config:invalid signature"})


def _count(value) -> int | None:
    try:
        count = int(value)
    except (TypeError, ValueError):
        return None
    return count if 0 <= count <= 100 else None


@bp.post("/api/oauth/consent")
def oauth_consent():
    """The consent page without the page: {openid, redirect_uri, state, scope} → location."""
    body = _json_body()
    params = {"appid": current_app.config["WECHAT_APPID"], "response_type": "code",
              "scope": "snsapi_base", **{key: str(value) for key, value in body.items()}}
    try:
        authorize_request = parse_authorize_request(params)
    except AuthorizeRefused as refused:
        return _refusal("authorize_refused", refused.message)
    if state.current().user(params.get("openid", "")) is None:
        return _refusal("unknown_openid", "no sandbox user has this openid", 404)

    location = consent(authorize_request, params["openid"])
    return jsonify({"location": location})


@bp.post("/api/clock")
def advance_clock():
    """Move the sandbox's clock forward: {"advance_seconds": 301} expires every code."""
    try:
        seconds = float(_json_body().get("advance_seconds", 0))
    except (TypeError, ValueError):
        return _refusal("invalid_seconds", "advance_seconds must be a number")
    if seconds < 0:
        return _refusal("invalid_seconds", "the clock only moves forward")
    return jsonify({"offset_seconds": state.current().advance_clock(seconds)})
