"""/wx/callback: verification, safe and plain mode, hostile input, exactly-once, what events do.

Pushes are built here with an implementation of WeChat's signing and AES scheme written for
the tests (hashlib and `cryptography`), independent of wechatpy, which the app uses; the
stories that cross processes go through the sandbox's push API to the live server.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import socket
import struct
import threading
import time
from datetime import UTC, datetime

import pytest
import requests
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from defusedxml.ElementTree import fromstring
from rq import SimpleWorker
from sqlalchemy import select

import config
from config.menu import PROGRESS_KEY
from tests import factories
from tests.support import free_port
from wx_app import followers, jobs, store
from wx_app.extensions import db
from wx_app.models import Plan, TitleSeries, WechatBinding
from wx_app.wechat import messages
from wx_app.yearly_credit import current_year

TOKEN = config.SANDBOX_TOKEN
AES_KEY = config.SANDBOX_ENCODING_AES_KEY
APPID = config.SANDBOX_APPID
ACCOUNT = "gh_5a4b3c2d1e0f"
ZHANG_WEI = "oSbxZ3k9QvR2mT7wYpL4cN8dF1aE"  # a seeded sandbox user who follows
ZHANG_WEI_UNIONID = "oUnZ8rQ2vL5nK9wT3yP7cM1dG4bH"
_create_times = itertools.count(int(time.time()))
_msg_ids = itertools.count(7_300_000_000_000_000_000)


# --- WeChat's side, written independently of the app --------------------------------------

def sha1_signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def _cipher(key43: str) -> Cipher:
    key = base64.b64decode(key43 + "=")
    return Cipher(algorithms.AES(key), modes.CBC(key[:16]))


def aes_encrypt(xml: str, key43: str = AES_KEY, appid: str = APPID) -> str:
    """random16 + 4-byte big-endian length + xml + appid, PKCS#7 to 32 bytes, AES-256-CBC."""
    body = xml.encode()
    plain = os.urandom(16) + struct.pack(">I", len(body)) + body + appid.encode()
    padding = 32 - len(plain) % 32
    plain += bytes([padding]) * padding
    encryptor = _cipher(key43).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def aes_decrypt(encrypt: str, key43: str = AES_KEY, appid: str = APPID) -> str:
    decryptor = _cipher(key43).decryptor()
    plain = decryptor.update(base64.b64decode(encrypt)) + decryptor.finalize()
    padding = plain[-1]
    assert 1 <= padding <= 32 and plain[-padding:] == bytes([padding]) * padding
    content = plain[16:-padding]
    (length,) = struct.unpack(">I", content[:4])
    assert content[4 + length:].decode() == appid
    return content[4:4 + length].decode()


def xml_fields(xml: bytes | str) -> dict[str, str]:
    return {child.tag: child.text or "" for child in fromstring(xml, forbid_dtd=True)}


def text_xml(openid: str, content: str, msg_id: int | None = None) -> str:
    return (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
            f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{next(_create_times)}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{content}]]></Content>"
            f"<MsgId>{msg_id or next(_msg_ids)}</MsgId></xml>")


def event_xml(openid: str, event: str, event_key: str = "", create_time: int | None = None,
              msg_type: str = "event") -> str:
    return (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
            f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{create_time or next(_create_times)}</CreateTime>"
            f"<MsgType><![CDATA[{msg_type}]]></MsgType><Event><![CDATA[{event}]]></Event>"
            f"<EventKey><![CDATA[{event_key}]]></EventKey></xml>")


