"""Orders (订单): opening one, paying it with WeChat Pay (JSAPI), settling, expiring.

What other code calls (docs/orders.md tells the whole story):

- `open_order(buyer, plan, trainees, *, kind, invoice_request=None) -> Order`: a pending
  order, individual (个人购买) or group (团体购买), priced on the server; an individual
  order asked for again is the same order.
- `start_payment(order, trainee, *, openid, in_wechat, return_url) -> PaymentStart`: the
  prepay at WeChat Pay and what the page does next (JSAPI parameters, or the sandbox's
  payment page outside WeChat).
- `settle(out_trade_no, transaction, *, source) -> Settlement`: the one way an order
  becomes paid, used by /pay/notify, by the order query and by the expiry.
- `check_payment(order)`: what to do when someone looks at a pending order: close it when
  overdue; ask WeChat Pay when no notification came within a few seconds of the prepay.
- `expire_order(order)`, the job `expire_order_job(order_id)` and `overdue_order_ids()`:
  an unpaid order is closed at WeChat Pay and here after ORDER_TTL_MINUTES, unless WeChat
  Pay says it was paid, in which case it is settled.
- `record_notification()`, `process_payment_notification()`: /pay/notify's two steps.

Every function flushes; the request, job or command commits. The order row is locked
(SELECT … FOR UPDATE) by whatever changes its state, so that a notification, its repeats,
the query and the expiry never apply one payment twice.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode, urlsplit

import requests
import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from . import jobs, store
from .credit_codes import check_credit_code
from .errors import Conflict, InvalidInput
from .extensions import db
from .models import (
    Enrollment,
    Invoice,
    Order,
    OrderItem,
    PaymentNotification,
    Plan,
    Trainee,
    WechatBinding,
)
from .models._types import utcnow
from .pay.client import PayError, client
from .pay.notifications import NotificationRefused, check_merchant, verify_and_decrypt
from .pay.signing import credentials, jsapi_pay_params

log = logging.getLogger(__name__)

KINDS = ("individual", "group")
STATE_LABELS = {"pending": "待支付", "paid": "支付成功", "closed": "已关闭",
                "partially_refunded": "部分退款", "refunded": "已退款"}
ITEM_STATE_LABELS = {"pending": "待支付", "enrolled": "已开通", "cancelled": "已取消",
                     "refunding": "退款中", "refunded": "已退款"}

#: A pending order whose prepay is older than this, and still without a notification, is
#: asked about at WeChat Pay when someone looks at it (the notification may be lost).
QUERY_AFTER = timedelta(seconds=5)
#: At most one such query per order in this many seconds, whoever asks (Redis key).
QUERY_INTERVAL_SECONDS = 5
#: WeChat Pay's own host: any other configured base is a sandbox.
WECHATPAY_HOST = "api.mch.weixin.qq.com"
#: WeChat Pay limits a description to 127 bytes of UTF-8.
DESCRIPTION_MAX_BYTES = 127
#: A notification body kept whole up to this many bytes (TEXT holds 65,535); a real one is
#: about 1 KB, so anything longer is junk and is kept cut.
BODY_KEPT_BYTES = 60_000

_OUT_TRADE_NO_CHARS = string.ascii_uppercase + string.digits
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
REFUNDED_UNSEEN = "WeChat Pay reports the order paid and refunded, no payment was seen here"
#: The outcomes of a settlement that mean "the payment is ours and applied".
ACCEPTED = frozenset({"applied", "repeat"})


# --- refusals --------------------------------------------------------------------------------

class PlanNotOpen(Conflict):
    code = "plan_not_open"
    message = "该学习计划暂未开放，暂不能购买。"


class AlreadyEnrolled(Conflict):
    """Some of the trainees already own the plan; `trainee_ids` says who."""

    code = "already_enrolled"
    message = "您已购买该学习计划，请到“课程培训”点击“进入学习”。"

    def __init__(self, message: str | None = None, *, trainee_ids: Iterable[int] = ()):
        super().__init__(message)
        self.trainee_ids = sorted(trainee_ids)


class AlreadyInOpenOrder(Conflict):
    """Some of the trainees are on a line of another unpaid order for the plan."""

    code = "already_in_open_order"
    message = "该学习计划已有待支付的订单（可能是单位的团体购买），请完成支付或待订单关闭后再购买。"

    def __init__(self, message: str | None = None, *, trainee_ids: Iterable[int] = ()):
        super().__init__(message)
        self.trainee_ids = sorted(trainee_ids)


class OpenInWeChat(Conflict):
    code = "open_in_wechat"
    message = "请在微信中打开完成支付。"


class PayerChanged(Conflict):
    code = "payer_changed"
    message = "该订单已在另一个微信中发起支付，请在原微信中完成支付，或待订单关闭后重新下单。"


# --- opening an order ------------------------------------------------------------------------

@dataclass(frozen=True)
class InvoiceRequest:
    """立即申请: the invoice asked for with the order (issued later by the invoice work)."""

    title_kind: str  # personal or company
    title: str
    tax_number: str | None
    email: str


def check_invoice_request(raw: InvoiceRequest | Mapping) -> InvoiceRequest:
    """The request, trimmed and checked; InvalidInput names each bad field.

    Field names are those of the order forms: invoice_title_kind, invoice_title,
    invoice_tax_number (统一社会信用代码, checked per GB 32100-2015), invoice_email.
    """
    values = raw if isinstance(raw, Mapping) else raw.__dict__
    kind = str(values.get("title_kind") or "")
    title = " ".join(str(values.get("title") or "").split())
    email = str(values.get("email") or "").strip()
    problems: dict[str, str] = {}

    if kind not in ("personal", "company"):
        problems["invoice_title_kind"] = "请选择发票抬头类型：个人或单位。"
    if not title:
        problems["invoice_title"] = "请填写发票抬头。"
    elif len(title) > 100:
        problems["invoice_title"] = "发票抬头不能超过100个字。"
    tax_number = None
    if kind == "company":
        try:
            tax_number = check_credit_code(values.get("tax_number"))
        except InvalidInput as exc:
            problems["invoice_tax_number"] = exc.message
    if not email or len(email) > 120 or not _EMAIL.fullmatch(email):
        problems["invoice_email"] = "请填写正确的电子邮箱，电子发票将发送到该邮箱。"
    if problems:
        raise InvalidInput("发票信息有误，请按提示修改。", code="invalid_invoice", fields=problems)
    return InvoiceRequest(kind, title, tax_number, email)


def open_key(trainee_id: int, plan_id: int) -> str:
    """The order_items.open_key of an unpaid line: one per trainee and plan at a time."""
    return f"{trainee_id}:{plan_id}"


def new_out_trade_no() -> str:
    """WX + Beijing time to the second + 8 random letters or digits: 24 characters."""
    stamp = (datetime.now(UTC) + timedelta(hours=8)).strftime("%Y%m%d%H%M%S")
    return "WX" + stamp + "".join(secrets.choice(_OUT_TRADE_NO_CHARS) for _ in range(8))


def ttl() -> timedelta:
    return timedelta(minutes=current_app.config["ORDER_TTL_MINUTES"])


def open_order(buyer: Trainee, plan: Plan, trainees: Iterable[Trainee], *, kind: str,
               invoice_request: InvoiceRequest | Mapping | None = None) -> Order:
    """A pending order of `plan` for `trainees`, paid by `buyer`; flushes.

    The amount is len(trainees) × plan.price_fen, computed here. An individual order
    (kind "individual", trainees == [buyer]) asked for again while unpaid is the same order,
    with the new invoice choice. Raises PlanNotOpen, AlreadyEnrolled, AlreadyInOpenOrder
    (both with `trainee_ids`), or InvalidInput (the trainees, or the invoice fields).

    An unpaid order past its time that still holds one of the trainees is expired first
    (WeChat Pay is asked; a late payment is settled). For an individual order that late
    payment is the answer: the paid order is returned. For a group order it raises
    AlreadyEnrolled, whose rollback undoes that settlement until the next notification or
    look repeats it; call `release_overdue()` and commit first to avoid the detour.
    """
    trainees = list(trainees)
    trainee_ids = [trainee.id for trainee in trainees]
    if kind not in KINDS:
        raise InvalidInput("订单类型有误。", code="invalid_kind")
    if not trainees or len(set(trainee_ids)) != len(trainee_ids):
        raise InvalidInput("请提供不重复的学员。", code="invalid_trainees")
    if kind == "individual" and trainee_ids != [buyer.id]:
        raise InvalidInput("个人购买只能为本人购买。", code="invalid_trainees")
    if not plan.is_open:
        raise PlanNotOpen()
    if plan.price_fen <= 0:
        raise InvalidInput("该学习计划无需购买。", code="free_plan")
    invoice = check_invoice_request(invoice_request) if invoice_request is not None else None

    settled = release_overdue(plan, trainee_ids)
    enrolled = _enrolled_ids(plan, trainee_ids)
    if enrolled:
        if kind == "individual" and settled:
            return settled[0]
        raise AlreadyEnrolled(trainee_ids=enrolled)
    reused = _reusable_order(buyer, plan, kind, trainee_ids, locking=False)
    if reused is not None:
        return _reuse(reused, invoice)

    order = Order(out_trade_no=new_out_trade_no(), kind=kind, buyer_id=buyer.id,
                  plan_id=plan.id, amount_fen=len(trainees) * plan.price_fen, state="pending",
                  invoice_choice="now" if invoice else "later", needs_review=False,
                  expires_at=utcnow() + ttl())
    order.items = [OrderItem(trainee_id=trainee_id, plan_id=plan.id, price_fen=plan.price_fen,
                             state="pending", open_key=open_key(trainee_id, plan.id))
                   for trainee_id in trainee_ids]
    try:
        with db.session.begin_nested():
            db.session.add(order)
            db.session.flush()
    except IntegrityError as exc:
        if "open_key" not in str(exc.orig):
            raise
        # Another request put one of them on an unpaid line a moment ago (a second tap).
        reused = _reusable_order(buyer, plan, kind, trainee_ids, locking=True)
        if reused is not None:
            return _reuse(reused, invoice)
        raise AlreadyInOpenOrder(trainee_ids=_open_line_holders(plan, trainee_ids)) from None

    if invoice is not None:
        _request_invoice(order, invoice)
    jobs.enqueue_after_commit(expire_order_job, order.id, delay=ttl())
    log.info("order %s opened: %s, buyer trainee %s, plan %s, %d line(s), %d fen, invoice %s",
             order.out_trade_no, kind, buyer.id, plan.code, len(trainees), order.amount_fen,
             order.invoice_choice)
    return order


def release_overdue(plan: Plan, trainee_ids: list[int]) -> list[Order]:
    """Expire the unpaid orders past their time that hold any of these trainees' lines.

    Returns the ones WeChat Pay reported paid (now settled); flushes.
    """
    keys = [open_key(trainee_id, plan.id) for trainee_id in trainee_ids]
    overdue = db.session.scalars(
        sa.select(Order).join(OrderItem).where(OrderItem.open_key.in_(keys),
                                               Order.state == "pending",
                                               Order.expires_at <= utcnow()).distinct()).all()
    settled = []
    for order in overdue:
        if expire_order(order) == "settled":
            settled.append(order)
    return settled


def _enrolled_ids(plan: Plan, trainee_ids: list[int]) -> set[int]:
    return set(db.session.scalars(
        sa.select(Enrollment.trainee_id).where(Enrollment.plan_id == plan.id,
                                               Enrollment.trainee_id.in_(trainee_ids))))


def _reusable_order(buyer: Trainee, plan: Plan, kind: str, trainee_ids: list[int], *,
                    locking: bool) -> Order | None:
    """The buyer's own unpaid individual order of the plan, for an individual request.

    Any other unpaid line holding one of the trainees refuses the request. `locking` reads
    the latest committed rows (after a duplicate key, the row of the other transaction).
    """
    query = (sa.select(OrderItem.trainee_id, Order).join(Order, OrderItem.order_id == Order.id)
             .where(OrderItem.open_key.in_([open_key(tid, plan.id) for tid in trainee_ids])))
    if locking:
        query = query.with_for_update(read=True)
    holders = db.session.execute(query.execution_options(populate_existing=locking)).all()
    if not holders:
        return None
    order = holders[0][1]
    if (kind == "individual" and order.kind == "individual" and order.buyer_id == buyer.id
            and order.state == "pending" and order.expires_at > utcnow()):
        return order
    raise AlreadyInOpenOrder(trainee_ids={trainee_id for trainee_id, _ in holders})


def _open_line_holders(plan: Plan, trainee_ids: list[int]) -> set[int]:
    return set(db.session.scalars(
        sa.select(OrderItem.trainee_id)
        .where(OrderItem.open_key.in_([open_key(tid, plan.id) for tid in trainee_ids]))
        .with_for_update(read=True)))


def _reuse(order: Order, invoice: InvoiceRequest | None) -> Order:
    """The same unpaid order, with the invoice choice made this time."""
    db.session.execute(sa.delete(Invoice).where(Invoice.order_id == order.id,
                                                Invoice.state == "requested"))
    order.invoice_choice = "now" if invoice else "later"
    if invoice is not None:
        _request_invoice(order, invoice)
    db.session.flush()
    log.info("order %s reused by buyer trainee %s (invoice %s)", order.out_trade_no,
             order.buyer_id, order.invoice_choice)
    return order


def _request_invoice(order: Order, invoice: InvoiceRequest) -> None:
    db.session.add(Invoice(order_id=order.id, state="requested", title_kind=invoice.title_kind,
                           title=invoice.title, tax_number=invoice.tax_number,
                           email=invoice.email, amount_fen=order.amount_fen,
                           requested_at=utcnow(), modification_count=0))
    db.session.flush()


def buyer_order(out_trade_no: str, buyer: Trainee) -> Order | None:
    """The order with this number if `buyer` placed it (anyone else sees nothing)."""
    return db.session.scalar(sa.select(Order).where(Order.out_trade_no == out_trade_no[:32],
                                                    Order.buyer_id == buyer.id))


def open_order_of(trainee: Trainee, plan: Plan) -> Order | None:
    """The unpaid order holding the trainee's line of the plan, if any."""
    item = db.session.scalar(sa.select(OrderItem).where(
        OrderItem.open_key == open_key(trainee.id, plan.id)))
    return item.order if item is not None else None


