"""The WeChat sandbox speaks WeChat's protocols over real HTTP, as wechatpy expects them."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from wechatpy import WeChatClient, WeChatOAuth
from wechatpy.exceptions import WeChatClientException, WeChatOAuthException

import config

ROOT = Path(__file__).resolve().parent.parent
APPID = config.SANDBOX_APPID
SECRET = config.SANDBOX_SECRET
#: Seeded sandbox users (see wx_app/sandbox/state.py).
ZHANG_WEI = "oSbxZ3k9QvR2mT7wYpL4cN8dF1aE"
LI_XIUYING = "oSbxH5t2WnJ8rK4vXqD6sB9mC3gA"
WANG_LEI = "oSbxM7p4LcF1yN6zRbG3hT8kV2dQ"
CALLBACK = "http://127.0.0.1:5000/h5/oauth/callback?from=menu"


class SandboxClient(WeChatClient):
    """wechatpy's client against the sandbox (its token URL is fixed in wechatpy, so set here)."""

    def __init__(self, origin: str, secret: str = SECRET, appid: str = APPID, **kwargs):
        super().__init__(appid, secret, **kwargs)
        self.API_BASE_URL = f"{origin}/api.weixin.qq.com/cgi-bin/"

    def fetch_access_token(self):
        return self._fetch_access_token(
            url=self.API_BASE_URL + "token",
            params={"grant_type": "client_credential", "appid": self.appid,
                    "secret": self.secret})


class StableTokenClient(SandboxClient):
    """The same client, taking its token from cgi-bin/stable_token."""

    force_refresh = False

    def fetch_access_token(self):
        response = self._http.post(self.API_BASE_URL + "stable_token", json={
            "grant_type": "client_credential", "appid": self.appid, "secret": self.secret,
            "force_refresh": self.force_refresh})
        result = response.json()
        if result.get("errcode"):
            raise WeChatClientException(result["errcode"], result["errmsg"], client=self)
        self.session.set(self.access_token_key, result["access_token"], result["expires_in"])
        self.expires_at = int(time.time()) + result["expires_in"]
        return result


class FormReader(HTMLParser):
    """The forms of a page: action, fields (name → value) and radio choices."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attributes.get("action", ""), "fields": {},
                               "choices": {}})
        elif tag == "input" and self.forms and attributes.get("name"):
            form = self.forms[-1]
            if attributes.get("type") == "radio":
                form["choices"].setdefault(attributes["name"], []).append(attributes["value"])
            elif attributes.get("type") != "checkbox" or "checked" in attributes:
                form["fields"][attributes["name"]] = attributes.get("value", "")


def read_forms(html: str) -> list[dict]:
    reader = FormReader()
    reader.feed(html)
    return reader.forms


@pytest.fixture
def http():
    with requests.Session() as session:
        yield session


@pytest.fixture
def wechat(sandbox_url):
    client = SandboxClient(sandbox_url)
    yield client
    client._http.close()


@pytest.fixture
def oauth(sandbox_url):
    """wechatpy's OAuth helper with both base URLs on the sandbox, asking for snsapi_userinfo."""
    helper = WeChatOAuth(APPID, SECRET, CALLBACK, scope="snsapi_userinfo", state="s7Kq2")
    helper.API_BASE_URL = f"{sandbox_url}/api.weixin.qq.com/"
    helper.OAUTH_BASE_URL = f"{sandbox_url}/open.weixin.qq.com/connect/"
    yield helper
    helper._http.close()


def stats(http, sandbox_url) -> dict:
    return http.get(f"{sandbox_url}/sandbox/api/stats").json()


