"""Refunds (退款): staff refunds of an order or of one trainee's line, automatic refunds of
lines paid twice, and the refund notification that completes them.

- `request_refund(out_trade_no, *, trainee_id_number=None, reason, requested_by)`: refund
  rows in `processing`, lines `refunding`; refused while the trainee has earned hours in
  the plan (REFUND_REQUIRES_NO_CREDIT), and for a line already refunding or refunded.
- `submit_refund(refund)`: the refund at WeChat Pay (the same out_refund_no refunds once,
  however often it is sent); the job `submit_refund_job(refund_id)` retries it.
- `complete_refund(refund, result, *, source)`: WeChat Pay's final word, from the refund
  notification or the refund API's answer: success withdraws the enrollments and moves the
  order to `refunded` or `partially_refunded`; closed gives the lines back; abnormal holds
  the order for staff.
- `process_refund_notification()`: /pay/refund-notify after the notification is stored.

Every function flushes; the command, job or request commits. The order row is locked before
its lines and refunds, the same order settlement uses.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from . import jobs
from .accounts import normalise_username
from .errors import Conflict, NotFound
from .extensions import db
from .models import Certificate, Enrollment, Order, OrderItem, Refund, Trainee
from .models._types import utcnow
from .orders import (
    STATE_LABELS,
    flag_for_review,
    lock_items,
    lock_order,
    notify_url,
    process_notification,
    wechat_time,
)
from .pay.client import PayError, client
from .pay.notifications import NotificationRefused, check_merchant
from .personal_data import lookup_hash

log = logging.getLogger(__name__)

REFUND_NOTIFY_PATH = "/pay/refund-notify"
#: WeChat Pay allows 80 characters of reason; the column holds as much.
REASON_MAX = 80
AUTOMATIC_REASON = "学员已通过其他订单开通该学习计划，本笔自动退款"
#: WeChat Pay's refund statuses and ours.
FINAL_STATES = {"SUCCESS": "success", "CLOSED": "closed", "ABNORMAL": "abnormal"}
#: PayError codes after which the same request may well succeed later.
TRANSIENT_CODES = frozenset({"TIMEOUT", "NETWORK_ERROR", "SYSTEM_ERROR", "FREQUENCY_LIMITED",
                             "RESPONSE_NOT_VERIFIED", "BAD_RESPONSE"})


class RefundRefused(Conflict):
    code = "refund_refused"
    message = "该订单不能退款。"


# --- asking for a refund ---------------------------------------------------------------------

def request_refund(out_trade_no: str, *, trainee_id_number: str | None = None, reason: str,
                   requested_by: str) -> list[Refund]:
    """Refund rows for a paid order, or for one trainee's line of it; flushes.

    Without a trainee every enrolled line is refunded: as one refund of the whole order when
    nothing of it was refunded yet, else one refund per line. Raises NotFound or
    RefundRefused (with the reason in Chinese).
    """
    reason = " ".join((reason or "").split())[:REASON_MAX]
    if not reason:
        raise RefundRefused("请填写退款原因。", code="reason_required")
    order = lock_order(out_trade_no)
    if order is None:
        raise NotFound(f"没有订单号为 {out_trade_no} 的订单。")
    if order.state not in ("paid", "partially_refunded"):
        raise RefundRefused(f"订单状态为“{STATE_LABELS[order.state]}”，不能退款。",
                            code="order_not_paid")
    items = lock_items(order)
    chosen = _chosen_items(items, trainee_id_number)
    _check_refundable(chosen)

    whole = trainee_id_number is None and all(item.state == "enrolled" for item in items)
    numbers = _refund_numbers(order, 1 if whole else len(chosen))
    if whole:
        refunds = [Refund(out_refund_no=numbers[0], order_id=order.id, order_item_id=None,
                          amount_fen=order.amount_fen)]
    else:
        refunds = [Refund(out_refund_no=number, order_id=order.id, order_item_id=item.id,
                          amount_fen=item.price_fen) for number, item in zip(numbers, chosen,
                                                                            strict=True)]
    for refund in refunds:
        refund.reason, refund.requested_by, refund.state = reason, requested_by, "processing"
        refund.created_at = utcnow()
        db.session.add(refund)
    for item in chosen:
        item.state = "refunding"
    db.session.flush()
    log.info("order %s: %s asked for %d refund(s) of %d line(s), %d fen: %s",
             order.out_trade_no, requested_by, len(refunds), len(chosen),
             sum(refund.amount_fen for refund in refunds), ", ".join(r.out_refund_no
                                                                    for r in refunds))
    return refunds


def _chosen_items(items: list[OrderItem], trainee_id_number: str | None) -> list[OrderItem]:
    if trainee_id_number is None:
        chosen = [item for item in items if item.state in ("enrolled", "refunding",
                                                            "refunded")]
        if all(item.state == "refunded" for item in chosen):
            raise RefundRefused("该订单已全部退款，不能重复退款。", code="already_refunded")
        return [item for item in chosen if item.state != "refunded"]
    trainee = db.session.scalar(sa.select(Trainee).where(
        Trainee.id_number_hash == lookup_hash(normalise_username(trainee_id_number))))
    chosen = [item for item in items if trainee is not None and item.trainee_id == trainee.id]
    if not chosen:
        raise RefundRefused("该身份证号码的学员不在这个订单中。", code="not_in_order")
    return chosen


def _check_refundable(items: list[OrderItem]) -> None:
    """Refuse lines already refunding or refunded, and lines whose trainee earned hours."""
    for item in items:
        if item.state == "refunding":
            raise RefundRefused(f"学员{item.trainee.id_number_masked}的退款正在处理中，"
                                "不能重复退款。", code="refund_in_progress")
        if item.state == "refunded":
            raise RefundRefused(f"学员{item.trainee.id_number_masked}已退款，不能重复退款。",
                                code="already_refunded")
        if item.state != "enrolled":
            raise RefundRefused(f"学员{item.trainee.id_number_masked}未开通，不能退款。",
                                code="not_enrolled")

    enrollments = db.session.scalars(sa.select(Enrollment).where(
        Enrollment.order_item_id.in_([item.id for item in items]))).all()
    if current_app.config["REFUND_REQUIRES_NO_CREDIT"]:
        earned = [enrollment for enrollment in enrollments if enrollment.earned_hours > 0]
        if earned:
            raise RefundRefused(
                "以下学员已获得学时，不能退款：" + "、".join(
                    f"{e.trainee.id_number_masked}（{e.earned_hours}学时）" for e in earned),
                code="credit_earned")
    certified = db.session.scalar(sa.select(sa.func.count(Certificate.id)).where(
        Certificate.enrollment_id.in_([enrollment.id for enrollment in enrollments])))
    if certified:
        raise RefundRefused("已发放证书的学员不能退款。", code="certificate_issued")


def _refund_numbers(order: Order, count: int) -> list[str]:
    """out_refund_no of the next refunds of the order: <out_trade_no>R01, R02…"""
    made = db.session.scalar(sa.select(sa.func.count(Refund.id))
                             .where(Refund.order_id == order.id))
    return [f"{order.out_trade_no}R{made + n:02d}" for n in range(1, count + 1)]


def start_automatic_refund(order: Order, item: OrderItem) -> Refund:
    """Refund a line whose trainee was already enrolled when the order was paid; flushes.

    The refund is sent to WeChat Pay by a job once the settlement commits.
    """
    refund = Refund(out_refund_no=_refund_numbers(order, 1)[0], order_id=order.id,
                    order_item_id=item.id, amount_fen=item.price_fen, reason=AUTOMATIC_REASON,
                    requested_by="system", state="processing", created_at=utcnow())
    db.session.add(refund)
    db.session.flush()
    jobs.enqueue_after_commit(submit_refund_job, refund.id)
    log.warning("order %s line %s (trainee %s) paid twice: refund %s of %d fen started",
                order.out_trade_no, item.id, item.trainee_id, refund.out_refund_no,
                refund.amount_fen)
    return refund


# --- sending it to WeChat Pay ----------------------------------------------------------------

def submit_refund(refund: Refund) -> str:
    """Send the refund to WeChat Pay; WeChat Pay's status (PROCESSING, SUCCESS…); flushes.

    A refusal that no retry can change (the amount, the order) closes the refund and gives
    the lines back, then raises RefundRefused; a transient failure raises the PayError and
    leaves the refund processing, to be sent again with the same number.
    """
    order = refund.order
    try:
        answer = client().refund(order.out_trade_no, refund.out_refund_no, refund.amount_fen,
                                 order.amount_fen, refund.reason, notify_url(REFUND_NOTIFY_PATH))
    except PayError as exc:
        if exc.code in TRANSIENT_CODES or (exc.upstream_status or 500) >= 500:
            log.warning("refund %s not sent yet: %s", refund.out_refund_no, exc.code)
            raise
        log.error("refund %s refused by WeChat Pay: %s %s", refund.out_refund_no, exc.code,
                  exc.detail)
        complete_refund(refund, {"refund_status": "CLOSED", "amount": {
            "refund": refund.amount_fen}}, source=f"refusal {exc.code}")
        raise RefundRefused(f"微信支付拒绝退款（{exc.code}）：{exc.detail}",
                            code="refund_refused_upstream") from exc

    refund.refund_id = str(answer.get("refund_id") or "")[:32] or refund.refund_id
    status = answer.get("status")
    log.info("refund %s sent: WeChat Pay says %s", refund.out_refund_no, status)
    if status in FINAL_STATES:
        complete_refund(refund, {**answer, "refund_status": status}, source="refund answer")
    db.session.flush()
    return str(status)


@jobs.job
def submit_refund_job(refund_id: int) -> None:
    """Send a processing refund to WeChat Pay (queued for automatic refunds and retries)."""
    refund = db.session.get(Refund, refund_id)
    if refund is None or refund.state != "processing":
        return
    try:
        submit_refund(refund)
    except RefundRefused:
        return  # closed and logged; nothing a retry can change


def processing_refund_ids(older_than: timedelta, limit: int) -> list[int]:
    """Refunds still processing that were asked for more than `older_than` ago, oldest first."""
    return list(db.session.scalars(
        sa.select(Refund.id)
        .where(Refund.state == "processing", Refund.created_at < utcnow() - older_than)
        .order_by(Refund.id).limit(limit)))


def check_refund(refund: Refund) -> str:
    """Ask WeChat Pay how a processing refund stands and apply a final answer; flushes.

    This is the fallback for a refund notification that never came: without it, money paid
    back would leave the enrollment standing, or a refund that failed would never be known.
    A refund WeChat Pay has never heard of (the request was lost) is sent again under the
    same number, which WeChat Pay treats as the same refund.
    """
    try:
        answer = client().query_refund(refund.out_refund_no)
    except PayError as exc:
        if exc.code != "RESOURCE_NOT_EXISTS":
            raise
        log.warning("refund %s unknown to WeChat Pay: sending it again", refund.out_refund_no)
        return "resent:" + submit_refund(refund)
    status = answer.get("status")
    if status not in FINAL_STATES:
        return "not_final"
    return complete_refund(refund, {**answer, "refund_status": status}, source="refund query")


# --- WeChat Pay's final word -----------------------------------------------------------------

def complete_refund(refund: Refund, result: Mapping, *, source: str) -> str:
    """Apply a refund's final status; the outcome (applied, repeat, or a refusal); flushes.

    The order's row is locked first, as every writer of its lines does.
    """
    lock_order(refund.order.out_trade_no)
    status = result.get("refund_status")
    new_state = FINAL_STATES.get(status)
    if new_state is None:
        return "not_final"
    amount = result.get("amount")
    refunded = amount.get("refund") if isinstance(amount, Mapping) else None
    if refunded != refund.amount_fen:
        flag_for_review(refund.order, "refund_amount_mismatch", f"refund {refund.out_refund_no}: "
                        f"{refunded} fen reported for {refund.amount_fen}")
        return "amount_mismatch"
    if refund.state == new_state:
        return "repeat"
    if refund.state not in ("processing", "abnormal"):
        flag_for_review(refund.order, "refund_state_mismatch", f"refund {refund.out_refund_no} "
                        f"is {refund.state}, {source} says {status}")
        return "state_mismatch"

    order = refund.order
    lines = lock_items(order)
    items = [item for item in lines if item.state == "refunding"
             and (refund.order_item_id is None or item.id == refund.order_item_id)]
    refund.state = new_state
    refund.refund_id = str(result.get("refund_id") or refund.refund_id or "")[:32] or None
    if new_state == "success":
        refund.completed_at = wechat_time(result.get("success_time")) or utcnow()
        _withdraw(order, lines, items)
    elif new_state == "closed":
        refund.completed_at = utcnow()
        _give_back(order, items)
    else:
        flag_for_review(order, "refund_abnormal", f"refund {refund.out_refund_no} is ABNORMAL "
                        "at WeChat Pay: resolve it in the merchant platform")
    db.session.flush()
    log.info("refund %s of order %s %s (%s): %d line(s)", refund.out_refund_no,
             order.out_trade_no, new_state, source, len(items))
    return "applied"


def _withdraw(order: Order, lines: list[OrderItem], items: list[OrderItem]) -> None:
    """The refund succeeded: `items` are refunded, their enrollments withdrawn; the order's
    state follows from all its `lines` (as locked and read by this transaction)."""
    for item in items:
        item.state = "refunded"
    if items:
        db.session.execute(sa.delete(Enrollment).where(
            Enrollment.order_item_id.in_([item.id for item in items])))
    states = {line.state for line in lines}
    order.state = "refunded" if states <= {"refunded", "cancelled"} else "partially_refunded"
    log.info("order %s %s: enrollment(s) of line(s) %s withdrawn", order.out_trade_no,
             order.state, ", ".join(str(item.id) for item in items))


def _give_back(order: Order, items: list[OrderItem]) -> None:
    """The refund did not happen: lines that still have their enrollment are enrolled again."""
    kept = set(db.session.scalars(sa.select(Enrollment.order_item_id).where(
        Enrollment.order_item_id.in_([item.id for item in items]))))
    for item in items:
        if item.id in kept:
            item.state = "enrolled"
        else:
            flag_for_review(order, "refund_closed", f"refund of line {item.id} closed, but the "
                            "line has no enrollment: pay it back by hand")


def process_refund_notification(row_id: int, headers: Mapping, body: bytes) -> str:
    """Verify, decrypt and apply a stored refund notification; its outcome code; flushes."""
    return process_notification(row_id, headers, body, "refund", _apply_notification)


def _apply_notification(resource: Mapping, out_trade_no: str, row_id: int) -> str:
    try:
        check_merchant(resource)
    except NotificationRefused as refused:
        return refused.code
    order_id = db.session.scalar(sa.select(Refund.order_id).where(
        Refund.out_refund_no == str(resource["out_refund_no"])[:64]))
    if order_id is None:
        return "unknown_refund"
    order = db.session.get(Order, order_id)
    order = lock_order(order.out_trade_no)
    if order.out_trade_no != out_trade_no:
        return "order_mismatch"
    refund = db.session.scalar(sa.select(Refund)
                               .where(Refund.out_refund_no == resource["out_refund_no"])
                               .with_for_update().execution_options(populate_existing=True))
    return complete_refund(refund, resource, source=f"notification {row_id}")
