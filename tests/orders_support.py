"""Helpers of the order tests: committed buyers and orders, the sandbox's pay admin calls,
notifications signed as WeChat Pay signs them, and waiting for what the live server does."""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass

import requests
import sqlalchemy as sa

from tests import factories
from wx_app import orders
from wx_app.extensions import db
from wx_app.models import Enrollment, Order, PaymentNotification, Plan, Trainee
from wx_app.sandbox.pay import china_time, encrypt_resource, load_pay_keys
from wx_app.sandbox.pay_notify import signed_headers

#: Seeded users of the sandbox (docs/sandbox.md): prepay takes only openids it knows.
ZHANG_WEI = "oSbxZ3k9QvR2mT7wYpL4cN8dF1aE"
LI_XIUYING = "oSbxH5t2WnJ8rK4vXqD6sB9mC3gA"
WANG_LEI = "oSbxM7p4LcF1yN6zRbG3hT8kV2dQ"
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


@dataclass(frozen=True)
class Placed:
    """A committed order and who bought it."""

    order_id: int
    out_trade_no: str
    buyer_id: int
    trainee_ids: tuple[int, ...]
    amount_fen: int


def catalogue() -> None:
    """The sample catalogue, committed (the live server reads it on its own connection)."""
    factories.sample_catalog()
    db.session.commit()


def plan(code: str = "GX-2023") -> Plan:
    return factories.plan(code)


def place_order(plan_code: str = "GX-2023", *, group_size: int = 0, openid: str = ZHANG_WEI,
                prepay: bool = True, invoice_request=None) -> Placed:
    """A pending order, committed, with its prepay made at the sandbox unless told not to.

    `group_size` > 0 makes a group order for that many new trainees, bought by another.
    Needs an app context and the sample catalogue.
    """
    buyer = factories.trainee(name="王采购" if group_size else "张三")
    trainees = ([factories.trainee(name=f"学员{n}") for n in range(group_size)]
                if group_size else [buyer])
    order = orders.open_order(buyer, plan(plan_code), trainees,
                              kind="group" if group_size else "individual",
                              invoice_request=invoice_request)
    db.session.commit()
    if prepay:
        start = orders.start_payment(order, buyer, openid=openid, in_wechat=True,
                                     return_url="http://127.0.0.1/h5/")
        assert start.mode == "jsapi"
        db.session.commit()
    placed = Placed(order.id, order.out_trade_no, buyer.id,
                    tuple(trainee.id for trainee in trainees), order.amount_fen)
    db.session.commit()  # end the transaction those reads began: later reads see news
    return placed


def fresh_order(out_trade_no: str) -> Order:
    """The order as committed now (the test's own transaction is ended first)."""
    db.session.rollback()
    return db.session.scalar(sa.select(Order).where(Order.out_trade_no == out_trade_no)
                             .execution_options(populate_existing=True))


def enrollments(plan_id: int | None = None) -> list[Enrollment]:
    db.session.rollback()
    query = sa.select(Enrollment).order_by(Enrollment.trainee_id)
    if plan_id is not None:
        query = query.where(Enrollment.plan_id == plan_id)
    return list(db.session.scalars(query.execution_options(populate_existing=True)))


def notifications_stored(kind: str = "payment") -> list[PaymentNotification]:
    db.session.rollback()
    return list(db.session.scalars(
        sa.select(PaymentNotification).where(PaymentNotification.kind == kind)
        .order_by(PaymentNotification.id).execution_options(populate_existing=True)))


def wait_until(predicate, timeout: float = 15.0, interval: float = 0.2):
    """Call `predicate` until it returns something true; that value, or AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout} s: {predicate.__doc__ or ''}")
        time.sleep(interval)


# --- the sandbox ---------------------------------------------------------------------------

def sandbox_post(sandbox_url: str, path: str, body: dict, expect: int = 200) -> dict:
    answer = requests.post(f"{sandbox_url}{path}", json=body, timeout=30)
    assert answer.status_code == expect, answer.text
    return answer.json()


def confirm(sandbox_url: str, out_trade_no: str, notify: str = "once", **extra) -> dict:
    """The payer pays at WeChat Pay: the sandbox marks the order paid and notifies as told."""
    return sandbox_post(sandbox_url, "/sandbox/api/pay/confirm",
                        {"out_trade_no": out_trade_no, "notify": notify, **extra})


def sandbox_transaction(sandbox_url: str, out_trade_no: str) -> dict:
    answer = requests.get(f"{sandbox_url}/sandbox/api/pay/transactions/{out_trade_no}",
                          timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def deliveries(sandbox_url: str, **filters) -> list[dict]:
    answer = requests.get(f"{sandbox_url}/sandbox/api/pay/notifications", params=filters,
                          timeout=10)
    return answer.json()["notifications"]


def reset_sandbox_pay(sandbox_url: str, **options) -> None:
    """The sandbox's default pay options, then `options` (e.g. notify_retry_delays=[])."""
    sandbox_post(sandbox_url, "/sandbox/api/pay/options/reset", {})
    if options:
        sandbox_post(sandbox_url, "/sandbox/api/pay/options", options)


def wechat_view(transaction: dict) -> dict:
    """A transaction as WeChat Pay describes it: the sandbox's record without its extras."""
    extras = {"prepay_id", "description", "notify_url", "payer_openid", "refunded_fen"}
    return {key: value for key, value in transaction.items() if key not in extras}


# --- notifications made here -----------------------------------------------------------------

def signed_notification(app, resource: dict, event_type: str = "TRANSACTION.SUCCESS",
                        notification_id: str | None = None) -> tuple[dict, bytes]:
    """Headers and body of a notification exactly as WeChat Pay (the sandbox's key) sends it."""
    keys = load_pay_keys(app.config)
    original_type = "refund" if event_type.startswith("REFUND.") else "transaction"
    encrypted = encrypt_resource(keys, resource, original_type)
    encrypted["original_type"] = original_type
    body = json.dumps({"id": notification_id or str(uuid.uuid4()),
                       "create_time": china_time(time.time()),
                       "resource_type": "encrypt-resource", "event_type": event_type,
                       "summary": "支付成功", "resource": encrypted},
                      ensure_ascii=False, separators=(",", ":"))
    return signed_headers(keys, body), body.encode()


def transaction_resource(app, placed: Placed, **changes) -> dict:
    """A payment resource for a placed order, as WeChat Pay would report it (or changed)."""
    resource = {"mchid": app.config["WECHATPAY_MCHID"], "appid": app.config["WECHAT_APPID"],
                "out_trade_no": placed.out_trade_no,
                "transaction_id": "4200" + uuid.uuid4().hex[:24].translate(
                    str.maketrans("abcdef", "123456")),
                "trade_type": "JSAPI", "trade_state": "SUCCESS", "trade_state_desc": "支付成功",
                "bank_type": "OTHERS", "success_time": china_time(time.time()),
                "payer": {"openid": ZHANG_WEI},
                "amount": {"total": placed.amount_fen, "payer_total": placed.amount_fen,
                           "currency": "CNY", "payer_currency": "CNY"}}
    resource.update(changes)
    return resource


# --- the buyer's browser ---------------------------------------------------------------------

def logged_in(app, client, trainee: Trainee, *, openid: str | None = None) -> str:
    """Give the test client a session of `trainee`; returns its CSRF token."""
    client.set_cookie(app.config["SESSION_COOKIE_NAME"],
                      factories.session_cookie(trainee, openid=openid))
    return CSRF_META.search(client.get("/h5/me").text).group(1)
