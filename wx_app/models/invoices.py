"""Electronic invoices (电子发票): one per order, modifiable once within 15 days."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ._types import Timestamp, one_of, table_args, utcnow
from .orders import Order

INVOICE_STATES = ("requested", "issuing", "issued", "failed", "reversed")
TITLE_KINDS = ("personal", "company")


class Invoice(db.Model):
    """An invoice request and, once issued, the invoice; a modification reverses and reissues."""

    __tablename__ = "invoices"
    __table_args__ = table_args(
        one_of("state", INVOICE_STATES, "state"),
        one_of("title_kind", TITLE_KINDS, "title_kind"),
        sa.CheckConstraint("amount_fen > 0", name="amount_fen_positive"),
        sa.CheckConstraint("modification_count BETWEEN 0 AND 1", name="one_modification"),
        # Since 2017 an invoice made out to a company must carry its taxpayer number.
        sa.CheckConstraint("title_kind = 'personal' OR tax_number IS NOT NULL",
                           name="company_has_tax_number"),
        sa.Index("ix_invoices_order_state", "order_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id"))
    state: Mapped[str] = mapped_column(sa.String(16), default="requested")
    title_kind: Mapped[str] = mapped_column(sa.String(16))
    #: 发票抬头: the person's name or the company's full name.
    title: Mapped[str] = mapped_column(sa.String(100))
    #: 统一社会信用代码, for a company title.
    tax_number: Mapped[str | None] = mapped_column(sa.String(18))
    email: Mapped[str | None] = mapped_column(sa.String(120))
    amount_fen: Mapped[int] = mapped_column()
    #: Number given by the issuer.
    invoice_number: Mapped[str | None] = mapped_column(sa.String(40), unique=True)
    requested_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    issued_at: Mapped[datetime | None] = mapped_column(Timestamp)
    #: 0 or 1: an issued invoice may be modified once within 15 days.
    modification_count: Mapped[int] = mapped_column(default=0)
    #: The invoice this one replaces after a modification.
    replaces_id: Mapped[int | None] = mapped_column(sa.ForeignKey("invoices.id"), index=True)
    reversed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    pdf_path: Mapped[str | None] = mapped_column(sa.String(255))
    last_error: Mapped[str | None] = mapped_column(sa.String(255))

    order: Mapped[Order] = relationship()
