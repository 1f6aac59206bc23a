"""api.mch.weixin.qq.com/v3: JSAPI prepay, order query, close, refund, refund query.

Every request must carry the merchant's Authorization signature (else 401 SIGN_ERROR), and
every answer, refusals included, is signed with the WeChat Pay private key and names the
configured public key id in Wechatpay-Serial. Refusals are WeChat Pay's: an HTTP status and
{"code", "message"} (with "detail" naming the field of a PARAM_ERROR).

JSAPI下单 https://pay.weixin.qq.com/doc/v3/merchant/4012791856
商户订单号查询订单 https://pay.weixin.qq.com/doc/v3/merchant/4012791859
关闭订单 https://pay.weixin.qq.com/doc/v3/merchant/4012791860
退款申请 https://pay.weixin.qq.com/doc/v3/merchant/4012791862
查询单笔退款 https://pay.weixin.qq.com/doc/v3/merchant/4012791863
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import threading
import time
from datetime import datetime
from urllib.parse import quote, urlsplit

from flask import Blueprint, current_app, request

from . import pay_ledger, state
from .pay import (
    APPID_MCHID_NOT_MATCH,
    INVALID_REQUEST,
    ORDER_CLOSED,
    ORDER_NOT_EXIST,
    ORDERPAID,
    OUT_TRADE_NO_USED,
    PARAM_ERROR,
    RESOURCE_NOT_EXISTS,
    SIGN_ERROR,
    SIGNATURE_TYPE,
    TIMESTAMP_TOLERANCE,
    PayApiError,
    current_keys,
    merchant_message,
    merchant_signature_valid,
    pay_json,
)
from .pay_ledger import PREPAY_TTL, Refund, Transaction
from .pay_notify import Sender, notify, refund_event, signed_headers

log = logging.getLogger(__name__)

bp = Blueprint("sandbox_pay_api", __name__)

API = "/api.mch.weixin.qq.com"
AUTHORIZATION_FIELDS = re.compile(r'(\w+)="([^"]*)"')
OUT_TRADE_NO = re.compile(r"[A-Za-z0-9_\-|*]{6,32}")
OUT_REFUND_NO = re.compile(r"[A-Za-z0-9_\-|*@]{1,64}")
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)")
#: Limits of the prepay fields, in UTF-8 bytes (WeChat Pay counts description in bytes too).
DESCRIPTION_MAX_BYTES = 127
ATTACH_MAX_BYTES = 128
NOTIFY_URL_MAX = 255
REASON_MAX = 80
#: A time_expire sooner than this after the order is moved to it, as WeChat Pay does.
MIN_PAY_WINDOW = 60


@bp.record_once
def _attach_ledger(setup_state) -> None:
    pay_ledger.attach_to(setup_state.app)


@bp.errorhandler(PayApiError)
def refused(exc: PayApiError):
    log.info("refused %s %s: %s %s", request.method, request.path, exc.error.status,
             exc.error.code)
    return exc.to_response()


@bp.before_request
def check_authorization() -> None:
    """Refuse a request without a valid merchant signature: 401 SIGN_ERROR.

    https://pay.weixin.qq.com/doc/v3/merchant/4012365336
    """
    keys = current_keys()
    schema, _, rest = request.headers.get("Authorization", "").partition(" ")
    if schema != SIGNATURE_TYPE:
        raise PayApiError(SIGN_ERROR, f"Authorization 缺失或认证类型不是 {SIGNATURE_TYPE}")
    fields = dict(AUTHORIZATION_FIELDS.findall(rest))
    missing = [name for name in ("mchid", "nonce_str", "signature", "timestamp", "serial_no")
               if not fields.get(name)]
    if missing:
        raise PayApiError(SIGN_ERROR, "Authorization 缺少 " + ", ".join(missing))
    if fields["mchid"] != keys.mchid:
        raise PayApiError(SIGN_ERROR, "商户号不存在或与签名不匹配")
    if fields["serial_no"] != keys.merchant_serial_no:
        raise PayApiError(SIGN_ERROR, "商户API证书序列号不存在")
    if not fields["timestamp"].isdigit() or abs(
            time.time() - int(fields["timestamp"])) > TIMESTAMP_TOLERANCE:
        raise PayApiError(SIGN_ERROR, "请求时间戳与当前时间相差超过5分钟")

    message = merchant_message(request.method, _url_as_sent(), fields["timestamp"],
                               fields["nonce_str"], request.get_data())
    if not merchant_signature_valid(keys, message, fields["signature"]):
        raise PayApiError(SIGN_ERROR, "签名验证失败")


def _url_as_sent() -> str:
    """The request target as the client wrote it (path and query), which is what it signed."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw:
        return raw
    query = request.query_string.decode()
    return quote(request.path) + (f"?{query}" if query else "")