def safe_push(xml: str, *, msg_signature: str | None = None) -> tuple[dict, bytes]:
    timestamp, nonce = str(int(time.time())), "1320562132"
    encrypt = aes_encrypt(xml)
    params = {"signature": sha1_signature(TOKEN, timestamp, nonce), "timestamp": timestamp,
              "nonce": nonce, "encrypt_type": "aes",
              "msg_signature": msg_signature or sha1_signature(TOKEN, timestamp, nonce, encrypt)}
    body = (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
            f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>")
    return params, body.encode()


def plain_push(xml: str | bytes, *, signature: str | None = None,
               timestamp: str | None = None) -> tuple[dict, bytes]:
    timestamp, nonce = timestamp or str(int(time.time())), "982374612"
    params = {"signature": signature or sha1_signature(TOKEN, timestamp, nonce),
              "timestamp": timestamp, "nonce": nonce}
    return params, xml if isinstance(xml, bytes) else xml.encode()


def open_safe_reply(body: bytes | str) -> dict[str, str]:
    """The reply's fields, after checking its msg_signature and decrypting it independently."""
    envelope = xml_fields(body)
    assert envelope["MsgSignature"] == sha1_signature(
        TOKEN, envelope["TimeStamp"], envelope["Nonce"], envelope["Encrypt"])
    return xml_fields(aes_decrypt(envelope["Encrypt"]))


def send(client, xml: str):
    """Push `xml` in safe mode through the test client; the reply's fields ({} for success)."""
    params, body = safe_push(xml)
    response = client.post("/wx/callback", query_string=params, data=body,
                           content_type="text/xml")
    assert response.status_code == 200, response.data
    if response.data == b"success":
        return {}
    return open_safe_reply(response.data)


def binding_of(openid: str) -> WechatBinding | None:
    db.session.rollback()  # end the test's snapshot, to see what the requests committed
    return db.session.scalars(select(WechatBinding).where(WechatBinding.openid == openid)).first()


@pytest.fixture(scope="module")
def plain_app(app, app_settings):
    """A second app instance on the same database and Redis that accepts plain pushes."""
    from wx_app import create_app

    return create_app({**app_settings, "WECHAT_ACCEPT_PLAIN_PUSHES": "true"})


@pytest.fixture
def plain_client(plain_app):
    return plain_app.test_client()


# --- WeChat's published sample -------------------------------------------------------------

# The official sample of WeChat's 消息加解密说明, from the Python demo (Sample.py, by Tencent's
# jonyqin, 2014) in the sample code linked from that page,
# https://wximg.gtimg.com/shake_tv/mpwiki/cryptoDemo.zip ; the page:
# https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Message_encryption_and_decryption_instructions.html
# It is a 兼容模式 push: the plain fields and their encrypted copy in one body.
SAMPLE_TOKEN = "spamtest"
SAMPLE_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
SAMPLE_APPID = "wx2c2769f8efd9abc2"
SAMPLE_TIMESTAMP = "1409735669"
SAMPLE_NONCE = "1320562132"
SAMPLE_MSG_SIGNATURE = "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
SAMPLE_ENCRYPT = (
    "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8P"
    "GHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h"
    "6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp"
    "3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQ"
    "l+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=")
SAMPLE_BODY = (
    "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>"
    "<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>"
    "<CreateTime>1409735668</CreateTime><MsgType><![CDATA[text]]></MsgType>"
    "<Content><![CDATA[abcdteT]]></Content><MsgId>6054768590064713728</MsgId>"
    f"<Encrypt><![CDATA[{SAMPLE_ENCRYPT}]]></Encrypt></xml>")
SAMPLE_CREDENTIALS = messages.Credentials(token=SAMPLE_TOKEN, appid=SAMPLE_APPID,
                                          encoding_aes_key=SAMPLE_AES_KEY, accept_plain=False)
SAMPLE_PARAMS = {"timestamp": SAMPLE_TIMESTAMP, "nonce": SAMPLE_NONCE, "encrypt_type": "aes",
                 "msg_signature": SAMPLE_MSG_SIGNATURE}


def test_the_official_safe_mode_sample_decrypts():
    """Does WeChat's own published sample verify and decrypt to the text it carries?"""
    push = messages.open_push(SAMPLE_BODY.encode(), SAMPLE_PARAMS, SAMPLE_CREDENTIALS,
                              now=int(SAMPLE_TIMESTAMP))

    assert push.encrypted
    assert push.message.type == "text" and push.message.content == "abcdteT"
    assert push.fields["FromUserName"] == "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
    assert push.dedupe_key == ("msg", "6054768590064713728")
    # The tests' own implementation reads the sample the same way.
    inner = aes_decrypt(SAMPLE_ENCRYPT, SAMPLE_AES_KEY, SAMPLE_APPID)
    assert xml_fields(inner)["Content"] == "abcdteT"
    assert sha1_signature(SAMPLE_TOKEN, SAMPLE_TIMESTAMP, SAMPLE_NONCE,
                          SAMPLE_ENCRYPT) == SAMPLE_MSG_SIGNATURE


def test_the_official_sample_with_another_signature_is_refused():
    """Is the sample refused (403) when its msg_signature is off by one character?"""
    params = {**SAMPLE_PARAMS, "msg_signature": "6" + SAMPLE_MSG_SIGNATURE[1:]}

    with pytest.raises(messages.PushRefused) as refused:
        messages.open_push(SAMPLE_BODY.encode(), params, SAMPLE_CREDENTIALS,
                           now=int(SAMPLE_TIMESTAMP))

    assert refused.value.status == 403 and refused.value.reason == "bad_msg_signature"


# --- server verification -------------------------------------------------------------------

def test_server_verification_echoes_only_a_signed_echostr(client):
    """Does GET echo echostr for the right signature, and answer 403 without it otherwise?"""
    timestamp, nonce = "1714037059", "486452656"
    signed = {"signature": sha1_signature(TOKEN, timestamp, nonce), "timestamp": timestamp,
              "nonce": nonce, "echostr": "7215394870123"}

    good = client.get("/wx/callback", query_string=signed)
    bad = client.get("/wx/callback", query_string={**signed, "nonce": "486452657"})

    assert good.status_code == 200 and good.data == b"7215394870123"
    assert bad.status_code == 403 and b"7215394870123" not in bad.data


# --- safe and plain mode -------------------------------------------------------------------

def test_a_safe_mode_reply_decrypts_with_an_independent_implementation(client):
    """Is the app's encrypted reply signed and decryptable by an implementation of our own?"""
    params, body = safe_push(text_xml(ZHANG_WEI, "客服"))

    response = client.post("/wx/callback", query_string=params, data=body,
                           content_type="text/xml")

    assert response.status_code == 200
    envelope = xml_fields(response.data)
    assert set(envelope) == {"Encrypt", "MsgSignature", "TimeStamp", "Nonce"}
    reply = open_safe_reply(response.data)
    assert reply["ToUserName"] == ZHANG_WEI and reply["FromUserName"] == ACCOUNT
    assert reply["MsgType"] == "text" and "400-023-9229" in reply["Content"]


def test_a_plain_push_gets_a_plain_reply_when_plain_mode_is_accepted(plain_client):
    """With plain pushes accepted, does a signed plain push get an unencrypted reply?"""
    params, body = plain_push(text_xml(ZHANG_WEI, "发票"))

    response = plain_client.post("/wx/callback", query_string=params, data=body)

    assert response.status_code == 200
    reply = xml_fields(response.data)
    assert reply["ToUserName"] == ZHANG_WEI and "/h5/invoices" in reply["Content"]


def test_a_plain_push_is_refused_unless_plain_mode_is_accepted(client, caplog):
    """By default (safe mode), is a correctly signed plain push refused with 403?"""
    params, body = plain_push(text_xml(ZHANG_WEI, "客服"))

    response = client.post("/wx/callback", query_string=params, data=body)

    assert response.status_code == 403 and b"<xml" not in response.data
    assert "plain_push_refused" in caplog.text


@pytest.mark.parametrize("mode", ["safe", "plain"])
def test_a_wrong_signature_gets_403_a_log_line_and_no_reply(mode, client, plain_client, caplog):
    """Is a push with a wrong signature refused, logged, and never answered with a reply?"""
    xml = text_xml(ZHANG_WEI, "客服")
    if mode == "safe":
        params, body = safe_push(xml, msg_signature="0" * 40)
        response = client.post("/wx/callback", query_string=params, data=body)
    else:
        params, body = plain_push(xml, signature="0" * 40)
        response = plain_client.post("/wx/callback", query_string=params, data=body)

    assert response.status_code == 403
    assert b"<xml" not in response.data and b"400-023-9229" not in response.data
    assert "wechat push refused: bad_" in caplog.text


def test_a_stale_timestamp_is_refused_as_a_replay(plain_client):
    """Is a correctly signed push from ten minutes ago refused, so old URLs cannot be replayed?"""
    params, body = plain_push(text_xml(ZHANG_WEI, "客服"),
                              timestamp=str(int(time.time()) - 600))

    response = plain_client.post("/wx/callback", query_string=params, data=body)

    assert response.status_code == 403


# --- hostile input -------------------------------------------------------------------------

@pytest.fixture
def listener():
    """A loopback port that records whether anything connected to it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.3)
    yield server
    server.close()


def _connected(server: socket.socket) -> bool:
    try:
        connection, _ = server.accept()
    except TimeoutError:
        return False
    connection.close()
    return True


def hostile_payloads(port: int) -> dict[str, str]:
    fields = (f"<ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
              f"<FromUserName><![CDATA[{ZHANG_WEI}]]></FromUserName>"
              "<CreateTime>1714037059</CreateTime><MsgType><![CDATA[text]]></MsgType>")
    laughs = "".join(f'<!ENTITY lol{n} "' + f"&lol{n - 1};" * 10 + '">' for n in range(1, 10))
    return {
        "file": ('<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM '
                 f'"file:///etc/passwd">]><xml>{fields}<Content>&xxe;</Content>'
                 "<MsgId>1</MsgId></xml>"),
        "http": (f'<!DOCTYPE xml [<!ENTITY xxe SYSTEM "http://127.0.0.1:{port}/x">]>'
                 f"<xml>{fields}<Content>&xxe;</Content><MsgId>2</MsgId></xml>"),
        "parameter": (f'<!DOCTYPE xml [<!ENTITY % remote SYSTEM "http://127.0.0.1:{port}/d">'
                      f"%remote;]><xml>{fields}<Content>x</Content><MsgId>3</MsgId></xml>"),
        "billion_laughs": (f'<!DOCTYPE xml [<!ENTITY lol0 "lol">{laughs}]>'
                           f"<xml>{fields}<Content>&lol9;</Content><MsgId>4</MsgId></xml>"),
    }


@pytest.mark.parametrize("where", ["plain body", "safe envelope", "encrypted message"])
@pytest.mark.parametrize("payload", ["file", "http", "parameter", "billion_laughs"])
def test_xml_with_a_dtd_is_refused_without_reading_anything(payload, where, client,
                                                           plain_client, listener):
    """Are XXE and entity-expansion payloads refused (400), leaking nothing, calling nothing?"""
    xml = hostile_payloads(listener.getsockname()[1])[payload]
    if where == "plain body":
        params, body = plain_push(xml)
        response = plain_client.post("/wx/callback", query_string=params, data=body)
    elif where == "safe envelope":
        params, _ = safe_push(text_xml(ZHANG_WEI, "客服"))
        response = client.post("/wx/callback", query_string=params, data=xml.encode())
    else:
        params, body = safe_push(xml)
        response = client.post("/wx/callback", query_string=params, data=body)

    assert response.status_code == 400
    assert b"root:" not in response.data and b"lollol" not in response.data
    assert not _connected(listener)


def test_a_one_megabyte_body_gets_413_before_parsing(client):
    """Is a 1 MB push refused with 413 by its declared length?"""
    params, _ = safe_push(text_xml(ZHANG_WEI, "客服"))
    body = b"<xml>" + b"a" * (1024 * 1024) + b"</xml>"

    response = client.post("/wx/callback", query_string=params, data=body)

    assert response.status_code == 413


def test_a_body_without_a_length_is_capped_too(live_server):
    """Is a chunked body (no Content-Length) over the limit refused with 413, not read whole?"""
    params, _ = safe_push(text_xml(ZHANG_WEI, "客服"))

    def chunks():
        yield b"<xml><Encrypt>"
        for _ in range(16):
            yield b"a" * 8192
        yield b"</Encrypt></xml>"

    response = requests.post(f"{live_server}/wx/callback", params=params, data=chunks(),
                             timeout=10)

    assert response.status_code == 413


@pytest.mark.parametrize("body", [b"<xml><ToUserName>gh", b"not xml at all", b"\xff\xfe<xml/>",
                                  b"<html><body/></html>", b""])
def test_malformed_xml_gets_400_and_the_app_keeps_serving(body, plain_client, client):
    """Is a body that is not a well-formed message refused (400), the app serving on?"""
    params, _ = plain_push("")

    response = plain_client.post("/wx/callback", query_string=params, data=body)

    assert response.status_code == 400
    assert send(client, text_xml(ZHANG_WEI, "客服"))["MsgType"] == "text"
    assert client.get("/healthz/live").status_code == 200


# --- exactly once --------------------------------------------------------------------------

def sandbox_push(sandbox_url: str, live_server: str, **push) -> dict:
    response = requests.post(f"{sandbox_url}/sandbox/api/push", timeout=30,
                             json={"app_callback_url": f"{live_server}/wx/callback", **push})
    assert response.status_code == 200, response.text
    return response.json()


def test_the_same_push_delivered_three_times_acts_once(ctx, sandbox_url, live_server):
    """Do three deliveries of one subscribe get one reply and change the follower only once?"""
    first = next(_create_times)
    follow = {"openid": ZHANG_WEI, "type": "event", "event": "subscribe",
              "create_time": first, "mode": "aes"}

    result = sandbox_push(sandbox_url, live_server, **follow, repeat=3)

    replies = [delivery["reply"] for delivery in result["deliveries"]]
    assert all(delivery["status"] == 200 for delivery in result["deliveries"])
    assert replies[0]["Content"].startswith("欢迎关注") and replies == [replies[0]] * 3
    assert jobs.queue().count == 1  # one profile refresh queued, not three
    assert binding_of(ZHANG_WEI).subscribed

    sandbox_push(sandbox_url, live_server, openid=ZHANG_WEI, type="event",
                 event="unsubscribe")
    late_retry = sandbox_push(sandbox_url, live_server, **follow)

    assert late_retry["reply"] == replies[0]
    assert not binding_of(ZHANG_WEI).subscribed  # the late retry did not follow again


def test_a_repeated_text_gets_the_first_reply(client):
    """Does a text delivered again a second later get the very reply of the first delivery?"""
    xml = text_xml(ZHANG_WEI, "客服")

    first = send(client, xml)
    time.sleep(1.1)  # a reply worked out anew would carry a later CreateTime
    again = send(client, xml)

    assert again == first


def _serve(application) -> tuple[str, object]:
    from werkzeug.serving import make_server

    port = free_port()
    server = make_server("127.0.0.1", port, application, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{port}", server


def test_the_same_push_to_two_app_instances_at_once_acts_once(app, app_settings, ctx):
    """Delivered to two app instances at the same moment, is each push acted on once only?"""
    from wx_app import create_app

    servers = [_serve(create_app(app_settings)) for _ in range(2)]
    openids = [f"oTwoApps{n:02d}xxxxxxxxxxxxxxxxxx" for n in range(12)]
    results: dict[tuple[str, int], tuple[int, bytes]] = {}

    def deliver(openid: str, index: int, params: dict, body: bytes, barrier) -> None:
        barrier.wait()
        response = requests.post(f"{servers[index][0]}/wx/callback", params=params, data=body,
                                 timeout=10)
        results[openid, index] = response.status_code, response.content

    try:
        for openid in openids:
            params, body = safe_push(event_xml(openid, "subscribe"))
            barrier = threading.Barrier(2)
            threads = [threading.Thread(target=deliver, args=(openid, i, params, body, barrier))
                       for i in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        for _, server in servers:
            server.shutdown()

    assert jobs.queue().count == len(openids)  # one profile refresh per push, not two
    for openid in openids:
        (status_a, body_a), (status_b, body_b) = results[openid, 0], results[openid, 1]
        assert status_a == status_b == 200
        assert open_safe_reply(body_a) == open_safe_reply(body_b)
        assert open_safe_reply(body_a)["Content"].startswith("欢迎关注")
        assert binding_of(openid).subscribed


@pytest.mark.parametrize("failing", ["answer", "commit"])
def test_a_failed_delivery_lets_the_retry_act(failing, ctx, client, monkeypatch):
    """When handling or its commit fails, is nothing kept, so that WeChat's retry acts?"""
    from wx_app.wechat import replies

    openid = "oRetryAfterFailurexxxxxxxxxxx"
    params, body = safe_push(event_xml(openid, "subscribe"))

    def fail(*args):
        raise RuntimeError("the database went away")

    with monkeypatch.context() as patch:
        if failing == "answer":
            patch.setattr(replies, "answer", fail)
        else:
            patch.setattr(db.session, "commit", fail)
        failed = client.post("/wx/callback", query_string=params, data=body)
    retry = client.post("/wx/callback", query_string=params, data=body)

    assert failed.status_code == 500
    assert retry.status_code == 200
    assert open_safe_reply(retry.data)["Content"].startswith("欢迎关注")
    assert binding_of(openid).subscribed
    assert jobs.queue().count == 1


# --- events --------------------------------------------------------------------------------

def organisation_with_code(name: str):
    organisation = factories.organisation(name)
    organisation.qr_scene = f"org:{organisation.id}"
    db.session.commit()
    return organisation


def test_following_through_an_organisations_code_records_the_organisation(ctx, client):
    """Does a subscribe with scene org:<id> record the scene and its organisation?"""
    hospital = organisation_with_code("重庆市渝北区人民医院")

    reply = send(client, event_xml(ZHANG_WEI, "subscribe", f"qrscene_org:{hospital.id}"))

    binding = binding_of(ZHANG_WEI)
    assert binding.subscribed and binding.subscribed_at is not None
    assert binding.scene == f"org:{hospital.id}"
    assert binding.scene_organisation_id == hospital.id
    assert "/h5/plans/public" in reply["Content"]


def test_a_scan_moves_the_follower_to_the_scanned_organisation(ctx, client):
    """When a follower scans another organisation's code, does the binding follow the scan?"""
    hospital = organisation_with_code("重庆市渝北区人民医院")
    school = organisation_with_code("重庆市第一中学校")
    send(client, event_xml(ZHANG_WEI, "subscribe", f"qrscene_org:{hospital.id}"))

    send(client, event_xml(ZHANG_WEI, "SCAN", f"org:{school.id}"))

    binding = binding_of(ZHANG_WEI)
    assert binding.scene == f"org:{school.id}" and binding.scene_organisation_id == school.id


def test_an_unknown_scene_is_recorded_raw_without_an_organisation(ctx, client):
    """Is a scene that names no organisation kept as it came, with no organisation?"""
    send(client, event_xml(ZHANG_WEI, "subscribe", "qrscene_poster-2026-spring"))
    send(client, event_xml("oSbxC2d8KhV5mQ9tJwS1pX4nB7fR", "subscribe", "qrscene_org:999999"))

    assert binding_of(ZHANG_WEI).scene == "poster-2026-spring"
    assert binding_of(ZHANG_WEI).scene_organisation_id is None
    assert binding_of("oSbxC2d8KhV5mQ9tJwS1pX4nB7fR").scene_organisation_id is None


def test_an_unsubscribe_marks_the_binding(ctx, client):
    """Does unsubscribing mark the binding as no longer following, keeping the trainee link?"""
    trainee = factories.trainee()
    factories.binding(ZHANG_WEI, trainee)
    db.session.commit()

    reply = send(client, event_xml(ZHANG_WEI, "unsubscribe"))

    binding = binding_of(ZHANG_WEI)
    assert reply == {}
    assert not binding.subscribed and binding.unsubscribed_at is not None
    assert binding.trainee_id == trainee.id


def test_a_follower_profile_job_keeps_the_unionid(ctx, client):
    """Does the queued profile refresh fetch user/info from the sandbox and keep the unionid?"""
    send(client, event_xml(ZHANG_WEI, "subscribe"))
    assert jobs.queue().count == 1

    SimpleWorker([jobs.queue()], connection=store.client()).work(burst=True)

    assert binding_of(ZHANG_WEI).unionid == ZHANG_WEI_UNIONID



def test_a_profile_job_for_an_openid_wechat_does_not_know_ends_quietly(ctx):
    """Does refreshing an openid WeChat answers 40003 for end without error or retry?"""
    followers.followed("oUnknownToWechatxxxxxxxxxxxx", datetime(2026, 3, 1, 8, 0))
    db.session.commit()

    followers.refresh_follower("oUnknownToWechatxxxxxxxxxxxx")

    assert binding_of("oUnknownToWechatxxxxxxxxxxxx").unionid is None

def _plan(code: str, category: str, year: int, series: TitleSeries | None) -> Plan:
    made = Plan(code=code, category=category, plan_year=year, title_series=series,
                name=f"{year}年{code}", required_hours=30 if category == "public" else 60,
                price_fen=3300 if category == "public" else 9000)
    db.session.add(made)
    db.session.flush()
    return made


def test_the_progress_button_shows_this_years_hours_to_a_logged_in_trainee(ctx, client):
    """Does CLICK PROGRESS sum this year's hours per category, ignoring other years?"""
    year = current_year()
    series = TitleSeries(code="ENG", name="工程")
    db.session.add(series)
    trainee = factories.trainee()
    factories.binding(ZHANG_WEI, trainee)
    factories.enrollment(trainee, _plan("GX-NOW", "public", year, None), earned_hours=12)
    factories.enrollment(trainee, _plan("ZY-A", "professional", year, series), earned_hours=20)
    factories.enrollment(trainee, _plan("ZY-B", "professional", year, series), earned_hours=15)
    factories.enrollment(trainee, _plan("GX-OLD", "public", year - 1, None), earned_hours=30)
    db.session.commit()

    reply = send(client, event_xml(ZHANG_WEI, "CLICK", PROGRESS_KEY))

    assert f"{year}年" in reply["Content"]
    assert "公需 12/30 学时，专业 35/60 学时" in reply["Content"]
    assert "/h5/training" in reply["Content"]


def test_the_progress_button_asks_an_unknown_follower_to_log_in(ctx, client):
    """Does a follower with no trainee get a link to log in instead of hours?"""
    factories.binding(ZHANG_WEI)
    db.session.commit()

    reply = send(client, event_xml(ZHANG_WEI, "CLICK", PROGRESS_KEY))
    stranger = send(client, event_xml("oNeverSeenBeforexxxxxxxxxxxx", "CLICK", "PROGRESS"))

    assert "/h5/login" in reply["Content"] and "学时" not in reply["Content"]
    assert "/h5/login" in stranger["Content"]


def test_the_year_is_chinas_calendar_year():
    """At 17:00 UTC on 31 December, is it already next year in Chongqing?"""
    assert current_year(datetime(2025, 12, 31, 17, 0, tzinfo=UTC)) == 2026
    assert current_year(datetime(2025, 12, 31, 15, 0, tzinfo=UTC)) == 2025


@pytest.mark.parametrize("content, expected", [
    ("客服", ["400-023-9229", "400-618-7500", "729972484", "701846858"]),
    ("请问电话多少", ["400-023-9229"]),
    ("我想咨询一下", ["701846858"]),
    ("怎么打印证书", ["/h5/certificates", "我的证书"]),
    ("发票", ["/h5/invoices", "我的发票"]),
    ("你好", ["继续教育", "我的", "帮助"]),
])
def test_keywords_get_their_answers(content, expected, client):
    """Do the keywords get the help numbers or their links, and other texts the menu's words?"""
    reply = send(client, text_xml(ZHANG_WEI, content))

    assert all(word in reply["Content"] for word in expected)


def test_what_the_account_does_not_handle_gets_success(client):
    """Do an image message, a VIEW event and an unknown CLICK get the empty reply `success`?"""
    image = text_xml(ZHANG_WEI, "").replace("<MsgType><![CDATA[text]]>",
                                            "<MsgType><![CDATA[image]]>")

    assert send(client, image) == {}
    assert send(client, event_xml(ZHANG_WEI, "VIEW", "http://127.0.0.1/h5/")) == {}
    assert send(client, event_xml(ZHANG_WEI, "CLICK", "SOMETHING_ELSE")) == {}


def test_followers_are_counted_per_organisation(ctx):
    """Does followers_by_organisation count current followers by the code they came through?"""
    hospital = organisation_with_code("重庆市渝北区人民医院")
    school = organisation_with_code("重庆市第一中学校")
    now = datetime(2026, 3, 1, 8, 0)
    for n in range(3):
        followers.followed(f"oHospital{n}", now, scene=f"org:{hospital.id}")
    followers.followed("oSchool0", now, scene=f"org:{school.id}")
    followers.followed("oSchool1", now, scene=f"org:{school.id}")
    followers.unfollowed("oSchool1", now)
    followers.followed("oPoster", now, scene="poster")
    db.session.flush()

    counts = followers.followers_by_organisation()

    assert [(row.name, row.followers) for row in counts] == [
        ("重庆市渝北区人民医院", 3), ("重庆市第一中学校", 1)]



def test_a_follower_created_meanwhile_by_another_request_is_found(ctx):
    """When another request creates the binding after this one looked, is that row used?"""
    openid = "oCreatedMeanwhilexxxxxxxxxxx"
    assert binding_of(openid) is None  # this transaction's snapshot now predates the row
    with db.engine.begin() as other_request:
        other_request.execute(WechatBinding.__table__.insert().values(
            openid=openid, subscribed=False))

    binding = followers.followed(openid, datetime(2026, 3, 1, 8, 0))

    assert binding.subscribed
    assert db.session.scalars(select(WechatBinding.id)).all() == [binding.id]

# --- the sandbox's push page ---------------------------------------------------------------

def test_the_sandbox_push_page_shows_the_apps_reply(ctx, sandbox_url, live_server):
    """Can a person push a text from the sandbox's page and read the account's reply?"""
    page = requests.get(f"{sandbox_url}/sandbox/push", timeout=10)
    assert page.status_code == 200 and "推送" in page.text

    result = requests.post(f"{sandbox_url}/sandbox/push", timeout=30, data={
        "app_callback_url": f"{live_server}/wx/callback", "openid": ZHANG_WEI,
        "type": "text", "content": "客服", "mode": "aes", "repeat": "1"})

    assert result.status_code == 200
    assert "400-023-9229" in result.text and "HTTP 200" in result.text


def test_the_sandbox_refuses_to_push_anywhere_but_the_app(sandbox_url):
    """Does the push API refuse a callback URL outside loopback and the app's host?"""
    response = requests.post(f"{sandbox_url}/sandbox/api/push", timeout=10, json={
        "app_callback_url": "http://203.0.113.5/wx/callback", "openid": ZHANG_WEI,
        "type": "text", "content": "客服"})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_callback_url"