def consent_with_form(http, authorize_url: str, openid: str | None = None,
                      nickname: str | None = None, action: str = "allow") -> dict:
    """Open the authorize page, submit its consent (or create-user) form; the redirect's query."""
    page = http.get(authorize_url)
    assert page.status_code == 200
    consent_form, create_form = read_forms(page.text)
    if nickname is not None:
        form, data = create_form, {**create_form["fields"], "nickname": nickname}
    else:
        assert openid in consent_form["choices"]["openid"]
        form, data = consent_form, {**consent_form["fields"], "openid": openid, "action": action}
    answer = http.post(urljoin(page.url, form["action"]), data=data, allow_redirects=False)
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith("http://127.0.0.1:5000/h5/oauth/callback?from=menu&")
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def consent_with_api(http, sandbox_url, openid: str, scope: str) -> str:
    answer = http.post(f"{sandbox_url}/sandbox/api/oauth/consent", json={
        "openid": openid, "redirect_uri": CALLBACK, "state": "api", "scope": scope})
    assert answer.status_code == 200
    return parse_qs(urlsplit(answer.json()["location"]).query)["code"][0]


# --- server ----------------------------------------------------------------------------------

def test_health_and_index_page(http, sandbox_url):
    """Does the sandbox answer its health check and describe what it offers at /sandbox/?"""
    assert http.get(f"{sandbox_url}/sandbox/api/health").json() == {"ok": True}

    index = http.get(f"{sandbox_url}/sandbox/")

    assert index.status_code == 200
    assert "微信沙箱" in index.text and "/cgi-bin/stable_token" in index.text
    assert "李秀英🌸" in index.text


def test_unknown_wechat_endpoint_answers_invalid_url(wechat):
    """Does an endpoint the sandbox lacks answer WeChat's 40066, naming the missing path?"""
    with pytest.raises(WeChatClientException) as refused:
        wechat.get("no/such/api")

    assert refused.value.errcode == 40066
    assert "/cgi-bin/no/such/api" in refused.value.errmsg


# --- access tokens -----------------------------------------------------------------------------

def test_wechatpy_client_fetches_and_uses_access_token(http, sandbox_url, wechat):
    """Can wechatpy fetch an access token from the sandbox and call an API with it?"""
    before = stats(http, sandbox_url)["token_fetches"]

    token = wechat.fetch_access_token()
    follower = wechat.user.get(ZHANG_WEI)

    assert token["expires_in"] == 7200 and len(token["access_token"]) > 64
    assert follower["subscribe"] == 1 and follower["openid"] == ZHANG_WEI
    assert stats(http, sandbox_url)["token_fetches"] == before + 1


def test_stable_token_stays_until_forced(sandbox_url):
    """Does stable_token give the same token while valid, and a new one on force_refresh?"""
    client = StableTokenClient(sandbox_url, auto_retry=False)
    first = client.fetch_access_token()["access_token"]
    again = client.fetch_access_token()["access_token"]

    client.force_refresh = True
    forced = client.fetch_access_token()["access_token"]

    assert again == first and forced != first
    assert client.user.get(ZHANG_WEI)["subscribe"] == 1
    old = SandboxClient(sandbox_url, access_token=first, auto_retry=False)
    with pytest.raises(WeChatClientException) as refused:
        old.user.get(ZHANG_WEI)
    assert refused.value.errcode == 40001
    client._http.close()
    old._http.close()


@pytest.mark.parametrize(("appid", "secret", "errcode"), [
    (APPID, "0" * 32, 40001),        # well-formed but wrong AppSecret
    (APPID, "not-a-secret", 40125),  # malformed AppSecret
    ("wx0000000000000000", SECRET, 40013),
], ids=["wrong-secret", "malformed-secret", "wrong-appid"])
def test_wrong_credentials_get_wechat_errcodes(sandbox_url, appid, secret, errcode):
    """Does a wrong AppID or AppSecret make wechatpy raise with WeChat's errcode?"""
    client = SandboxClient(sandbox_url, appid=appid, secret=secret)

    with pytest.raises(WeChatClientException) as refused:
        client.fetch_access_token()

    assert refused.value.errcode == errcode
    assert "rid: " in refused.value.errmsg
    client._http.close()


