"""The H5 pages inside WeChat."""

from flask import Blueprint, abort, render_template

from .. import help_contacts
from ..models.catalog import PLAN_CATEGORIES

bp = Blueprint("h5", __name__, url_prefix="/h5")


@bp.app_context_processor
def contacts_for_every_page() -> dict:
    """The help numbers, for the layout, the help page and every error page."""
    return {"help_contacts": help_contacts}


@bp.get("/")
def home():
    """在线学习中心: the yearly requirement and the two kinds of plan."""
    return render_template("home.html")


@bp.get("/training")
def training():
    """课程培训: where purchased plans are listed once the trainee has logged in."""
    return render_template("training.html")


@bp.get("/me")
def me():
    """我的: certificates, invoices, group orders, personal data and help."""
    return render_template("me.html")


@bp.get("/help")
def help_page():
    """帮助: the manual's steps in short, and the numbers to call."""
    return render_template("help.html")


@bp.get("/plans/<category>")
def plans(category: str):
    """The catalogue of one kind of plan (public: 公需科目, professional: 专业科目)."""
    # The catalogue is not yet offered on the phone: this page only says so and points to
    # 帮助, so a trainee following the home page's entries meets no dead end.
    if category not in PLAN_CATEGORIES:
        abort(404)
    return render_template("plans.html", category=category)
