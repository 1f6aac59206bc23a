"""Certificates (合格证书), frozen at issue, verifiable by code."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ._types import Timestamp, one_of, table_args, utcnow
from .accounts import Trainee
from .catalog import PLAN_CATEGORIES, Plan
from .study import Enrollment

CERTIFICATE_STATES = ("valid", "revoked", "superseded")


class Certificate(db.Model):
    """The certificate of one completed enrollment; every printed field is copied at issue."""

    __tablename__ = "certificates"
    __table_args__ = table_args(
        one_of("state", CERTIFICATE_STATES, "state"),
        one_of("holder_gender", ("M", "F"), "holder_gender"),
        one_of("plan_category", PLAN_CATEGORIES, "plan_category"),
        sa.Index("ix_certificates_enrollment_state", "enrollment_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Printed serial number, e.g. CQJJ-2024-G-0000001.
    serial_no: Mapped[str] = mapped_column(sa.String(32), unique=True)
    #: Unguessable code in the QR link /verify/<code>.
    verify_code: Mapped[str] = mapped_column(sa.String(40), unique=True)
    enrollment_id: Mapped[int] = mapped_column(sa.ForeignKey("enrollments.id"))
    trainee_id: Mapped[int] = mapped_column(sa.ForeignKey("trainees.id"), index=True)
    plan_id: Mapped[int] = mapped_column(sa.ForeignKey("plans.id"), index=True)
    holder_name: Mapped[str] = mapped_column(sa.String(40))
    holder_id_masked: Mapped[str] = mapped_column(sa.String(24))
    holder_gender: Mapped[str] = mapped_column(sa.String(1))
    #: The employer chosen at print time, or else the district holding the personnel file.
    organisation_name: Mapped[str | None] = mapped_column(sa.String(100))
    district_name: Mapped[str | None] = mapped_column(sa.String(32))
    plan_name: Mapped[str] = mapped_column(sa.String(100))
    plan_category: Mapped[str] = mapped_column(sa.String(16))
    plan_year: Mapped[int] = mapped_column()
    credit_hours: Mapped[int] = mapped_column()
    state: Mapped[str] = mapped_column(sa.String(16), default="valid")
    issued_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(Timestamp)
    revoke_reason: Mapped[str | None] = mapped_column(sa.String(255))
    #: The certificate this one reissues.
    replaces_id: Mapped[int | None] = mapped_column(sa.ForeignKey("certificates.id"),
                                                    index=True)
    #: Where the signed PDF is kept, and its SHA-256, to detect any change.
    pdf_path: Mapped[str | None] = mapped_column(sa.String(255))
    pdf_sha256: Mapped[str | None] = mapped_column(sa.CHAR(64))

    enrollment: Mapped[Enrollment] = relationship()
    trainee: Mapped[Trainee] = relationship()
    plan: Mapped[Plan] = relationship()
