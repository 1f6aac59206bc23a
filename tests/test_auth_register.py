"""注册: every field checked with its own message, what was typed kept, the account made right."""

from __future__ import annotations

import re
from datetime import date

import pytest
import sqlalchemy as sa

from tests import factories
from tests.auth_support import (
    account,
    csrf_from,
    field_errors,
    id_number_ending_in_x,
    input_value,
    permit_number,
)
from wx_app.extensions import db
from wx_app.models import District, Trainee, WechatBinding
from wx_app.passwords import verify_password
from wx_app.personal_data import lookup_hash

ORGANISATION = "重庆市渝北区人民医院"
PASSWORD = "Register2024"


def valid_form(**changes) -> dict:
    """A registration form as a careful trainee fills it (the organisation must exist)."""
    form = {"name": "王小明", "id_number": factories.id_number(male=True),
            "phone": factories.phone_number(), "gender": "男",
            "organisation_name": ORGANISATION, "file_district_id": "",
            "password": PASSWORD, "password_confirm": PASSWORD}
    form.update(changes)
    return form


@pytest.fixture
def organisation(app):
    with app.app_context():
        made = factories.organisation(ORGANISATION)
        db.session.commit()
        return made.id


def submit(client, form: dict, next_path: str = ""):
    token = csrf_from(client.get("/h5/register").text)
    return client.post("/h5/register", data={**form, "next": next_path, "csrf_token": token})


def registered(app, id_number: str) -> Trainee | None:
    with app.app_context():
        trainee = db.session.scalar(sa.select(Trainee).where(
            Trainee.id_number_hash == lookup_hash(id_number)))
        if trainee is not None:
            db.session.expunge(trainee)
        return trainee


# --- the page --------------------------------------------------------------------------------

def test_page_has_labels_the_reminder_and_every_district(client):
    """Does 注册 label every field, warn that the data goes on the certificate, and offer
    the 41 districts and counties for the personnel file?"""
    page = client.get("/h5/register").text

    assert "注册信息将作为合格证书的重要数据，请谨慎填写" in page
    for field, label in (("name", "姓名"), ("id_number", "身份证号码"), ("phone", "手机号码"),
                         ("organisation_name", "单位"), ("file_district_id", "档案所在区县"),
                         ("password", "密码"), ("password_confirm", "确认密码")):
        assert f'<label class="wx-field__label" for="f-{field}">{label}</label>' in page
    assert re.search(r'<label class="wx-choice"><input type="radio" name="gender" value="男">'
                     r"\s*男</label>", page)
    assert len(re.findall(r'<option value="\d+"', page)) == 41
    assert ">两江新区</option>" in page and ">彭水苗族土家族自治县</option>" in page
    assert ">注册</button>" in page


# --- refusals --------------------------------------------------------------------------------

def test_each_bad_field_gets_its_own_message_and_the_form_keeps_what_was_typed(client,
                                                                            organisation):
    """Is every bad field refused next to itself, with everything typed kept but passwords?"""
    typed = {"name": "张 三", "id_number": "50010119900307123x", "phone": "1380013800",
             "gender": "", "organisation_name": "", "file_district_id": "",
             "password": "short1", "password_confirm": "short1"}

    response = submit(client, typed)

    assert response.status_code == 400
    assert field_errors(response.text) == {
        "name": "姓名中间不能有空格。",
        "id_number": "身份证号码校验位不正确，请核对后重新输入。",
        "phone": "手机号码应为11位，您输入了10位。",
        "gender": "请选择性别。",
        "organisation_name": "请选择您的单位；找不到单位时，请选择档案所在区县。",
        "password": "密码至少8位。",
    }
    assert input_value(response.text, "name") == "张 三"
    assert input_value(response.text, "id_number") == "50010119900307123x"
    assert input_value(response.text, "phone") == "1380013800"
    assert input_value(response.text, "password") is None
    assert "short1" not in response.text


@pytest.mark.parametrize("changes, field, message", [
    ({"name": "李@华"}, "name", "姓名只能由汉字或英文字母组成"),
    ({"name": "李"}, "name", "姓名应为2至20个字。"),
    ({"id_number": "500101199002301234"}, "id_number", "出生日期不正确"),
    ({"id_number": "50010119900307"}, "id_number", "身份证号码应为18位，您输入了14位。"),
    ({"phone": "23800138000"}, "phone", "手机号码不正确"),
    ({"gender": "女"}, "gender", "性别与身份证号码不符：身份证号码显示为男。"),
    ({"organisation_name": "不存在的单位"}, "organisation_name", "没有找到该单位"),
    ({"password": "onlyletters", "password_confirm": "onlyletters"}, "password",
     "密码须同时包含字母和数字。"),
    ({"password_confirm": "Register2025"}, "password_confirm", "两次输入的密码不一致。"),
])
def test_one_bad_field_is_named_alone(client, organisation, changes, field, message):
    """Is a single mistake refused with its own message and no other?"""
    response = submit(client, valid_form(**changes))

    errors = field_errors(response.text)
    assert list(errors) == [field]
    assert message in errors[field]


