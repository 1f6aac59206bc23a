"""What the sandbox's WeChat Pay remembers: orders, refunds, notifications sent, its options.

All in memory behind one lock, like the rest of the sandbox; a restart forgets every order.
Times of the business (order creation, payment, refund, time_expire) follow the sandbox's
clock (`state.now()`), which an admin call can move forward.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime

from flask import current_app

from .pay import china_time

EXTENSION = "wechat_sandbox_pay_ledger"

#: A prepay_id is valid two hours; the same order then gets a new one.
PREPAY_TTL = 7200
NOTIFY_MODES = ("once", "twice", "concurrent", "late", "none")
REFUND_OUTCOMES = ("SUCCESS", "ABNORMAL", "CLOSED")
RESPONSE_TAMPERS = ("signature", "serial", "timestamp", "unsigned", "body")
TRADE_STATE_DESC = {"NOTPAY": "订单未支付", "SUCCESS": "支付成功", "CLOSED": "订单已关闭",
                    "REFUND": "转入退款"}
#: Where a refund to a balance payment goes (退回到用户零钱).
USER_RECEIVED_ACCOUNT = "支付用户零钱"


@dataclass
class Transaction:
    """One JSAPI order, from prepay to paid, closed or refunded."""

    out_trade_no: str
    appid: str
    mchid: str
    description: str
    total_fen: int
    payer_openid: str
    notify_url: str
    attach: str | None
    time_expire: datetime | None
    prepay_id: str
    prepay_expires_at: float
    created_at: float
    trade_state: str = "NOTPAY"
    transaction_id: str | None = None
    success_time: float | None = None
    paid_by: str | None = None
    #: Fen promised back by refunds not closed.
    refunded_fen: int = 0

    def terms(self) -> tuple:
        """What a repeated prepay must match to get this order's prepay_id."""
        return (self.appid, self.description, self.total_fen, self.payer_openid,
                self.notify_url, self.attach, self.time_expire)

    def to_wechat(self) -> dict:
        """The order as WeChat Pay describes it in a query answer and a payment notification.

        https://pay.weixin.qq.com/doc/v3/merchant/4012791859
        """
        view = {"appid": self.appid, "mchid": self.mchid, "out_trade_no": self.out_trade_no,
                "trade_state": self.trade_state,
                "trade_state_desc": TRADE_STATE_DESC[self.trade_state],
                "amount": {"total": self.total_fen, "currency": "CNY"}}
        if self.attach is not None:
            view["attach"] = self.attach
        if self.transaction_id:
            view.update(
                transaction_id=self.transaction_id, trade_type="JSAPI", bank_type="OTHERS",
                success_time=china_time(self.success_time), payer={"openid": self.paid_by},
                amount={"total": self.total_fen, "payer_total": self.total_fen,
                        "currency": "CNY", "payer_currency": "CNY"},
                promotion_detail=[])
        return view


@dataclass
class Refund:
    out_refund_no: str
    refund_id: str
    out_trade_no: str
    transaction_id: str
    refund_fen: int
    total_fen: int
    reason: str | None
    notify_url: str | None
    created_at: float
    status: str = "PROCESSING"
    success_time: float | None = None

    def to_wechat(self) -> dict:
        """The refund as WeChat Pay answers it (refund API, refund query).

        https://pay.weixin.qq.com/doc/v3/merchant/4012791862
        """
        view = {"refund_id": self.refund_id, "out_refund_no": self.out_refund_no,
                "transaction_id": self.transaction_id, "out_trade_no": self.out_trade_no,
                "channel": "ORIGINAL", "user_received_account": USER_RECEIVED_ACCOUNT,
                "create_time": china_time(self.created_at), "status": self.status,
                "funds_account": "AVAILABLE", "amount": self._amount(), "promotion_detail": []}
        if self.success_time is not None:
            view["success_time"] = china_time(self.success_time)
        return view

    def notification_resource(self, mchid: str) -> dict:
        """The decrypted resource of its REFUND.* notification (no appid in it).

        https://pay.weixin.qq.com/doc/v3/merchant/4012791865
        """
        resource = {"mchid": mchid, "transaction_id": self.transaction_id,
                    "out_trade_no": self.out_trade_no, "refund_id": self.refund_id,
                    "out_refund_no": self.out_refund_no, "refund_status": self.status,
                    "user_received_account": USER_RECEIVED_ACCOUNT,
                    "amount": {"total": self.total_fen, "refund": self.refund_fen,
                               "payer_total": self.total_fen, "payer_refund": self.refund_fen}}
        if self.success_time is not None:
            resource["success_time"] = china_time(self.success_time)
        return resource

    def _amount(self) -> dict:
        return {"total": self.total_fen, "refund": self.refund_fen, "from": [],
                "payer_total": self.total_fen, "payer_refund": self.refund_fen,
                "settlement_refund": self.refund_fen, "settlement_total": self.total_fen,
                "discount_refund": 0, "currency": "CNY", "refund_fee": 0}


@dataclass
class Attempt:
    """One POST of a notification and what the app answered."""

    sent_at: float
    http_status: int | None
    answer: str
    error: str | None = None

    @property
    def accepted(self) -> bool:
        return self.http_status is not None and 200 <= self.http_status < 300