@bp.after_request
def sign_answer(response):
    """Sign every answer as WeChat Pay does, or spoil it when an admin call asked for that.

    https://pay.weixin.qq.com/doc/v3/merchant/4013053249
    """
    tamper = pay_ledger.current().take_response_tamper()
    if tamper == "body" and response.status_code == 204:
        tamper = "signature"  # an answer without a body cannot carry a changed one
    body = response.get_data(as_text=True)
    headers = signed_headers(current_keys(), body, tamper or "none")
    headers.pop("Content-Type")
    if tamper != "unsigned":
        response.headers.update(headers)
    else:
        response.headers["Request-ID"] = headers["Request-ID"]
    if tamper == "body":
        response.set_data(body + " ")
    if tamper:
        log.info("answer to %s %s spoiled on request: %s", request.method, request.path,
                 tamper)
    return response


# --- JSAPI prepay -------------------------------------------------------------------------

@bp.post(f"{API}/v3/pay/transactions/jsapi")
def jsapi_prepay():
    """POST v3/pay/transactions/jsapi: a prepay_id for a JSAPI order.

    The same out_trade_no with the same parameters answers the order's prepay_id again (a
    new one after two hours); different parameters answer 403 OUT_TRADE_NO_USED, a paid
    order 403 ORDERPAID, a closed one 400 ORDER_CLOSED.
    https://pay.weixin.qq.com/doc/v3/merchant/4012791856
    """
    body = _json_body()
    terms = _prepay_terms(body)
    clock, ledger = state.current(), pay_ledger.current()

    with ledger.lock:
        now = clock.now()
        existing = ledger.transactions.get(terms["out_trade_no"])
        if existing is not None:
            prepay_id = _repeat_prepay(ledger, existing, terms, now)
        else:
            transaction = Transaction(**terms, prepay_id=pay_ledger.prepay_id_now(),
                                      prepay_expires_at=now + PREPAY_TTL, created_at=now)
            ledger.transactions[transaction.out_trade_no] = transaction
            ledger.prepay_ids[transaction.prepay_id] = transaction.out_trade_no
            prepay_id = transaction.prepay_id

    log.info("prepay for out_trade_no=%s: %s", terms["out_trade_no"], prepay_id)
    return pay_json({"prepay_id": prepay_id})


def _repeat_prepay(ledger, existing: Transaction, terms: dict, now: float) -> str:
    if existing.trade_state in ("SUCCESS", "REFUND"):
        raise PayApiError(ORDERPAID)
    if existing.trade_state == "CLOSED":
        raise PayApiError(ORDER_CLOSED)
    candidate = Transaction(**terms, prepay_id="", prepay_expires_at=0, created_at=now)
    if candidate.terms() != existing.terms():
        raise PayApiError(OUT_TRADE_NO_USED, "商户订单号重复，且与原订单参数不一致")
    deadline = pay_deadline(existing)
    if deadline is not None and now > deadline:
        raise PayApiError(INVALID_REQUEST, "订单已超过支付结束时间，请使用新的商户订单号下单")
    if existing.prepay_expires_at <= now:
        existing.prepay_id = pay_ledger.prepay_id_now()
        existing.prepay_expires_at = now + PREPAY_TTL
        ledger.prepay_ids[existing.prepay_id] = existing.out_trade_no
    return existing.prepay_id


