"""Logging in: WeChat OAuth, 登录, 注册, 忘记密码, changing the password, logging out."""

from __future__ import annotations

import hmac
import logging

import sqlalchemy as sa
from flask import Blueprint, flash, jsonify, redirect, render_template, request, session, url_for

from .. import accounts, sessions
from ..errors import DomainError, InvalidInput, TooManyRequests
from ..extensions import db
from ..models import District, Trainee
from ..sessions import current_trainee, login_required, safe_next
from ..wechat import oauth

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__, url_prefix="/h5")

#: Session key of the OAuth state this browser is waiting for.
PENDING_STATE = "oauth_state"


def _client_ip() -> str:
    return request.remote_addr or "unknown"


def _next_from(source) -> str:
    return safe_next(source.get("next"))


def _finish_login(trainee: Trainee, next_path: str):
    """Bind the WeChat user of this browser (if OAuth named one), commit, start the session."""
    openid = sessions.session_openid()
    if openid:
        accounts.bind_openid(trainee, openid)
    db.session.commit()

    sessions.log_in(trainee)
    if trainee.must_change_password:
        return redirect(url_for("auth.change_password", next=next_path))
    return redirect(next_path)


# --- WeChat OAuth (网页授权) -----------------------------------------------------------------

@bp.get("/oauth/start")
def oauth_start():
    """Send the browser to WeChat's authorize page (snsapi_base), remembering where it goes."""
    next_path = _next_from(request.args)
    state = oauth.new_state(next_path)
    session[PENDING_STATE] = state
    return redirect(oauth.authorize_url(state))


@bp.get("/oauth/callback")
def oauth_callback():
    """WeChat's return: a bound openid logs its trainee in; any other goes to 登录."""
    sent_state = request.args.get("state", "")
    pending = session.pop(PENDING_STATE, None)
    if not pending or not hmac.compare_digest(sent_state.encode(), pending.encode()):
        return _oauth_failed("这个授权链接不是为当前页面发起的，或已经使用过。请重新进入。")
    next_path = oauth.take_state(sent_state)
    if next_path is None:
        return _oauth_failed("授权等待时间过长，已失效。请重新进入。")
    next_path = safe_next(next_path)

    try:
        openid = oauth.openid_for_code(request.args.get("code", ""))
    except oauth.OAuthFailed as exc:
        return _oauth_failed(exc.message, next_path, status=exc.http_status)

    sessions.remember_openid(openid)
    trainee = accounts.trainee_for_openid(openid)
    if trainee is None:
        return redirect(url_for("auth.login", next=next_path))
    sessions.log_in(trainee)
    log.info("trainee %s logged in through wechat", trainee.id)
    if trainee.must_change_password:
        return redirect(url_for("auth.change_password", next=next_path))
    return redirect(next_path)


def _oauth_failed(message: str, next_path: str = sessions.DEFAULT_NEXT, status: int = 400):
    log.info("oauth callback refused (%s)", status)
    return render_template("oauth_failed.html", message=message, next=next_path,
                           retry_url=url_for("auth.oauth_start", next=next_path)), status


# --- 登录 and 退出登录 ------------------------------------------------------------------------

@bp.route("/login", methods=["GET", "POST"])
def login():
    """登录: 用户名 (ID number or phone number) and 密码."""
    next_path = _next_from(request.values)
    if request.method == "GET":
        if current_trainee() is not None:
            return redirect(next_path)
        return _login_page(next_path)

    username = request.form.get("username", "")
    try:
        trainee = accounts.authenticate(username, request.form.get("password", ""),
                                        _client_ip())
    except InvalidInput as exc:
        return _login_page(next_path, username, errors=exc.fields, status=exc.http_status)
    except DomainError as exc:
        return _login_page(next_path, username, error=exc.message, status=exc.http_status,
                           show_reset_link=True)

    return _finish_login(trainee, next_path)


def _login_page(next_path: str, username: str = "", *, errors: dict | None = None,
                error: str | None = None, status: int = 200, show_reset_link: bool = False):
    openid = sessions.session_openid()
    return render_template("login.html", next=next_path, username=username.strip()[:32],
                           errors=errors or {}, error=error, show_reset_link=show_reset_link,
                           binding_pending=bool(openid)), status


@bp.post("/logout")
def logout():
    """退出登录: this browser's session ends (the WeChat user it proved stays known)."""
    trainee = current_trainee()
    openid = sessions.session_openid()
    sessions.log_out()
    sessions.remember_openid(openid)
    if trainee is not None:
        log.info("trainee %s logged out", trainee.id)
    return redirect(url_for("auth.login"))


# --- 注册 --------------------------------------------------------------------------------------

REGISTRATION_FIELDS = ("name", "id_number", "phone", "gender", "organisation_name",
                       "file_district_id")


