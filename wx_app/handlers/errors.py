"""The one place that turns an exception into a JSON error or a Chinese H5 page."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from ..errors import DomainError
from ..extensions import db

log = logging.getLogger(__name__)

#: Paths whose clients read JSON rather than pages.
JSON_PREFIXES = ("/h5/api/", "/pay/", "/healthz", "/sandbox/api/")

HTTP_MESSAGES = {
    400: ("bad_request", "请求格式有误。"),
    401: ("login_required", "请先登录。"),
    403: ("forbidden", "您没有权限访问此页面。"),
    404: ("not_found", "您访问的页面不存在。"),
    405: ("method_not_allowed", "不支持此操作方式。"),
    413: ("too_large", "提交的内容过大。"),
    429: ("too_many_requests", "操作过于频繁，请稍后再试。"),
    500: ("internal_error", "系统繁忙，请稍后重试。"),
    502: ("upstream_error", "微信服务暂时不可用，请稍后重试。"),
    503: ("unavailable", "服务暂时不可用，请稍后重试。"),
}


def wants_json() -> bool:
    return request.path.startswith(JSON_PREFIXES) or (
        request.accept_mimetypes.best == "application/json")


def error_response(code: str, message: str, status: int, fields: dict | None = None):
    if wants_json():
        body = {"code": code, "message": message}
        if fields:
            body["fields"] = fields
        return jsonify(body), status
    return render_template("error.html", code=code, message=message, status=status), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        db.session.rollback()
        log.info("refused %s %s: %s", request.method, request.path, exc.code)
        return error_response(exc.code, exc.message, exc.http_status, exc.fields)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code, message = HTTP_MESSAGES.get(exc.code or 500, ("http_error", "请求无法处理。"))
        return error_response(code, message, exc.code or 500)

    @app.errorhandler(Exception)
    def unexpected_error(exc: Exception):
        db.session.rollback()
        log.exception("unhandled error on %s %s", request.method, request.path)
        code, message = HTTP_MESSAGES[500]
        return error_response(code, message, 500)