def pay_deadline(transaction: Transaction) -> float | None:
    """When the order stops being payable: time_expire, but never sooner than a minute in."""
    if transaction.time_expire is None:
        return None
    return max(transaction.time_expire.timestamp(), transaction.created_at + MIN_PAY_WINDOW)


def _prepay_terms(body: dict) -> dict:
    """The validated fields of a prepay request, refused as WeChat Pay refuses them."""
    keys = current_keys()
    appid = _text(body.get("appid"), "/appid", 32)
    mchid = _text(body.get("mchid"), "/mchid", 32)
    description = _text(body.get("description"), "/description", DESCRIPTION_MAX_BYTES)
    out_trade_no = _out_trade_no(body.get("out_trade_no"), "/out_trade_no")
    notify_url = _notify_url(body.get("notify_url"), "/notify_url", required=True)
    attach = body.get("attach")
    if attach is not None:
        attach = _text(attach, "/attach", ATTACH_MAX_BYTES)
    time_expire = _time_expire(body.get("time_expire"))
    amount = body.get("amount")
    if not isinstance(amount, dict):
        raise PayApiError(PARAM_ERROR, "缺少必填参数 amount", "/amount")
    total = _positive_fen(amount.get("total"), "/amount/total")
    if amount.get("currency", "CNY") != "CNY":
        raise PayApiError(PARAM_ERROR, "币种只能是 CNY", "/amount/currency")
    payer = body.get("payer")
    if not isinstance(payer, dict):
        raise PayApiError(PARAM_ERROR, "缺少必填参数 payer", "/payer")
    openid = _text(payer.get("openid"), "/payer/openid", 128)

    if mchid != keys.mchid:
        raise PayApiError(INVALID_REQUEST, "请求中的商户号与签名的商户号不一致")
    if appid != current_app.config["WECHAT_APPID"]:
        raise PayApiError(APPID_MCHID_NOT_MATCH)
    if state.current().user(openid) is None:
        raise PayApiError(PARAM_ERROR, "openid 与 appid 不匹配", "/payer/openid")
    return {"out_trade_no": out_trade_no, "appid": appid, "mchid": mchid,
            "description": description, "total_fen": total, "payer_openid": openid,
            "notify_url": notify_url, "attach": attach, "time_expire": time_expire}


# --- query and close --------------------------------------------------------------------

@bp.get(f"{API}/v3/pay/transactions/out-trade-no/<out_trade_no>")
def query_by_out_trade_no(out_trade_no: str):
    """GET v3/pay/transactions/out-trade-no/{out_trade_no}?mchid=: the order's state.

    https://pay.weixin.qq.com/doc/v3/merchant/4012791859
    """
    mchid = request.args.get("mchid")
    if not mchid:
        raise PayApiError(PARAM_ERROR, "缺少必填参数 mchid", "mchid")
    ledger = pay_ledger.current()
    with ledger.lock:
        transaction = ledger.transactions.get(out_trade_no)
        if transaction is None or mchid != transaction.mchid:
            raise PayApiError(ORDER_NOT_EXIST)
        return pay_json(transaction.to_wechat())


@bp.post(f"{API}/v3/pay/transactions/out-trade-no/<out_trade_no>/close")
def close(out_trade_no: str):
    """POST …/close with {"mchid"}: an unpaid order can no longer be paid; answers 204.

    https://pay.weixin.qq.com/doc/v3/merchant/4012791860
    """
    mchid = _text(_json_body().get("mchid"), "/mchid", 32)
    ledger = pay_ledger.current()
    with ledger.lock:
        transaction = ledger.transactions.get(out_trade_no)
        if transaction is None or mchid != transaction.mchid:
            raise PayApiError(ORDER_NOT_EXIST)
        if transaction.trade_state in ("SUCCESS", "REFUND"):
            raise PayApiError(ORDERPAID)
        transaction.trade_state = "CLOSED"
    log.info("closed out_trade_no=%s", out_trade_no)
    return pay_json(None, 204)


# --- refunds -------------------------------------------------------------------------------

