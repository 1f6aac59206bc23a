"""Districts and counties of Chongqing, and the organisations (employers) in them."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..personal_data import decrypt, encrypt, mask_phone
from ._types import Ciphertext, Timestamp, one_of, table_args, utcnow

DISTRICT_KINDS = ("district", "county", "autonomous_county", "functional_area")


class District(db.Model):
    """区县: one of the 38 districts and counties, or a functional area such as 两江新区."""

    __tablename__ = "districts"
    __table_args__ = table_args(one_of("kind", DISTRICT_KINDS, "kind"))

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Administrative division code (500101…) or a stable code for a functional area.
    code: Mapped[str] = mapped_column(sa.String(16), unique=True)
    name: Mapped[str] = mapped_column(sa.String(32), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(20))
    sort_order: Mapped[int] = mapped_column(default=0)


class Organisation(db.Model):
    """单位: an employer, the unit named on a roster and chosen on a certificate."""

    __tablename__ = "organisations"
    __table_args__ = table_args()

    id: Mapped[int] = mapped_column(primary_key=True)
    #: 单位全称, as on the roster.
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    district_id: Mapped[int] = mapped_column(sa.ForeignKey("districts.id"), index=True)
    contact_name: Mapped[str | None] = mapped_column(sa.String(50))
    contact_phone_enc: Mapped[bytes | None] = mapped_column(Ciphertext)
    contact_phone_masked: Mapped[str | None] = mapped_column(sa.String(20))
    #: Scene string of its follow QR code (`org:<id>`), set when the code is made.
    qr_scene: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)

    district: Mapped[District] = relationship()

    @property
    def contact_phone(self) -> str | None:
        return decrypt(self.contact_phone_enc) if self.contact_phone_enc else None

    @contact_phone.setter
    def contact_phone(self, value: str | None) -> None:
        self.contact_phone_enc = encrypt(value) if value else None
        self.contact_phone_masked = mask_phone(value) if value else None
