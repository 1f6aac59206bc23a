"""团体购买 and 团购订单: the buyer's pages for paying one plan for many trainees.

The pasted list is never kept on the server: the page carries it in its form, and 检查,
提交订单 and 下载错误文件 each post it again and check it again (three SQL statements a
check). See docs/group-purchase.md.
"""

from __future__ import annotations

import io
import math
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import Blueprint, jsonify, redirect, render_template, request, send_file, url_for
from sqlalchemy.orm import joinedload
from werkzeug.exceptions import RequestEntityTooLarge

from .. import group_purchase, orders
from ..errors import DomainError, InvalidInput, NotFound
from ..extensions import db
from ..models import Order, OrderItem, Plan, Trainee
from ..sessions import current_trainee, login_required
from .errors import error_response
from .invoice_form import INVOICE_CHOICES, invoice_request, posted_invoice

bp = Blueprint("group_purchase", __name__)

#: Largest request body the group pages take. 2,000 full-width lines, percent-encoded in a
#: form, come to about 340 KB; the app-wide limit (2 MB) is for everything else.
MAX_REQUEST_BYTES = 512 * 1024
TOO_LARGE = (f"提交的内容过大：一次最多粘贴{group_purchase.MAX_LINES}个身份证号码，每行一个，"
             "请分批提交。")
#: Orders a page of 团购订单 shows, and trainees shown under each before 查看全部.
ORDERS_PER_PAGE = 10
TRAINEES_SHOWN = 20
#: Trainees a page of one group order shows.
TRAINEES_PER_PAGE = 50

_ENDPOINTS = {"group_purchase.group_page", "group_purchase.check_page",
              "group_purchase.error_file", "group_purchase.check_api"}


def yuan(amount_fen: int) -> str:
    """3300 → "33.00"."""
    return f"{amount_fen // 100:,}.{amount_fen % 100:02d}"