# --- paying: the prepay and the page's next step ----------------------------------------------

@dataclass(frozen=True)
class PaymentStart:
    """What the pay page does next.

    mode "jsapi": call WeixinJSBridge getBrandWCPayRequest with `params`; "sandbox": go to
    `redirect` (the sandbox's payment page); "paid" or "closed": the order is no longer
    payable, go to `redirect` (the result page).
    """

    mode: str
    params: dict | None = None
    redirect: str | None = None


def uses_pay_sandbox() -> bool:
    """True when WECHATPAY_API_BASE is not WeChat Pay's own host."""
    return urlsplit(current_app.config["WECHATPAY_API_BASE"]).hostname != WECHATPAY_HOST


def notify_url(path: str = "/pay/notify") -> str:
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + path


def start_payment(order: Order, trainee: Trainee, *, openid: str | None, in_wechat: bool,
                  return_url: str) -> PaymentStart:
    """Make (or repeat) the prepay of a pending order and say how the page pays it.

    The payer's openid is, in this order: `openid` (proved by OAuth in this browser), the
    trainee's WeChat binding, and only against the sandbox a sandbox user made for the
    trainee. Outside WeChat, against real WeChat Pay, there is nothing to pay with:
    OpenInWeChat. The order row is locked, so the expiry cannot close it meanwhile.
    """
    if not in_wechat and not uses_pay_sandbox():
        raise OpenInWeChat()
    order = lock_order(order.out_trade_no)
    if order.state == "pending" and order.expires_at <= utcnow():
        expire_order(order)
    if order.state != "pending":
        return PaymentStart("paid" if order.state != "closed" else "closed", redirect=return_url)

    payer = openid or bound_openid(trainee)
    from_sandbox = payer is None and uses_pay_sandbox()
    if from_sandbox:
        payer = _sandbox_payer(trainee)
    if payer is None:
        raise OpenInWeChat("请在微信中重新打开本页面完成支付。")
    try:
        prepay_id = _prepay(order, payer)
    except PayError as exc:
        if not (from_sandbox and exc.code == "PARAM_ERROR"):
            return _prepay_refused(order, exc, return_url)
        # The sandbox forgot its users (it was restarted): make a new one once.
        store.client().delete(_sandbox_payer_key(trainee))
        prepay_id = _prepay(order, _sandbox_payer(trainee))

    if in_wechat:
        return PaymentStart("jsapi", params=jsapi_pay_params(credentials(), prepay_id))
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(current_app.config["WECHATPAY_API_BASE"]))
    query = urlencode({"prepay_id": prepay_id, "return_url": return_url})
    return PaymentStart("sandbox", redirect=f"{origin}/sandbox/pay/confirm?{query}")


