"""Orders, their lines, refunds, and every WeChat Pay notification as received."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ._types import Timestamp, one_of, table_args, utcnow
from .accounts import Trainee
from .catalog import Plan

ORDER_KINDS = ("individual", "group")  # 个人购买, 团体购买
ORDER_STATES = ("pending", "paid", "closed", "partially_refunded", "refunded")
ITEM_STATES = ("pending", "enrolled", "cancelled", "refunding", "refunded")
INVOICE_CHOICES = ("now", "later")  # 立即申请, 以后申请
REFUND_STATES = ("processing", "success", "closed", "abnormal")
NOTIFICATION_KINDS = ("payment", "refund")


class Order(db.Model):
    """One payment: a trainee's own plan, or a group purchase for many trainees."""

    __tablename__ = "orders"
    __table_args__ = table_args(
        one_of("kind", ORDER_KINDS, "kind"),
        one_of("state", ORDER_STATES, "state"),
        one_of("invoice_choice", INVOICE_CHOICES, "invoice_choice"),
        sa.CheckConstraint("amount_fen > 0", name="amount_fen_positive"),
        sa.Index("ix_orders_buyer_state", "buyer_id", "state"),
        sa.Index("ix_orders_state_expires_at", "state", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Our order number at WeChat Pay (6–32 characters, letters and digits).
    out_trade_no: Mapped[str] = mapped_column(sa.String(32), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    buyer_id: Mapped[int] = mapped_column(sa.ForeignKey("trainees.id"))
    plan_id: Mapped[int] = mapped_column(sa.ForeignKey("plans.id"), index=True)
    #: Total in fen: the sum of the lines, computed on the server.
    amount_fen: Mapped[int] = mapped_column()
    state: Mapped[str] = mapped_column(sa.String(20), default="pending")
    invoice_choice: Mapped[str] = mapped_column(sa.String(8), default="later")
    #: openid that paid (JSAPI payer).
    payer_openid: Mapped[str | None] = mapped_column(sa.String(64))
    prepay_id: Mapped[str | None] = mapped_column(sa.String(64))
    prepay_created_at: Mapped[datetime | None] = mapped_column(Timestamp)
    #: WeChat Pay's transaction id, set when the payment is confirmed.
    transaction_id: Mapped[str | None] = mapped_column(sa.String(32), unique=True)
    paid_at: Mapped[datetime | None] = mapped_column(Timestamp)
    expires_at: Mapped[datetime] = mapped_column(Timestamp)
    closed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    #: Set when WeChat reported something that disagrees with the order (amount, merchant);
    #: such an order enrolls nobody until staff look at it.
    needs_review: Mapped[bool] = mapped_column(default=False)
    review_reason: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)

    buyer: Mapped[Trainee] = relationship()
    plan: Mapped[Plan] = relationship()
    items: Mapped[list[OrderItem]] = relationship(back_populates="order",
                                                  order_by="OrderItem.id")


class OrderItem(db.Model):
    """One trainee × plan line of an order."""

    __tablename__ = "order_items"
    __table_args__ = table_args(
        sa.UniqueConstraint("order_id", "trainee_id"),
        one_of("state", ITEM_STATES, "state"),
        sa.CheckConstraint("price_fen >= 0", name="price_fen_not_negative"),
        sa.Index("ix_order_items_trainee_plan", "trainee_id", "plan_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id"))
    trainee_id: Mapped[int] = mapped_column(sa.ForeignKey("trainees.id"))
    plan_id: Mapped[int] = mapped_column(sa.ForeignKey("plans.id"), index=True)
    price_fen: Mapped[int] = mapped_column()
    state: Mapped[str] = mapped_column(sa.String(16), default="pending")
    #: `<trainee_id>:<plan_id>` while the order is unpaid, NULL after: the unique key makes
    #: the database refuse a second open order line for the same trainee and plan.
    open_key: Mapped[str | None] = mapped_column(sa.String(32), unique=True)

    order: Mapped[Order] = relationship(back_populates="items")
    trainee: Mapped[Trainee] = relationship()
    plan: Mapped[Plan] = relationship()


class Refund(db.Model):
    """A refund of a whole order or of one line of a group order."""

    __tablename__ = "refunds"
    __table_args__ = table_args(
        one_of("state", REFUND_STATES, "state"),
        sa.CheckConstraint("amount_fen > 0", name="amount_fen_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    out_refund_no: Mapped[str] = mapped_column(sa.String(64), unique=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id"), index=True)
    #: The line refunded; NULL when the refund covers the whole order.
    order_item_id: Mapped[int | None] = mapped_column(sa.ForeignKey("order_items.id"),
                                                      index=True)
    amount_fen: Mapped[int] = mapped_column()
    reason: Mapped[str] = mapped_column(sa.String(80))
    state: Mapped[str] = mapped_column(sa.String(16), default="processing")
    #: WeChat Pay's refund id.
    refund_id: Mapped[str | None] = mapped_column(sa.String(32), unique=True)
    #: Who asked: `staff:<name>`, or `system` for an automatic refund.
    requested_by: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(Timestamp)

    order: Mapped[Order] = relationship()
    order_item: Mapped[OrderItem | None] = relationship()


class PaymentNotification(db.Model):
    """Every notification WeChat Pay sent us, stored before it is checked, with the outcome."""

    __tablename__ = "payment_notifications"
    __table_args__ = table_args(one_of("kind", NOTIFICATION_KINDS, "kind"))

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    received_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, index=True)
    #: WeChat's notification id (the same on every retry of one notification).
    notification_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    wechatpay_serial: Mapped[str | None] = mapped_column(sa.String(80))
    wechatpay_timestamp: Mapped[str | None] = mapped_column(sa.String(20))
    wechatpay_nonce: Mapped[str | None] = mapped_column(sa.String(64))
    wechatpay_signature: Mapped[str | None] = mapped_column(sa.String(512))
    body: Mapped[str] = mapped_column(sa.Text)
    out_trade_no: Mapped[str | None] = mapped_column(sa.String(32), index=True)
    #: applied, repeat, or the stable code of the refusal (bad_signature, amount_mismatch…).
    outcome: Mapped[str | None] = mapped_column(sa.String(40))