def test_initial_password_cannot_be_chosen(client, organisation):
    """Is edu@ + the last six of one's own ID refused as a password?"""
    form = valid_form()
    initial = "edu@" + form["id_number"][-6:]

    response = submit(client, {**form, "password": initial, "password_confirm": initial})

    assert field_errors(response.text) == {
        "password": "不能使用初始密码（edu@加身份证号码后六位），请设置新密码。"}


def test_a_registered_id_number_points_to_forgot_password(app, client, organisation):
    """Does an ID number with an account get a clear message and a 忘记密码 link?"""
    existing = account(app)

    response = submit(client, valid_form(id_number=existing.id_number.lower(), name="张三"))

    assert response.status_code == 409
    assert field_errors(response.text)["id_number"].startswith("该身份证号码已注册")
    assert 'href="/h5/forgot-password?next=/h5/">忘记密码</a>' in response.text


def test_a_phone_number_in_use_is_refused(app, client, organisation):
    """Is a phone number that is another account's username refused?"""
    existing = account(app)

    response = submit(client, valid_form(phone=existing.phone))

    assert field_errors(response.text) == {
        "phone": "该手机号码已被其他账号使用，请换一个手机号码。"}


# --- success -----------------------------------------------------------------------------------

def test_registration_makes_the_account_and_logs_in(app, client, organisation):
    """Is the account made with the upper-case ID, logged in, and sent to the page asked for?"""
    number = id_number_ending_in_x(male=True)
    form = valid_form(id_number=f" {number.lower()} ", name="欧阳·娜娜")

    response = submit(client, form, next_path="/h5/training")

    assert response.status_code == 302
    assert response.headers["Location"] == "/h5/training"
    trainee = registered(app, number)
    assert trainee.name == "欧阳·娜娜"
    assert trainee.gender == "M" and trainee.source == "register"
    assert trainee.birth_date == date(1988, 3, 15)
    assert trainee.organisation_id == organisation and trainee.file_district_id is None
    assert not trainee.must_change_password
    assert verify_password(trainee.password_hash, PASSWORD)
    with app.app_context():
        assert db.session.get(Trainee, trainee.id).id_number == number
    assert "注册成功" in client.get("/h5/").text
    assert client.get("/h5/training").status_code == 200


def test_file_district_stands_in_for_an_unlisted_organisation(app, client):
    """Without an organisation, is the district that holds the personnel file stored?"""
    with app.app_context():
        district = db.session.scalar(sa.select(District).where(District.name == "江津区"))
        district_id = district.id
    form = valid_form(organisation_name="", file_district_id=str(district_id), gender="女",
                      id_number=factories.id_number(male=False))

    assert submit(client, form).status_code == 302
    trainee = registered(app, form["id_number"])
    assert trainee.file_district_id == district_id and trainee.organisation_id is None


@pytest.mark.parametrize("number", [
    permit_number("810000"),            # Hong Kong residents' residence permit
    permit_number("830000", serial="124"),  # Taiwan residents' residence permit
    permit_number("935001", serial="341"),  # foreign permanent-residence ID (2023)
])
def test_permits_register_like_id_cards(app, client, organisation, number):
    """Are residence permits and the new foreign permanent-residence ID accepted?"""
    gender = "男" if int(number[16]) % 2 else "女"

    response = submit(client, valid_form(id_number=number, gender=gender))

    assert response.status_code == 302, field_errors(response.text)
    assert registered(app, number).id_kind in ("hmt_permit", "foreign_permanent")


# --- organisation search ------------------------------------------------------------------------

def test_organisation_search_finds_names_containing_the_words(app, client):
    """Does the search return matching organisations, names starting with the words first?"""
    with app.app_context():
        for name in ("重庆市渝北区人民医院", "渝北区第二中学", "重庆市江津区中医院",
                     "100%_测试单位"):
            factories.organisation(name)
        db.session.commit()

    found = client.get("/h5/api/organisations?q=渝北").get_json()["organisations"]
    literal = client.get("/h5/api/organisations?q=%_").get_json()["organisations"]

    assert [item["name"] for item in found] == ["渝北区第二中学", "重庆市渝北区人民医院"]
    assert found[0]["district"] == "渝北区"
    assert [item["name"] for item in literal] == ["100%_测试单位"]
    assert client.get("/h5/api/organisations?q=").get_json() == {"organisations": []}


def test_the_scene_organisation_is_offered_first(app, client):
    """Does the organisation of the QR code this WeChat user scanned lead the results, and
    appear on the page before anything is typed?"""
    with app.app_context():
        factories.organisation("重庆市渝北区人民医院")
        scanned = factories.organisation("重庆市渝北区中医院")
        db.session.add(WechatBinding(openid="oScene000000000000000000000", subscribed=True,
                                     scene_organisation=scanned))
        db.session.commit()
    with client.session_transaction() as session:
        session["openid"] = "oScene000000000000000000000"

    empty = client.get("/h5/api/organisations").get_json()["organisations"]
    found = client.get("/h5/api/organisations?q=渝北区").get_json()["organisations"]
    page = client.get("/h5/register").text

    assert [item["name"] for item in empty] == ["重庆市渝北区中医院"]
    assert [item["name"] for item in found] == ["重庆市渝北区中医院", "重庆市渝北区人民医院"]
    assert 'data-name="重庆市渝北区中医院"' in page and "扫码单位" in page
