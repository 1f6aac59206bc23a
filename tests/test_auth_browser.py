"""登录, 注册, the forced password change and WeChat OAuth in Chromium at phone size, filled
by their labels as a trainee (or a support agent on the phone) reads them."""

from __future__ import annotations

import re

import pytest

from tests import factories
from tests.auth_support import account
from tests.test_h5_browser import TEXT_SIZES_JS
from wx_app.extensions import db
from wx_app.models import Trainee

pytestmark = pytest.mark.browser

PHONE_BROWSER = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 "
                 "(KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36")


@pytest.fixture
def phone(browser, live_server):
    """A phone-sized page in an ordinary mobile browser (not WeChat)."""
    context = browser.new_context(viewport={"width": 375, "height": 812},
                                  device_scale_factor=2, is_mobile=True, has_touch=True,
                                  user_agent=PHONE_BROWSER, locale="zh-CN")
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def assert_fits_the_phone(tab) -> None:
    """No sideways scrolling at 375 px, and no text under 14 px."""
    assert tab.evaluate("document.scrollingElement.scrollWidth") <= 375
    small = [(text, size) for text, size in tab.evaluate(TEXT_SIZES_JS) if size < 14]
    assert small == []


def test_login_by_labels_returns_to_the_page_asked_for(phone, live_server, app):
    """Outside WeChat, does 课程培训 lead to 登录, and do 用户名 and 密码 lead back to it?"""
    trainee = account(app)

    phone.goto(f"{live_server}/h5/training")
    phone.wait_for_url(f"{live_server}/h5/login?next=/h5/training")
    assert_fits_the_phone(phone)
    phone.get_by_label("用户名").fill(trainee.id_number)
    phone.get_by_label("密码").fill(trainee.password)
    phone.get_by_role("button", name="登录").click()

    phone.wait_for_url(f"{live_server}/h5/training")
    assert phone.title() == "课程培训"


def test_wrong_password_is_said_plainly(phone, live_server, app):
    """Does a wrong password show 用户名或密码错误 on the page, keeping the username?"""
    trainee = account(app)
    phone.goto(f"{live_server}/h5/login")

    phone.get_by_label("用户名").fill(trainee.phone)
    phone.get_by_label("密码").fill("Wrong2024pw")
    phone.get_by_role("button", name="登录").click()

    alert = phone.locator(".wx-form__error")
    assert alert.inner_text() == "用户名或密码错误。"
    assert phone.get_by_label("用户名").input_value() == trainee.phone
    assert phone.get_by_label("密码").input_value() == ""
    assert_fits_the_phone(phone)


def test_registration_by_labels_with_organisation_search(phone, live_server, app):
    """Can a trainee register by the labels, choosing the organisation from the search, and
    land logged in on the home page with 注册成功?"""
    with app.app_context():
        factories.organisation("重庆市渝北区人民医院")
        factories.organisation("重庆市江津区中医院")
        db.session.commit()
    number = factories.id_number(male=False)
    phone.goto(f"{live_server}/h5/login")
    phone.get_by_role("link", name="注册").click()
    phone.wait_for_url(re.compile(r".*/h5/register.*"))

    phone.get_by_label("姓名").fill("刘晓燕")
    phone.get_by_label("身份证号码").fill(number)
    phone.get_by_label("手机号码").fill(factories.phone_number())
    phone.get_by_label("女").check()
    phone.get_by_label("单位", exact=True).fill("渝北")
    phone.get_by_role("button", name="重庆市渝北区人民医院").click()
    phone.get_by_label("密码", exact=True).fill("Register2024")
    phone.get_by_label("确认密码").fill("Register2024")
    assert phone.get_by_label("单位", exact=True).input_value() == "重庆市渝北区人民医院"
    assert_fits_the_phone(phone)
    phone.get_by_role("button", name="注册").click()

    phone.wait_for_url(f"{live_server}/h5/")
    assert "注册成功" in phone.locator(".wx-toast").inner_text()


def test_registration_mistakes_show_next_to_their_fields(phone, live_server, app):
    """Are mistakes shown under their own fields, keeping what was typed, on a 375 px page?"""
    phone.goto(f"{live_server}/h5/register")

    phone.get_by_label("姓名").fill("张 三")
    phone.get_by_label("身份证号码").fill("500101199003071234")
    phone.get_by_label("手机号码").fill("138001380")
    phone.get_by_label("密码", exact=True).fill("Register2024")
    phone.get_by_role("button", name="注册").click()
    phone.wait_for_load_state("load")

    assert phone.locator("#f-name-error").inner_text() == "姓名中间不能有空格。"
    assert "校验位" in phone.locator("#f-id_number-error").inner_text()
    assert phone.locator("#f-phone-error").inner_text() == "手机号码应为11位，您输入了9位。"
    assert phone.locator("#f-gender-error").inner_text() == "请选择性别。"
    assert phone.get_by_label("姓名").input_value() == "张 三"
    assert phone.get_by_label("密码", exact=True).input_value() == ""
    assert_fits_the_phone(phone)


def test_forced_password_change_by_labels(phone, live_server, app):
    """Does a roster account's first login lead to 修改密码, and the new password on?"""
    roster = account(app, roster=True)
    phone.goto(f"{live_server}/h5/login")
    phone.get_by_label("用户名").fill(roster.id_number)
    phone.get_by_label("密码").fill(roster.password)
    phone.get_by_role("button", name="登录").click()

    phone.wait_for_url(re.compile(r".*/h5/change-password\?next=.*"))
    assert phone.title() == "修改密码"
    assert_fits_the_phone(phone)
    phone.get_by_label("新密码", exact=True).fill("Chongqing2024")
    phone.get_by_label("确认新密码").fill("Chongqing2024")
    phone.get_by_role("button", name="确认修改").click()

    phone.wait_for_url(f"{live_server}/h5/")
    assert "密码已修改" in phone.locator(".wx-toast").inner_text()


@pytest.mark.parametrize("path", ["/h5/forgot-password", "/h5/profile"])
def test_other_account_pages_fit_the_phone(phone, live_server, app, path):
    """Do 忘记密码 and 个人信息 fit 375 px with readable text?"""
    trainee = account(app)
    with app.app_context():
        cookie = factories.session_cookie(db.session.get(Trainee, trainee.id))
    phone.context.add_cookies([{"name": "session", "value": cookie, "url": live_server}])

    phone.goto(live_server + path)

    assert_fits_the_phone(phone)


def test_wechat_oauth_through_the_sandbox_page(page, live_server, app):
    """Inside WeChat: the sandbox's authorize page, a new WeChat user consents, 登录 binds,
    and the trainee reaches 课程培训."""
    trainee = account(app)

    page.goto(f"{live_server}/h5/training")
    page.wait_for_url(re.compile(r".*/open\.weixin\.qq\.com/connect/oauth2/authorize.*"))
    page.get_by_label("昵称 Nickname").fill("重庆小刘")
    page.get_by_role("button", name="新建并授权 Create and allow").click()

    # Browsers keep the authorize URL's #wechat_redirect across the redirects, as in WeChat.
    page.wait_for_url(re.compile(re.escape(f"{live_server}/h5/login?next=/h5/training")
                                 + r"(#wechat_redirect)?$"))
    assert page.get_by_text("登录后，当前微信将与您的账号绑定").is_visible()
    page.get_by_label("用户名").fill(trainee.phone)
    page.get_by_label("密码").fill(trainee.password)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{live_server}/h5/training")
    assert page.title() == "课程培训"
