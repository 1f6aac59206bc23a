"""The H5 pages inside WeChat."""

from flask import Blueprint, render_template

from .. import help_contacts
from ..sessions import login_required, oauth_in_wechat

bp = Blueprint("h5", __name__, url_prefix="/h5")


@bp.app_context_processor
def contacts_for_every_page() -> dict:
    """The help numbers, for the layout, the help page and every error page."""
    return {"help_contacts": help_contacts}


@bp.get("/")
@oauth_in_wechat
def home():
    """在线学习中心: the yearly requirement and the two kinds of plan."""
    return render_template("home.html")


@bp.get("/training")
@login_required
def training():
    """课程培训: where purchased plans are listed once the trainee has logged in."""
    return render_template("training.html")


@bp.get("/me")
@login_required
def me():
    """我的: certificates, invoices, group orders, personal data and help."""
    return render_template("me.html")


@bp.get("/help")
def help_page():
    """帮助: the manual's steps in short, and the numbers to call."""
    return render_template("help.html")
