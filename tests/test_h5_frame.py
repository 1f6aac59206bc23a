"""The H5 frame: the layout, the four pages, the error page and how static files travel."""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

import pytest
from flask import Blueprint

from wx_app import help_contacts
from wx_app.errors import Conflict
from wx_app.static_files import StaticFiles

STATIC = Path(__file__).resolve().parent.parent / "wx_app" / "static"
YEARLY_RULE = "每年不少于90学时，其中公需科目不少于30学时、专业科目不少于60学时"
# The buttons the manual names, in its order (design: the labels trainees look for).
MANUAL_LABELS = (
    "注册", "登录", "忘记密码", "在线学习中心", "专技人员公需科目", "专技人员专业科目",
    "立即购买", "个人购买", "团体购买", "提交订单", "立即申请", "以后申请", "下载错误文件",
    "课程培训", "进入学习", "学分要求", "计划完成度", "我的证书", "打印证书", "完善个人信息",
    "我的发票", "查看发票", "申请开票", "团购订单",
)
TABS = [("/h5/", "在线学习中心"), ("/h5/training", "课程培训"), ("/h5/me", "我的")]


def tab_items(html: str) -> list[tuple[str, str, bool]]:
    """(href, label, current) for each item of the bottom bar, in order."""
    bar = re.search(r'<nav class="weui-tabbar wx-tabbar".*?</nav>', html, re.S).group(0)
    items = re.findall(r'<a class="weui-tabbar__item( weui-bar__item_on)?" href="([^"]+)"'
                       r'(?: aria-current="page")?>.*?weui-tabbar__label">([^<]+)<', bar, re.S)
    return [(href, label, bool(on)) for on, href, label in items]


def version_of(filename: str) -> str:
    return StaticFiles(str(STATIC)).find(filename).version


def stylesheet_urls(html: str) -> list[str]:
    return re.findall(r'<link rel="stylesheet" href="([^"]+)"', html)


# --- pages ---------------------------------------------------------------------------------

@pytest.fixture
def trainee_client(app, client):
    """A test client whose session belongs to a registered trainee."""
    from tests import factories
    from wx_app.extensions import db

    with app.app_context():
        trainee = factories.trainee(name="李文静")
        db.session.commit()
        client.set_cookie(app.config["SESSION_COOKIE_NAME"], factories.session_cookie(trainee))
    return client


@pytest.mark.parametrize("path, current", [
    ("/h5/", "/h5/"), ("/h5/training", "/h5/training"), ("/h5/me", "/h5/me"),
    ("/h5/help", "/h5/me"), ("/h5/plans/public", "/h5/"),
])
def test_every_page_has_the_three_tabs_with_its_own_lit(trainee_client, path, current):
    """Does each page show 在线学习中心, 课程培训 and 我的, lighting the tab it belongs to?"""
    response = trainee_client.get(path)

    assert response.status_code == 200
    items = tab_items(response.text)
    assert [(href, label) for href, label, _ in items] == TABS
    assert [href for href, _, on in items if on] == [current]


def test_layout_is_for_phones_and_loads_only_its_own_files(client):
    """Is the page phone-sized, and does every stylesheet come from the app, versioned?"""
    html = client.get("/h5/").text

    assert ('<meta name="viewport" content="width=device-width, initial-scale=1, '
            'viewport-fit=cover">') in html
    assert '<html lang="zh-CN">' in html
    assert stylesheet_urls(html) == [
        f"/static/weui/weui.min.css?v={version_of('weui/weui.min.css')}",
        f"/static/app.css?v={version_of('app.css')}",
    ]
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html)


def test_home_explains_the_yearly_requirement_and_prices(client):
    """Does 在线学习中心 offer the two kinds of plan with the rule and the letter's prices?"""
    html = client.get("/h5/").text

    assert "<title>在线学习中心</title>" in html
    assert YEARLY_RULE in html
    public = re.search(r'<a class="wx-entry" href="/h5/plans/public">(.*?)</a>', html, re.S)
    professional = re.search(
        r'<a class="wx-entry wx-entry_professional"\s+href="/h5/plans/professional">(.*?)</a>',
        html, re.S)
    assert "专技人员公需科目" in public.group(1) and "33元/人/年" in public.group(1)
    assert "专技人员专业科目" in professional.group(1) and "1.5元/学时" in professional.group(1)


@pytest.mark.parametrize("category, name", [("public", "专技人员公需科目"),
                                            ("professional", "专技人员专业科目")])
def test_plan_entries_lead_to_an_honest_catalogue_page(client, category, name):
    """Does an entry of the home page open its catalogue, saying so while it is empty?"""
    response = client.get(f"/h5/plans/{category}")

    assert response.status_code == 200
    assert name in response.text
    assert "暂无可选的学习计划" in response.text


