"""`flask demo seed`: the sample catalogue, organisations and trainees for a local run."""

from __future__ import annotations

import sqlalchemy as sa

from wx_app import id_numbers
from wx_app.demo import seed_demo
from wx_app.demo.seed import DEMO_PASSWORD, ORGANISATIONS, TRAINEES
from wx_app.extensions import db
from wx_app.models import Chapter, Course, Organisation, Plan, Trainee
from wx_app.passwords import initial_password, verify_password
from wx_app.personal_data import lookup_hash

COUNTED = (Plan, Course, Chapter, Organisation, Trainee)


def counts() -> dict[str, int]:
    return {model.__name__: db.session.scalar(sa.select(sa.func.count()).select_from(model))
            for model in COUNTED}


def trainee_by_id_number(number: str) -> Trainee | None:
    return db.session.scalar(sa.select(Trainee).filter_by(id_number_hash=lookup_hash(number)))


def test_seeding_twice_creates_nothing_new(ctx):
    """Does a second `demo seed` leave every count as the first one made it?"""
    first = seed_demo()
    db.session.commit()
    after_first = counts()

    second = seed_demo()
    db.session.commit()

    assert after_first == {"Plan": 19, "Course": 69, "Chapter": 213,
                           "Organisation": len(ORGANISATIONS), "Trainee": len(TRAINEES)}
    assert counts() == after_first
    assert [login.created for login in first.logins] == [True] * len(TRAINEES)
    assert [login.created for login in second.logins] == [False] * len(TRAINEES)
    assert (second.organisations_created, second.organisations_existing) == (
        0, len(ORGANISATIONS))
    assert not second.catalog.changed


def test_demo_id_numbers_are_valid_and_match_the_trainees(ctx):
    """Does each demo ID number pass GB 11643, with the trainee's gender and birth date?"""
    seed_demo()

    for demo in TRAINEES:
        checked = id_numbers.parse(demo.id_number)
        trainee = trainee_by_id_number(checked.number)
        assert trainee.id_number == checked.number
        assert (trainee.gender, trainee.birth_date, trainee.id_kind) == (
            checked.gender, checked.birth_date, checked.kind)
        assert trainee.phone == demo.phone
        assert trainee.phone_hash == lookup_hash(demo.phone)  # the phone is a username too


def test_the_roster_trainee_must_change_the_initial_password(ctx):
    """Is the roster account's password edu@ + the last six, to be changed at first login?"""
    seed_demo()
    demo = next(demo for demo in TRAINEES if demo.from_roster)

    trainee = trainee_by_id_number(demo.id_number)

    assert trainee.must_change_password
    assert trainee.source == "roster"
    assert verify_password(trainee.password_hash, initial_password(demo.id_number))
    assert initial_password(demo.id_number) == "edu@" + demo.id_number[-6:].upper()


def test_the_other_trainees_log_in_with_the_known_password(ctx):
    """Do the registered demo accounts take the published demo password as they are?"""
    seed_demo()

    for demo in (demo for demo in TRAINEES if not demo.from_roster):
        trainee = trainee_by_id_number(demo.id_number)
        assert not trainee.must_change_password
        assert verify_password(trainee.password_hash, DEMO_PASSWORD)


def test_organisations_are_under_their_districts(ctx):
    """Is each demo organisation filed under its Chongqing district?"""
    seed_demo()

    placed = {organisation.name: organisation.district.name for organisation in
              db.session.scalars(sa.select(Organisation))}
    assert placed == dict(ORGANISATIONS)
    without_employer = next(demo for demo in TRAINEES if demo.organisation is None)
    trainee = trainee_by_id_number(without_employer.id_number)
    assert trainee.organisation is None
    assert trainee.file_district.name == without_employer.file_district


def test_a_changed_password_survives_a_second_seed(ctx):
    """Does seeding again leave an account whose password was changed as it is?"""
    seed_demo()
    demo = next(demo for demo in TRAINEES if demo.from_roster)
    trainee = trainee_by_id_number(demo.id_number)
    trainee.password_hash = "scrypt:changed"
    trainee.must_change_password = False
    db.session.commit()

    seed_demo()
    db.session.commit()
    db.session.expire_all()

    trainee = trainee_by_id_number(demo.id_number)
    assert (trainee.password_hash, trainee.must_change_password) == ("scrypt:changed", False)


def test_the_command_prints_how_to_log_in(app, ctx):
    """Does `flask demo seed` say, for each demo trainee, the username and the password?"""
    result = app.test_cli_runner().invoke(args=["demo", "seed"])

    assert result.exit_code == 0, result.output
    for demo in TRAINEES:
        assert demo.id_number in result.output
        assert demo.phone in result.output
    assert initial_password(TRAINEES[0].id_number) in result.output
    assert DEMO_PASSWORD in result.output
    assert counts()["Trainee"] == len(TRAINEES)
