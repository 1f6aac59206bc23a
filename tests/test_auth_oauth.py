"""WeChat OAuth (网页授权) against the sandbox, over real HTTP: the round trip, the binding,
and every way a return can be wrong."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urljoin, urlsplit

import requests
import sqlalchemy as sa

from tests.auth_support import account, csrf_from
from tests.conftest import WECHAT_USER_AGENT
from wx_app import store
from wx_app.extensions import db
from wx_app.models import WechatBinding

PHONE_BROWSER = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 "
                 "(KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36")


def wechat_browser() -> requests.Session:
    browser = requests.Session()
    browser.headers["User-Agent"] = WECHAT_USER_AGENT
    return browser


def new_wechat_user(sandbox_url: str, nickname: str = "重庆小李") -> str:
    answer = requests.post(f"{sandbox_url}/sandbox/api/users",
                           json={"nickname": nickname, "subscribed": True}, timeout=5)
    return answer.json()["openid"]


def follow(browser: requests.Session, live_server: str, response) -> requests.Response:
    """The next hop of a redirect answered by the app."""
    return browser.get(urljoin(live_server, response.headers["Location"]),
                       allow_redirects=False, timeout=10)


def to_authorize_page(browser, live_server: str, path: str) -> str:
    """Open `path` without a session; returns the authorize URL the app sent the browser to."""
    first = browser.get(live_server + path, allow_redirects=False, timeout=10)
    assert first.status_code == 302
    assert first.headers["Location"].startswith("/h5/oauth/start?")
    start = follow(browser, live_server, first)
    assert start.status_code == 302
    return start.headers["Location"]


def consent(sandbox_url: str, authorize_url: str, openid: str, state: str | None = None) -> str:
    """The sandbox user `openid` consents; returns where WeChat sends the browser back."""
    query = parse_qs(urlsplit(authorize_url).query)
    answer = requests.post(f"{sandbox_url}/sandbox/api/oauth/consent", timeout=5, json={
        "openid": openid, "redirect_uri": query["redirect_uri"][0],
        "state": query["state"][0] if state is None else state})
    assert answer.status_code == 200, answer.text
    return answer.json()["location"]


def binding_of(app, openid: str) -> WechatBinding | None:
    with app.app_context():
        return db.session.scalar(sa.select(WechatBinding).where(WechatBinding.openid == openid))


# --- the round trip --------------------------------------------------------------------------

def test_first_visit_binds_at_login_and_the_next_visit_logs_straight_in(app, live_server,
                                                                        sandbox_url):
    """From WeChat without a session: authorize (snsapi_base) → callback → 登录 binds the
    openid → and a later visit from a new browser session is logged in with no form?"""
    trainee = account(app)
    openid = new_wechat_user(sandbox_url)
    browser = wechat_browser()

    authorize_url = to_authorize_page(browser, live_server, "/h5/training")
    parts = urlsplit(authorize_url)
    query = parse_qs(parts.query)
    assert authorize_url.startswith(f"{sandbox_url}/open.weixin.qq.com/connect/oauth2/authorize?")
    assert parts.fragment == "wechat_redirect"
    assert query["scope"] == ["snsapi_base"]
    assert query["appid"] == [app.config["WECHAT_APPID"]]
    assert query["redirect_uri"] == [f"{live_server}/h5/oauth/callback"]
    assert len(query["state"][0]) >= 24

    back = browser.get(consent(sandbox_url, authorize_url, openid), allow_redirects=False)
    assert back.status_code == 302
    assert back.headers["Location"] == "/h5/login?next=/h5/training"
    login_page = follow(browser, live_server, back)
    assert "登录后，当前微信将与您的账号绑定" in login_page.text
    assert binding_of(app, openid) is None

    logged_in = browser.post(f"{live_server}/h5/login", allow_redirects=False, data={
        "username": trainee.id_number, "password": trainee.password, "next": "/h5/training",
        "csrf_token": csrf_from(login_page.text)})
    assert logged_in.headers["Location"] == "/h5/training"
    assert follow(browser, live_server, logged_in).status_code == 200
    binding = binding_of(app, openid)
    assert binding.trainee_id == trainee.id and binding.bound_at is not None

    again = wechat_browser()
    authorize_url = to_authorize_page(again, live_server, "/h5/me")
    back = again.get(consent(sandbox_url, authorize_url, openid), allow_redirects=False)
    assert back.headers["Location"] == "/h5/me"
    me = follow(again, live_server, back)
    assert me.status_code == 200
    assert "张三，您好" in me.text


def test_home_page_starts_oauth_inside_wechat_only(app, live_server):
    """Does /h5/ start OAuth for WeChat without a session, while a phone browser sees it?"""
    inside = wechat_browser().get(f"{live_server}/h5/", allow_redirects=False)
    outside = requests.get(f"{live_server}/h5/", headers={"User-Agent": PHONE_BROWSER},
                           allow_redirects=False)

    assert inside.status_code == 302
    assert inside.headers["Location"] == "/h5/oauth/start?next=/h5/"
    assert outside.status_code == 200
    assert "在线学习中心" in outside.text


def test_outside_wechat_the_login_page_comes_directly(live_server):
    """Does a phone or desktop browser go straight to 登录, with no OAuth?"""
    response = requests.get(f"{live_server}/h5/training", allow_redirects=False,
                            headers={"User-Agent": PHONE_BROWSER})

    assert response.status_code == 302
    assert response.headers["Location"] == "/h5/login?next=/h5/training"


def test_unbound_openid_is_not_sent_round_again(app, live_server, sandbox_url):
    """After an unbound return, do later pages go to 登录 instead of WeChat again?"""
    browser = wechat_browser()
    authorize_url = to_authorize_page(browser, live_server, "/h5/training")
    browser.get(consent(sandbox_url, authorize_url, new_wechat_user(sandbox_url)),
                allow_redirects=False)

    home = browser.get(f"{live_server}/h5/", allow_redirects=False)
    profile = browser.get(f"{live_server}/h5/profile", allow_redirects=False)

    assert home.status_code == 200
    assert profile.headers["Location"] == "/h5/login?next=/h5/profile"


def test_registration_binds_the_openid_too(app, live_server, sandbox_url):
    """Is an unbound WeChat user bound when they register instead of logging in?"""
    from tests import factories
    from tests.test_auth_register import valid_form

    with app.app_context():
        factories.organisation()
        db.session.commit()
    openid = new_wechat_user(sandbox_url)
    browser = wechat_browser()
    authorize_url = to_authorize_page(browser, live_server, "/h5/training")
    browser.get(consent(sandbox_url, authorize_url, openid), allow_redirects=False)
    page = browser.get(f"{live_server}/h5/register?next=/h5/training")

    done = browser.post(f"{live_server}/h5/register", allow_redirects=False,
                        data={**valid_form(), "next": "/h5/training",
                              "csrf_token": csrf_from(page.text)})

    assert done.headers["Location"] == "/h5/training"
    assert binding_of(app, openid).trainee_id is not None


def test_bound_trainee_can_unbind_and_is_no_longer_logged_in_by_wechat(app, live_server,
                                                                       sandbox_url):
    """After 解除微信绑定 on 个人信息, does this WeChat user meet the login page again?"""
    trainee = account(app)
    openid = new_wechat_user(sandbox_url)
    browser = wechat_browser()
    authorize_url = to_authorize_page(browser, live_server, "/h5/profile")
    browser.get(consent(sandbox_url, authorize_url, openid), allow_redirects=False)
    login_page = browser.get(f"{live_server}/h5/login?next=/h5/profile")
    browser.post(f"{live_server}/h5/login", data={
        "username": trainee.phone, "password": trainee.password, "next": "/h5/profile",
        "csrf_token": csrf_from(login_page.text)})
    profile = browser.get(f"{live_server}/h5/profile")
    assert "已绑定微信" in profile.text

    browser.post(f"{live_server}/h5/profile/unbind-wechat",
                 data={"csrf_token": csrf_from(profile.text)})

    assert binding_of(app, openid).trainee_id is None
    assert "未绑定微信" in browser.get(f"{live_server}/h5/profile").text
    fresh = wechat_browser()
    authorize_url = to_authorize_page(fresh, live_server, "/h5/profile")
    back = fresh.get(consent(sandbox_url, authorize_url, openid), allow_redirects=False)
    assert back.headers["Location"] == "/h5/login?next=/h5/profile"


# --- returns that cannot log anyone in -------------------------------------------------------

def assert_friendly_failure(response, status: int = 400) -> None:
    assert response.status_code == status
    assert "微信授权未成功" in response.text
    assert ">重新进入</a>" in response.text and 'href="/h5/oauth/start?next=' in response.text
    assert "Traceback" not in response.text and "WeChat" not in response.text


def test_a_reused_code_gives_the_friendly_page(app, live_server, sandbox_url):
    """Is a code WeChat already exchanged refused with a page and a button to try again?"""
    account(app)
    openid = new_wechat_user(sandbox_url)
    browser = wechat_browser()
    first = consent(sandbox_url, to_authorize_page(browser, live_server, "/h5/training"), openid)
    browser.get(first, allow_redirects=False)
    used_code = parse_qs(urlsplit(first).query)["code"][0]

    other = wechat_browser()
    authorize_url = to_authorize_page(other, live_server, "/h5/training")
    state = parse_qs(urlsplit(authorize_url).query)["state"][0]
    replay = other.get(f"{live_server}/h5/oauth/callback",
                       params={"code": used_code, "state": state})

    assert_friendly_failure(replay)
    assert "/h5/oauth/start?next=/h5/training" in replay.text
    assert other.get(f"{live_server}/h5/training", allow_redirects=False).status_code == 302


def test_an_invalid_code_gives_the_friendly_page(app, live_server, sandbox_url):
    """Is a code WeChat never issued refused with the same page?"""
    browser = wechat_browser()
    authorize_url = to_authorize_page(browser, live_server, "/h5/training")
    state = parse_qs(urlsplit(authorize_url).query)["state"][0]

    response = browser.get(f"{live_server}/h5/oauth/callback",
                           params={"code": "not-a-code", "state": state})

    assert_friendly_failure(response)


def test_a_wrong_state_gives_the_friendly_page(app, live_server, sandbox_url):
    """Is a return whose state this browser never asked for refused, without exchanging
    the code?"""
    openid = new_wechat_user(sandbox_url)
    browser = wechat_browser()
    authorize_url = to_authorize_page(browser, live_server, "/h5/training")
    forged = consent(sandbox_url, authorize_url, openid, state="forged-state-0123456789abcdef")

    response = browser.get(forged)

    assert_friendly_failure(response)
    assert "不是为当前页面发起的" in response.text
    code = parse_qs(urlsplit(forged).query)["code"][0]
    exchange = requests.get(f"{sandbox_url}/api.weixin.qq.com/sns/oauth2/access_token", params={
        "appid": app.config["WECHAT_APPID"], "secret": app.config["WECHAT_SECRET"],
        "code": code, "grant_type": "authorization_code"})
    assert "openid" in exchange.json()  # still unused: the app never exchanged it


def test_a_state_from_another_browser_is_refused(app, live_server, sandbox_url):
    """Is a return carried into another browser (another session) refused?"""
    openid = new_wechat_user(sandbox_url)
    victim, attacker = wechat_browser(), wechat_browser()
    location = consent(sandbox_url, to_authorize_page(attacker, live_server, "/h5/"), openid)

    response = victim.get(location)

    assert_friendly_failure(response)


def test_a_state_is_single_use(app, live_server, sandbox_url):
    """Is the same return (state and code) refused the second time?"""
    account(app)
    openid = new_wechat_user(sandbox_url)
    browser = wechat_browser()
    location = consent(sandbox_url, to_authorize_page(browser, live_server, "/h5/"), openid)
    browser.get(location, allow_redirects=False)

    assert_friendly_failure(browser.get(location))


def test_an_expired_state_gives_the_friendly_page(app, live_server, sandbox_url):
    """Is a return after the state's few minutes refused with the page?"""
    openid = new_wechat_user(sandbox_url)
    browser = wechat_browser()
    authorize_url = to_authorize_page(browser, live_server, "/h5/training")
    state = parse_qs(urlsplit(authorize_url).query)["state"][0]
    with app.app_context():
        key = store.key("oauth", "state", state)
        assert 290 < store.client().ttl(key) <= 300
        store.client().pexpire(key, 1)  # its five minutes are over
    time.sleep(0.05)

    response = browser.get(consent(sandbox_url, authorize_url, openid))

    assert_friendly_failure(response)
    assert "已失效" in response.text
    assert "/h5/oauth/start?next=/h5/" in response.text