def beijing_time(moment: datetime | None) -> str:
    """A stored (naive UTC) timestamp as the buyer's clock shows it: 2024-03-01 09:30."""
    return (moment + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M") if moment else ""


@bp.before_app_request
def cap_group_request_size():
    """Refuse an enormous paste before it is read (the CSRF check reads the form first)."""
    if request.endpoint in _ENDPOINTS:
        request.max_content_length = MAX_REQUEST_BYTES


@bp.errorhandler(RequestEntityTooLarge)
def paste_too_large(exc):
    db.session.rollback()
    return error_response("too_large", TOO_LARGE, 413)


# --- 团体购买 ----------------------------------------------------------------------------------

@bp.get("/h5/plans/<code>/group")
@login_required
def group_page(code: str):
    """团体购买: paste the trainees' ID numbers, one a line, for one plan."""
    return _page(_plan(code))


@bp.post("/h5/plans/<code>/group")
@login_required
def check_page(code: str):
    """检查 shows counts and problems; 提交订单 opens one order and goes to its payment."""
    plan = _plan(code)
    text = request.form.get("id_numbers", "")
    if request.form.get("action") != "submit":
        try:
            check = group_purchase.check_id_lines(plan, text)
        except DomainError as exc:
            return _page(plan, text=text, error=exc.message, status=exc.http_status)
        return _page(plan, text=text, check=check, invoice=posted_invoice("company"))

    invoice = posted_invoice("company")
    try:
        order = group_purchase.place_group_order(
            current_trainee(), plan, text, invoice_request=invoice_request(invoice),
            expected_count=_int(request.form.get("expected_count")))
    except DomainError as exc:
        db.session.rollback()
        return _page(plan, text=text, check=_check_or_none(plan, text), invoice=invoice,
                     error=exc.message, errors=exc.fields, status=exc.http_status)
    db.session.commit()

    return redirect(url_for("orders.pay_page", out_trade_no=order.out_trade_no), code=303)


@bp.post("/h5/plans/<code>/group/errors.xlsx")
@login_required
def error_file(code: str):
    """下载错误文件: the refused lines of the posted list, as an xlsx for the buyer."""
    plan = _plan(code)
    check = group_purchase.check_id_lines(plan, request.form.get("id_numbers", ""))
    content = group_purchase.error_workbook(check)

    response = send_file(
        io.BytesIO(content), as_attachment=True, download_name=f"团体购买错误文件-{plan.code}.xlsx",
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    response.headers["Cache-Control"] = "no-store"  # it holds ID numbers in clear
    return response


@bp.post("/h5/api/group-check")
@login_required
def check_api():
    """Check a list without reloading: {"plan": code, "id_numbers": text} → counts, problems."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("id_numbers"), str):
        raise InvalidInput("请提交计划编号和身份证号码（每行一个）。", code="bad_request")
    plan = _plan(str(body.get("plan", "")))
    check = group_purchase.check_id_lines(plan, body["id_numbers"])
    return jsonify(check.to_dict())


def _plan(code: str) -> Plan:
    plan = db.session.scalars(sa.select(Plan).where(Plan.code == code[:40])).first()
    if plan is None:
        raise NotFound("没有找到该培训计划。")
    return plan


def _check_or_none(plan: Plan, text: str):
    try:
        return group_purchase.check_id_lines(plan, text)
    except DomainError:
        return None  # the error itself is already what the page says


def _page(plan: Plan, *, text: str = "", check=None, invoice: dict | None = None,
          error: str | None = None, errors: dict | None = None, status: int = 200):
    return render_template(
        "group_purchase.html", plan=plan, text=text, check=check,
        invoice=invoice or {"choice": "later"}, invoice_choices=INVOICE_CHOICES,
        error=error, errors=errors or {}, yuan=yuan,
        max_lines=group_purchase.MAX_LINES), status




def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


# --- 团购订单 ----------------------------------------------------------------------------------

@bp.get("/h5/group-orders")
@login_required
def group_orders():
    """团购订单: the buyer's group orders, newest first, each with its trainees' states."""
    buyer = current_trainee()
    page = max(_int(request.args.get("page")) or 1, 1)
    mine = sa.select(Order).where(Order.buyer_id == buyer.id, Order.kind == "group")

    total = db.session.scalar(sa.select(sa.func.count()).select_from(mine.subquery()))
    listed = db.session.scalars(
        mine.options(joinedload(Order.plan))
        .order_by(Order.created_at.desc(), Order.id.desc())
        .offset((page - 1) * ORDERS_PER_PAGE).limit(ORDERS_PER_PAGE)).all()
    order_ids = [order.id for order in listed]
    counts = _state_counts(order_ids)
    shown = _first_items(order_ids, TRAINEES_SHOWN)

    return render_template(
        "group_orders.html", orders=listed, counts=counts, shown=shown,
        page=page, pages=max(math.ceil(total / ORDERS_PER_PAGE), 1), total=total,
        item_states=orders.ITEM_STATE_LABELS, order_states=orders.STATE_LABELS, yuan=yuan,
        beijing_time=beijing_time, trainees_shown=TRAINEES_SHOWN)


@bp.get("/h5/group-orders/<out_trade_no>")
@login_required
def group_order(out_trade_no: str):
    """One group order of the buyer's, with every trainee's state, paged."""
    order = db.session.scalars(
        sa.select(Order).where(Order.out_trade_no == out_trade_no[:32],
                               Order.buyer_id == current_trainee().id,
                               Order.kind == "group")).first()
    if order is None:
        raise NotFound("没有找到该团购订单。")
    page = max(_int(request.args.get("page")) or 1, 1)
    counts = _state_counts([order.id])
    total = sum(counts.get(order.id, {}).values())
    items = db.session.execute(
        _items_query([order.id]).offset((page - 1) * TRAINEES_PER_PAGE)
        .limit(TRAINEES_PER_PAGE)).all()

    return render_template(
        "group_order.html", order=order, items=items, counts=counts,
        page=page, pages=max(math.ceil(total / TRAINEES_PER_PAGE), 1), total=total,
        item_states=orders.ITEM_STATE_LABELS, order_states=orders.STATE_LABELS, yuan=yuan,
        beijing_time=beijing_time)


def _items_query(order_ids: list[int]):
    return (sa.select(OrderItem.order_id, OrderItem.state, Trainee.name,
                      Trainee.id_number_masked)
            .join(Trainee, Trainee.id == OrderItem.trainee_id)
            .where(OrderItem.order_id.in_(order_ids))
            .order_by(OrderItem.order_id, OrderItem.id))


def _state_counts(order_ids: list[int]) -> dict[int, dict[str, int]]:
    """{order id: {item state: number of trainees}}, in one statement."""
    counts: dict[int, dict[str, int]] = {}
    if not order_ids:
        return counts
    rows = db.session.execute(
        sa.select(OrderItem.order_id, OrderItem.state, sa.func.count())
        .where(OrderItem.order_id.in_(order_ids))
        .group_by(OrderItem.order_id, OrderItem.state))
    for order_id, state, count in rows:
        counts.setdefault(order_id, {})[state] = count
    return counts


def _first_items(order_ids: list[int], limit: int) -> dict[int, list]:
    """{order id: its first `limit` lines (state, name, masked ID)}, in one statement."""
    shown: dict[int, list] = {order_id: [] for order_id in order_ids}
    if not order_ids:
        return shown
    position = sa.func.row_number().over(partition_by=OrderItem.order_id,
                                         order_by=OrderItem.id).label("position")
    numbered = (sa.select(OrderItem.id, OrderItem.order_id, OrderItem.state,
                          OrderItem.trainee_id, position)
                .where(OrderItem.order_id.in_(order_ids)).subquery())
    rows = db.session.execute(
        sa.select(numbered.c.order_id, numbered.c.state, Trainee.name,
                  Trainee.id_number_masked)
        .join(Trainee, Trainee.id == numbered.c.trainee_id)
        .where(numbered.c.position <= limit)
        .order_by(numbered.c.order_id, numbered.c.id))
    for row in rows:
        shown[row.order_id].append(row)
    return shown