def _prepay(order: Order, payer_openid: str) -> str:
    prepay_id = client().jsapi_prepay(order.out_trade_no, description(order), order.amount_fen,
                                      payer_openid, notify_url(), order.expires_at)
    if prepay_id != order.prepay_id:
        log.info("order %s has prepay %s", order.out_trade_no, prepay_id)
    order.prepay_id = prepay_id
    order.prepay_created_at = utcnow()
    db.session.flush()
    return prepay_id


def _prepay_refused(order: Order, exc: PayError, return_url: str) -> PaymentStart:
    """WeChat Pay says the order cannot be paid: find out why, or pass the error on."""
    if exc.code == "ORDERPAID":
        settle_from_query(order, source="prepay refused as paid")
        return PaymentStart("paid", redirect=return_url)
    if exc.code == "ORDER_CLOSED":
        expire_order(order, force=True)
        return PaymentStart("closed", redirect=return_url)
    if exc.code == "OUT_TRADE_NO_USED":
        raise PayerChanged() from exc
    raise exc


def description(order: Order) -> str:
    """What the payer reads in WeChat: the plan's name, cut to WeChat Pay's 127 bytes."""
    text = order.plan.name + (f"（团体购买{len(order.items)}人）" if order.kind == "group" else "")
    return text.encode()[:DESCRIPTION_MAX_BYTES].decode(errors="ignore")


