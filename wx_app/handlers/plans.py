"""The catalogue pages and the individual purchase (附件1 二（一）): 专技人员公需科目 and
专技人员专业科目 → a plan → 立即购买 → 个人购买 (or 团体购买) → 提交订单 → the pay page.

Browsing needs no login; 立即购买 and what follows do.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import Blueprint, abort, redirect, render_template, url_for

from .. import orders, plans
from ..errors import DomainError, NotFound
from ..extensions import db
from ..models import Plan
from ..models.catalog import PLAN_CATEGORIES
from ..sessions import current_trainee, login_required, oauth_in_wechat
from .invoice_form import INVOICE_CHOICES, TITLE_KINDS, invoice_request, posted_invoice

bp = Blueprint("plans", __name__, url_prefix="/h5/plans")



@bp.app_template_filter("yuan")
def yuan(amount_fen: int) -> str:
    """3300 → "33.00" (money is fen everywhere, yuan only on the page)."""
    return f"{amount_fen // 100:,}.{amount_fen % 100:02d}"


@bp.app_template_filter("beijing")
def beijing(moment: datetime | None) -> str:
    """A stored (naive UTC) time as Beijing time: 2024-03-01 09:30."""
    return (moment + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M") if moment else ""


@bp.get("/<key>")
@oauth_in_wechat
def page(key: str):
    """/h5/plans/public and /h5/plans/professional list plans; /h5/plans/<code> shows one."""
    if key in PLAN_CATEGORIES:
        return _catalogue(key)
    return _plan_page(key)


def _catalogue(category: str):
    groups = plans.public_plans() if category == "public" else plans.professional_plans()
    every_plan = [plan for group in groups for plan in group.plans]
    return render_template("plans.html", category=category,
                           category_name=plans.CATEGORY_NAMES[category], groups=groups,
                           holdings=plans.holdings(current_trainee(), every_plan))


def _plan_page(code: str):
    plan = plans.plan_with_courses(code)
    if plan is None:
        abort(404)
    return render_template("plan.html", plan=plan, category_name=plans.CATEGORY_NAMES[
        plan.category], holdings=plans.holdings(current_trainee(), [plan]))


# --- 立即购买: the purchase page -----------------------------------------------------------------

@bp.get("/<code>/buy")
@login_required
def buy(code: str):
    """项目购买: the plan's facts to check, then 个人购买 or 团体购买."""
    plan = _plan(code)
    return render_template("plan_buy.html", plan=plan,
                           holdings=plans.holdings(current_trainee(), [plan]))


# --- 个人购买 → 提交订单 ---------------------------------------------------------------------

@bp.get("/<code>/order")
@login_required
def order_form(code: str):
    """提交订单 (个人购买): the amount and the invoice choice, 立即申请 or 以后申请."""
    plan = _plan(code)
    trainee = current_trainee()
    return _order_page(plan, {"choice": "later", "title_kind": "personal",
                              "title": trainee.name, "tax_number": "", "email": ""})


@bp.post("/<code>/order")
@login_required
def submit_order(code: str):
    """提交订单: open (or reuse) the trainee's order and go to its payment."""
    plan = _plan(code)
    invoice = posted_invoice("personal")
    try:
        order = orders.open_order(current_trainee(), plan, [current_trainee()],
                                  kind="individual", invoice_request=invoice_request(invoice))
    except DomainError as exc:
        db.session.rollback()
        return _order_page(plan, invoice, error=exc.message, errors=exc.fields,
                           status=exc.http_status)
    db.session.commit()

    return redirect(url_for("orders.pay_page", out_trade_no=order.out_trade_no), code=303)


def _order_page(plan: Plan, invoice: dict, *, error: str | None = None,
                errors: dict | None = None, status: int = 200):
    trainee = current_trainee()
    holding = plans.holdings(trainee, [plan])
    refusal = None
    if not plan.is_open:
        refusal = orders.PlanNotOpen.message
    elif plan.id in holding.owned:
        refusal = orders.AlreadyEnrolled.message
    return render_template("order_submit.html", plan=plan, invoice=invoice, error=error,
                           errors=errors or {}, refusal=refusal, holdings=holding,
                           invoice_choices=INVOICE_CHOICES, title_kinds=TITLE_KINDS), status




def _plan(code: str) -> Plan:
    plan = db.session.scalar(sa.select(Plan).where(Plan.code == code[:40]))
    if plan is None:
        raise NotFound("没有找到该培训计划。")
    return plan