@bp.post(f"{API}/v3/refund/domestic/refunds")
def create_refund():
    """POST v3/refund/domestic/refunds: refund part or all of a paid order.

    The same out_refund_no with the same parameters answers the same refund.
    https://pay.weixin.qq.com/doc/v3/merchant/4012791862
    """
    body = _json_body()
    out_refund_no = body.get("out_refund_no")
    if not isinstance(out_refund_no, str) or not OUT_REFUND_NO.fullmatch(out_refund_no):
        raise PayApiError(PARAM_ERROR, "out_refund_no 须为1-64位字母、数字或_-|*@",
                          "/out_refund_no")
    reason = body.get("reason")
    if reason is not None:
        reason = _text(reason, "/reason", REASON_MAX)
    notify_url = _notify_url(body.get("notify_url"), "/notify_url", required=False)
    amount = body.get("amount")
    if not isinstance(amount, dict):
        raise PayApiError(PARAM_ERROR, "缺少必填参数 amount", "/amount")
    refund_fen = _positive_fen(amount.get("refund"), "/amount/refund")
    total_fen = _positive_fen(amount.get("total"), "/amount/total")
    if amount.get("currency") != "CNY":
        raise PayApiError(PARAM_ERROR, "币种只能是 CNY", "/amount/currency")
    clock, ledger = state.current(), pay_ledger.current()

    with ledger.lock:
        transaction = _refunded_transaction(ledger, body)
        existing = ledger.refunds.get(out_refund_no)
        if existing is not None:
            if (existing.out_trade_no, existing.refund_fen, existing.total_fen) != (
                    transaction.out_trade_no, refund_fen, total_fen):
                raise PayApiError(INVALID_REQUEST, "商户退款单号重复，且与原退款参数不一致")
            return pay_json(existing.to_wechat())
        if total_fen != transaction.total_fen:
            raise PayApiError(INVALID_REQUEST, "订单金额与原订单金额不一致")
        if refund_fen > transaction.total_fen - transaction.refunded_fen:
            raise PayApiError(INVALID_REQUEST, "申请退款金额超过订单可退金额")
        refund = Refund(out_refund_no=out_refund_no, refund_id=pay_ledger.refund_id_now(),
                        out_trade_no=transaction.out_trade_no,
                        transaction_id=transaction.transaction_id, refund_fen=refund_fen,
                        total_fen=total_fen, reason=reason, notify_url=notify_url,
                        created_at=clock.now())
        ledger.refunds[out_refund_no] = refund
        transaction.refunded_fen += refund_fen
        transaction.trade_state = "REFUND"

    log.info("refund %s of out_trade_no=%s accepted", out_refund_no, refund.out_trade_no)
    _schedule_completion(current_sender(), refund)
    with ledger.lock:
        return pay_json(refund.to_wechat())


def _refunded_transaction(ledger, body: dict) -> Transaction:
    out_trade_no, transaction_id = body.get("out_trade_no"), body.get("transaction_id")
    if not out_trade_no and not transaction_id:
        raise PayApiError(PARAM_ERROR, "out_trade_no 与 transaction_id 须填写其一",
                          "/out_trade_no")
    if out_trade_no:
        transaction = ledger.transactions.get(str(out_trade_no))
    else:
        transaction = next((candidate for candidate in ledger.transactions.values()
                            if candidate.transaction_id == transaction_id), None)
    if transaction is None:
        raise PayApiError(RESOURCE_NOT_EXISTS, "订单不存在")
    if transaction.trade_state not in ("SUCCESS", "REFUND"):
        raise PayApiError(INVALID_REQUEST, "订单未支付，不能退款")
    return transaction


@bp.get(f"{API}/v3/refund/domestic/refunds/<out_refund_no>")
def query_refund(out_refund_no: str):
    """GET v3/refund/domestic/refunds/{out_refund_no}: the refund's state.

    https://pay.weixin.qq.com/doc/v3/merchant/4012791863
    """
    ledger = pay_ledger.current()
    with ledger.lock:
        refund = ledger.refunds.get(out_refund_no)
        if refund is None:
            raise PayApiError(RESOURCE_NOT_EXISTS, "退款单不存在")
        return pay_json(refund.to_wechat())