@bp.route("/register", methods=["GET", "POST"])
def register():
    """注册: personal data for the certificate, the organisation (or file district), a password."""
    next_path = _next_from(request.values)
    if request.method == "GET":
        return _register_page(next_path, {})

    typed = {name: request.form.get(name, "").strip() for name in REGISTRATION_FIELDS}
    form = accounts.Registration(**typed, password=request.form.get("password", ""),
                                 password_confirm=request.form.get("password_confirm", ""))
    try:
        trainee = accounts.register(form)
    except InvalidInput as exc:
        return _register_page(next_path, typed, errors=exc.fields, error=exc.message,
                              already_registered=False, status=exc.http_status)
    except accounts.AlreadyRegistered as exc:
        return _register_page(next_path, typed, errors=exc.fields, error=exc.message,
                              already_registered=True, status=exc.http_status)

    flash("注册成功，欢迎使用在线学习中心。", "success")
    return _finish_login(trainee, next_path)


def _register_page(next_path: str, values: dict, *, errors: dict | None = None,
                   error: str | None = None, already_registered: bool = False,
                   status: int = 200):
    districts = db.session.scalars(sa.select(District).order_by(District.sort_order,
                                                                District.id))
    return render_template("register.html", next=next_path, values=values,
                           errors=errors or {}, error=error,
                           already_registered=already_registered,
                           districts=list(districts),
                           scene_organisation=_scene_organisation()), status


def _scene_organisation():
    """The organisation of the QR code this WeChat user followed or scanned, if known."""
    openid = sessions.session_openid()
    binding = accounts.binding_for_openid(openid) if openid else None
    return binding.scene_organisation if binding else None


@bp.get("/api/organisations")
def organisations_api():
    """Organisations whose name contains `q` (the scene organisation first), for 注册."""
    found = accounts.search_organisations(request.args.get("q"),
                                          first=_scene_organisation())
    return jsonify({"organisations": [
        {"id": organisation.id, "name": organisation.name,
         "district": organisation.district.name} for organisation in found]})


# --- 忘记密码 ----------------------------------------------------------------------------------

CODE_SENT_NOTICE = ("如果该用户名已注册并填写了手机号码，验证码已通过短信发送到该手机，"
                    f"{accounts.CODE_TTL_SECONDS // 60}分钟内有效。")


@bp.route("/forgot-password", methods=["GET", "POST"])
def forgot_password():
    """忘记密码, step one: the username; a code goes to the account's phone."""
    next_path = _next_from(request.values)
    if request.method == "GET":
        return _forgot_page(next_path)

    username = accounts.normalise_username(request.form.get("username"))[:32]
    try:
        accounts.start_password_reset(username, _client_ip())
    except InvalidInput as exc:
        return _forgot_page(next_path, username, errors=exc.fields, status=exc.http_status)
    except accounts.CodeRecentlySent as exc:
        # A code went out less than a minute ago: the trainee can still type that one.
        return _forgot_page(next_path, username, code_sent=True, error=exc.message)
    except TooManyRequests as exc:
        return _forgot_page(next_path, username, error=exc.message, status=exc.http_status)

    db.session.commit()
    return _forgot_page(next_path, username, code_sent=True)


@bp.post("/forgot-password/reset")
def reset_password():
    """忘记密码, step two: the code and the new password; the trainee is then logged in."""
    next_path = _next_from(request.form)
    username = accounts.normalise_username(request.form.get("username"))[:32]
    try:
        trainee = accounts.complete_password_reset(
            username, request.form.get("code"), request.form.get("password"),
            request.form.get("password_confirm"))
    except InvalidInput as exc:
        return _forgot_page(next_path, username, code_sent=True, errors=exc.fields,
                            status=exc.http_status)

    flash("密码已重置，其他设备上的登录已退出。", "success")
    return _finish_login(trainee, next_path)


def _forgot_page(next_path: str, username: str = "", *, code_sent: bool = False,
                 errors: dict | None = None, error: str | None = None, status: int = 200):
    return render_template("forgot_password.html", next=next_path, username=username,
                           code_sent=code_sent, notice=CODE_SENT_NOTICE, errors=errors or {},
                           error=error), status


# --- 修改密码 ----------------------------------------------------------------------------------

@bp.route("/change-password", methods=["GET", "POST"])
@login_required
def change_password():
    """修改密码; the forced first change after logging in with the initial password."""
    trainee = current_trainee()
    next_path = _next_from(request.values)
    forced = trainee.must_change_password
    if request.method == "GET":
        return _change_page(trainee, next_path, forced)

    try:
        accounts.change_password(trainee, request.form.get("password"),
                                 request.form.get("password_confirm"),
                                 current_password=request.form.get("current_password"))
    except InvalidInput as exc:
        return _change_page(trainee, next_path, forced, errors=exc.fields,
                            status=exc.http_status)
    db.session.commit()

    sessions.log_in(trainee)  # a new session id, valid under the new epoch
    flash("密码已修改。", "success")
    return redirect(next_path)


def _change_page(trainee: Trainee, next_path: str, forced: bool, *,
                 errors: dict | None = None, status: int = 200):
    return render_template("change_password.html", trainee=trainee, next=next_path,
                           forced=forced, errors=errors or {}, error=None), status

