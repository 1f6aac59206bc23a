"""Factories for test stories: trainees, organisations, bindings, the sample catalogue."""

from __future__ import annotations

import itertools
from datetime import date
from pathlib import Path

from sqlalchemy import select

from wx_app.extensions import db
from wx_app.id_numbers import check_character
from wx_app.models import District, Enrollment, Organisation, Plan, Trainee, WechatBinding
from wx_app.passwords import hash_password

SAMPLE_CATALOG = Path(__file__).resolve().parent.parent / "wx_app" / "demo" / "catalog.json"
DEFAULT_PASSWORD = "Study2024ok"
_sequence = itertools.count(1)


def id_number(birth: date = date(1990, 3, 7), *, male: bool = True, serial: int | None = None,
              region: str = "500101") -> str:
    """A valid resident ID number (GB 11643 checksum) for a fictitious person."""
    serial = next(_sequence) if serial is None else serial
    order = (serial % 50) * 2 + (1 if male else 0)  # the 17th digit's parity is the gender
    first_seventeen = f"{region}{birth:%Y%m%d}{serial // 50 % 10}{order:02d}"
    return first_seventeen + check_character(first_seventeen)


def phone_number(serial: int | None = None) -> str:
    serial = next(_sequence) if serial is None else serial
    return f"139{serial:08d}"


def district(code: str = "500112") -> District:
    return db.session.scalars(select(District).where(District.code == code)).one()


def organisation(name: str = "重庆市渝北区人民医院", district_code: str = "500112") -> Organisation:
    found = db.session.scalars(select(Organisation).where(Organisation.name == name)).first()
    if found:
        return found
    made = Organisation(name=name, district=district(district_code))
    db.session.add(made)
    db.session.flush()
    return made


def trainee(*, name: str = "张三", id_number_: str | None = None, phone: str | None = None,
            password: str = DEFAULT_PASSWORD, male: bool = True,
            organisation_: Organisation | None = None, must_change_password: bool = False,
            source: str = "register") -> Trainee:
    """A registered trainee; the clear password is DEFAULT_PASSWORD unless given."""
    number = id_number_ or id_number(male=male)
    made = Trainee(name=name, gender="M" if int(number[16]) % 2 else "F",
                   birth_date=date(int(number[6:10]), int(number[10:12]), int(number[12:14])),
                   password_hash=hash_password(password), source=source,
                   must_change_password=must_change_password,
                   organisation=organisation_ or organisation())
    made.id_number = number
    made.phone = phone or phone_number()
    db.session.add(made)
    db.session.flush()
    return made


def binding(openid: str, trainee_: Trainee | None = None, *, nickname: str = "微信用户",
            subscribed: bool = True) -> WechatBinding:
    made = WechatBinding(openid=openid, trainee=trainee_, nickname=nickname,
                         subscribed=subscribed)
    db.session.add(made)
    db.session.flush()
    return made


def sample_catalog() -> None:
    """Load the shipped sample catalogue (plans for 2021–2024, five title series)."""
    from wx_app.catalog import load_catalog

    load_catalog(SAMPLE_CATALOG)
    db.session.flush()


def plan(code: str) -> Plan:
    return db.session.scalars(select(Plan).where(Plan.code == code)).one()


def enrollment(trainee_: Trainee, plan_: Plan, *, earned_hours: int = 0) -> Enrollment:
    """An enrollment without an order (as staff would grant it); purchases make their own."""
    made = Enrollment(trainee=trainee_, plan=plan_, earned_hours=earned_hours)
    db.session.add(made)
    db.session.flush()
    return made


def session_cookie(trainee_: Trainee, *, openid: str | None = None,
                   extra: dict | None = None) -> str:
    """The session cookie of a browser already logged in as `trainee_` (commit it first
    when the app reads it over another connection, as the live server does)."""
    from wx_app.sessions import open_session_for

    return open_session_for(trainee_, openid=openid, extra=extra)