def bound_openid(trainee: Trainee) -> str | None:
    return db.session.scalar(sa.select(WechatBinding.openid)
                             .where(WechatBinding.trainee_id == trainee.id))


def _sandbox_payer_key(trainee: Trainee) -> str:
    return store.key("pay", "sandbox_payer", trainee.id)


def _sandbox_payer(trainee: Trainee) -> str:
    """A WeChat user of the sandbox standing for this trainee on a desktop browser.

    Only against the sandbox: there a person plays WeChat on /sandbox/pay/confirm, and
    prepay needs an openid the sandbox knows. The user is made once per trainee through the
    sandbox's own API (POST /sandbox/api/users) and remembered in Redis for 30 days.
    """
    key = _sandbox_payer_key(trainee)
    known = store.client().get(key)
    if known:
        return known.decode()
    base = urlsplit(current_app.config["WECHATPAY_API_BASE"])
    try:
        answer = requests.post(f"{base.scheme}://{base.netloc}/sandbox/api/users",
                               json={"nickname": f"学员{trainee.id}", "subscribed": False},
                               timeout=5)
        answer.raise_for_status()
        openid = answer.json()["openid"]
    except (requests.RequestException, ValueError, KeyError) as exc:
        raise PayError("NETWORK_ERROR", f"sandbox user not made: {type(exc).__name__}") from exc
    store.client().set(key, openid, ex=30 * 24 * 3600)
    log.info("sandbox payer made for trainee %s", trainee.id)
    return openid


