"""The sandbox's own side of WeChat Pay: the page where a person pays, and the admin calls.

None of this exists at WeChat Pay. In WeChat the trainee pays in WeChat's own sheet; here
the app's page sends the browser to /sandbox/pay/confirm?prepay_id=… instead, where a
person presses 确认支付 or 取消. Tests do the same with POST /sandbox/api/pay/confirm, choose
how the notification is sent, send crafted notifications, and read what the app answered.
JSON refusals have the shape {"code", "message"}; docs/pay.md lists every call.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Blueprint, jsonify, redirect, render_template, request

from . import pay_ledger, state
from .pay_api import complete_refund, current_sender, pay_deadline
from .pay_ledger import NOTIFY_MODES, REFUND_OUTCOMES, RESPONSE_TAMPERS, Transaction
from .pay_notify import TAMPERS, Event, attempt, notify, payment_event, send_raw

log = logging.getLogger(__name__)

bp = Blueprint("sandbox_pay_admin", __name__, url_prefix="/sandbox")

#: What the JSAPI callback's res.err_msg says, appended to return_url as err_msg.
JSAPI_OK = "get_brand_wcpay_request:ok"
JSAPI_CANCEL = "get_brand_wcpay_request:cancel"
NOTIFY_CHOICES = (
    ("once", "立即通知一次 Notify once"),
    ("twice", "重复通知两次 Notify twice"),
    ("concurrent", "同时通知两次 Two at the same moment"),
    ("late", "延迟通知 Notify late"),
    ("none", "不通知（应用须查询订单） No notification"),
)


class ConfirmRefused(Exception):
    """The order cannot be paid now; `code` is stable, `message` is for the page."""

    def __init__(self, code: str, message: str, status: int = 409):
        super().__init__(code)
        self.code = code
        self.message = message
        self.status = status


def _refusal(code: str, message: str, status: int = 400):
    return jsonify({"code": code, "message": message}), status


def _json_body() -> dict:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


def mark_paid(transaction: Transaction, payer_openid: str | None = None) -> dict:
    """Mark the order paid (SUCCESS, a new transaction_id); returns its notification resource."""
    ledger, clock = pay_ledger.current(), state.current()
    with ledger.lock:
        now = clock.now()
        if transaction.trade_state in ("SUCCESS", "REFUND"):
            raise ConfirmRefused("already_paid", "该订单已支付")
        if transaction.trade_state == "CLOSED":
            raise ConfirmRefused("order_closed", "订单已关闭")
        deadline = pay_deadline(transaction)
        if deadline is not None and now > deadline:
            raise ConfirmRefused("order_expired", "订单已超过支付结束时间")
        transaction.trade_state = "SUCCESS"
        transaction.transaction_id = pay_ledger.transaction_id_now()
        transaction.success_time = now
        transaction.paid_by = payer_openid or transaction.payer_openid
        resource = transaction.to_wechat()
    log.info("out_trade_no=%s paid: transaction_id=%s", transaction.out_trade_no,
             transaction.transaction_id)
    return resource


def _payable(transaction: Transaction | None) -> str | None:
    """Why the page cannot offer to pay this order, or None."""
    if transaction is None:
        return "预支付交易单不存在或已失效"
    if transaction.trade_state in ("SUCCESS", "REFUND"):
        return "该订单已支付"
    if transaction.trade_state == "CLOSED":
        return "订单已关闭"
    deadline = pay_deadline(transaction)
    if deadline is not None and state.current().now() > deadline:
        return "订单已超过支付结束时间"
    return None


def _with_err_msg(return_url: str, err_msg: str) -> str | None:
    """return_url with err_msg added to its query; None unless it is an http(s) URL."""
    parts = urlsplit(return_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    query = urlencode([*parse_qsl(parts.query, keep_blank_values=True), ("err_msg", err_msg)])
    return urlunsplit(parts._replace(query=query))


# --- the page -------------------------------------------------------------------------------

@bp.get("/pay/confirm")
def confirm_page():
    """The payment sheet: amount and description, 确认支付 or 取消."""
    prepay_id = request.args.get("prepay_id", "")
    transaction = pay_ledger.current().transaction_by_prepay_id(prepay_id)
    problem = _payable(transaction)
    payer = state.current().user(transaction.payer_openid) if transaction else None
    return render_template("pay_confirm.html", transaction=transaction, problem=problem,
                           payer=payer, prepay_id=prepay_id,
                           return_url=request.args.get("return_url", ""),
                           notify_choices=NOTIFY_CHOICES), (404 if transaction is None else 200)


@bp.post("/pay/confirm")
def confirm_form():
    """The page's 确认支付: pay, notify in the background, go back to return_url."""
    transaction = pay_ledger.current().transaction_by_prepay_id(request.form.get("prepay_id", ""))
    mode = request.form.get("notify", "once")
    if transaction is None or mode not in NOTIFY_MODES:
        return render_template("pay_result.html", outcome="refused",
                               message="预支付交易单不存在或已失效", transaction=None), 404
    try:
        resource = mark_paid(transaction)
    except ConfirmRefused as refused:
        return render_template("pay_result.html", outcome="refused", message=refused.message,
                               transaction=transaction), refused.status

    notify(current_sender(), payment_event(resource), transaction.notify_url, mode, wait=False,
           out_trade_no=transaction.out_trade_no)
    back = _with_err_msg(request.form.get("return_url", ""), JSAPI_OK)
    if back:
        return redirect(back, code=303)
    return render_template("pay_result.html", outcome="paid", transaction=transaction,
                           message="支付成功")