def _schedule_completion(sender: Sender, refund: Refund) -> None:
    """Complete the refund now, after the options' delay, or leave it for an admin call."""
    delay = sender.ledger.options.refund_delay_seconds
    if delay is None:
        return
    if delay == 0:
        complete_refund(sender, refund.out_refund_no)
        return
    timer = threading.Timer(delay, complete_refund, args=(sender, refund.out_refund_no))
    timer.daemon = True
    timer.start()


def complete_refund(sender: Sender, out_refund_no: str, status: str = "SUCCESS",
                    notify_mode: str | None = None, wait: bool = False) -> Refund | None:
    """End a PROCESSING refund as `status` and send its REFUND.* notification.

    A refund already ended is left as it is. A refund without notify_url is not notified
    (WeChat Pay would use the merchant's configured default, which the sandbox has not).
    https://pay.weixin.qq.com/doc/v3/merchant/4012791865
    """
    ledger = sender.ledger
    with ledger.lock:
        refund = ledger.refunds.get(out_refund_no)
        if refund is None or refund.status != "PROCESSING":
            return refund
        refund.status = status
        if status == "SUCCESS":
            refund.success_time = sender.clock.now()
        elif status == "CLOSED":
            ledger.transactions[refund.out_trade_no].refunded_fen -= refund.refund_fen
        resource = refund.notification_resource(sender.keys.mchid)

    log.info("refund %s ended %s", out_refund_no, status)
    if refund.notify_url:
        notify(sender, refund_event(resource), refund.notify_url,
               notify_mode or ledger.options.refund_notify, wait=wait,
               out_trade_no=refund.out_trade_no, out_refund_no=out_refund_no)
    return refund


def current_sender() -> Sender:
    """What a notification thread needs, taken from the sandbox serving this request."""
    return Sender(current_keys(), pay_ledger.current(), state.current())


# --- field checks -------------------------------------------------------------------------

def _json_body() -> dict:
    try:
        body = json.loads(request.get_data() or b"")
    except ValueError:
        raise PayApiError(PARAM_ERROR, "请求体不是合法的JSON") from None
    if not isinstance(body, dict):
        raise PayApiError(PARAM_ERROR, "请求体须为JSON对象")
    return body


def _text(value, field: str, max_bytes: int) -> str:
    if not isinstance(value, str) or not value:
        raise PayApiError(PARAM_ERROR, f"缺少必填参数 {field.rsplit('/', 1)[-1]}", field)
    if len(value.encode()) > max_bytes:
        raise PayApiError(PARAM_ERROR, f"{field.rsplit('/', 1)[-1]} 长度超过{max_bytes}字节",
                          field)
    return value


def _out_trade_no(value, field: str) -> str:
    if not isinstance(value, str) or not OUT_TRADE_NO.fullmatch(value):
        raise PayApiError(PARAM_ERROR, "out_trade_no 须为6-32位字母、数字或_-|*", field)
    return value


def _positive_fen(value, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise PayApiError(PARAM_ERROR, f"{field.rsplit('/', 1)[-1]} 须为大于0的整数（单位：分）",
                          field)
    return value


def _notify_url(value, field: str, *, required: bool) -> str | None:
    """https with a host and no query; http too when the host is the loopback (sandbox only)."""
    if value is None and not required:
        return None
    url = _text(value, field, NOTIFY_URL_MAX)
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise PayApiError(PARAM_ERROR, "notify_url 不能携带参数", field)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and _loopback(parts.hostname):
        return url
    raise PayApiError(PARAM_ERROR, "notify_url 须为 https 地址", field)


def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def _time_expire(value) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str) or not RFC3339.fullmatch(value):
        raise PayApiError(PARAM_ERROR, "time_expire 须为 rfc3339 格式，如 "
                          "2018-06-08T10:34:56+08:00", "/time_expire")
    return datetime.fromisoformat(value)
