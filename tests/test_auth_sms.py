"""The SMS sender: the local one logs the masked phone and drops the text in the sandbox."""

from __future__ import annotations

import logging

import pytest
import requests

from tests.auth_support import texts_to
from wx_app import sms
from wx_app.errors import UpstreamError


def test_local_sender_logs_masked_and_delivers_to_the_sandbox(app, sandbox_url, caplog):
    """Does a text reach the sandbox inbox, with only the masked phone in the log?"""
    caplog.set_level(logging.INFO, logger="wx_app.sms")

    with app.app_context():
        sms.send("13712345678", "您的验证码为654321。", purpose="test")

    assert texts_to(sandbox_url, "13712345678")[0] == "【重庆人社培训网】您的验证码为654321。"
    logged = [record.getMessage() for record in caplog.records if record.name == "wx_app.sms"]
    assert logged == ["sms (test) to 137****5678: 【重庆人社培训网】您的验证码为654321。"]


def test_sandbox_inbox_page_masks_phones(sandbox_url):
    """Does /sandbox/sms list texts, latest first, with masked phone numbers?"""
    for text in ("第一条", "第二条"):
        requests.post(f"{sandbox_url}/sandbox/api/sms", timeout=5,
                      json={"phone": "13655556666", "text": text, "purpose": "test"})

    page = requests.get(f"{sandbox_url}/sandbox/sms", timeout=5).text

    assert "短信收件箱" in page
    assert page.index("第二条") < page.index("第一条")
    assert "136****6666" in page and "13655556666" not in page


def test_sandbox_inbox_refuses_what_is_not_a_text(sandbox_url):
    """Are a malformed phone number and an empty text refused with a code?"""
    bad_phone = requests.post(f"{sandbox_url}/sandbox/api/sms", json={"phone": "12", "text": "x"},
                              timeout=5)
    empty = requests.post(f"{sandbox_url}/sandbox/api/sms", json={"phone": "13655556666"},
                          timeout=5)

    assert bad_phone.status_code == empty.status_code == 400
    assert bad_phone.json()["code"] == "invalid_phone"
    assert empty.json()["code"] == "invalid_text"


def test_without_the_sandbox_sending_is_refused_plainly():
    """With WeChat's real hosts and no SMS provider, is a send refused with the hotline?"""
    assert sms.sandbox_inbox_url("https://api.weixin.qq.com/") is None
    assert sms.sandbox_inbox_url("http://127.0.0.1:5001/api.weixin.qq.com/") == (
        "http://127.0.0.1:5001/sandbox/api/sms")
    with pytest.raises(UpstreamError) as refused:
        sms.UnavailableSmsSender().send("13712345678", "x", purpose="test")

    assert refused.value.code == "sms_unavailable"
    assert "400-023-9229" in refused.value.message
