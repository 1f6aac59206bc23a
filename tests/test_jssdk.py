"""wx.config parameters for the H5 pages: signed for the page's URL, only for this site."""

from __future__ import annotations

import hashlib

import pytest
import requests


def sandbox_stats(sandbox_url: str) -> dict:
    return requests.get(f"{sandbox_url}/sandbox/api/stats", timeout=5).json()


def latest_jsapi_ticket(sandbox_url: str) -> str:
    return requests.get(f"{sandbox_url}/sandbox/api/jsapi-tickets", timeout=5).json()["tickets"][-1]


def sha1_signature(ticket: str, nonce: str, timestamp: int, url: str) -> str:
    """The signature as WeChat's JS-SDK document computes it, written out here on purpose."""
    text = "jsapi_ticket=" + ticket + "&noncestr=" + nonce + "&timestamp=" + str(timestamp) \
        + "&url=" + url
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


@pytest.fixture
def page_base(app) -> str:
    return app.config["PUBLIC_BASE_URL"].rstrip("/")


def test_the_config_is_signed_for_the_page_url_without_its_fragment(client, page_base,
                                                                    sandbox_url, app):
    """Does the signature match an independent sha1 over the page URL cut at '#'?"""
    page = f"{page_base}/h5/plans/public?year=2024&from=menu#courses"

    response = client.get("/h5/api/jssdk-config", query_string={"url": page})

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    signed = response.get_json()
    assert signed["appId"] == app.config["WECHAT_APPID"]
    assert isinstance(signed["timestamp"], int)
    assert signed["nonceStr"]
    assert "updateAppMessageShareData" in signed["jsApiList"]
    ticket = latest_jsapi_ticket(sandbox_url)
    without_fragment = f"{page_base}/h5/plans/public?year=2024&from=menu"
    assert signed["signature"] == sha1_signature(ticket, signed["nonceStr"],
                                                 signed["timestamp"], without_fragment)
    assert signed["signature"] != sha1_signature(ticket, signed["nonceStr"],
                                                 signed["timestamp"], page)


def test_wechat_accepts_the_config_on_the_page(client, page_base, sandbox_url):
    """Would wx.config on that page pass WeChat's check (signature and safe domain)?"""
    page = f"{page_base}/h5/training#top"
    signed = client.get("/h5/api/jssdk-config", query_string={"url": page}).get_json()

    verdict = requests.post(f"{sandbox_url}/sandbox/api/jssdk/verify", timeout=5, json={
        "appId": signed["appId"], "timestamp": signed["timestamp"],
        "nonceStr": signed["nonceStr"], "signature": signed["signature"], "url": page})

    assert verdict.json() == {"ok": True, "errMsg": "config:ok"}


def test_the_ticket_is_fetched_once_for_many_pages(client, page_base, sandbox_url):
    """Do many pages' configs share one JS-API ticket fetch?"""
    requests.post(f"{sandbox_url}/sandbox/api/stats/reset", timeout=5)

    for path in ("/h5/", "/h5/training", "/h5/help", "/h5/me"):
        assert client.get("/h5/api/jssdk-config",
                          query_string={"url": page_base + path}).status_code == 200

    assert sandbox_stats(sandbox_url)["jsapi_ticket_fetches"] == 1


FOREIGN_PAGES = {
    "another host": "https://evil.example.com/h5/",
    "another port": "http://127.0.0.1:1/h5/",
    "another scheme": "https://127.0.0.1:{port}/h5/",
    "our host name as a subdomain": "http://127.0.0.1.evil.example.com/h5/",
}


@pytest.mark.parametrize("foreign", FOREIGN_PAGES, ids=list(FOREIGN_PAGES))
def test_a_page_of_another_origin_is_refused(foreign, client, app, sandbox_url):
    """Is a URL not on PUBLIC_BASE_URL's origin refused with a stable code, nothing fetched?"""
    requests.post(f"{sandbox_url}/sandbox/api/stats/reset", timeout=5)
    port = app.config["PUBLIC_BASE_URL"].rsplit(":", 1)[1]

    response = client.get("/h5/api/jssdk-config",
                          query_string={"url": FOREIGN_PAGES[foreign].format(port=port)})

    assert response.status_code == 400
    assert response.get_json()["code"] == "jssdk_url_foreign"
    assert response.get_json()["message"] == "只能为本站的页面生成微信 JS-SDK 签名。"
    assert sandbox_stats(sandbox_url)["jsapi_ticket_fetches"] == 0


@pytest.mark.parametrize(("url", "code"), [
    (None, "jssdk_url_missing"),
    ("", "jssdk_url_missing"),
    ("/h5/training", "jssdk_url_invalid"),
    ("javascript:alert(1)", "jssdk_url_invalid"),
    ("http://127.0.0.1:5000/h5/ space", "jssdk_url_invalid"),
    ("http://127.0.0.1:5000@evil.example.com/h5/", "jssdk_url_invalid"),
])
def test_a_missing_or_malformed_url_is_refused(url, code, client):
    """Is a missing, relative or malformed URL (or one with credentials) refused with its own
    stable code?"""
    query = {} if url is None else {"url": url}

    response = client.get("/h5/api/jssdk-config", query_string=query)

    assert response.status_code == 400
    assert response.get_json()["code"] == code