def test_missing_grant_type_is_refused(http, sandbox_url):
    """Is a token request without grant_type refused with 40002, for both token endpoints?"""
    plain = http.get(f"{sandbox_url}/api.weixin.qq.com/cgi-bin/token",
                     params={"appid": APPID, "secret": SECRET}).json()
    stable = http.post(f"{sandbox_url}/api.weixin.qq.com/cgi-bin/stable_token",
                       json={"appid": APPID, "secret": SECRET}).json()

    assert plain["errcode"] == 40002 and plain["errmsg"].startswith("invalid grant_type")
    assert stable["errcode"] == 40002


def test_expired_tokens_answer_42001_and_wechatpy_refetches(http, sandbox_url):
    """After the admin expires every token, is an old one refused with 42001, and can a client
    that refreshes and retries carry on?"""
    strict = SandboxClient(sandbox_url, auto_retry=False)
    token = strict.fetch_access_token()["access_token"]

    expired = http.post(f"{sandbox_url}/sandbox/api/tokens/expire").json()
    with pytest.raises(WeChatClientException) as refused:
        strict.user.get(ZHANG_WEI)
    fetches = stats(http, sandbox_url)["token_fetches"]
    retrying = SandboxClient(sandbox_url, access_token=token, auto_retry=True)
    follower = retrying.user.get(ZHANG_WEI)

    assert expired["expired"] >= 1
    assert refused.value.errcode == 42001
    assert follower["openid"] == ZHANG_WEI
    assert stats(http, sandbox_url)["token_fetches"] == fetches + 1
    strict._http.close()
    retrying._http.close()


def test_user_info_tells_who_follows(wechat):
    """Does cgi-bin/user/info say who follows the account, without nickname, as WeChat now does?"""
    follower = wechat.user.get(LI_XIUYING)
    stranger = wechat.user.get(WANG_LEI)

    assert follower["subscribe"] == 1 and follower["subscribe_time"] > 0
    assert "nickname" not in follower and follower["unionid"].startswith("o")
    assert stranger == {"subscribe": 0, "openid": WANG_LEI, "unionid": stranger["unionid"]}
    with pytest.raises(WeChatClientException) as refused:
        wechat.user.get("oNoSuchUser00000000000000000")
    assert refused.value.errcode == 40003


# --- OAuth -------------------------------------------------------------------------------------

def test_oauth_consent_page_gives_code_for_chosen_user(http, oauth):
    """Can a person pick a sandbox user on the authorize page, and does the app then get that
    user's openid and emoji nickname through wechatpy?"""
    redirect = consent_with_form(http, oauth.authorize_url, openid=LI_XIUYING)

    token = oauth.fetch_access_token(redirect["code"])
    profile = oauth.get_user_info()

    assert redirect["state"] == "s7Kq2"
    assert token["openid"] == LI_XIUYING and token["scope"] == "snsapi_userinfo"
    assert token["unionid"] and token["refresh_token"] and token["expires_in"] == 7200
    assert profile["nickname"] == "李秀英🌸"
    assert profile["openid"] == LI_XIUYING and profile["privilege"] == []
    assert http.get(profile["headimgurl"]).headers["Content-Type"].startswith("image/svg+xml")


def test_authorize_page_is_phone_sized(http, oauth):
    """Is the authorize page laid out for a phone, with labelled choices for every user?"""
    page = http.get(oauth.authorize_url).text

    assert 'name="viewport" content="width=device-width' in page
    assert "获得你的公开信息" in page and "拒绝" in page
    for openid in (ZHANG_WEI, LI_XIUYING, WANG_LEI):
        assert f'value="{openid}"' in page


def test_code_is_single_use(http, oauth):
    """Is a code refused with 40163 when the app exchanges it a second time?"""
    code = consent_with_form(http, oauth.authorize_url, openid=ZHANG_WEI)["code"]
    oauth.fetch_access_token(code)

    with pytest.raises(WeChatOAuthException) as refused:
        oauth.fetch_access_token(code)

    assert refused.value.errcode == 40163
    assert refused.value.errmsg.startswith("code been used")


def test_unknown_code_is_refused(oauth):
    """Is a code the sandbox never issued refused with 40029?"""
    with pytest.raises(WeChatOAuthException) as refused:
        oauth.fetch_access_token("0815NoSuchCode00000000000000000")

    assert refused.value.errcode == 40029


