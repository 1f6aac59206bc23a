"""The catalogue: professional-title series, plans, courses and their chapters.

Every row carries a stable `code` from the catalogue file, so that loading a file again
updates rows in place instead of adding new ones (see docs/catalog.md).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ._types import Timestamp, one_of, table_args, utcnow

PLAN_CATEGORIES = ("public", "professional")  # 公需科目, 专业科目
PLAN_STATUSES = ("open", "not_open")


class TitleSeries(db.Model):
    """职称系列: a professional-title series such as 工程 or 教育."""

    __tablename__ = "title_series"
    __table_args__ = table_args()

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    name: Mapped[str] = mapped_column(sa.String(50), unique=True)
    sort_order: Mapped[int] = mapped_column(default=0)


class Plan(db.Model):
    """培训计划: what a trainee buys; complete when earned hours reach `required_hours`."""

    __tablename__ = "plans"
    __table_args__ = table_args(
        one_of("category", PLAN_CATEGORIES, "category"),
        one_of("status", PLAN_STATUSES, "status"),
        sa.CheckConstraint("required_hours > 0", name="required_hours_positive"),
        sa.CheckConstraint("price_fen >= 0", name="price_fen_not_negative"),
        sa.CheckConstraint("plan_year BETWEEN 2000 AND 2100", name="plan_year_range"),
        # 专业 plans belong to a series; 公需 plans to none.
        sa.CheckConstraint(
            "(category = 'public' AND title_series_id IS NULL) OR "
            "(category = 'professional' AND title_series_id IS NOT NULL)",
            name="series_matches_category"),
        sa.Index("ix_plans_category_year", "category", "plan_year"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(40), unique=True)
    category: Mapped[str] = mapped_column(sa.String(16))
    plan_year: Mapped[int] = mapped_column()
    title_series_id: Mapped[int | None] = mapped_column(sa.ForeignKey("title_series.id"),
                                                        index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    description: Mapped[str | None] = mapped_column(sa.Text)
    #: 学分要求: credit hours needed to complete the plan.
    required_hours: Mapped[int] = mapped_column()
    #: Price for one trainee, in fen (3300 for 公需; 150 × hours for 专业).
    price_fen: Mapped[int] = mapped_column()
    #: open, or not_open (listed, cannot be bought yet).
    status: Mapped[str] = mapped_column(sa.String(16), default="open")
    sort_order: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)

    title_series: Mapped[TitleSeries | None] = relationship()
    plan_courses: Mapped[list[PlanCourse]] = relationship(
        back_populates="plan", order_by="PlanCourse.position", cascade="all, delete-orphan")

    @property
    def is_open(self) -> bool:
        return self.status == "open"


class Course(db.Model):
    """A course; its credit hours count only when every chapter is completed."""

    __tablename__ = "courses"
    __table_args__ = table_args(
        sa.CheckConstraint("credit_hours > 0", name="credit_hours_positive"))

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(40), unique=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    teacher: Mapped[str | None] = mapped_column(sa.String(100))
    description: Mapped[str | None] = mapped_column(sa.Text)
    credit_hours: Mapped[int] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)

    chapters: Mapped[list[Chapter]] = relationship(
        back_populates="course", order_by="Chapter.position", cascade="all, delete-orphan")


class Chapter(db.Model):
    """章节: one video of a course, watched in order of `position`."""

    __tablename__ = "chapters"
    __table_args__ = table_args(
        sa.UniqueConstraint("course_id", "position"),
        sa.CheckConstraint("duration_seconds > 0", name="duration_positive"),
        sa.CheckConstraint("position > 0", name="position_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(48), unique=True)
    course_id: Mapped[int] = mapped_column(sa.ForeignKey("courses.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column()
    title: Mapped[str] = mapped_column(sa.String(200))
    duration_seconds: Mapped[int] = mapped_column()
    #: Path under the media root or an absolute URL of the video.
    media_url: Mapped[str] = mapped_column(sa.String(512))

    course: Mapped[Course] = relationship(back_populates="chapters")


class PlanCourse(db.Model):
    """A course offered by a plan; the trainee chooses among a plan's courses."""

    __tablename__ = "plan_courses"
    __table_args__ = table_args()

    plan_id: Mapped[int] = mapped_column(sa.ForeignKey("plans.id", ondelete="CASCADE"),
                                         primary_key=True)
    course_id: Mapped[int] = mapped_column(sa.ForeignKey("courses.id"), primary_key=True,
                                           index=True)
    position: Mapped[int] = mapped_column(default=0)

    plan: Mapped[Plan] = relationship(back_populates="plan_courses")
    course: Mapped[Course] = relationship()
