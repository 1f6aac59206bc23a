"""忘记密码: a six-digit code by SMS (the sandbox's inbox), its life, its tries, how often it
is sent, and what a reset does to other sessions."""

from __future__ import annotations

import re
import time

from tests import factories
from tests.auth_support import (
    account,
    csrf_from,
    field_errors,
    form_error,
    latest_code,
    log_in,
    texts_to,
)
from wx_app import accounts, store

NEW_PASSWORD = "Reset2024ok"
NOTICE = "如果该用户名已注册并填写了手机号码，验证码已通过短信发送到该手机，5分钟内有效。"


def ask_code(client, username: str, ip: str = "127.0.0.1"):
    token = csrf_from(client.get("/h5/forgot-password").text)
    return client.post("/h5/forgot-password", data={"username": username, "csrf_token": token},
                       environ_base={"REMOTE_ADDR": ip})


def reset(client, username: str, code: str, password: str = NEW_PASSWORD):
    token = csrf_from(client.get("/h5/forgot-password").text)
    return client.post("/h5/forgot-password/reset", data={
        "username": username, "code": code, "password": password,
        "password_confirm": password, "csrf_token": token})


def without_tokens(page: str) -> str:
    page = re.sub(r'name="csrf_token" value="[^"]+"', "", page)
    return re.sub(r'name="username"[^>]*value="[^"]*"', "", page)


def test_a_code_goes_to_the_accounts_phone_and_resets_the_password(app, client, sandbox_url):
    """Does the username bring a six-digit code to the account's phone, and do the code and
    a new password log the trainee in with the new password?"""
    trainee = account(app)

    asked = ask_code(client, trainee.id_number.lower())

    assert asked.status_code == 200
    assert NOTICE in asked.text
    [text] = texts_to(sandbox_url, trainee.phone)
    assert text.startswith("【重庆人社培训网】您的验证码为")
    assert "5分钟内有效" in text
    done = reset(client, trainee.id_number, latest_code(sandbox_url, trainee.phone))
    assert done.status_code == 302
    assert done.headers["Location"] == "/h5/"
    assert client.get("/h5/me").status_code == 200
    fresh = app.test_client()
    assert log_in(fresh, trainee.phone, trainee.password).status_code == 401
    assert log_in(fresh, trainee.phone, NEW_PASSWORD).status_code == 302


def test_the_answer_is_the_same_for_an_unknown_username(app, client, sandbox_url):
    """Does asking for an unknown username look exactly like asking for a real one?"""
    trainee = account(app)

    real = ask_code(client, trainee.phone)
    unknown = ask_code(app.test_client(), factories.phone_number())

    assert real.status_code == unknown.status_code == 200
    assert without_tokens(real.text) == without_tokens(unknown.text)


def test_a_code_is_sent_once_a_minute(app, client, sandbox_url):
    """Is a second code within a minute refused (for real and unknown usernames alike),
    while the first code still works, and is a new one sent after the minute?"""
    trainee = account(app)
    ask_code(client, trainee.id_number)

    again = ask_code(client, trainee.phone)
    unknown = [ask_code(client, "13900000000") for _ in range(2)][1]

    assert form_error(again.text) == "验证码已发送，请60秒后再重新获取。"
    assert form_error(unknown.text) == form_error(again.text)
    assert 'for="f-code"' in again.text  # the code already sent can still be typed
    assert len(texts_to(sandbox_url, trainee.phone)) == 1

    with app.app_context():
        store.client().delete(store.key("code", "sent", f"trainee:{trainee.id}"))  # a minute on
    ask_code(client, trainee.id_number)
    assert len(texts_to(sandbox_url, trainee.phone)) == 2


def test_a_code_expires(app, client, sandbox_url):
    """Is a code refused once its five minutes are over?"""
    trainee = account(app)
    ask_code(client, trainee.id_number)
    code = latest_code(sandbox_url, trainee.phone)
    with app.app_context():
        key = store.key("code", "reset", trainee.id)
        assert 290 < store.client().ttl(key) <= accounts.CODE_TTL_SECONDS
        store.client().pexpire(key, 1)
    time.sleep(0.05)

    refused = reset(client, trainee.id_number, code)

    assert refused.status_code == 400
    assert field_errors(refused.text) == {"code": "验证码不正确或已失效，请重新获取。"}
    assert log_in(app.test_client(), trainee.id_number, trainee.password).status_code == 302


def test_a_code_runs_out_of_tries(app, client, sandbox_url):
    """After five wrong codes, is even the right code refused?"""
    trainee = account(app)
    ask_code(client, trainee.id_number)
    code = latest_code(sandbox_url, trainee.phone)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"

    answers = [reset(client, trainee.id_number, wrong).status_code for _ in range(5)]
    last = reset(client, trainee.id_number, code)

    assert answers == [400] * 5
    assert field_errors(last.text) == {"code": "验证码不正确或已失效，请重新获取。"}
    assert log_in(app.test_client(), trainee.id_number, NEW_PASSWORD).status_code == 401


def test_a_code_works_once(app, client, sandbox_url):
    """Is a code that reset the password refused the second time?"""
    trainee = account(app)
    ask_code(client, trainee.id_number)
    code = latest_code(sandbox_url, trainee.phone)

    assert reset(client, trainee.id_number, code).status_code == 302
    assert reset(app.test_client(), trainee.id_number, code, "Another2024").status_code == 400


def test_a_bad_new_password_does_not_use_up_a_try(app, client, sandbox_url):
    """Is a weak new password refused next to its field before the code is even looked at?"""
    trainee = account(app)
    ask_code(client, trainee.id_number)
    code = latest_code(sandbox_url, trainee.phone)

    weak = [reset(client, trainee.id_number, code, "weak") for _ in range(6)][-1]

    assert field_errors(weak.text) == {"password": "密码至少8位。"}
    assert reset(client, trainee.id_number, code).status_code == 302


def test_a_reset_ends_every_other_session(app, client, sandbox_url):
    """Are the account's sessions on other phones ended by a reset, and is its lock lifted?"""
    trainee = account(app)
    elsewhere = app.test_client()
    log_in(elsewhere, trainee.phone, trainee.password)
    assert elsewhere.get("/h5/me").status_code == 200
    for _ in range(accounts.MAX_ACCOUNT_FAILURES):
        log_in(app.test_client(), trainee.id_number, "Wrong2024pw")

    ask_code(client, trainee.phone)
    reset(client, trainee.phone, latest_code(sandbox_url, trainee.phone))

    assert elsewhere.get("/h5/me").status_code == 302
    assert client.get("/h5/me").status_code == 200
    assert log_in(app.test_client(), trainee.id_number, NEW_PASSWORD).status_code == 302


def test_an_address_cannot_ask_for_codes_without_end(app, client, sandbox_url):
    """Is one address refused after ten codes an hour, whatever the usernames?"""
    for serial in range(accounts.MAX_ADDRESS_CODE_SENDS):
        ask_code(client, factories.phone_number(8000 + serial), ip="203.0.113.9")

    refused = ask_code(client, factories.phone_number(8100), ip="203.0.113.9")

    assert refused.status_code == 429
    assert form_error(refused.text) == "获取验证码过于频繁，请1小时后再试。"
