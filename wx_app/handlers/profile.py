"""个人信息: the trainee's data (masked), a new phone number by SMS code, the WeChat binding."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from .. import accounts, sessions
from ..errors import DomainError, InvalidInput
from ..extensions import db
from ..sessions import current_trainee, login_required
from ..trainee_fields import GENDER_LABELS

bp = Blueprint("profile", __name__, url_prefix="/h5/profile")


def _client_ip() -> str:
    return request.remote_addr or "unknown"


@bp.get("")
@login_required
def show():
    """个人信息: name, ID and phone masked, gender, organisation or file district, WeChat."""
    return _profile_page()


def _profile_page(*, errors: dict | None = None, new_phone: str = "", status: int = 200):
    trainee = current_trainee()
    return render_template("profile.html", trainee=trainee,
                           gender_label=GENDER_LABELS.get(trainee.gender, ""),
                           binding=accounts.binding_of(trainee),
                           pending_phone=accounts.pending_phone_change(trainee),
                           errors=errors or {}, new_phone=new_phone), status


@bp.post("/phone/code")
@login_required
def send_phone_code():
    """Send a code to the new phone number the trainee typed."""
    new_phone = request.form.get("phone", "").strip()[:20]
    try:
        accounts.start_phone_change(current_trainee(), new_phone, _client_ip())
    except DomainError as exc:
        errors = exc.fields or {"phone": exc.message}
        return _profile_page(errors=errors, new_phone=new_phone, status=exc.http_status)

    flash("验证码已发送到新手机号码。", "success")
    return redirect(url_for("profile.show") + "#phone")


@bp.post("/phone")
@login_required
def change_phone():
    """Make the new phone number the trainee's, with the code it received."""
    try:
        accounts.complete_phone_change(current_trainee(), request.form.get("code"))
    except DomainError as exc:
        errors = exc.fields if isinstance(exc, InvalidInput) else {"code": exc.message}
        return _profile_page(errors=errors, status=exc.http_status)
    db.session.commit()

    flash("手机号码已修改。", "success")
    return redirect(url_for("profile.show"))


@bp.post("/unbind-wechat")
@login_required
def unbind_wechat():
    """解除微信绑定: this WeChat no longer logs the trainee in by itself."""
    trainee = current_trainee()
    unbound = accounts.unbind(trainee)
    db.session.commit()

    # The browser's session stays logged in, but no longer re-binds at the next login.
    sessions.remember_openid(None)
    flash("已解除微信绑定。" if unbound else "当前没有绑定微信。", "success")
    return redirect(url_for("profile.show"))