def test_unknown_plan_category_is_not_found(client):
    """Is a category other than public or professional answered with the 404 page?"""
    response = client.get("/h5/plans/evening")

    assert response.status_code == 404
    assert "您访问的页面不存在" in response.text


@pytest.mark.parametrize("path", ["/h5/training", "/h5/me"])
def test_trainee_pages_ask_to_log_in(client, path):
    """Outside WeChat, do 课程培训 and 我的 send a visitor to 登录 and back afterwards?"""
    response = client.get(path)

    assert response.status_code == 302
    assert response.headers["Location"] == f"/h5/login?next={path}"


def test_training_lists_purchased_plans(trainee_client):
    """Does 课程培训 say where the trainee's purchased plans appear?"""
    html = trainee_client.get("/h5/training").text

    assert "<title>课程培训</title>" in html
    assert "已购买的学习计划会显示在这里" in html


def test_me_lists_the_trainee_entries(trainee_client):
    """Does 我的 greet the trainee and link 我的证书, 我的发票, 团购订单, 个人信息 and 帮助?"""
    html = trainee_client.get("/h5/me").text

    assert "李文静，您好" in html

    links = re.findall(r'<a class="weui-cell weui-cell_access" href="([^"]+)">\s*'
                       r'<div class="weui-cell__bd">\s*<p>([^<]+)</p>', html)
    assert links == [("/h5/certificates", "我的证书"), ("/h5/invoices", "我的发票"),
                     ("/h5/group-orders", "团购订单"), ("/h5/profile", "个人信息"),
                     ("/h5/help", "帮助")]


def test_help_follows_the_manual(client):
    """Does 帮助 name every button the manual tells trainees to press?"""
    html = client.get("/h5/help").text

    for label in MANUAL_LABELS:
        assert f'<span class="wx-key">{label}</span>' in html, label
    assert "每个章节都学完" in html
    assert "档案所在区县" in html
    assert "15 日内可修改 1 次" in html


def test_help_lists_every_contact(client):
    """Does 帮助 show both hotlines as tel: links with their menus, and both QQ groups?"""
    html = client.get("/h5/help").text

    assert re.search(r'href="tel:4000239229">.*?400-023-9229.*?按1：账号注册、登录、证书问题'
                     r'.*?按2：政策咨询', html, re.S)
    assert re.search(r'href="tel:4006187500">.*?学习技术咨询热线.*?400-618-7500', html, re.S)
    assert re.search(r"公需科目咨询QQ群</p>\s*<p[^>]*>729972484<", html)
    assert re.search(r"专业科目咨询QQ群</p>\s*<p[^>]*>701846858<", html)


def test_contacts_read_as_plain_text_for_replies():
    """Do the contacts render as plain lines for a WeChat text reply?"""
    assert help_contacts.as_text().splitlines() == [
        "咨询热线：400-023-9229（按1 账号注册、登录、证书问题；按2 政策咨询）",
        "学习技术咨询热线：400-618-7500（按2 售后服务）",
        "公需科目咨询QQ群：729972484",
        "专业科目咨询QQ群：701846858",
    ]


def test_flashed_messages_show_as_toast_and_tips(trainee_client):
    """Does a success message show as a toast and an error as a red tip that stays?"""
    client = trainee_client
    with client.session_transaction() as session:
        session["_flashes"] = [("success", "支付成功"), ("error", "订单已关闭"),
                               ("message", "请先完善个人信息")]

    html = client.get("/h5/me").text

    assert re.search(r'<div class="weui-toast wx-toast" role="status">.*?支付成功', html, re.S)
    assert ('<div class="weui-toptips weui-toptips_warn wx-tips" role="alert">订单已关闭</div>'
            in html)
    assert ('<div class="weui-toptips wx-tips wx-tips_info" role="status">请先完善个人信息</div>'
            in html)
    assert "支付成功" not in client.get("/h5/me").text


# --- errors --------------------------------------------------------------------------------

def test_missing_page_is_chinese_with_help(client):
    """Does an unknown address under /h5/ answer 404 in Chinese with 返回首页 and the hotline?"""
    response = client.get("/h5/nonexistent")

    assert response.status_code == 404
    assert response.mimetype == "text/html"
    html = response.text
    assert "<title>页面不存在</title>" in html
    assert "您访问的页面不存在。" in html
    assert '<a class="weui-btn weui-btn_primary" href="/h5/">返回首页</a>' in html
    assert 'href="tel:4000239229"' in html and "400-023-9229" in html


@pytest.fixture(scope="module")
def failing_client(app, app_settings):
    """A client of a second app with routes that fail, as later handlers may."""
    from wx_app import create_app

    failing = Blueprint("failing", __name__, url_prefix="/h5/failing")

    @failing.get("/crash")
    def crash():
        raise RuntimeError("a bug in a handler")

    @failing.get("/conflict")
    def conflict():
        raise Conflict("该订单已支付，请勿重复提交。")

    application = create_app(app_settings)
    application.register_blueprint(failing)
    return application.test_client()