def test_code_expires_after_five_minutes(http, sandbox_url, oauth):
    """Is a code refused with 40029 once five minutes have passed on the sandbox's clock?"""
    code = consent_with_api(http, sandbox_url, ZHANG_WEI, "snsapi_userinfo")

    http.post(f"{sandbox_url}/sandbox/api/clock", json={"advance_seconds": 301})
    with pytest.raises(WeChatOAuthException) as refused:
        oauth.fetch_access_token(code)

    assert refused.value.errcode == 40029


def test_snsapi_base_gives_openid_but_not_profile(http, sandbox_url, oauth):
    """Does a snsapi_base consent give the openid, and refuse sns/userinfo with 48001?"""
    code = consent_with_api(http, sandbox_url, ZHANG_WEI, "snsapi_base")

    token = oauth.fetch_access_token(code)
    with pytest.raises(WeChatOAuthException) as refused:
        oauth.get_user_info()

    assert token["openid"] == ZHANG_WEI and token["scope"] == "snsapi_base"
    assert refused.value.errcode == 48001


def test_new_user_created_on_authorize_page(http, sandbox_url, oauth):
    """Can a person create a new WeChat user on the authorize page and consent as them?"""
    redirect = consent_with_form(http, oauth.authorize_url, nickname="山城小李😀")

    oauth.fetch_access_token(redirect["code"])
    profile = oauth.get_user_info()
    users = http.get(f"{sandbox_url}/sandbox/api/users").json()["users"]

    assert profile["nickname"] == "山城小李😀"
    assert {"openid": profile["openid"], "nickname": "山城小李😀"}.items() <= next(
        user for user in users if user["openid"] == profile["openid"]).items()


def test_refusing_returns_state_without_code(http, oauth):
    """Does refusing consent send the browser back with the state and no code, as WeChat does?"""
    redirect = consent_with_form(http, oauth.authorize_url, openid=ZHANG_WEI, action="refuse")

    assert redirect == {"from": "menu", "state": "s7Kq2"}


def test_refresh_token_gives_new_access_token(http, sandbox_url, oauth):
    """Does sns/oauth2/refresh_token give a new OAuth token that sns/auth accepts?"""
    code = consent_with_api(http, sandbox_url, LI_XIUYING, "snsapi_userinfo")
    first = oauth.fetch_access_token(code)

    refreshed = oauth.refresh_access_token(first["refresh_token"])

    assert refreshed["access_token"] != first["access_token"]
    assert refreshed["refresh_token"] == first["refresh_token"]
    assert oauth.check_access_token(LI_XIUYING, refreshed["access_token"])
    assert oauth.get_user_info()["nickname"] == "李秀英🌸"


@pytest.mark.parametrize(("change", "expected"), [
    ({"appid": "wx0000000000000000"}, "appid 参数错误"),
    ({"redirect_uri": "https://evil.example.com/steal"}, "10003"),
    ({"scope": "snsapi_login"}, "10005"),
], ids=["wrong-appid", "foreign-redirect-domain", "unknown-scope"])
def test_authorize_page_refuses_bad_requests(http, oauth, change, expected):
    """Does the authorize page refuse a wrong appid, a foreign redirect domain or scope,
    with a clear page and no redirect?"""
    query = {key: values[0]
             for key, values in parse_qs(urlsplit(oauth.authorize_url).query).items()}
    url = oauth.authorize_url.split("?")[0]

    page = http.get(url, params={**query, **change}, allow_redirects=False)

    assert page.status_code == 400
    assert "授权失败" in page.text and expected in page.text


def test_admin_consent_api_needs_known_user(http, sandbox_url):
    """Does the admin consent API refuse an openid no sandbox user has?"""
    answer = http.post(f"{sandbox_url}/sandbox/api/oauth/consent", json={
        "openid": "oNoSuchUser00000000000000000", "redirect_uri": CALLBACK})

    assert answer.status_code == 404 and answer.json()["code"] == "unknown_openid"


