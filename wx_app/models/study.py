"""Enrollments and study progress: what a trainee owns and how far they are."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ._types import Timestamp, one_of, table_args, utcnow
from .accounts import Trainee
from .catalog import Chapter, Course, Plan
from .orders import OrderItem

SESSION_END_REASONS = ("left", "paused", "completed", "taken_over", "expired")


class Enrollment(db.Model):
    """A trainee's right to study a plan: at most one per trainee and plan."""

    __tablename__ = "enrollments"
    __table_args__ = table_args(
        sa.UniqueConstraint("trainee_id", "plan_id"),
        sa.CheckConstraint("earned_hours >= 0", name="earned_hours_not_negative"),
        sa.Index("ix_enrollments_plan_id", "plan_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    trainee_id: Mapped[int] = mapped_column(sa.ForeignKey("trainees.id"))
    plan_id: Mapped[int] = mapped_column(sa.ForeignKey("plans.id"))
    #: The paid order line that created it; one enrollment per line at most.
    order_item_id: Mapped[int | None] = mapped_column(sa.ForeignKey("order_items.id"),
                                                      unique=True)
    #: Sum of the credit hours of completed courses (kept with course_completions).
    earned_hours: Mapped[int] = mapped_column(default=0)
    #: When earned hours first reached the plan's requirement.
    completed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)

    trainee: Mapped[Trainee] = relationship()
    plan: Mapped[Plan] = relationship()
    order_item: Mapped[OrderItem | None] = relationship()


class ChapterProgress(db.Model):
    """Server-timed progress of one chapter within one enrollment."""

    __tablename__ = "chapter_progress"
    __table_args__ = table_args(
        sa.UniqueConstraint("enrollment_id", "chapter_id"),
        sa.CheckConstraint("credited_seconds >= 0", name="credited_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(
        sa.ForeignKey("enrollments.id", ondelete="CASCADE"))
    chapter_id: Mapped[int] = mapped_column(sa.ForeignKey("chapters.id"), index=True)
    #: Seconds credited by the server from accepted heartbeats.
    credited_seconds: Mapped[int] = mapped_column(default=0)
    #: Furthest playback position reached by watching (not by seeking), in seconds.
    furthest_position: Mapped[int] = mapped_column(default=0)
    #: Where playback resumes.
    last_position: Mapped[int] = mapped_column(default=0)
    completed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)

    chapter: Mapped[Chapter] = relationship()


class CourseCompletion(db.Model):
    """A course whose every chapter is complete; its hours count once for the enrollment."""

    __tablename__ = "course_completions"
    __table_args__ = table_args(sa.UniqueConstraint("enrollment_id", "course_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(
        sa.ForeignKey("enrollments.id", ondelete="CASCADE"))
    course_id: Mapped[int] = mapped_column(sa.ForeignKey("courses.id"), index=True)
    credit_hours: Mapped[int] = mapped_column()
    completed_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)

    course: Mapped[Course] = relationship()


class StudySession(db.Model):
    """One device playing one chapter; a newer session of the trainee takes over."""

    __tablename__ = "study_sessions"
    __table_args__ = table_args(
        one_of("end_reason", SESSION_END_REASONS, "end_reason"),
        sa.Index("ix_study_sessions_enrollment_started", "enrollment_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Random token the playing page sends with each heartbeat.
    token: Mapped[str] = mapped_column(sa.String(64), unique=True)
    enrollment_id: Mapped[int] = mapped_column(
        sa.ForeignKey("enrollments.id", ondelete="CASCADE"))
    chapter_id: Mapped[int] = mapped_column(sa.ForeignKey("chapters.id"), index=True)
    #: Hash of the device identifier; enough to tell devices apart in a dispute.
    device_hash: Mapped[str | None] = mapped_column(sa.String(64))
    user_agent: Mapped[str | None] = mapped_column(sa.String(255))
    started_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    last_beat_at: Mapped[datetime | None] = mapped_column(Timestamp)
    ended_at: Mapped[datetime | None] = mapped_column(Timestamp)
    end_reason: Mapped[str | None] = mapped_column(sa.String(16))
    credited_seconds: Mapped[int] = mapped_column(default=0)
    beats: Mapped[int] = mapped_column(default=0)


class StudyBeat(db.Model):
    """The study log: each heartbeat of a session as judged by the server, for disputes."""

    __tablename__ = "study_beats"
    __table_args__ = table_args(sa.UniqueConstraint("session_id", "seq"))

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                                    primary_key=True)
    session_id: Mapped[int] = mapped_column(
        sa.ForeignKey("study_sessions.id", ondelete="CASCADE"))
    #: Sequence number within the session; the unique key makes flushing idempotent.
    seq: Mapped[int] = mapped_column()
    received_at: Mapped[datetime] = mapped_column(Timestamp)
    position: Mapped[int] = mapped_column()
    playing: Mapped[bool] = mapped_column()
    credited_seconds: Mapped[int] = mapped_column(default=0)
    #: Why nothing (or less) was credited: paused, hidden, seek_ahead, capped…
    note: Mapped[str | None] = mapped_column(sa.String(32))