# --- settling --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Settlement:
    """What a settlement did: `outcome` applied, repeat, or the code of a refusal."""

    outcome: str
    order: Order | None = None

    @property
    def accepted(self) -> bool:
        return self.outcome in ACCEPTED


def lock_order(out_trade_no: str) -> Order | None:
    """The order, read fresh and locked until the transaction ends (SELECT … FOR UPDATE)."""
    return db.session.scalar(sa.select(Order).where(Order.out_trade_no == out_trade_no)
                             .with_for_update().execution_options(populate_existing=True))


def lock_items(order: Order) -> list[OrderItem]:
    return list(db.session.scalars(
        sa.select(OrderItem).where(OrderItem.order_id == order.id).order_by(OrderItem.id)
        .with_for_update().execution_options(populate_existing=True)))


def settle(out_trade_no: str, transaction: Mapping, *, source: str) -> Settlement:
    """Apply WeChat Pay's word that an order is paid: the one path to `paid`; flushes.

    `transaction` is a decrypted notification resource or an order-query answer. Under the
    order's row lock: the merchant and app must be ours, trade_state SUCCESS, amount.total
    the order's amount. A mismatch of merchant, app, amount or transaction flags the order
    for staff (needs_review, logged as ERROR) and enrolls nobody. A pending order becomes
    paid, every line enrolled; a trainee enrolled meanwhile by another order gets their
    line refunded by a job. A repeat of an applied payment changes nothing ("repeat").
    """
    order = lock_order(out_trade_no)
    if order is None:
        log.warning("settlement refused (%s): no order %s", source, out_trade_no)
        return Settlement("unknown_order")
    transaction_id = str(transaction.get("transaction_id") or "")
    try:
        check_merchant(transaction)
    except NotificationRefused as refused:
        flag_for_review(order, refused.code,
                        f"{refused.detail} reported by {source}, transaction {transaction_id}")
        return Settlement(refused.code, order)
    if transaction.get("trade_state") != "SUCCESS":
        log.info("order %s not settled (%s): trade_state %s", order.out_trade_no, source,
                 transaction.get("trade_state"))
        return Settlement("not_success", order)
    amount = transaction.get("amount")
    total = amount.get("total") if isinstance(amount, Mapping) else None
    if total != order.amount_fen:
        flag_for_review(order, "amount_mismatch", f"WeChat Pay reports {total} fen for "
                        f"{order.amount_fen} fen, transaction {transaction_id}")
        return Settlement("amount_mismatch", order)

    if order.state != "pending":
        if order.transaction_id == transaction_id:
            return Settlement("repeat", order)
        code = "paid_after_close" if order.state == "closed" else "transaction_mismatch"
        flag_for_review(order, code, f"transaction {transaction_id} reported by {source} for "
                        f"an order {order.state} (transaction {order.transaction_id})")
        return Settlement(code, order)
    if order.needs_review:
        log.warning("order %s not settled (%s): under review", order.out_trade_no, source)
        return Settlement("under_review", order)

    _apply_payment(order, transaction, transaction_id, source)
    return Settlement("applied", order)


