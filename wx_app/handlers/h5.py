"""The H5 pages inside WeChat."""

from flask import Blueprint, render_template

bp = Blueprint("h5", __name__, url_prefix="/h5")


@bp.get("/")
def home():
    return render_template("home.html")


@bp.get("/help")
def help_page():
    return render_template("help.html")
