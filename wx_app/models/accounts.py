"""Trainees (专业技术人员) and their WeChat bindings."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..personal_data import decrypt, encrypt, lookup_hash, mask_id_number, mask_phone
from ._types import Ciphertext, LookupHash, Timestamp, one_of, table_args, utcnow
from .places import District, Organisation

TRAINEE_STATUSES = ("active", "disabled")
TRAINEE_SOURCES = ("register", "roster", "staff")
#: Resident ID card; residence permit of Hong Kong, Macao or Taiwan residents; foreign
#: permanent-residence ID card.
ID_KINDS = ("resident", "hmt_permit", "foreign_permanent")


class Trainee(db.Model):
    """A person who studies. The username is the ID number, or the phone number."""

    __tablename__ = "trainees"
    __table_args__ = table_args(
        one_of("gender", ("M", "F"), "gender"),
        one_of("status", TRAINEE_STATUSES, "status"),
        one_of("source", TRAINEE_SOURCES, "source"),
        one_of("id_kind", ID_KINDS, "id_kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: 姓名, exactly as it must appear on the certificate.
    name: Mapped[str] = mapped_column(sa.String(40))
    id_number_enc: Mapped[bytes] = mapped_column(Ciphertext)
    #: HMAC of the upper-case ID number: the login and roster lookup key.
    id_number_hash: Mapped[str] = mapped_column(LookupHash, unique=True)
    id_number_masked: Mapped[str] = mapped_column(sa.String(24))
    id_kind: Mapped[str] = mapped_column(sa.String(20), default="resident")
    phone_enc: Mapped[bytes | None] = mapped_column(Ciphertext)
    #: HMAC of the 11-digit phone number; unique, since it is a second username.
    phone_hash: Mapped[str | None] = mapped_column(LookupHash, unique=True)
    phone_masked: Mapped[str | None] = mapped_column(sa.String(16))
    gender: Mapped[str] = mapped_column(sa.String(1))
    birth_date: Mapped[date] = mapped_column(sa.Date)
    organisation_id: Mapped[int | None] = mapped_column(sa.ForeignKey("organisations.id"),
                                                        index=True)
    #: District holding the personnel file, for trainees whose employer is not listed.
    file_district_id: Mapped[int | None] = mapped_column(sa.ForeignKey("districts.id"),
                                                         index=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    #: Set for roster accounts (initial password edu@ + last six of the ID) until changed.
    must_change_password: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(sa.String(16), default="active")
    source: Mapped[str] = mapped_column(sa.String(16), default="register")
    #: Raised on password reset: every session issued before it is void.
    session_epoch: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)

    organisation: Mapped[Organisation | None] = relationship()
    file_district: Mapped[District | None] = relationship()

    @property
    def id_number(self) -> str:
        return decrypt(self.id_number_enc)

    @id_number.setter
    def id_number(self, value: str) -> None:
        self.id_number_enc = encrypt(value)
        self.id_number_hash = lookup_hash(value)
        self.id_number_masked = mask_id_number(value)

    @property
    def phone(self) -> str | None:
        return decrypt(self.phone_enc) if self.phone_enc else None

    @phone.setter
    def phone(self, value: str | None) -> None:
        self.phone_enc = encrypt(value) if value else None
        self.phone_hash = lookup_hash(value) if value else None
        self.phone_masked = mask_phone(value) if value else None

    def __repr__(self) -> str:
        return f"<Trainee {self.id} {self.id_number_masked}>"


class WechatBinding(db.Model):
    """A WeChat user of the official account (by openid), and the trainee it logs in as."""

    __tablename__ = "wechat_bindings"
    __table_args__ = table_args()

    id: Mapped[int] = mapped_column(primary_key=True)
    openid: Mapped[str] = mapped_column(sa.String(64), unique=True)
    unionid: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    #: One WeChat user per trainee; NULL while the follower has not logged in.
    trainee_id: Mapped[int | None] = mapped_column(sa.ForeignKey("trainees.id"), unique=True)
    #: WeChat nicknames carry emoji: the column is utf8mb4 like every other.
    nickname: Mapped[str | None] = mapped_column(sa.String(100))
    avatar_url: Mapped[str | None] = mapped_column(sa.String(512))
    subscribed: Mapped[bool] = mapped_column(default=False)
    subscribed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    #: The QR scene the user followed or scanned from, and the organisation it names.
    scene: Mapped[str | None] = mapped_column(sa.String(64))
    scene_organisation_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("organisations.id"), index=True)
    bound_at: Mapped[datetime | None] = mapped_column(Timestamp)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)

    trainee: Mapped[Trainee | None] = relationship()
    scene_organisation: Mapped[Organisation | None] = relationship()