def _apply_payment(order: Order, transaction: Mapping, transaction_id: str,
                   source: str) -> None:
    from . import notifications, refunds

    order.state = "paid"
    order.transaction_id = transaction_id
    order.paid_at = wechat_time(transaction.get("success_time")) or utcnow()
    payer = transaction.get("payer")
    order.payer_openid = str(payer.get("openid"))[:64] if isinstance(payer, Mapping) else None

    enrolled, doubled = 0, []
    for item in lock_items(order):
        if item.state != "pending":
            continue
        if _enroll(item):
            item.state = "enrolled"
            enrolled += 1
        else:
            # Enrolled meanwhile through another order or by staff: this line is refunded.
            item.state = "refunding"
            doubled.append(item)
        item.open_key = None
    db.session.flush()
    for item in doubled:
        refunds.start_automatic_refund(order, item)

    notifications.queue_payment_succeeded(order.id)
    log.info("order %s paid (%s): transaction %s, %d line(s) enrolled, %d already enrolled "
             "and refunded", order.out_trade_no, source, transaction_id, enrolled,
             len(doubled))


def _enroll(item: OrderItem) -> bool:
    """Enroll the line's trainee in its plan; False if they are enrolled already.

    The unique key (trainee_id, plan_id) decides, also against a concurrent transaction
    (whose uncommitted row makes this INSERT wait for its outcome). INSERT IGNORE (SQLite:
    OR IGNORE) turns the duplicate into "no row inserted" without a savepoint; every value
    inserted is ours, so nothing else can be ignored.
    """
    inserted = db.session.execute(
        sa.insert(Enrollment).prefix_with("IGNORE", dialect="mysql")
        .prefix_with("IGNORE", dialect="mariadb").prefix_with("OR IGNORE", dialect="sqlite")
        .values(trainee_id=item.trainee_id, plan_id=item.plan_id, order_item_id=item.id,
                earned_hours=0, created_at=utcnow()))
    return inserted.rowcount == 1


def flag_for_review(order: Order, code: str, detail: str) -> None:
    """Hold the order for staff: nobody is enrolled from it until they have looked."""
    order.needs_review = True
    order.review_reason = f"{code}: {detail}"[:255]
    db.session.flush()
    log.error("order %s flagged for review: %s", order.out_trade_no, order.review_reason)


