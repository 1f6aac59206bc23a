"""The catalogue as trainees browse it: 公需 plans by year, 专业 plans by title series and year,
one plan with its courses, and what a trainee has of each plan (owned, or an unpaid order).

Each list is a fixed number of SQL statements whatever the number of plans: the plans
with their series in one, the trainee's enrollments and unpaid lines of those plans in one
each (tests/test_orders_catalogue.py counts them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import contains_eager, selectinload

from .extensions import db
from .models import Course, Enrollment, Order, OrderItem, Plan, PlanCourse, TitleSeries, Trainee

CATEGORY_NAMES = {"public": "专技人员公需科目", "professional": "专技人员专业科目"}


@dataclass
class PlanGroup:
    """Plans under one heading: a year (公需) or a title series (专业)."""

    key: str
    title: str
    plans: list[Plan] = field(default_factory=list)


@dataclass(frozen=True)
class Holdings:
    """What one trainee has of some plans: plan ids owned, and unpaid orders by plan id."""

    owned: frozenset[int] = frozenset()
    pending: dict[int, str] = field(default_factory=dict)  # plan id → out_trade_no


def public_plans() -> list[PlanGroup]:
    """公需科目 plans, newest year first, one group per year."""
    plans = db.session.scalars(
        sa.select(Plan).where(Plan.category == "public")
        .order_by(Plan.plan_year.desc(), Plan.sort_order, Plan.code)).all()
    groups: dict[int, PlanGroup] = {}
    for plan in plans:
        groups.setdefault(plan.plan_year, PlanGroup(str(plan.plan_year),
                                                    f"{plan.plan_year}年度")).plans.append(plan)
    return list(groups.values())


def professional_plans() -> list[PlanGroup]:
    """专业科目 plans, one group per title series (its order), newest year first in each."""
    plans = db.session.scalars(
        sa.select(Plan).join(Plan.title_series).options(contains_eager(Plan.title_series))
        .where(Plan.category == "professional")
        .order_by(TitleSeries.sort_order, TitleSeries.code, Plan.plan_year.desc(),
                  Plan.sort_order, Plan.code)).all()
    groups: dict[int, PlanGroup] = {}
    for plan in plans:
        series = plan.title_series
        groups.setdefault(series.id, PlanGroup(series.code, series.name)).plans.append(plan)
    return list(groups.values())


def plan_with_courses(code: str) -> Plan | None:
    """The plan with its courses and their chapters loaded (three statements)."""
    return db.session.scalar(
        sa.select(Plan).where(Plan.code == code[:40])
        .options(selectinload(Plan.plan_courses).selectinload(PlanCourse.course)
                 .selectinload(Course.chapters)))


def holdings(trainee: Trainee | None, plans: list[Plan]) -> Holdings:
    """Which of `plans` the trainee owns, and which wait for payment (two statements)."""
    plan_ids = [plan.id for plan in plans]
    if trainee is None or not plan_ids:
        return Holdings()
    owned = db.session.scalars(sa.select(Enrollment.plan_id).where(
        Enrollment.trainee_id == trainee.id, Enrollment.plan_id.in_(plan_ids)))
    pending = db.session.execute(
        sa.select(OrderItem.plan_id, Order.out_trade_no).join(Order)
        .where(OrderItem.trainee_id == trainee.id, OrderItem.plan_id.in_(plan_ids),
               OrderItem.open_key.is_not(None), Order.buyer_id == trainee.id)).all()
    return Holdings(frozenset(owned), {plan_id: number for plan_id, number in pending})