@dataclass
class Delivery:
    """One notification (one id) and every attempt to deliver it."""

    number: int
    notification_id: str
    kind: str  # payment, refund or raw
    event_type: str
    url: str
    body: str
    tamper: str
    mode: str
    out_trade_no: str | None = None
    out_refund_no: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    #: scheduled, sending, delivered (a 2xx answer), failed (retries exhausted) or sent.
    state: str = "scheduled"

    def to_dict(self) -> dict:
        return {"number": self.number, "notification_id": self.notification_id,
                "kind": self.kind, "event_type": self.event_type, "url": self.url,
                "tamper": self.tamper, "mode": self.mode, "out_trade_no": self.out_trade_no,
                "out_refund_no": self.out_refund_no, "state": self.state, "body": self.body,
                "attempts": [asdict(attempt) for attempt in self.attempts]}


@dataclass
class PayOptions:
    """What an admin call may tune; `reset` brings back these defaults."""

    #: Seconds before each retry of a notification the app did not accept. WeChat Pay waits
    #: 15 s, 15 s, 30 s, 3 min… over a day; the sandbox keeps it short.
    notify_retry_delays: list[float] = field(default_factory=lambda: [1.0, 2.0, 4.0])
    #: Seconds the sandbox waits for the app's answer to a notification (WeChat Pay: 5).
    notify_timeout: float = 5.0
    #: Seconds before a "late" notification is sent, unless the call names late_seconds.
    late_seconds: float = 3.0
    #: Seconds before a refund completes; 0 completes it at once, None waits for an admin call.
    refund_delay_seconds: float | None = 1.0
    #: How the refund notification is sent (the NOTIFY_MODES).
    refund_notify: str = "once"

    def update(self, changes: dict) -> list[str]:
        """Apply the known, well-typed changes; returns the names refused."""
        refused = []
        known = {option.name for option in fields(self)}
        for name, value in changes.items():
            if name not in known or not _valid_option(name, value):
                refused.append(name)
                continue
            setattr(self, name, [float(v) for v in value] if name == "notify_retry_delays"
                    else value)
        return refused


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 600


def _valid_option(name: str, value) -> bool:
    if name == "notify_retry_delays":
        return isinstance(value, list) and len(value) <= 20 and all(map(_number, value))
    if name == "refund_delay_seconds":
        return value is None or _number(value)
    if name == "refund_notify":
        return value in NOTIFY_MODES
    if name == "notify_timeout":
        return _number(value) and 0 < value <= 60
    return _number(value)


class PayLedger:
    """The sandbox's WeChat Pay memory; hold `lock` for any change."""

    def __init__(self):
        self.lock = threading.RLock()
        self.transactions: dict[str, Transaction] = {}
        self.prepay_ids: dict[str, str] = {}  # prepay_id → out_trade_no
        self.refunds: dict[str, Refund] = {}
        self.deliveries: list[Delivery] = []
        self.options = PayOptions()
        self.response_tampers: list[str] = []

    def reset_options(self) -> PayOptions:
        """Back to the default options, with no answer left to tamper with."""
        with self.lock:
            self.options = PayOptions()
            self.response_tampers.clear()
            return self.options

    def transaction_by_prepay_id(self, prepay_id: str) -> Transaction | None:
        with self.lock:
            out_trade_no = self.prepay_ids.get(prepay_id)
            return self.transactions.get(out_trade_no) if out_trade_no else None

    def take_response_tamper(self) -> str | None:
        """The tampering to apply to this answer, if an admin call asked for some."""
        with self.lock:
            return self.response_tampers.pop(0) if self.response_tampers else None

    def new_delivery(self, **values) -> Delivery:
        with self.lock:
            delivery = Delivery(number=len(self.deliveries) + 1, **values)
            self.deliveries.append(delivery)
            return delivery

    def record(self, delivery: Delivery, attempt: Attempt) -> None:
        with self.lock:
            delivery.attempts.append(attempt)
            if attempt.accepted:
                delivery.state = "delivered"

    def set_state(self, delivery: Delivery, state: str) -> None:
        with self.lock:
            if delivery.state != "delivered":
                delivery.state = state

    def find_deliveries(self, out_trade_no: str | None = None, out_refund_no: str | None = None,
                        notification_id: str | None = None) -> list[dict]:
        """Notifications sent, oldest first, as JSON-ready dicts, filtered by what is given."""
        with self.lock:
            return [delivery.to_dict() for delivery in self.deliveries
                    if (out_trade_no is None or delivery.out_trade_no == out_trade_no)
                    and (out_refund_no is None or delivery.out_refund_no == out_refund_no)
                    and (notification_id is None
                         or delivery.notification_id == notification_id)]

    def delivery(self, notification_id: str) -> Delivery | None:
        with self.lock:
            return next((delivery for delivery in reversed(self.deliveries)
                         if delivery.notification_id == notification_id), None)


def prepay_id_now() -> str:
    """A prepay_id shaped like WeChat Pay's: wx, the time to the second, 20 hex digits."""
    return "wx" + time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(10)


def transaction_id_now() -> str:
    """A 28-digit transaction_id shaped like WeChat Pay's (4200… for balance payments)."""
    return "4200" + time.strftime("%Y%m%d") + f"{secrets.randbelow(10 ** 16):016d}"


def refund_id_now() -> str:
    """A 29-digit refund_id shaped like WeChat Pay's (50…)."""
    return "50" + time.strftime("%Y%m%d") + f"{secrets.randbelow(10 ** 19):019d}"


def attach_to(app) -> None:
    """Give the sandbox app its ledger (called when the pay blueprint is registered)."""
    app.extensions.setdefault(EXTENSION, PayLedger())


def current() -> PayLedger:
    """The ledger of the sandbox serving this request."""
    return current_app.extensions[EXTENSION]
