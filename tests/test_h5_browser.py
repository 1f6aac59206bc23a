"""The H5 frame in Chromium at phone size, as a trainee sees it inside WeChat."""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from PIL import Image

pytestmark = pytest.mark.browser

BRAND_GREEN = "rgb(7, 193, 96)"  # WeUI's --weui-BRAND, the colour of the current tab
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
PAGES = ["/h5/", "/h5/training", "/h5/me", "/h5/help", "/h5/plans/public"]

# Font sizes of every element that holds text of its own and is laid out on the page.
TEXT_SIZES_JS = """() => {
  const sizes = [];
  for (const element of document.body.querySelectorAll("*")) {
    const ownText = [...element.childNodes].some(
      (node) => node.nodeType === Node.TEXT_NODE && node.textContent.trim());
    const box = element.getBoundingClientRect();
    if (ownText && box.width > 0 && box.height > 0) {
      sizes.push([element.textContent.trim().slice(0, 20),
                  parseFloat(getComputedStyle(element).fontSize)]);
    }
  }
  return sizes;
}"""


@pytest.fixture(autouse=True)
def logged_in(page, app, live_server):
    """课程培训 and 我的 need a login: the phone's browser holds a trainee's session."""
    from tests import factories
    from wx_app.extensions import db

    with app.app_context():
        trainee = factories.trainee()
        db.session.commit()
        cookie = factories.session_cookie(trainee)
    page.context.add_cookies([{"name": app.config["SESSION_COOKIE_NAME"], "value": cookie,
                               "url": live_server}])
    return trainee


def open_page(page, live_server, path):
    response = page.goto(live_server + path)
    page.wait_for_load_state("load")
    return response


@pytest.mark.parametrize("path", PAGES)
def test_page_fits_a_375px_phone_with_readable_text(page, live_server, path):
    """Does the page fit 375 px without sideways scrolling, with no text under 14 px?"""
    open_page(page, live_server, path)

    assert page.evaluate("document.scrollingElement.scrollWidth") <= 375
    body_size = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    assert body_size >= 14
    small = [(text, size) for text, size in page.evaluate(TEXT_SIZES_JS) if size < 14]
    assert small == []


@pytest.mark.parametrize("path, current", [("/h5/", "在线学习中心"), ("/h5/training", "课程培训"),
                                           ("/h5/me", "我的"), ("/h5/help", "我的")])
def test_bottom_bar_shows_three_tabs_and_lights_the_current_one(page, live_server, path,
                                                                current):
    """Is the bar at the bottom of the screen with the three tabs, only the current one green?"""
    open_page(page, live_server, path)
    bar = page.locator("nav.wx-tabbar")
    labels = bar.locator(".weui-tabbar__label")

    assert labels.all_inner_texts() == ["在线学习中心", "课程培训", "我的"]
    box = bar.bounding_box()
    assert box["y"] + box["height"] == pytest.approx(812, abs=1)
    colours = {label.inner_text(): label.evaluate("node => getComputedStyle(node).color")
               for label in labels.all()}
    assert colours.pop(current) == BRAND_GREEN
    assert BRAND_GREEN not in colours.values()
    assert bar.locator("[aria-current=page]").inner_text().strip() == current


def test_bottom_bar_leaves_the_last_content_visible(page, live_server):
    """Can the end of a long page be scrolled above the fixed bar?"""
    open_page(page, live_server, "/h5/help")
    page.evaluate("window.scrollTo(0, document.scrollingElement.scrollHeight)")

    last = page.locator(".wx-qq").last.bounding_box()
    bar = page.locator("nav.wx-tabbar").bounding_box()
    assert last["y"] + last["height"] <= bar["y"]


def test_tabs_navigate(page, live_server):
    """Does tapping 课程培训 and then 我的 open those pages?"""
    open_page(page, live_server, "/h5/")

    page.get_by_role("link", name="课程培训").click()
    page.wait_for_url(live_server + "/h5/training")
    page.locator("nav.wx-tabbar").get_by_role("link", name="我的").click()
    page.wait_for_url(live_server + "/h5/me")
    assert page.title() == "我的"


def test_help_numbers_are_tel_links(page, live_server):
    """Can a trainee dial both hotlines from 帮助, and read both QQ groups?"""
    open_page(page, live_server, "/h5/help")

    hotline = page.locator('a[href="tel:4000239229"]')
    technical = page.locator('a[href="tel:4006187500"]')
    assert hotline.is_visible() and "400-023-9229" in hotline.inner_text()
    assert "按1：账号注册、登录、证书问题" in hotline.inner_text()
    assert "按2：政策咨询" in hotline.inner_text()
    assert technical.is_visible() and "400-618-7500" in technical.inner_text()
    assert page.get_by_text("729972484").is_visible()
    assert page.get_by_text("701846858").is_visible()


@pytest.mark.parametrize("path", PAGES + ["/h5/nonexistent"])
def test_page_loads_nothing_from_elsewhere(page, live_server, path):
    """Does every request the page makes go to the app itself, and succeed?"""
    origin = urlsplit(live_server)
    urls, failures = [], []
    page.on("request", lambda request: urls.append(request.url))
    page.on("requestfailed", lambda request: failures.append(request.url))

    open_page(page, live_server, path)

    foreign = [url for url in urls
               if urlsplit(url).scheme != "data" and urlsplit(url)[:2] != origin[:2]]
    assert foreign == []
    assert failures == []
    assert len(urls) == 3  # the page and its two stylesheets


def test_missing_page_is_chinese(page, live_server):
    """Does a wrong address show the Chinese 404 page with 返回首页 and the hotline?"""
    response = open_page(page, live_server, "/h5/nonexistent")

    assert response.status == 404
    assert page.title() == "页面不存在"
    assert page.locator("h1").inner_text() == "您访问的页面不存在。"
    assert page.locator('a[href="tel:4000239229"]').is_visible()
    page.get_by_role("link", name="返回首页").click()
    page.wait_for_url(live_server + "/h5/")


def test_flashed_success_fades_away(page, live_server, app, logged_in):
    """Does a success toast disappear by itself without blocking taps?"""
    # A flash is kept in the server-side session: store one with the trainee's login.
    from tests import factories

    with app.app_context():
        cookie = factories.session_cookie(logged_in, extra={"_flashes": [("success", "支付成功")]})
    page.context.add_cookies([{"name": app.config["SESSION_COOKIE_NAME"], "value": cookie,
                               "url": live_server}])

    open_page(page, live_server, "/h5/")
    toast = page.locator(".wx-toast")

    assert toast.inner_text() == "支付成功"
    assert toast.evaluate("node => getComputedStyle(node).pointerEvents") == "none"
    toast.wait_for(state="hidden", timeout=5_000)


@pytest.mark.parametrize("path, name", [("/h5/", "home"), ("/h5/help", "help")])
def test_screenshot(page, live_server, path, name):
    """Keep a phone-sized picture of the page in test-artifacts/screenshots/ for the docs."""
    open_page(page, live_server, path)
    shot = Image.open(io.BytesIO(page.screenshot()))

    # 256 colours keep text and WeUI's greens crisp at a third of the size.
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target = SCREENSHOTS / f"{name}.png"
    shot.quantize(colors=256).save(target, optimize=True)
    assert shot.size == (750, 1624)
    assert 10_000 < target.stat().st_size < 150_000