def test_the_retry_button_starts_again(app, live_server, sandbox_url):
    """Does 重新进入 on the failure page lead to WeChat's authorize page again?"""
    browser = wechat_browser()
    failure = browser.get(f"{live_server}/h5/oauth/callback",
                          params={"code": "x", "state": "y"})

    retry = browser.get(f"{live_server}/h5/oauth/start", params={"next": "/h5/"},
                        allow_redirects=False)

    assert_friendly_failure(failure)
    assert retry.headers["Location"].startswith(f"{sandbox_url}/open.weixin.qq.com/")


def test_logging_out_inside_wechat_shows_the_login_page(app, live_server, sandbox_url):
    """After 退出登录 in WeChat, is the next page the login form rather than an automatic
    login by the bound WeChat user, and is the old session id dead?"""
    trainee = account(app)
    openid = new_wechat_user(sandbox_url)
    with app.app_context():
        from wx_app.accounts import bind_openid
        from wx_app.models import Trainee

        bind_openid(db.session.get(Trainee, trainee.id), openid)
        db.session.commit()
    browser = wechat_browser()
    authorize_url = to_authorize_page(browser, live_server, "/h5/profile")
    browser.get(consent(sandbox_url, authorize_url, openid))
    old_sid = browser.cookies["session"]
    profile = browser.get(f"{live_server}/h5/profile")

    browser.post(f"{live_server}/h5/logout", data={"csrf_token": csrf_from(profile.text)})

    assert browser.cookies["session"] != old_sid
    after = browser.get(f"{live_server}/h5/profile", allow_redirects=False)
    assert after.headers["Location"] == "/h5/login?next=/h5/profile"
    stale = wechat_browser()
    stale.cookies.set("session", old_sid)
    assert stale.get(f"{live_server}/h5/profile", allow_redirects=False).headers[
        "Location"].startswith("/h5/oauth/start")
