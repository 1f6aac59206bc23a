"""个人信息: the trainee's data masked, a new phone number confirmed by a code sent to it."""

from __future__ import annotations

import sqlalchemy as sa

from tests import factories
from tests.auth_support import account, csrf_from, field_errors, latest_code, log_in, texts_to
from wx_app.extensions import db
from wx_app.models import District, Trainee


def logged_in(app, client, **fields):
    trainee = account(app, **fields)
    log_in(client, trainee.id_number, trainee.password)
    return trainee


def send_code(client, phone: str):
    token = csrf_from(client.get("/h5/profile").text)
    return client.post("/h5/profile/phone/code", data={"phone": phone, "csrf_token": token})


def confirm(client, code: str):
    token = csrf_from(client.get("/h5/profile").text)
    return client.post("/h5/profile/phone", data={"code": code, "csrf_token": token})


def test_profile_shows_the_data_masked(app, client):
    """Does 个人信息 show name, gender and organisation, with ID and phone masked only?"""
    trainee = logged_in(app, client, name="李文静", id_number=factories.id_number(male=False),
                        phone="13812345678")

    page = client.get("/h5/profile").text

    assert "<title>个人信息</title>" in page
    assert "李文静" in page and "<dd>女</dd>" in page
    assert f"{trainee.id_number[:4]}**********{trainee.id_number[-4:]}" in page
    assert "138****5678" in page
    assert trainee.id_number not in page and "13812345678" not in page
    assert "<dd>重庆市渝北区人民医院</dd>" in page


def test_profile_shows_the_file_district_without_an_organisation(app, client):
    """For a trainee without an organisation, is the district of the personnel file shown?"""
    trainee = logged_in(app, client)
    with app.app_context():
        made = db.session.get(Trainee, trainee.id)
        made.organisation = None
        made.file_district = db.session.scalar(sa.select(District).where(
            District.name == "万盛经开区"))
        db.session.commit()

    page = client.get("/h5/profile").text

    assert "<dt>档案所在区县</dt><dd>万盛经开区</dd>" in page


def test_profile_needs_a_login(client):
    """Is 个人信息 behind the login?"""
    assert client.get("/h5/profile").headers["Location"] == "/h5/login?next=/h5/profile"


def test_a_new_phone_is_confirmed_by_a_code_sent_to_it(app, client, sandbox_url):
    """Does the code go to the NEW phone (not the old one), and does it make the new number
    the trainee's phone and second username?"""
    trainee = logged_in(app, client)
    new_phone = factories.phone_number()

    sent = send_code(client, new_phone)

    assert sent.status_code == 302
    assert texts_to(sandbox_url, trainee.phone) == []
    [text] = texts_to(sandbox_url, new_phone)
    assert "用于修改" in text and "手机号码" in text
    page = client.get("/h5/profile").text
    assert f"验证码已发送至 {new_phone[:3]}****{new_phone[-4:]}" in page
    code = latest_code(sandbox_url, new_phone)
    wrong = confirm(client, f"{(int(code) + 1) % 1_000_000:06d}")
    assert field_errors(wrong.text) == {"code": "验证码不正确或已失效，请重新获取。"}

    done = confirm(client, code)

    assert done.status_code == 302
    with app.app_context():
        assert db.session.get(Trainee, trainee.id).phone == new_phone
    other = app.test_client()
    assert log_in(other, new_phone, trainee.password).status_code == 302
    assert log_in(app.test_client(), trainee.phone, trainee.password).status_code == 401


def test_a_phone_of_another_account_is_refused(app, client, sandbox_url):
    """Is a number that is already someone's username refused next to the field?"""
    someone = account(app)
    logged_in(app, client)

    response = send_code(client, someone.phone)

    assert response.status_code == 409
    assert field_errors(response.text) == {
        "phone": "该手机号码已被其他账号使用，请换一个手机号码。"}
    assert texts_to(sandbox_url, someone.phone) == []


def test_a_malformed_phone_is_refused(app, client):
    """Is a wrong number refused with the shared phone check's message?"""
    logged_in(app, client)

    response = send_code(client, "138-0013-8000")

    assert field_errors(response.text) == {
        "phone": "手机号码只能由数字组成，中间不能有空格或其他符号。"}
