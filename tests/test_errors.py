"""One place turns an exception into a JSON error or a Chinese page, never a stack trace."""

from __future__ import annotations

import pytest
from flask import Blueprint

from wx_app.errors import Conflict, InvalidInput


@pytest.fixture
def failing_app(tmp_path, monkeypatch):
    """An app with routes that raise, as a domain function or a bug would."""
    from wx_app import create_app

    monkeypatch.setenv("WX_APP_INSTANCE", str(tmp_path))
    app = create_app({"APP_ENV": "testing", "REDIS_URL": ""})
    routes = Blueprint("failing", __name__)

    @routes.get("/h5/api/refuse")
    @routes.get("/h5/refuse")
    def refuse():
        raise InvalidInput("手机号码应为11位数字。", code="invalid_phone",
                           fields={"phone": "手机号码应为11位数字。"})

    @routes.get("/h5/api/conflict")
    def conflict():
        raise Conflict()

    @routes.get("/h5/api/bug")
    def bug():
        raise RuntimeError("secret detail 50010119900307123X")

    app.register_blueprint(routes)
    return app.test_client()


def test_api_refusals_carry_a_stable_code_and_a_chinese_message(failing_app):
    """Does a client of /h5/api/ get the domain's code, message and field errors as JSON?"""
    response = failing_app.get("/h5/api/refuse")

    assert response.status_code == 400
    assert response.get_json() == {"code": "invalid_phone", "message": "手机号码应为11位数字。",
                                   "fields": {"phone": "手机号码应为11位数字。"}}
    assert failing_app.get("/h5/api/conflict").get_json()["code"] == "conflict"


def test_page_refusals_render_the_chinese_error_page(failing_app):
    """Does a trainee on an H5 page see the message and the hotline, not JSON?"""
    response = failing_app.get("/h5/refuse")

    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "手机号码应为11位数字。" in page
    assert "400-023-9229" in page


def test_an_unexpected_error_shows_no_detail(failing_app):
    """Does a bug answer a generic 500 with no exception text (nor the ID inside it)?"""
    response = failing_app.get("/h5/api/bug")

    assert response.status_code == 500
    assert response.get_json() == {"code": "internal_error", "message": "系统繁忙，请稍后重试。"}
    assert b"secret detail" not in response.data


def test_unknown_api_path_is_json_404(failing_app):
    """Does an unknown /h5/api/ path answer JSON not_found rather than an HTML page?"""
    response = failing_app.get("/h5/api/nothing-here")

    assert response.status_code == 404
    assert response.get_json()["code"] == "not_found"
