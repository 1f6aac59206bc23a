"""A trainee's credit hours in one calendar year against the yearly requirement.

The rule (渝人服函〔2024〕4号, 二): at least 90 hours a year, of which 公需科目 at least 30 and
专业科目 at least 60. Hours count for the year of the plan that earned them, and the year is
the calendar year in China (Asia/Shanghai), whatever the server's clock zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from .catalog import PROFESSIONAL_REQUIRED_HOURS, PUBLIC_REQUIRED_HOURS
from .extensions import db
from .models import Enrollment, Plan

CHINA = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class YearlyCredit:
    """Hours earned in `year` per category, and what the rule requires of each."""

    year: int
    public_hours: int  # 公需科目
    professional_hours: int  # 专业科目
    public_required: int = PUBLIC_REQUIRED_HOURS
    professional_required: int = PROFESSIONAL_REQUIRED_HOURS


def current_year(now: datetime | None = None) -> int:
    """This calendar year in China."""
    return (now or datetime.now(UTC)).astimezone(CHINA).year


def yearly_credit(trainee_id: int, year: int) -> YearlyCredit:
    """Earned hours of the trainee's enrollments in plans of `year`, summed per category."""
    rows = db.session.execute(
        sa.select(Plan.category, sa.func.coalesce(sa.func.sum(Enrollment.earned_hours), 0))
        .join(Plan, Plan.id == Enrollment.plan_id)
        .where(Enrollment.trainee_id == trainee_id, Plan.plan_year == year)
        .group_by(Plan.category))
    hours = {category: int(total) for category, total in rows}
    return YearlyCredit(year, hours.get("public", 0), hours.get("professional", 0))
