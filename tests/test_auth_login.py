"""登录 with a password: usernames, one message for every failure, lockout, per-address
slow-down, server-side sessions, cookies and CSRF."""

from __future__ import annotations

import re

import pytest

from tests import factories
from tests.auth_support import (
    account,
    csrf_from,
    field_errors,
    form_error,
    id_number_ending_in_x,
    input_value,
    log_in,
)
from wx_app import accounts, sessions, store

WRONG = "Wrong2024pw"
COOKIE = "session"


def session_id(response) -> str | None:
    """The session id a response sets in its cookie, if it sets one."""
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith(f"{COOKIE}="):
            return header.split(";")[0].split("=", 1)[1]
    return None


def lock_keys() -> list[bytes]:
    return store.client().keys(store.key("login", "lock", "*"))


# --- usernames and the answer ------------------------------------------------------------

def test_login_page_has_the_manual_labels(client):
    """Does 登录 show fields labelled 用户名 and 密码, a token, and links to 注册 and 忘记密码?"""
    page = client.get("/h5/login?next=/h5/training").text

    assert '<label class="wx-field__label" for="f-username">用户名</label>' in page
    assert '<label class="wx-field__label" for="f-password">密码</label>' in page
    assert csrf_from(page)
    assert '<input type="hidden" name="next" value="/h5/training">' in page
    assert 'href="/h5/register?next=/h5/training">注册</a>' in page
    assert 'href="/h5/forgot-password?next=/h5/training">忘记密码</a>' in page
    assert ">登录</button>" in page


def test_id_number_with_lower_case_x_logs_in(app, client):
    """Can a trainee type the ID number with a lower-case x, and land on the page asked for?"""
    trainee = account(app, id_number=id_number_ending_in_x())

    response = log_in(client, trainee.id_number.lower(), trainee.password,
                      next_path="/h5/training")

    assert response.status_code == 302
    assert response.headers["Location"] == "/h5/training"
    assert client.get("/h5/training").status_code == 200


def test_phone_number_logs_in(app, client):
    """Is the phone number a second username?"""
    trainee = account(app)

    response = log_in(client, f" {trainee.phone} ", trainee.password)

    assert response.status_code == 302
    assert response.headers["Location"] == "/h5/"
    with client.session_transaction() as session:
        assert session["trainee_id"] == trainee.id


def test_wrong_password_and_unknown_username_get_the_same_answer(app, client):
    """Does the refusal never tell whether the username or the password was wrong?"""
    trainee = account(app)

    wrong_password = log_in(client, trainee.id_number, WRONG)
    unknown_user = log_in(client, factories.id_number(), WRONG)

    assert wrong_password.status_code == unknown_user.status_code == 401
    assert form_error(wrong_password.text) == form_error(unknown_user.text) == "用户名或密码错误。"
    assert input_value(wrong_password.text, "username") == trainee.id_number
    assert WRONG not in wrong_password.text


def test_empty_fields_are_named(client):
    """Does an empty form say which field to fill, without counting a failure?"""
    response = log_in(client, "", "")

    assert response.status_code == 400
    assert field_errors(response.text) == {"username": "请输入用户名（身份证号码或手机号码）。",
                                           "password": "请输入密码。"}


def test_disabled_account_is_told_after_the_right_password(app, client):
    """Is an account stopped by staff refused with the hotline, only to its own password?"""
    trainee = account(app)
    with app.app_context():
        from wx_app.extensions import db
        from wx_app.models import Trainee

        db.session.get(Trainee, trainee.id).status = "disabled"
        db.session.commit()

    response = log_in(client, trainee.id_number, trainee.password)

    assert response.status_code == 403
    assert "该账号已停用" in form_error(response.text)
    assert form_error(log_in(client, trainee.id_number, WRONG).text) == "用户名或密码错误。"


# --- lockout and slow-down -----------------------------------------------------------------

