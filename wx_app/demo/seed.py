"""`seed_demo()`: the sample catalogue, organisations and trainees for the local run.

Every person here is fictitious: the names, the ID numbers (invented to pass the GB 11643
checksum) and the phone numbers. Running the seed again creates nothing new and leaves
accounts as they are (a changed password stays changed).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from .. import id_numbers
from ..catalog import LoadReport, load_catalog
from ..extensions import db
from ..models import District, Organisation, Trainee
from ..passwords import hash_password, initial_password
from ..personal_data import lookup_hash

log = logging.getLogger(__name__)

SAMPLE_CATALOG = Path(__file__).with_name("catalog.json")

#: (单位全称, 区县).
ORGANISATIONS = (
    ("重庆市渝北区人民医院", "渝北区"),
    ("重庆市沙坪坝区凤鸣山中学", "沙坪坝区"),
    ("重庆市农业科学院", "九龙坡区"),
    ("重庆两江新区市政建设有限公司", "两江新区"),
    ("重庆市万州区疾病预防控制中心", "万州区"),
)

#: A known password for the demo accounts that are not roster accounts.
DEMO_PASSWORD = "Demo@2024"


@dataclass(frozen=True)
class DemoTrainee:
    name: str
    id_number: str
    phone: str
    #: 单位全称 of the employer, or None for someone whose employer is not listed.
    organisation: str | None
    #: 区县 holding the personnel file, for someone whose employer is not listed.
    file_district: str | None
    #: A roster account (附件2): initial password edu@ + last six, to be changed at login.
    from_roster: bool


TRAINEES = (
    DemoTrainee("李文静", "50011219880315048X", "13800138001", "重庆市渝北区人民医院", None,
                from_roster=True),
    DemoTrainee("王建国", "500106197911020314", "13800138002", "重庆两江新区市政建设有限公司",
                None, from_roster=False),
    DemoTrainee("赵雨桐", "500116199307080267", "13800138003", None, "江津区",
                from_roster=False),
)


class MissingReferenceData(RuntimeError):
    """The districts written by the migrations are not there: the database is not upgraded."""


@dataclass(frozen=True)
class DemoLogin:
    """How to log in as one demo trainee."""

    name: str
    id_number: str
    phone: str | None
    password: str
    must_change_password: bool
    workplace: str
    created: bool


@dataclass
class SeedReport:
    catalog: LoadReport
    organisations_created: int = 0
    organisations_existing: int = 0
    logins: list[DemoLogin] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The report as printed by `flask demo seed`."""
        created = sum(login.created for login in self.logins)
        lines = [*self.catalog.lines(),
                 f"organisations {self.organisations_created:>4} created "
                 f"{self.organisations_existing:>4} already there",
                 f"trainees      {created:>4} created {len(self.logins) - created:>4} "
                 f"already there",
                 "",
                 "Demo logins (用户名: the ID number or the phone number; 密码: the password):"]
        for login in self.logins:
            lines.append(f"  {login.name} ({login.workplace})")
            lines.append(f"    用户名 {login.id_number}  or  {login.phone or '-'}")
            note = "  (roster account: must change it at first login)" if (
                login.must_change_password) else ""
            stale = "" if login.created else "  (as seeded; unchanged if it was changed since)"
            lines.append(f"    密码   {login.password}{note}{stale}")
        return lines


def seed_demo() -> SeedReport:
    """Load the sample catalogue and create the demo organisations and trainees once.

    Flushes; the caller commits.
    """
    districts = {district.name: district for district in db.session.scalars(sa.select(District))}
    if not districts:
        raise MissingReferenceData("the districts table is empty: run `flask db upgrade` first")

    report = SeedReport(catalog=load_catalog(SAMPLE_CATALOG))

    organisations = {}
    for name, district_name in ORGANISATIONS:
        organisation = db.session.scalar(sa.select(Organisation).filter_by(name=name))
        if organisation is None:
            organisation = Organisation(name=name, district=districts[district_name])
            db.session.add(organisation)
            report.organisations_created += 1
        else:
            report.organisations_existing += 1
        organisations[name] = organisation
    db.session.flush()

    for demo in TRAINEES:
        report.logins.append(_seed_trainee(demo, organisations, districts))
    db.session.flush()

    log.info("demo seed: %d organisations and %d trainees created",
             report.organisations_created, sum(login.created for login in report.logins))
    return report


def _seed_trainee(demo: DemoTrainee, organisations: dict[str, Organisation],
                  districts: dict[str, District]) -> DemoLogin:
    checked = id_numbers.parse(demo.id_number)
    password = initial_password(checked.number) if demo.from_roster else DEMO_PASSWORD
    workplace = demo.organisation or f"单位未列出，档案在{demo.file_district}"

    trainee = db.session.scalar(
        sa.select(Trainee).filter_by(id_number_hash=lookup_hash(checked.number)))
    created = trainee is None
    if created:
        trainee = Trainee(
            name=demo.name, id_kind=checked.kind, gender=checked.gender,
            birth_date=checked.birth_date,
            organisation=organisations[demo.organisation] if demo.organisation else None,
            file_district=districts[demo.file_district] if demo.file_district else None,
            password_hash=hash_password(password),
            must_change_password=demo.from_roster,
            source="roster" if demo.from_roster else "register")
        trainee.id_number = checked.number
        # The phone is a second username; on a database where someone already registered
        # it, the demo account goes without one rather than failing the whole seed.
        if not db.session.scalar(sa.select(Trainee.id).filter_by(
                phone_hash=lookup_hash(demo.phone))):
            trainee.phone = demo.phone
        db.session.add(trainee)
        db.session.flush()
        log.info("demo trainee %s created (%s)", trainee.id, trainee.id_number_masked)

    return DemoLogin(name=trainee.name, id_number=checked.number, phone=trainee.phone,
                     password=password, must_change_password=trainee.must_change_password,
                     workplace=workplace, created=created)
