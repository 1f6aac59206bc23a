"""WeChat Pay v3 between the app's pay layer and the sandbox, over real HTTP."""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.serving import make_server
from werkzeug.wrappers import Request

from tests.support import free_port

#: Seeded sandbox users (see wx_app/sandbox/state.py).
ZHANG_WEI = "oSbxZ3k9QvR2mT7wYpL4cN8dF1aE"
LI_XIUYING = "oSbxH5t2WnJ8rK4vXqD6sB9mC3gA"
DESCRIPTION = "专技人员公需科目 2024年度"


# --- fixtures ------------------------------------------------------------------------------

@dataclasses.dataclass
class Received:
    headers: dict
    body: bytes


class Receiver:
    """A notify_url for tests: records every POST and answers the statuses queued in it."""

    def __init__(self):
        self.received: list[Received] = []
        self.answers: list[int] = []
        self.condition = threading.Condition()
        self.url = ""

    def __call__(self, environ, start_response):
        request = Request(environ)
        with self.condition:
            self.received.append(Received(dict(request.headers), request.get_data()))
            status = self.answers.pop(0) if self.answers else 200
            self.condition.notify_all()
        body = b"" if status < 300 else '{"code":"FAIL","message":"失败"}'.encode()
        start_response(f"{status} {HTTP_STATUS_CODES[status]}",
                       [("Content-Type", "application/json"),
                        ("Content-Length", str(len(body)))])
        return [body]

    def wait_for(self, count: int, timeout: float = 15.0) -> list[Received]:
        """The first `count` notifications, waiting for them to arrive."""
        with self.condition:
            arrived = self.condition.wait_for(lambda: len(self.received) >= count, timeout)
            assert arrived, f"{len(self.received)} of {count} notifications arrived"
            return list(self.received)