def wechat_time(value) -> datetime | None:
    """WeChat Pay's RFC 3339 time (2018-06-08T10:34:56+08:00) as naive UTC."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(UTC).replace(tzinfo=None)


# --- the notification ------------------------------------------------------------------------

def _header(headers: Mapping, name: str, size: int) -> str | None:
    value = headers.get(name)
    return None if value is None else str(value)[:size]


def record_notification(kind: str, headers: Mapping, body: bytes) -> int:
    """Store a notification exactly as received, before anything in it is believed; its id.

    The caller commits at once, so that the row stays whatever happens next.
    """
    text = body[:BODY_KEPT_BYTES].decode("utf-8", errors="replace")
    try:
        envelope = json.loads(body)
    except ValueError:
        envelope = None
    notification_id = envelope.get("id") if isinstance(envelope, dict) else None
    inserted = db.session.execute(sa.insert(PaymentNotification).values(
        kind=kind, received_at=utcnow(), body=text,
        notification_id=notification_id[:64] if isinstance(notification_id, str) else None,
        wechatpay_serial=_header(headers, "Wechatpay-Serial", 80),
        wechatpay_timestamp=_header(headers, "Wechatpay-Timestamp", 20),
        wechatpay_nonce=_header(headers, "Wechatpay-Nonce", 64),
        wechatpay_signature=_header(headers, "Wechatpay-Signature", 512)))
    return inserted.inserted_primary_key[0]


def finish_notification(row_id: int, outcome: str, *, out_trade_no: str | None = None) -> None:
    """Write the outcome of a stored notification (one UPDATE, no read)."""
    values = {"outcome": outcome[:40]}
    if out_trade_no:
        values["out_trade_no"] = out_trade_no[:32]
    db.session.execute(sa.update(PaymentNotification)
                       .where(PaymentNotification.id == row_id).values(**values))


def process_notification(row_id: int, headers: Mapping, body: bytes, kind: str,
                         apply: Callable[[Mapping, str, int], str]) -> str:
    """Verify and decrypt a stored notification of `kind` (payment or refund), hand its
    resource to `apply(resource, out_trade_no, row_id)`, and write the outcome; flushes.

    `apply` checks the merchant itself: a payment's mismatch flags the order it names.
    """
    try:
        event = verify_and_decrypt(headers, body, kind)
    except NotificationRefused as refused:
        log.warning("%s notification %s refused: %s", kind, row_id, refused)
        finish_notification(row_id, refused.code)
        return refused.code

    out_trade_no = str(event["resource"]["out_trade_no"])
    outcome = apply(event["resource"], out_trade_no, row_id)
    finish_notification(row_id, outcome, out_trade_no=out_trade_no)
    if outcome not in ACCEPTED:
        log.warning("%s notification %s for %s refused: %s", kind, row_id, out_trade_no[:32],
                    outcome)
    return outcome


def process_payment_notification(row_id: int, headers: Mapping, body: bytes) -> str:
    """Verify, decrypt and settle a stored payment notification; its outcome code; flushes."""
    return process_notification(
        row_id, headers, body, "payment",
        lambda resource, out_trade_no, row: settle(out_trade_no, resource,
                                                   source=f"notification {row}").outcome)


# --- asking WeChat Pay -----------------------------------------------------------------------

def query(order: Order) -> dict | None:
    """The order as WeChat Pay sees it; None when WeChat Pay has never heard of it."""
    try:
        return client().query_by_out_trade_no(order.out_trade_no)
    except PayError as exc:
        if exc.code == "ORDER_NOT_EXIST":
            return None
        raise


def settle_from_query(order: Order, *, source: str) -> Settlement | None:
    """Ask WeChat Pay about the order and settle it if it was paid; None if it was not."""
    answer = query(order)
    if answer is None:
        return None
    if answer.get("trade_state") == "REFUND" and order.state == "pending":
        flag_for_review(order, "refunded_unseen", REFUNDED_UNSEEN)
        return Settlement("refunded_unseen", order)
    if answer.get("trade_state") != "SUCCESS":
        return None
    return settle(order.out_trade_no, answer, source=source)


def check_payment(order: Order) -> Order:
    """Bring a looked-at order up to date with WeChat Pay, cheaply; flushes.

    Overdue and unpaid: expired now (as the job would). Pending with a prepay older than
    QUERY_AFTER: WeChat Pay is asked, at most once per QUERY_INTERVAL_SECONDS for the order
    across all processes, and a payment found is settled. A failing query changes nothing.
    """
    if order.state != "pending":
        return order
    now = utcnow()
    if order.expires_at <= now:
        try:
            expire_order(order)
        except PayError as exc:
            log.warning("order %s overdue, not expired yet: %s", order.out_trade_no, exc.code)
        return order
    if order.prepay_created_at is None or now - order.prepay_created_at < QUERY_AFTER:
        return order
    if not store.client().set(store.key("pay", "query", order.id), 1, nx=True,
                              ex=QUERY_INTERVAL_SECONDS):
        return order
    try:
        settle_from_query(order, source="order query")
    except PayError as exc:
        log.warning("order %s query failed: %s", order.out_trade_no, exc.code)
    return order


# --- expiry ----------------------------------------------------------------------------------

def expire_order(order: Order, *, force: bool = False) -> str:
    """Close an unpaid order past its time, at WeChat Pay and here; or settle a late payment.

    Under the order's lock: WeChat Pay is asked first (a payment made in the last moment is
    settled, not lost), then the order is closed there (so it can no longer be paid), then
    here: lines cancelled and their open_key freed. Returns "settled", "closed", "flagged"
    or "unchanged" (not pending, or not yet due unless `force`); flushes. A PayError (no
    answer from WeChat Pay) leaves the order pending, for the next attempt.
    """
    order = lock_order(order.out_trade_no)
    if order is None or order.state != "pending":
        return "unchanged"
    if not force and order.expires_at > utcnow():
        return "unchanged"

    answer = query(order)
    if answer is not None:
        trade_state = answer.get("trade_state")
        if trade_state == "SUCCESS":
            settlement = settle(order.out_trade_no, answer, source="expiry")
            return "settled" if settlement.outcome == "applied" else "flagged"
        if trade_state == "REFUND":
            flag_for_review(order, "refunded_unseen", REFUNDED_UNSEEN)
            return "flagged"
        if trade_state != "CLOSED":
            try:
                client().close(order.out_trade_no)
            except PayError as exc:
                if exc.code != "ORDERPAID":
                    raise
                return "settled" if settle_from_query(order, source="expiry") else "unchanged"

    _close(order)
    return "closed"


def _close(order: Order) -> None:
    now = utcnow()
    for item in lock_items(order):
        if item.state == "pending":
            item.state, item.open_key = "cancelled", None
    order.state, order.closed_at = "closed", now
    db.session.flush()
    log.info("order %s closed unpaid (expired at %s)", order.out_trade_no,
             order.expires_at.isoformat(timespec="seconds"))


@jobs.job
def expire_order_job(order_id: int) -> None:
    """Queued by open_order to run when the order is due: expire it unless it was paid."""
    order = db.session.get(Order, order_id)
    if order is None or order.state != "pending":
        return
    left = order.expires_at - utcnow()
    if left > timedelta(0):
        # Ran early (clocks of two machines differ): come back when it is due.
        jobs.enqueue_after_commit(expire_order_job, order_id, delay=left)
        return
    expire_order(order)


def overdue_order_ids(limit: int = 1000) -> list[int]:
    """Pending orders past their time, oldest first (ix_orders_state_expires_at)."""
    return list(db.session.scalars(
        sa.select(Order.id).where(Order.state == "pending", Order.expires_at <= utcnow())
        .order_by(Order.expires_at).limit(limit)))


# --- what staff see --------------------------------------------------------------------------

def flagged_orders(limit: int = 200) -> list[Order]:
    """Orders held for review, newest first."""
    return list(db.session.scalars(
        sa.select(Order).where(Order.needs_review.is_(True))
        .order_by(Order.updated_at.desc()).limit(limit)))


def clear_review(order: Order, note: str) -> Settlement | None:
    """Staff have looked: lift the hold and settle the order from WeChat Pay's own answer.

    Returns the settlement if WeChat Pay reports the order paid (with the right amount and
    merchant, else it is flagged again); flushes.
    """
    order = lock_order(order.out_trade_no)
    log.warning("order %s review cleared: %s (was: %s)", order.out_trade_no, note,
                order.review_reason)
    order.needs_review, order.review_reason = False, None
    db.session.flush()
    if order.state != "pending":
        return None
    return settle_from_query(order, source="review cleared")