@bp.post("/pay/cancel")
def cancel_form():
    """The page's 取消: nothing changes at WeChat Pay; go back to return_url."""
    transaction = pay_ledger.current().transaction_by_prepay_id(request.form.get("prepay_id", ""))
    back = _with_err_msg(request.form.get("return_url", ""), JSAPI_CANCEL)
    if back:
        return redirect(back, code=303)
    return render_template("pay_result.html", outcome="cancelled", transaction=transaction,
                           message="已取消支付")


# --- JSON API -------------------------------------------------------------------------------

@bp.post("/api/pay/confirm")
def confirm_api():
    """Pay an order and notify: {prepay_id or out_trade_no, notify, late_seconds?, payer_openid?}.

    Answers the order's transaction_id and the notification as sent so far (the first
    sending(s) of once, twice and concurrent happen before the answer).
    """
    body = _json_body()
    ledger = pay_ledger.current()
    if body.get("prepay_id"):
        transaction = ledger.transaction_by_prepay_id(str(body["prepay_id"]))
    else:
        with ledger.lock:
            transaction = ledger.transactions.get(str(body.get("out_trade_no", "")))
    if transaction is None:
        return _refusal("unknown_order", "no order has this prepay_id or out_trade_no", 404)
    mode = body.get("notify", "once")
    if mode not in NOTIFY_MODES:
        return _refusal("invalid_notify", "notify must be one of " + ", ".join(NOTIFY_MODES))
    late_seconds = body.get("late_seconds")
    if late_seconds is not None and not _seconds(late_seconds):
        return _refusal("invalid_seconds", "late_seconds must be a number from 0 to 600")
    payer_openid = body.get("payer_openid")
    if payer_openid is not None and not isinstance(payer_openid, str):
        return _refusal("invalid_openid", "payer_openid must be a string")

    try:
        resource = mark_paid(transaction, payer_openid)
    except ConfirmRefused as refused:
        return _refusal(refused.code, refused.message, refused.status)
    delivery = notify(current_sender(), payment_event(resource), transaction.notify_url, mode,
                      late_seconds=late_seconds, out_trade_no=transaction.out_trade_no)

    with ledger.lock:
        return jsonify({"out_trade_no": transaction.out_trade_no,
                        "transaction_id": transaction.transaction_id,
                        "trade_state": transaction.trade_state,
                        "notification": delivery.to_dict() if delivery else None})


@bp.post("/api/pay/notify-raw")
def notify_raw():
    """Send one crafted notification to `url` and answer what the app said.

    {url, resource (dict, encrypted), event_type?, tamper?: none|signature|serial|timestamp|
    ciphertext} or {url, raw_body (sent as it is, signed), tamper?}.
    """
    body = _json_body()
    url = body.get("url")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        return _refusal("invalid_url", "url must be an http(s) URL")
    tamper = body.get("tamper", "none")
    if tamper not in TAMPERS:
        return _refusal("invalid_tamper", "tamper must be one of " + ", ".join(TAMPERS))
    event_type = str(body.get("event_type", "TRANSACTION.SUCCESS"))
    sender = current_sender()

    if isinstance(body.get("raw_body"), str):
        delivery = send_raw(sender, url, body["raw_body"], tamper, event_type)
    elif isinstance(body.get("resource"), dict):
        original_type = "refund" if event_type.startswith("REFUND.") else "transaction"
        kind = "refund" if original_type == "refund" else "payment"
        summary = str(body.get("summary", "支付成功" if kind == "payment" else "退款成功"))
        event = Event(kind, event_type, summary, original_type, body["resource"])
        delivery = notify(sender, event, url, "once", tamper=tamper,
                          out_trade_no=body["resource"].get("out_trade_no"),
                          out_refund_no=body["resource"].get("out_refund_no"))
    else:
        return _refusal("invalid_resource", "give resource (an object) or raw_body (a string)")

    result = delivery.to_dict()
    last = result["attempts"][-1]
    return jsonify({**result, "http_status": last["http_status"], "answer": last["answer"]})