@pytest.fixture
def receiver():
    target = Receiver()
    port = free_port()
    server = make_server("127.0.0.1", port, target, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    target.url = f"http://127.0.0.1:{port}/pay/notify"
    yield target
    server.shutdown()
    server.server_close()


@pytest.fixture
def http():
    with requests.Session() as session:
        yield session


@pytest.fixture(autouse=True)
def fresh_pay_options(sandbox_url):
    """Every test starts with the sandbox's default pay options and fast retries."""
    requests.post(f"{sandbox_url}/sandbox/api/pay/options/reset", timeout=5).raise_for_status()
    requests.post(f"{sandbox_url}/sandbox/api/pay/options", timeout=5,
                  json={"notify_retry_delays": [0.2, 0.2, 0.2]}).raise_for_status()


@pytest.fixture
def pay_client(ctx):
    from wx_app.pay.client import client

    return client()


@pytest.fixture
def creds(ctx):
    from wx_app.pay.signing import credentials

    return credentials()


def new_trade_no() -> str:
    return "T" + secrets.token_hex(12)


def prepay(pay_client, out_trade_no: str, notify_url: str = "https://example.com/pay/notify",
           amount_fen: int = 3300, openid: str = ZHANG_WEI) -> str:
    return pay_client.jsapi_prepay(out_trade_no, DESCRIPTION, amount_fen, openid, notify_url,
                                   datetime.now(UTC) + timedelta(minutes=30))


def confirm(http, sandbox_url, **body) -> dict:
    answer = http.post(f"{sandbox_url}/sandbox/api/pay/confirm", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def pay_api(sandbox_url: str, path: str) -> str:
    return f"{sandbox_url}/api.mch.weixin.qq.com/{path}"


def signed_call(creds, method: str, url: str, body=None, private_key=None):
    """A request signed like the client's, optionally with another private key."""
    from wx_app.pay.signing import authorization

    if private_key is not None:
        creds = dataclasses.replace(creds, merchant_private_key=private_key)
    payload = b"" if body is None else (
        body.encode() if isinstance(body, str) else json.dumps(body).encode())
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    headers = {"Authorization": authorization(creds, method, target, payload),
               "Accept": "application/json", "Content-Type": "application/json"}
    return requests.request(method, url, data=payload or None, headers=headers, timeout=10)


def public_key(app):
    return serialization.load_pem_public_key(
        Path(app.config["WECHATPAY_PUBLIC_KEY_PATH"]).read_bytes())


def merchant_public_key(app):
    private = serialization.load_pem_private_key(
        Path(app.config["WECHATPAY_PRIVATE_KEY_PATH"]).read_bytes(), password=None)
    return private.public_key()


def verify_rsa(key, signature_b64: str, message: bytes) -> None:
    key.verify(base64.b64decode(signature_b64), message, padding.PKCS1v15(), hashes.SHA256())


def prepay_body(creds, **changes) -> dict:
    body = {"appid": creds.appid, "mchid": creds.mchid, "description": DESCRIPTION,
            "out_trade_no": new_trade_no(), "notify_url": "https://example.com/pay/notify",
            "amount": {"total": 3300, "currency": "CNY"}, "payer": {"openid": ZHANG_WEI}}
    body.update(changes)
    return body


# --- prepay --------------------------------------------------------------------------------

def test_prepay_answers_a_prepay_id_signed_by_wechat_pay(app, creds, sandbox_url):
    """Does JSAPI prepay answer a prepay_id, with Wechatpay-* headers that verify with the
    configured WeChat Pay public key (checked here without the app's code)?"""
    answer = signed_call(creds, "POST", pay_api(sandbox_url, "v3/pay/transactions/jsapi"),
                         prepay_body(creds))

    assert answer.status_code == 200
    assert answer.json()["prepay_id"].startswith("wx")
    assert answer.headers["Wechatpay-Serial"] == app.config["WECHATPAY_PUBLIC_KEY_ID"]
    assert answer.headers["Wechatpay-Signature-Type"] == "WECHATPAY2-SHA256-RSA2048"
    message = (f"{answer.headers['Wechatpay-Timestamp']}\n{answer.headers['Wechatpay-Nonce']}\n"
               .encode() + answer.content + b"\n")
    verify_rsa(public_key(app), answer.headers["Wechatpay-Signature"], message)


def test_client_prepay_returns_the_prepay_id(pay_client, sandbox_url, http):
    """Does the client's jsapi_prepay return the prepay_id the sandbox recorded for the order,
    with the amount, payer, description and a China-time time_expire it sent?"""
    out_trade_no = new_trade_no()

    prepay_id = prepay(pay_client, out_trade_no)

    recorded = http.get(f"{sandbox_url}/sandbox/api/pay/transactions/{out_trade_no}").json()
    assert recorded["prepay_id"] == prepay_id
    assert recorded["amount"]["total"] == 3300
    assert recorded["payer_openid"] == ZHANG_WEI
    assert recorded["description"] == DESCRIPTION
    assert recorded["trade_state"] == "NOTPAY"


def test_repeated_prepay_is_idempotent_and_changed_terms_are_refused(pay_client):
    """Does the same prepay again give the same prepay_id, and a changed amount under the same
    out_trade_no 403 OUT_TRADE_NO_USED?"""
    from wx_app.pay.client import PayError

    out_trade_no = new_trade_no()
    expires = datetime.now(UTC) + timedelta(minutes=30)
    first = pay_client.jsapi_prepay(out_trade_no, DESCRIPTION, 3300, ZHANG_WEI,
                                    "https://example.com/pay/notify", expires)

    again = pay_client.jsapi_prepay(out_trade_no, DESCRIPTION, 3300, ZHANG_WEI,
                                    "https://example.com/pay/notify", expires)
    with pytest.raises(PayError) as refused:
        pay_client.jsapi_prepay(out_trade_no, DESCRIPTION, 4500, ZHANG_WEI,
                                "https://example.com/pay/notify", expires)

    assert again == first
    assert refused.value.code == "OUT_TRADE_NO_USED"
    assert refused.value.upstream_status == 403


@pytest.mark.parametrize(("change", "field"), [
    ({"amount": {"total": 0, "currency": "CNY"}}, "/amount/total"),
    ({"amount": {"total": "3300", "currency": "CNY"}}, "/amount/total"),
    ({"amount": {"total": 33.0, "currency": "CNY"}}, "/amount/total"),
    ({"description": "公需" * 22}, "/description"),
    ({"out_trade_no": "T1234"}, "/out_trade_no"),
    ({"out_trade_no": "T" * 33}, "/out_trade_no"),
    ({"out_trade_no": "T12345#6"}, "/out_trade_no"),
    ({"notify_url": "http://example.com/pay/notify"}, "/notify_url"),
    ({"notify_url": "https://example.com/pay/notify?order=1"}, "/notify_url"),
    ({"payer": {"openid": "oNoSuchUserInTheSandbox00000"}}, "/payer/openid"),
    ({"time_expire": "2024-06-08 10:34:56"}, "/time_expire"),
])
def test_prepay_refuses_fields_wechat_pay_refuses(creds, sandbox_url, change, field):
    """Is a prepay with a field WeChat Pay would refuse answered 400 PARAM_ERROR naming it?"""
    answer = signed_call(creds, "POST", pay_api(sandbox_url, "v3/pay/transactions/jsapi"),
                         prepay_body(creds, **change))

    assert answer.status_code == 400
    assert answer.json()["code"] == "PARAM_ERROR"
    assert answer.json()["detail"]["field"] == field


def test_prepay_accepts_a_127_byte_description_and_loopback_http(creds, sandbox_url):
    """Are a description of exactly 127 UTF-8 bytes and an http notify_url on the loopback
    accepted (the sandbox's one leniency: a local app has no https)?"""
    description = "公需" * 21 + "a"  # 126 + 1 bytes

    answer = signed_call(creds, "POST", pay_api(sandbox_url, "v3/pay/transactions/jsapi"),
                         prepay_body(creds, description=description,
                                     notify_url="http://127.0.0.1:5000/pay/notify"))

    assert answer.status_code == 200, answer.text


def test_prepay_for_another_app_is_refused(creds, sandbox_url):
    """Is an appid the merchant is not bound to refused 400 APPID_MCHID_NOT_MATCH?"""
    answer = signed_call(creds, "POST", pay_api(sandbox_url, "v3/pay/transactions/jsapi"),
                         prepay_body(creds, appid="wx0000000000000000"))

    assert (answer.status_code, answer.json()["code"]) == (400, "APPID_MCHID_NOT_MATCH")


def test_request_signed_with_another_key_is_refused(creds, sandbox_url):
    """Is a request whose Authorization is signed by a key other than the merchant's refused
    401 SIGN_ERROR, and one without Authorization too?"""
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    url = pay_api(sandbox_url, "v3/pay/transactions/jsapi")

    forged = signed_call(creds, "POST", url, prepay_body(creds), private_key=stranger)
    anonymous = requests.post(url, json=prepay_body(creds), timeout=10)

    assert (forged.status_code, forged.json()["code"]) == (401, "SIGN_ERROR")
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "SIGN_ERROR")


def test_authorization_header_verifies_with_the_merchant_public_key(app, creds):
    """Is the Authorization header shaped as WeChat Pay documents it, and does its signature
    over METHOD, path with query, timestamp, nonce and body verify with the merchant key?"""
    from wx_app.pay.signing import authorization

    body = '{"mchid":"1900000109"}'
    header = authorization(creds, "POST", "/v3/pay/transactions/out-trade-no/T1/close?a=1",
                           body, timestamp="1722850421", nonce="593BEC0C930BF1AFEB40B4A08C8FB242")

    schema, _, rest = header.partition(" ")
    fields = dict(item.split("=", 1) for item in rest.split(","))
    fields = {name: value.strip('"') for name, value in fields.items()}
    assert schema == "WECHATPAY2-SHA256-RSA2048"
    assert fields["mchid"] == creds.mchid and fields["serial_no"] == creds.merchant_serial_no
    assert (fields["timestamp"], fields["nonce_str"]) == (
        "1722850421", "593BEC0C930BF1AFEB40B4A08C8FB242")
    message = ("POST\n/v3/pay/transactions/out-trade-no/T1/close?a=1\n1722850421\n"
               f"593BEC0C930BF1AFEB40B4A08C8FB242\n{body}\n").encode()
    verify_rsa(merchant_public_key(app), fields["signature"], message)


@pytest.mark.parametrize("mode", ["signature", "serial", "timestamp", "unsigned", "body"])
def test_client_refuses_an_answer_that_does_not_verify(pay_client, sandbox_url, http, mode):
    """When the sandbox spoils an answer (signature, other key id, old timestamp, no signature,
    changed body), does the client refuse it with RESPONSE_NOT_VERIFIED instead of using it?"""
    from wx_app.pay.client import PayError

    http.post(f"{sandbox_url}/sandbox/api/pay/tamper-responses", json={"mode": mode})

    with pytest.raises(PayError) as refused:
        prepay(pay_client, new_trade_no())

    assert refused.value.code == "RESPONSE_NOT_VERIFIED"
    assert refused.value.http_status == 502  # what a trainee's page would get


def test_unreachable_wechat_pay_is_a_pay_error(creds):
    """Does a WeChat Pay that cannot be reached give a PayError, not a requests exception?"""
    from wx_app.pay.client import PayError, WeChatPayClient

    unreachable = WeChatPayClient(f"http://127.0.0.1:{free_port()}/api.mch.weixin.qq.com/",
                                  creds, timeout=(1, 1))

    with pytest.raises(PayError) as failed:
        unreachable.query_by_out_trade_no("T0000000001")

    assert failed.value.code == "NETWORK_ERROR" and failed.value.upstream_status is None


# --- query, close, pay ------------------------------------------------------------------------

def test_query_then_close_then_prepay_again(pay_client):
    """Does an unpaid order query NOTPAY, close with 204, then query CLOSED and refuse a new
    prepay with ORDER_CLOSED?"""
    from wx_app.pay.client import PayError

    out_trade_no = new_trade_no()
    prepay(pay_client, out_trade_no)

    unpaid = pay_client.query_by_out_trade_no(out_trade_no)
    pay_client.close(out_trade_no)
    closed = pay_client.query_by_out_trade_no(out_trade_no)
    with pytest.raises(PayError) as refused:
        prepay(pay_client, out_trade_no)

    assert unpaid["trade_state"] == "NOTPAY" and "transaction_id" not in unpaid
    assert closed["trade_state"] == "CLOSED"
    assert refused.value.code == "ORDER_CLOSED"


def test_query_of_an_unknown_order_is_404(pay_client):
    """Is an out_trade_no WeChat Pay never saw answered 404 ORDER_NOT_EXIST?"""
    from wx_app.pay.client import PayError

    with pytest.raises(PayError) as refused:
        pay_client.query_by_out_trade_no(new_trade_no())

    assert (refused.value.code, refused.value.upstream_status) == ("ORDER_NOT_EXIST", 404)


def test_paid_order_queries_success_and_refuses_prepay_and_close(pay_client, sandbox_url,
                                                                   http):
    """After the admin pays an order without notifying, does the query tell SUCCESS with the
    transaction_id, amount and payer, while prepay and close answer ORDERPAID?"""
    from wx_app.pay.client import PayError

    out_trade_no = new_trade_no()
    prepay(pay_client, out_trade_no)

    paid = confirm(http, sandbox_url, out_trade_no=out_trade_no, notify="none")
    seen = pay_client.query_by_out_trade_no(out_trade_no)
    with pytest.raises(PayError) as prepay_refused:
        prepay(pay_client, out_trade_no)
    with pytest.raises(PayError) as close_refused:
        pay_client.close(out_trade_no)

    assert paid["notification"] is None
    assert seen["trade_state"] == "SUCCESS"
    assert seen["transaction_id"] == paid["transaction_id"] and len(seen["transaction_id"]) == 28
    assert seen["amount"]["total"] == 3300 and seen["amount"]["payer_total"] == 3300
    assert seen["payer"]["openid"] == ZHANG_WEI
    assert seen["success_time"].endswith("+08:00")
    assert prepay_refused.value.code == close_refused.value.code == "ORDERPAID"


def test_confirm_page_shows_the_order_and_pays_it(pay_client, sandbox_url, http, receiver):
    """Does the payment page show the amount and description with 确认支付 and 取消, and does
    pressing 确认支付 pay the order and go back to the return URL with err_msg ok?"""
    out_trade_no = new_trade_no()
    prepay_id = prepay(pay_client, out_trade_no, notify_url=receiver.url)
    return_url = "http://127.0.0.1:5000/h5/orders/1?from=pay"

    page = http.get(f"{sandbox_url}/sandbox/pay/confirm",
                    params={"prepay_id": prepay_id, "return_url": return_url})
    pressed = http.post(f"{sandbox_url}/sandbox/pay/confirm", allow_redirects=False,
                        data={"prepay_id": prepay_id, "return_url": return_url,
                              "notify": "once"})

    assert page.status_code == 200
    for text in ("¥33.00", DESCRIPTION, "确认支付", "取消", out_trade_no):
        assert text in page.text
    assert pressed.status_code == 303
    back = urlsplit(pressed.headers["Location"])
    assert back.path == "/h5/orders/1"
    assert parse_qs(back.query) == {"from": ["pay"],
                                    "err_msg": ["get_brand_wcpay_request:ok"]}
    assert pay_client.query_by_out_trade_no(out_trade_no)["trade_state"] == "SUCCESS"
    assert len(receiver.wait_for(1)) == 1


def test_cancel_on_the_page_leaves_the_order_unpaid(pay_client, sandbox_url, http):
    """Does 取消 go back with err_msg cancel and leave the order NOTPAY?"""
    out_trade_no = new_trade_no()
    prepay_id = prepay(pay_client, out_trade_no)

    pressed = http.post(f"{sandbox_url}/sandbox/pay/cancel", allow_redirects=False,
                        data={"prepay_id": prepay_id, "return_url": "http://127.0.0.1:5000/h5/"})

    assert "err_msg=get_brand_wcpay_request%3Acancel" in pressed.headers["Location"]
    assert pay_client.query_by_out_trade_no(out_trade_no)["trade_state"] == "NOTPAY"


# --- refunds -------------------------------------------------------------------------------

def paid_order(pay_client, http, sandbox_url, amount_fen: int = 3300) -> str:
    out_trade_no = new_trade_no()
    prepay(pay_client, out_trade_no, amount_fen=amount_fen)
    confirm(http, sandbox_url, out_trade_no=out_trade_no, notify="none")
    return out_trade_no


def test_refund_round_trip(pay_client, sandbox_url, http):
    """Is a refund PROCESSING when asked, SUCCESS once WeChat Pay completes it, the same refund
    when asked again, and the order's trade_state REFUND?"""
    http.post(f"{sandbox_url}/sandbox/api/pay/options", json={"refund_delay_seconds": None})
    out_trade_no = paid_order(pay_client, http, sandbox_url)
    out_refund_no = "R" + secrets.token_hex(8)

    asked = pay_client.refund(out_trade_no, out_refund_no, 3300, 3300, "学员申请退款", None)
    asked_again = pay_client.refund(out_trade_no, out_refund_no, 3300, 3300, "学员申请退款",
                                    None)
    before = pay_client.query_refund(out_refund_no)
    http.post(f"{sandbox_url}/sandbox/api/pay/refunds/complete",
              json={"out_refund_no": out_refund_no}).raise_for_status()
    after = pay_client.query_refund(out_refund_no)

    assert asked["status"] == before["status"] == "PROCESSING"
    assert asked_again["refund_id"] == asked["refund_id"]
    assert after["status"] == "SUCCESS" and after["success_time"].endswith("+08:00")
    assert after["amount"]["refund"] == 3300 and after["out_trade_no"] == out_trade_no
    assert pay_client.query_by_out_trade_no(out_trade_no)["trade_state"] == "REFUND"


def test_refund_beyond_what_is_left_is_refused(pay_client, sandbox_url, http):
    """After a partial refund, is a second refund larger than the rest refused INVALID_REQUEST,
    and a refund of an unknown order RESOURCE_NOT_EXISTS?"""
    from wx_app.pay.client import PayError

    out_trade_no = paid_order(pay_client, http, sandbox_url, amount_fen=4500)
    pay_client.refund(out_trade_no, "R" + secrets.token_hex(8), 3000, 4500, "部分退款", None)

    with pytest.raises(PayError) as too_much:
        pay_client.refund(out_trade_no, "R" + secrets.token_hex(8), 1600, 4500, "部分退款",
                          None)
    with pytest.raises(PayError) as unknown:
        pay_client.refund(new_trade_no(), "R" + secrets.token_hex(8), 100, 4500, "", None)

    assert (too_much.value.code, too_much.value.upstream_status) == ("INVALID_REQUEST", 400)
    assert (unknown.value.code, unknown.value.upstream_status) == ("RESOURCE_NOT_EXISTS", 404)


def test_unknown_refund_query_is_404(pay_client):
    """Is an out_refund_no WeChat Pay never saw answered 404 RESOURCE_NOT_EXISTS?"""
    from wx_app.pay.client import PayError

    with pytest.raises(PayError) as refused:
        pay_client.query_refund("R" + secrets.token_hex(8))

    assert refused.value.code == "RESOURCE_NOT_EXISTS"


# --- notifications -------------------------------------------------------------------------

def test_payment_notification_verifies_and_decrypts(app, pay_client, sandbox_url, http,
                                                    receiver):
    """Does the sandbox's TRANSACTION.SUCCESS notification, as the app's notify_url receives
    it, verify and decrypt with the app's keys into the paid transaction of our merchant?"""
    from wx_app.pay.notifications import check_merchant, verify_and_decrypt

    out_trade_no = new_trade_no()
    prepay(pay_client, out_trade_no, notify_url=receiver.url)

    paid = confirm(http, sandbox_url, out_trade_no=out_trade_no, notify="once")
    received = receiver.wait_for(1)[0]
    notification = verify_and_decrypt(received.headers, received.body, "payment")
    check_merchant(notification["resource"])

    resource = notification["resource"]
    assert notification["event_type"] == "TRANSACTION.SUCCESS"
    assert notification["id"] == paid["notification"]["notification_id"]
    assert resource["out_trade_no"] == out_trade_no
    assert resource["transaction_id"] == paid["transaction_id"]
    assert resource["trade_state"] == "SUCCESS" and resource["trade_type"] == "JSAPI"
    assert resource["amount"]["total"] == 3300 and resource["payer"]["openid"] == ZHANG_WEI
    envelope = json.loads(received.body)
    assert envelope["resource_type"] == "encrypt-resource"
    assert envelope["resource"]["algorithm"] == "AEAD_AES_256_GCM"
    assert envelope["resource"]["associated_data"] == "transaction"
    assert received.headers["Wechatpay-Serial"] == app.config["WECHATPAY_PUBLIC_KEY_ID"]
    assert paid["notification"]["attempts"][0]["http_status"] == 200


def test_refund_notification_verifies_and_decrypts(pay_client, sandbox_url, http, receiver):
    """Does the REFUND.SUCCESS notification reach the refund's notify_url and decrypt into the
    refund, with no appid in it?"""
    from wx_app.pay.notifications import check_merchant, verify_and_decrypt

    http.post(f"{sandbox_url}/sandbox/api/pay/options", json={"refund_delay_seconds": 0})
    out_trade_no = paid_order(pay_client, http, sandbox_url)
    out_refund_no = "R" + secrets.token_hex(8)

    answer = pay_client.refund(out_trade_no, out_refund_no, 1000, 3300, "部分退款",
                               receiver.url)
    received = receiver.wait_for(1)[0]
    notification = verify_and_decrypt(received.headers, received.body, "refund")
    check_merchant(notification["resource"])

    resource = notification["resource"]
    assert answer["status"] == "SUCCESS"
    assert notification["event_type"] == "REFUND.SUCCESS"
    assert resource["out_refund_no"] == out_refund_no and resource["refund_status"] == "SUCCESS"
    assert resource["amount"]["refund"] == 1000 and resource["amount"]["total"] == 3300
    assert "appid" not in resource


def test_notification_is_retried_until_the_app_accepts_it(pay_client, sandbox_url, http,
                                                            receiver):
    """When the app answers 500 twice, is the same notification (same id) sent again until a
    200, each time freshly signed, with every answer recorded?"""
    out_trade_no = new_trade_no()
    prepay(pay_client, out_trade_no, notify_url=receiver.url)
    receiver.answers = [500, 503]

    confirm(http, sandbox_url, out_trade_no=out_trade_no, notify="once")
    received = receiver.wait_for(3)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        record = http.get(f"{sandbox_url}/sandbox/api/pay/notifications",
                          params={"out_trade_no": out_trade_no}).json()["notifications"][0]
        if record["state"] == "delivered":
            break
        time.sleep(0.05)

    assert len({json.loads(item.body)["id"] for item in received}) == 1
    assert len({item.headers["Wechatpay-Nonce"] for item in received}) == 3
    assert [attempt["http_status"] for attempt in record["attempts"]] == [500, 503, 200]
    assert record["state"] == "delivered"


def test_twice_sends_one_notification_two_times(pay_client, sandbox_url, http, receiver):
    """Does notify "twice" deliver the same notification id twice, as WeChat Pay may?"""
    out_trade_no = new_trade_no()
    prepay(pay_client, out_trade_no, notify_url=receiver.url)

    confirm(http, sandbox_url, out_trade_no=out_trade_no, notify="twice")
    received = receiver.wait_for(2)

    assert json.loads(received[0].body)["id"] == json.loads(received[1].body)["id"]


def test_late_notification_comes_after_the_delay(pay_client, sandbox_url, http, receiver):
    """Does notify "late" answer the admin call at once and send the notification only after
    late_seconds?"""
    out_trade_no = new_trade_no()
    prepay(pay_client, out_trade_no, notify_url=receiver.url)
    started = time.monotonic()

    paid = confirm(http, sandbox_url, out_trade_no=out_trade_no, notify="late",
                   late_seconds=1.0)
    assert receiver.received == []
    receiver.wait_for(1)

    assert paid["notification"]["state"] == "scheduled"
    assert time.monotonic() - started >= 1.0


def test_none_sends_nothing_and_the_query_tells_the_payment(pay_client, sandbox_url, http,
                                                            receiver):
    """With notify "none", does no notification arrive while the order queries SUCCESS?"""
    out_trade_no = new_trade_no()
    prepay(pay_client, out_trade_no, notify_url=receiver.url)

    confirm(http, sandbox_url, out_trade_no=out_trade_no, notify="none")
    time.sleep(0.5)

    assert receiver.received == []
    assert pay_client.query_by_out_trade_no(out_trade_no)["trade_state"] == "SUCCESS"
    assert http.get(f"{sandbox_url}/sandbox/api/pay/notifications",
                    params={"out_trade_no": out_trade_no}).json()["notifications"] == []


def crafted_resource(creds, out_trade_no: str) -> dict:
    return {"mchid": creds.mchid, "appid": creds.appid, "out_trade_no": out_trade_no,
            "transaction_id": "4200000000202406080000000001", "trade_type": "JSAPI",
            "trade_state": "SUCCESS", "trade_state_desc": "支付成功",
            "success_time": "2024-06-08T10:34:56+08:00", "payer": {"openid": ZHANG_WEI},
            "amount": {"total": 3300, "payer_total": 3300, "currency": "CNY",
                       "payer_currency": "CNY"}}


@pytest.mark.parametrize(("crafting", "code"), [
    ({"tamper": "signature"}, "bad_signature"),
    ({"tamper": "serial"}, "unknown_serial"),
    ({"tamper": "timestamp"}, "stale_timestamp"),
    ({"tamper": "ciphertext"}, "bad_ciphertext"),
    ({"raw_body": "{not json"}, "malformed"),
    ({"raw_body": '{"id":"x","event_type":"TRANSACTION.SUCCESS"}'}, "malformed"),
    ({"event_type": "REFUND.SUCCESS"}, "wrong_event"),
])
def test_crafted_notifications_are_refused_with_their_code(creds, sandbox_url, http, receiver,
                                                           crafting, code):
    """Is each spoiled notification (forged signature, other key id, old timestamp, tampered
    ciphertext, bad JSON, wrong event) refused with its own stable code?"""
    from wx_app.pay.notifications import NotificationRefused, verify_and_decrypt

    sent = http.post(f"{sandbox_url}/sandbox/api/pay/notify-raw", json={
        "url": receiver.url, "resource": crafted_resource(creds, new_trade_no()), **crafting})
    received = receiver.wait_for(1)[0]

    assert sent.status_code == 200 and sent.json()["http_status"] == 200
    with pytest.raises(NotificationRefused) as refused:
        verify_and_decrypt(received.headers, received.body, "payment")
    assert refused.value.code == code


def test_crafted_notification_untampered_is_accepted(creds, sandbox_url, http, receiver):
    """Does a crafted notification with tamper "none" pass, so the refusals above are caused
    by the tampering alone?"""
    from wx_app.pay.notifications import verify_and_decrypt

    out_trade_no = new_trade_no()
    http.post(f"{sandbox_url}/sandbox/api/pay/notify-raw", json={
        "url": receiver.url, "resource": crafted_resource(creds, out_trade_no)})
    received = receiver.wait_for(1)[0]

    assert verify_and_decrypt(received.headers, received.body,
                              "payment")["resource"]["out_trade_no"] == out_trade_no


@pytest.mark.parametrize(("change", "code"), [
    ({"mchid": "1900000999"}, "merchant_mismatch"),
    ({"appid": "wx0000000000000000"}, "app_mismatch"),
])
def test_check_merchant_refuses_another_merchant_or_app(creds, change, code):
    """Does check_merchant refuse a resource of another merchant or another app?"""
    from wx_app.pay.notifications import NotificationRefused, check_merchant

    with pytest.raises(NotificationRefused) as refused:
        check_merchant({**crafted_resource(creds, new_trade_no()), **change})

    assert refused.value.code == code


# --- the JSAPI page parameters ---------------------------------------------------------------

def test_jsapi_pay_sign_verifies_with_the_merchant_public_key(app, creds):
    """Are the JSAPI parameters complete, and does paySign verify with the merchant public key
    over appId, timeStamp, nonceStr and package, one per line?"""
    from wx_app.pay.signing import jsapi_pay_params

    params = jsapi_pay_params(creds, "wx201410272009395522657a690389285100")

    assert set(params) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert params["appId"] == app.config["WECHAT_APPID"]
    assert params["package"] == "prepay_id=wx201410272009395522657a690389285100"
    assert params["signType"] == "RSA" and params["timeStamp"].isdigit()
    message = (f"{params['appId']}\n{params['timeStamp']}\n{params['nonceStr']}\n"
               f"{params['package']}\n").encode()
    verify_rsa(merchant_public_key(app), params["paySign"], message)