# --- WeChat Pay key material -------------------------------------------------------------------

def test_sandbox_signature_verifies_with_app_public_key(sandbox_url, instance_dir):
    """Does a message signed by the sandbox's WeChat Pay key verify with the public key the app
    is configured with, and the app's merchant signature with the sandbox's merchant key?"""
    from wx_app.sandbox import pay

    app_settings = config.load({"APP_ENV": "testing"}, instance_dir)
    keys = pay.load_pay_keys(app_settings)
    message = pay.signed_message("1722850421", "d824f2e086d3c1df967785d13fcd22ef",
                                 '{"code_url":"weixin://wxpay/bizpayurl?pr=JyC91EIz1"}')

    signature = pay.sign(keys, message)
    app_public_key = serialization.load_pem_public_key(
        Path(app_settings["WECHATPAY_PUBLIC_KEY_PATH"]).read_bytes())
    app_public_key.verify(base64.b64decode(signature), message, padding.PKCS1v15(),
                          hashes.SHA256())
    merchant_key = serialization.load_pem_private_key(
        Path(app_settings["WECHATPAY_PRIVATE_KEY_PATH"]).read_bytes(), password=None)
    merchant_signature = base64.b64encode(
        merchant_key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()

    assert pay.merchant_signature_valid(keys, message, merchant_signature)
    assert not pay.merchant_signature_valid(keys, message + b"x", merchant_signature)


KEY_RACER = """
import hashlib, sys
from wx_app.sandbox.keys import ensure_key_material
print("ready", flush=True)
sys.stdin.readline()
material = ensure_key_material(sys.argv[1])
print(hashlib.sha256(b"".join(path.read_bytes() for path in material.paths())).hexdigest())
"""


@pytest.mark.slow
def test_concurrent_key_generation_yields_one_key_pair(tmp_path):
    """When three processes generate the key material at the same moment, do they all end up
    with the same matching key pairs, private files, and no leftovers?"""
    racers = [subprocess.Popen([sys.executable, "-c", KEY_RACER, str(tmp_path)], cwd=ROOT,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
              for _ in range(3)]
    for racer in racers:
        assert racer.stdout.readline().strip() == "ready"
    for racer in racers:
        racer.stdin.write("go\n")
        racer.stdin.flush()
    digests = set()
    for racer in racers:
        output, _ = racer.communicate(timeout=60)
        assert racer.returncode == 0
        digests.add(output.strip())

    from wx_app.sandbox.keys import key_material, load_private_key, load_public_key

    material = key_material(tmp_path)
    assert len(digests) == 1
    assert sorted(os.listdir(tmp_path / "sandbox-keys")) == sorted(
        path.name for path in material.paths())
    for pair in (material.merchant, material.wechatpay):
        derived = load_private_key(pair.private_path).public_key().public_numbers()
        assert derived == load_public_key(pair.public_path).public_numbers()
        assert load_public_key(pair.public_path).key_size == 2048
    for path in material.paths():
        assert path.stat().st_mode & 0o777 == 0o600


def test_create_app_makes_key_material_outside_production(tmp_path):
    """Does create_app generate the sandbox keys its default key paths name, when missing?"""
    env = dict(os.environ, WX_APP_INSTANCE=str(tmp_path), APP_ENV="development",
               DATABASE_URL=f"sqlite:///{tmp_path}/app.sqlite3", REDIS_URL="")
    for name in ("WECHATPAY_PRIVATE_KEY_PATH", "WECHATPAY_PUBLIC_KEY_PATH"):
        env.pop(name, None)

    subprocess.run([sys.executable, "-c", "from wx_app import create_app; create_app()"],
                   cwd=ROOT, env=env, check=True, capture_output=True, timeout=60)

    keys = tmp_path / "sandbox-keys"
    assert (keys / "wechatpay_public_key.pem").read_bytes().startswith(b"-----BEGIN PUBLIC KEY")
    assert (keys / "merchant_private_key.pem").read_bytes().startswith(b"-----BEGIN PRIVATE KEY")