def test_five_failures_lock_the_account_until_the_lock_expires(app, client):
    """After 5 wrong passwords in 15 minutes is the account locked, even to the right
    password, and does the right password work again once the lock has expired?"""
    trainee = account(app)

    answers = [log_in(client, trainee.id_number, WRONG) for _ in range(5)]

    assert [answer.status_code for answer in answers] == [401, 401, 401, 401, 429]
    assert form_error(answers[3].text) == "用户名或密码错误。再错1次，账号将被锁定15分钟。"
    assert "该账号已锁定15分钟" in form_error(answers[4].text)
    locked = log_in(client, trainee.phone, trainee.password)
    assert locked.status_code == 429
    assert "忘记密码" in locked.text

    with app.app_context():
        [lock] = lock_keys()
        assert 890 < store.client().ttl(lock) <= accounts.LOCK_SECONDS
        store.client().delete(lock)  # fifteen minutes later
    assert log_in(client, trainee.id_number, trainee.password).status_code == 302


def test_unknown_username_is_locked_like_an_account(app, client):
    """Does an unknown username lock after 5 tries too, so a lock reveals nothing?"""
    unknown = factories.id_number()

    answers = [log_in(client, unknown, WRONG).status_code for _ in range(6)]

    assert answers == [401, 401, 401, 401, 429, 429]


def test_a_right_password_clears_earlier_failures(app, client):
    """Do failures before a successful login stop counting towards the lock?"""
    trainee = account(app)
    for _ in range(4):
        log_in(client, trainee.id_number, WRONG)

    assert log_in(client, trainee.id_number, trainee.password).status_code == 302
    client.post("/h5/logout", data={"csrf_token": csrf_from(client.get("/h5/profile").text)})

    assert log_in(client, trainee.id_number, WRONG).status_code == 401
    assert "再错" not in log_in(client, trainee.id_number, WRONG).text


def test_an_address_that_keeps_failing_is_slowed_down(app, client):
    """After 20 failures from one address in 15 minutes, is it refused with 429 in Chinese,
    while the same account still logs in from another address?"""
    trainee = account(app)
    for attempt in range(accounts.MAX_ADDRESS_FAILURES):
        log_in(client, factories.id_number(serial=9000 + attempt), WRONG, ip="203.0.113.7")

    refused = log_in(client, trainee.id_number, trainee.password, ip="203.0.113.7")

    assert refused.status_code == 429
    assert form_error(refused.text) == "登录失败次数过多，请15分钟后再试。"
    elsewhere = log_in(client, trainee.id_number, trainee.password, ip="198.51.100.2")
    assert elsewhere.status_code == 302


# --- sessions and cookies ------------------------------------------------------------------

def test_login_gives_a_new_session_id_and_the_old_one_dies(app, client):
    """Does the session id change at login, so an id planted before it is worth nothing?"""
    trainee = account(app)
    before = session_id(client.get("/h5/login"))

    response = log_in(client, trainee.id_number, trainee.password)
    after = session_id(response)

    assert before and after and before != after
    planted = app.test_client()
    planted.set_cookie(COOKIE, before)
    assert planted.get("/h5/me").status_code == 302


def test_session_cookie_is_httponly_and_lax_and_holds_only_an_id(app, client):
    """Is the cookie HttpOnly and SameSite=Lax, carrying a random id and no data?"""
    trainee = account(app)

    header = next(h for h in log_in(client, trainee.id_number, trainee.password)
                  .headers.getlist("Set-Cookie") if h.startswith(f"{COOKIE}="))

    assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/" in header
    assert "Secure" not in header  # PUBLIC_BASE_URL is http in the tests
    value = header.split(";")[0].split("=", 1)[1]
    assert len(value) >= 40 and "." not in value
    with app.app_context():
        assert store.client().ttl(sessions._redis_key(value)) > 6 * 86400


def test_cookie_is_secure_behind_https(app_settings):
    """With an https PUBLIC_BASE_URL, is the session cookie Secure?"""
    from wx_app import create_app

    secure_app = create_app({**app_settings, "PUBLIC_BASE_URL": "https://px.example.cn"})
    response = secure_app.test_client().get("/h5/login")

    header = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith(COOKIE))
    assert "Secure" in header and "HttpOnly" in header


def test_logout_deletes_the_session(app, client):
    """Does 退出登录 delete the session, so its id no longer logs anyone in?"""
    trainee = account(app)
    sid = session_id(log_in(client, trainee.id_number, trainee.password))

    token = csrf_from(client.get("/h5/profile").text)
    response = client.post("/h5/logout", data={"csrf_token": token})

    assert response.status_code == 302
    assert response.headers["Location"] == "/h5/login"
    with app.app_context():
        assert not store.client().exists(sessions._redis_key(sid))
    stale = app.test_client()
    stale.set_cookie(COOKIE, sid)
    assert stale.get("/h5/me").status_code == 302