def test_unexpected_error_is_chinese_with_a_reference(failing_client):
    """Does a crash answer 500 in Chinese, with 返回首页, the hotline and the request id?"""
    response = failing_client.get("/h5/failing/crash", headers={"X-Request-Id": "req-0123456789"})

    assert response.status_code == 500
    html = response.text
    assert "系统繁忙，请稍后重试。" in html
    assert "咨询时请告知编号：req-0123456789" in html
    assert "返回首页" in html and "400-023-9229" in html
    assert "RuntimeError" not in html and "Traceback" not in html


def test_domain_error_shows_its_message(failing_client):
    """Does a refusal from the domain show its own Chinese message with its status?"""
    response = failing_client.get("/h5/failing/conflict")

    assert response.status_code == 409
    assert "该订单已支付，请勿重复提交。" in response.text
    assert "返回首页" in response.text
    assert "咨询时请告知编号" not in response.text


# --- static files --------------------------------------------------------------------------

def test_stylesheets_travel_gzipped_and_are_cached_for_a_year(client):
    """Is each stylesheet of a page sent gzip-encoded, cacheable for a year, and intact?"""
    for url in stylesheet_urls(client.get("/h5/").text):
        response = client.get(url, headers={"Accept-Encoding": "gzip, deflate, br"})

        assert response.status_code == 200
        assert response.headers["Content-Encoding"] == "gzip"
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert "Accept-Encoding" in response.headers["Vary"]
        assert response.mimetype == "text/css"
        path = STATIC / url.removeprefix("/static/").split("?")[0]
        assert gzip.decompress(response.data) == path.read_bytes()


def test_weui_goes_over_the_wire_in_a_fraction_of_its_size(client):
    """Does WeUI's 188 KB stylesheet travel as less than 30 KB?"""
    url = stylesheet_urls(client.get("/h5/").text)[0]

    response = client.get(url, headers={"Accept-Encoding": "gzip"})

    assert (STATIC / "weui" / "weui.min.css").stat().st_size > 180_000
    assert int(response.headers["Content-Length"]) < 30_000


def test_client_without_gzip_gets_the_plain_file(client):
    """Does a client that does not accept gzip get the file as it is?"""
    url = stylesheet_urls(client.get("/h5/").text)[1]

    response = client.get(url, headers={"Accept-Encoding": "identity"})

    assert "Content-Encoding" not in response.headers
    assert response.data == (STATIC / "app.css").read_bytes()
    assert "Accept-Encoding" in response.headers["Vary"]


def test_unchanged_file_is_not_sent_again(client):
    """Does a revalidation with the ETag of the gzip encoding answer 304 without a body?"""
    url = stylesheet_urls(client.get("/h5/").text)[0]
    first = client.get(url, headers={"Accept-Encoding": "gzip"})

    again = client.get(url, headers={"Accept-Encoding": "gzip",
                                     "If-None-Match": first.headers["ETag"]})

    assert again.status_code == 304
    assert again.data == b""


def test_url_without_the_current_version_is_revalidated(client):
    """Is a stale or missing version served, but never cached without revalidation?"""
    for url in ("/static/app.css", "/static/app.css?v=0000000000"):
        response = client.get(url)

        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "no-cache"


def test_other_files_are_versioned_and_cached_too(client):
    """Is a binary file (a video) served as it is, with ranges and the same caching?"""
    media = sorted((STATIC / "media").glob("*.mp4")) if (STATIC / "media").is_dir() else []
    if not media:
        pytest.skip("no binary file in the static folder")
    name = f"media/{media[0].name}"
    version = version_of(name)

    with client.get(f"/static/{name}?v={version}", headers={"Range": "bytes=0-99"}) as response:
        assert response.status_code == 206
        assert len(response.data) == 100
        assert "Content-Encoding" not in response.headers
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"


@pytest.mark.parametrize("path", ["/static/nothing.css", "/static/../wsgi.py",
                                  "/static/weui/../../__init__.py"])
def test_missing_or_outside_file_is_not_found(client, path):
    """Is a missing file, or a path leading out of the static folder, answered with 404?"""
    assert client.get(path).status_code == 404


def test_a_changed_file_gets_a_new_version(tmp_path):
    """Does editing a file change its version, so that its URL changes too?"""
    css = tmp_path / "site.css"
    css.write_text("body { color: red; }\n" * 100)
    files = StaticFiles(str(tmp_path))
    before = files.find("site.css")

    css.write_text("body { color: blue; }\n" * 100)
    os.utime(css, ns=(before.mtime_ns + 1_000_000_000, before.mtime_ns + 1_000_000_000))
    after = files.find("site.css")

    assert after.version != before.version
    assert gzip.decompress(after.gzipped) == css.read_bytes()