@bp.get("/api/pay/notifications")
def notifications():
    """Every notification sent, with each attempt's answer; ?out_trade_no= ?out_refund_no=
    ?notification_id= filter."""
    found = pay_ledger.current().find_deliveries(
        out_trade_no=request.args.get("out_trade_no"),
        out_refund_no=request.args.get("out_refund_no"),
        notification_id=request.args.get("notification_id"))
    return jsonify({"notifications": found})


@bp.post("/api/pay/notifications/resend")
def resend():
    """Send a notification again, same id and body, freshly signed: {"notification_id"}."""
    delivery = pay_ledger.current().delivery(str(_json_body().get("notification_id", "")))
    if delivery is None:
        return _refusal("unknown_notification", "no notification has this id", 404)
    attempt(current_sender(), delivery)
    return jsonify(delivery.to_dict())


@bp.get("/api/pay/transactions/<out_trade_no>")
def transaction_view(out_trade_no: str):
    """The sandbox's record of an order: WeChat Pay's view plus prepay_id and notify_url."""
    ledger = pay_ledger.current()
    with ledger.lock:
        transaction = ledger.transactions.get(out_trade_no)
        if transaction is None:
            return _refusal("unknown_order", "no order has this out_trade_no", 404)
        return jsonify({**transaction.to_wechat(), "prepay_id": transaction.prepay_id,
                        "description": transaction.description,
                        "notify_url": transaction.notify_url,
                        "payer_openid": transaction.payer_openid,
                        "refunded_fen": transaction.refunded_fen})


@bp.post("/api/pay/refunds/complete")
def complete_refund_api():
    """End a PROCESSING refund now: {out_refund_no, status?: SUCCESS|ABNORMAL|CLOSED, notify?}.

    The first sending(s) of its notification happen before the answer.
    """
    body = _json_body()
    status = body.get("status", "SUCCESS")
    if status not in REFUND_OUTCOMES:
        return _refusal("invalid_status", "status must be one of " + ", ".join(REFUND_OUTCOMES))
    mode = body.get("notify")
    if mode is not None and mode not in NOTIFY_MODES:
        return _refusal("invalid_notify", "notify must be one of " + ", ".join(NOTIFY_MODES))
    out_refund_no = str(body.get("out_refund_no", ""))
    refund = complete_refund(current_sender(), out_refund_no, status, mode, wait=True)
    if refund is None:
        return _refusal("unknown_refund", "no refund has this out_refund_no", 404)

    ledger = pay_ledger.current()
    with ledger.lock:
        return jsonify({**refund.to_wechat(),
                        "notifications": ledger.find_deliveries(out_refund_no=out_refund_no)})


@bp.route("/api/pay/options", methods=["GET", "POST"])
def options():
    """Read or change the options: notify_retry_delays, notify_timeout, late_seconds,
    refund_delay_seconds (null: wait for refunds/complete), refund_notify."""
    ledger = pay_ledger.current()
    with ledger.lock:
        if request.method == "POST":
            refused = ledger.options.update(_json_body())
            if refused:
                return _refusal("invalid_option", "refused: " + ", ".join(sorted(refused)))
        return jsonify(vars(ledger.options))


@bp.post("/api/pay/options/reset")
def reset_options():
    """The default options, and no answer left to spoil."""
    return jsonify(vars(pay_ledger.current().reset_options()))


@bp.post("/api/pay/tamper-responses")
def tamper_responses():
    """Spoil the next `count` API answers: {"mode": signature|serial|timestamp|unsigned|body}."""
    body = _json_body()
    mode, count = body.get("mode"), body.get("count", 1)
    if mode not in RESPONSE_TAMPERS:
        return _refusal("invalid_mode", "mode must be one of " + ", ".join(RESPONSE_TAMPERS))
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 100:
        return _refusal("invalid_count", "count must be a whole number from 1 to 100")
    ledger = pay_ledger.current()
    with ledger.lock:
        ledger.response_tampers.extend([mode] * count)
        return jsonify({"pending": list(ledger.response_tampers)})


def _seconds(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 600