def test_logged_in_trainee_is_sent_on_from_the_login_page(app, client):
    """Does /h5/login send a logged-in trainee straight to the page asked for?"""
    trainee = account(app)
    log_in(client, trainee.id_number, trainee.password)

    response = client.get("/h5/login?next=/h5/profile")

    assert response.status_code == 302
    assert response.headers["Location"] == "/h5/profile"


# --- what other pages get --------------------------------------------------------------------

def test_pages_and_apis_behind_login_required(app_settings):
    """Does login_required send a page's visitor to 登录, and answer an API with JSON 401?"""
    from flask import Blueprint

    from wx_app import create_app
    from wx_app.sessions import login_required

    probe = Blueprint("probe", __name__, url_prefix="/h5")

    @probe.get("/probe")
    @login_required
    def page():
        return "page"

    @probe.get("/api/probe")
    @login_required
    def api():
        return {"ok": True}

    probe_app = create_app(app_settings)
    probe_app.register_blueprint(probe)
    client = probe_app.test_client()

    assert client.get("/h5/probe?x=1").headers["Location"] == "/h5/login?next=/h5/probe?x%3D1"
    answer = client.get("/h5/api/probe")
    assert answer.status_code == 401
    assert answer.get_json()["code"] == "login_required"


@pytest.mark.parametrize("target, expected", [
    ("/h5/training", "/h5/training"),
    ("/h5/plans/public?year=2023", "/h5/plans/public?year=2023"),
    ("//evil.example/h5/", "/h5/"),
    ("https://evil.example/h5/", "/h5/"),
    ("/\\evil.example", "/h5/"),
    ("/h5/\\\\evil.example", "/h5/"),
    ("javascript:alert(1)", "/h5/"),
    ("/pay/notify", "/h5/"),
    ("", "/h5/"),
])
def test_login_returns_only_to_pages_of_this_site(app, client, target, expected):
    """Is "next" followed only when it is a relative path of the H5 pages (no open redirect)?"""
    trainee = account(app)

    response = log_in(client, trainee.id_number, trainee.password, next_path=target)

    assert response.headers["Location"] == expected


# --- CSRF ------------------------------------------------------------------------------------

def test_form_post_without_token_is_refused(app, client):
    """Is a login POST without the form's CSRF token refused with a Chinese page?"""
    trainee = account(app)
    client.get("/h5/login")

    response = client.post("/h5/login", data={"username": trainee.id_number,
                                               "password": trainee.password})

    assert response.status_code == 403
    assert "页面已过期" in response.text
    with client.session_transaction() as session:
        assert "trainee_id" not in session


def test_form_post_with_another_sessions_token_is_refused(app, client):
    """Is a token from another browser's session refused?"""
    trainee = account(app)
    foreign_token = csrf_from(app.test_client().get("/h5/login").text)
    client.get("/h5/login")

    response = client.post("/h5/login", data={"username": trainee.id_number,
                                               "password": trainee.password,
                                               "csrf_token": foreign_token})

    assert response.status_code == 403


def test_api_post_needs_the_header_token(app, client):
    """Is a POST under /h5/api/ without X-CSRF-Token refused with JSON code csrf_failed,
    and let through with it?"""
    token = csrf_from(client.get("/h5/login").text)

    refused = client.post("/h5/api/organisations", json={})
    passed = client.post("/h5/api/organisations", json={}, headers={"X-CSRF-Token": token})

    assert refused.status_code == 403
    assert refused.get_json()["code"] == "csrf_failed"
    assert passed.status_code == 405  # past the CSRF check; the API itself is GET only


def test_static_files_neither_read_nor_set_the_session(app, client):
    """Are stylesheets served without Set-Cookie or Vary: Cookie, so caches may keep them?"""
    trainee = account(app)
    log_in(client, trainee.id_number, trainee.password)
    stylesheet = re.search(r'href="(/static/app\.css\?v=\w+)"', client.get("/h5/").text).group(1)

    response = client.get(stylesheet)

    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert "Cookie" not in response.headers.get("Vary", "")
