"""What the H5 pages need from the official account: signed wx.config and the follow QR code."""

from __future__ import annotations

from flask import Blueprint, abort, jsonify, request, send_file

from ..wechat import jssdk, qrcodes

bp = Blueprint("jssdk", __name__, url_prefix="/h5")


@bp.get("/api/jssdk-config")
def jssdk_config():
    """wx.config parameters signed for ?url= (the page's URL; any fragment is dropped)."""
    response = jsonify(jssdk.config_for(request.args.get("url")))
    response.cache_control.no_store = True
    return response


@bp.get("/follow-qr.png")
def follow_qr():
    """The account's follow QR code, as `flask wechat qrcode --follow` last wrote it."""
    path = qrcodes.follow_poster_path()
    if not path.is_file():
        abort(404)
    return send_file(path, mimetype="image/png", max_age=3600, conditional=True)
