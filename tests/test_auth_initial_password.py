"""Roster accounts: the initial password edu@ + the last six of the ID works once, and the
trainee must choose a new one before anything else."""

from __future__ import annotations

from tests.auth_support import account, csrf_from, field_errors, form_error, log_in
from wx_app.extensions import db
from wx_app.models import Trainee
from wx_app.passwords import uses_initial_password

NEW_PASSWORD = "Chongqing2024"


def change(client, password: str, confirm: str | None = None, next_path: str = "/h5/"):
    page = client.get(f"/h5/change-password?next={next_path}")
    return client.post("/h5/change-password", data={
        "password": password, "password_confirm": password if confirm is None else confirm,
        "next": next_path, "csrf_token": csrf_from(page.text)})


def test_initial_password_logs_in_and_leads_to_the_change(app, client):
    """Does edu@ + the last six characters log a roster account in, straight to 修改密码?"""
    roster = account(app, roster=True)
    assert roster.password == "edu@" + roster.id_number[-6:]

    response = log_in(client, roster.id_number, roster.password, next_path="/h5/training")

    assert response.status_code == 302
    assert response.headers["Location"] == "/h5/change-password?next=/h5/training"
    page = client.get(response.headers["Location"]).text
    assert "您正在使用初始密码" in page
    assert 'for="f-current_password"' not in page  # it was just typed


def test_every_page_waits_for_the_new_password(app, client):
    """Until the password is changed, does every page (and API) send the trainee back?"""
    roster = account(app, roster=True)
    log_in(client, roster.phone, roster.password)

    for path in ("/h5/", "/h5/training", "/h5/me", "/h5/profile", "/h5/plans/public"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/h5/change-password?next=")
    api = client.get("/h5/api/organisations?q=重庆")
    assert api.status_code == 403
    assert api.get_json()["code"] == "password_change_required"
    assert client.get("/h5/help").status_code == 200


def test_new_password_must_follow_the_rules(app, client):
    """Is a new password refused when short, without digits, or the initial one again?"""
    roster = account(app, roster=True)
    log_in(client, roster.id_number, roster.password)

    assert field_errors(change(client, "abc123").text) == {"password": "密码至少8位。"}
    assert field_errors(change(client, "abcdefghij").text) == {
        "password": "密码须同时包含字母和数字。"}
    assert field_errors(change(client, roster.password).text) == {
        "password": "不能使用初始密码（edu@加身份证号码后六位），请设置新密码。"}
    assert field_errors(change(client, NEW_PASSWORD, "Chongqing2025").text) == {
        "password_confirm": "两次输入的密码不一致。"}


def test_after_the_change_the_initial_password_no_longer_works(app, client):
    """Once changed, does the trainee go on, does the new password work, and is the initial
    password refused like any wrong password?"""
    roster = account(app, roster=True)
    log_in(client, roster.id_number, roster.password)

    done = change(client, NEW_PASSWORD, next_path="/h5/training")

    assert done.status_code == 302
    assert done.headers["Location"] == "/h5/training"
    assert client.get("/h5/training").status_code == 200
    with app.app_context():
        trainee = db.session.get(Trainee, roster.id)
        assert not trainee.must_change_password
        assert not uses_initial_password(trainee.password_hash)

    again = app.test_client()
    refused = log_in(again, roster.id_number, roster.password)
    assert refused.status_code == 401
    assert form_error(refused.text) == "用户名或密码错误。"
    assert log_in(again, roster.id_number, NEW_PASSWORD).headers["Location"] == "/h5/"


def test_voluntary_change_asks_for_the_current_password(app, client):
    """Does an ordinary change of password need the current one, and end other sessions?"""
    trainee = account(app)
    other = app.test_client()
    log_in(other, trainee.phone, trainee.password)
    log_in(client, trainee.id_number, trainee.password)

    page = client.get("/h5/change-password").text
    wrong = client.post("/h5/change-password", data={
        "current_password": "Nope2024nope", "password": NEW_PASSWORD,
        "password_confirm": NEW_PASSWORD, "csrf_token": csrf_from(page)})
    right = client.post("/h5/change-password", data={
        "current_password": trainee.password, "password": NEW_PASSWORD,
        "password_confirm": NEW_PASSWORD, "csrf_token": csrf_from(page)})

    assert field_errors(wrong.text) == {"current_password": "当前密码不正确。"}
    assert right.status_code == 302
    assert client.get("/h5/me").status_code == 200
    assert other.get("/h5/me").status_code == 302
