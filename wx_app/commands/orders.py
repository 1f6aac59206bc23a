"""`flask orders …`: the staff's side of orders (docs/orders.md).

- `expire-overdue`: close unpaid orders past their time (settling any WeChat Pay reports
  paid); for a cron, and for the local run that has no job scheduler.
- `refund OUT_TRADE_NO [--trainee ID_NUMBER] --reason …`: refund a paid order, or one
  trainee's line of a group order, while no hours are earned.
- `check-refunds`: ask WeChat Pay about refunds still processing whose notification has
  not come; for a cron.
- `flagged`: orders held for review; `clear-review OUT_TRADE_NO --note …` lifts the hold.
"""

from __future__ import annotations

import getpass
import logging
from datetime import timedelta

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from .. import jobs, orders, refunds
from ..errors import DomainError
from ..extensions import db
from ..models import Order, Refund
from ..pay.client import PayError
from . import Refused

log = logging.getLogger(__name__)


@click.group("orders", cls=AppGroup)
def command() -> None:
    """Orders: expiry of unpaid orders, refunds, orders held for review."""


@command.command("expire-overdue")
@click.option("--limit", default=1000, show_default=True, help="Most orders in one run.")
def expire_overdue(limit: int) -> None:
    """Close the unpaid orders past their time, asking WeChat Pay about each first."""
    counts: dict[str, int] = {}
    for order_id in orders.overdue_order_ids(limit):
        order = db.session.get(Order, order_id)
        try:
            outcome = orders.expire_order(order)
            db.session.commit()
        except PayError as exc:
            db.session.rollback()
            outcome = "failed"
            log.warning("order %s not expired: WeChat Pay %s", order_id, exc.code)
        counts[outcome] = counts.get(outcome, 0) + 1
    click.echo(f"关闭 {counts.get('closed', 0)} 笔，补记支付 {counts.get('settled', 0)} 笔，"
               f"待核查 {counts.get('flagged', 0)} 笔，失败 {counts.get('failed', 0)} 笔")
    if counts.get("failed"):
        raise SystemExit(1)


@command.command("check-refunds")
@click.option("--older-than", "older_than_minutes", default=10, show_default=True,
              help="Minutes a refund has been processing before it is checked.")
@click.option("--limit", default=1000, show_default=True, help="Most refunds in one run.")
def check_refunds(older_than_minutes: int, limit: int) -> None:
    """Settle refunds still processing from WeChat Pay's own answer."""
    counts: dict[str, int] = {}
    for refund_id in refunds.processing_refund_ids(timedelta(minutes=older_than_minutes),
                                                   limit):
        refund = db.session.get(Refund, refund_id)
        try:
            outcome = refunds.check_refund(refund)
            db.session.commit()
        except (PayError, DomainError) as exc:
            db.session.rollback()
            outcome = "failed"
            log.warning("refund %s not checked: %s", refund_id, exc.code)
        counts[outcome] = counts.get(outcome, 0) + 1
    click.echo(f"已完成 {counts.get('applied', 0)} 笔，仍在处理 {counts.get('not_final', 0)} 笔，"
               f"重新提交 {sum(n for k, n in counts.items() if k.startswith('resent'))} 笔，"
               f"失败 {counts.get('failed', 0)} 笔")
    if counts.get("failed"):
        raise SystemExit(1)


@command.command("refund")
@click.argument("out_trade_no")
@click.option("--trainee", "trainee_id_number", metavar="ID_NUMBER",
              help="Refund only this trainee's line (group orders).")
@click.option("--reason", required=True, help="Sent to WeChat Pay; the payer sees it.")
@click.option("--by", "staff", default=getpass.getuser, show_default="the system user",
              help="Who asks (recorded as staff:<name>).")
def refund(out_trade_no: str, trainee_id_number: str | None, reason: str, staff: str) -> None:
    """Refund a paid order, or one trainee of it, while no hours are earned."""
    try:
        made = refunds.request_refund(out_trade_no, trainee_id_number=trainee_id_number,
                                      reason=reason, requested_by=f"staff:{staff}"[:64])
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        raise Refused(exc.message) from None

    for refund_row in made:
        try:
            status = refunds.submit_refund(refund_row)
            db.session.commit()
        except refunds.RefundRefused as exc:
            db.session.commit()  # the refund is closed and the line given back
            raise Refused(exc.message) from None
        except PayError as exc:
            db.session.rollback()
            jobs.enqueue_after_commit(refunds.submit_refund_job, refund_row.id)
            db.session.commit()
            click.echo(f"退款 {refund_row.out_refund_no}：微信支付暂时无法访问（{exc.code}），"
                       "已转入后台重试。")
            continue
        click.echo(f"退款 {refund_row.out_refund_no}：{refund_row.amount_fen / 100:.2f}元，"
                   f"微信支付受理状态 {status}，退款结果以微信支付通知为准。")


@command.command("flagged")
def flagged() -> None:
    """List the orders held for review (needs_review) and why."""
    found = orders.flagged_orders()
    for order in found:
        click.echo(f"{order.out_trade_no}  {orders.STATE_LABELS[order.state]}  "
                   f"{order.amount_fen / 100:.2f}元  {order.review_reason}")
    click.echo(f"共 {len(found)} 笔待核查订单")


@command.command("clear-review")
@click.argument("out_trade_no")
@click.option("--note", required=True, help="What was checked, for the log.")
def clear_review(out_trade_no: str, note: str) -> None:
    """Lift the review hold; a pending order is then settled from WeChat Pay's answer."""
    order = db.session.scalar(sa.select(Order).where(Order.out_trade_no == out_trade_no))
    if order is None or not order.needs_review:
        raise Refused(f"没有待核查的订单 {out_trade_no}。")
    try:
        settlement = orders.clear_review(order, note)
        db.session.commit()
    except PayError as exc:
        db.session.rollback()
        raise Refused(f"微信支付暂时无法访问（{exc.code}），请稍后再试。") from None
    outcome = settlement.outcome if settlement else "无支付"
    click.echo(f"{out_trade_no}：已解除核查，订单状态 {orders.STATE_LABELS[order.state]}"
               f"（{outcome}）")
