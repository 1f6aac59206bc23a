"""The schema: what the migrations build on MariaDB and on SQLite, and what the database refuses.

The migrations run through Flask-Migrate as the deploy step does, each on a database of its
own: an empty MariaDB database made for this module (or for one test), and an SQLite file.
Rows are written with plain INSERTs on a connection, past every rule of the application, so
that each refusal seen here is the database's own.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path

import flask_migrate
import pymysql
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from sqlalchemy.exc import IntegrityError

from wx_app import models  # noqa: F401  (registers every table on the metadata)
from wx_app.extensions import db
from wx_app.models._types import compare_type
from wx_app.places import DISTRICTS

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = ROOT / "migrations"
SCHEMA_DOC = ROOT / "docs" / "schema.md"
NOW = datetime(2026, 3, 1, 8, 30, 0, 123456)
MARIADB_CHECK_FAILED = 4025


# --- running the migrations -----------------------------------------------------------------

def migration_app(url: str) -> Flask:
    """A bare Flask app whose only job is to run this project's migrations against `url`."""
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    db.init_app(app)
    flask_migrate.Migrate(app, db, directory=str(MIGRATIONS))
    return app


def migrate(url: str, *steps: str) -> None:
    """Run `upgrade` (to head) or `downgrade` (to base) steps, in order, against `url`."""
    app = migration_app(url)
    with app.app_context():
        try:
            for step in steps:
                if step == "upgrade":
                    flask_migrate.upgrade()
                else:
                    flask_migrate.downgrade(revision="base")
        finally:
            db.engine.dispose()


@contextmanager
def empty_mariadb(session_url: str):
    """URL of a new, empty utf8mb4 database on the test server; dropped afterwards."""
    server = sa.make_url(session_url)
    name = f"wx_app_scratch_{secrets.token_hex(4)}"
    connection = pymysql.connect(host=server.host, port=server.port or 3306,
                                 user=server.username, password=server.password or "")
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 "
                           "COLLATE utf8mb4_unicode_ci")
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        connection.close()


@pytest.fixture(scope="module")
def mariadb_engine(mysql_url):
    """An engine on an empty MariaDB database built by the migrations."""
    with empty_mariadb(mysql_url) as url:
        migrate(url, "upgrade")
        engine = sa.create_engine(url)
        yield engine
        engine.dispose()


@pytest.fixture(scope="module")
def sqlite_engine(tmp_path_factory):
    """An engine on an SQLite file built by the migrations."""
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'schema.sqlite3'}"
    migrate(url, "upgrade")
    engine = sa.create_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture(params=["mariadb", "sqlite"])
def engine(request):
    return request.getfixturevalue(f"{request.param}_engine")


@pytest.fixture
def connection(engine):
    """A connection whose transaction is rolled back after the test."""
    with engine.connect() as conn:
        transaction = conn.begin()
        yield conn
        transaction.rollback()


# --- reading a schema back --------------------------------------------------------------------

def schema_of(engine: sa.Engine) -> dict:
    """Each table as the database reports it, in the terms both databases can agree on.

    Column types and the text of CHECK constraints are each database's own spelling, so
    columns compare by name and nullability and CHECK constraints by name. MySQL lists each
    unique constraint a second time as a unique index; those copies are left out.
    """
    inspector = sa.inspect(engine)
    schema = {}
    for table in inspector.get_table_names():
        if table == "alembic_version":
            continue
        uniques = inspector.get_unique_constraints(table)
        index_copies = {unique.get("duplicates_index") for unique in uniques}
        schema[table] = {
            "columns": [(column["name"], column["nullable"])
                        for column in inspector.get_columns(table)],
            "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
            "unique": sorted((unique["name"], tuple(unique["column_names"]))
                             for unique in uniques),
            "foreign_keys": sorted(
                (fk["name"], tuple(fk["constrained_columns"]), fk["referred_table"],
                 tuple(fk["referred_columns"]), (fk["options"].get("ondelete") or "").upper())
                for fk in inspector.get_foreign_keys(table)),
            "checks": sorted(check["name"] for check in inspector.get_check_constraints(table)),
            "indexes": sorted((index["name"], tuple(index["column_names"]), bool(index["unique"]))
                              for index in inspector.get_indexes(table)
                              if index["name"] not in index_copies),
        }
    return schema


def districts_of(engine: sa.Engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.text(
            "SELECT id, code, name, kind, sort_order FROM districts ORDER BY sort_order"))]


def differences(engine: sa.Engine) -> list:
    """What alembic autogenerate would put into a new revision for this database."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": compare_type})
        return compare_metadata(context, db.metadata)


# --- raw rows -----------------------------------------------------------------------------

def insert(conn: sa.Connection, table: str, **values) -> int:
    """A plain INSERT, past the application; returns the new row's id."""
    statement = sa.insert(sa.table(table, *map(sa.column, values))).values(**values)
    return conn.execute(statement).lastrowid


def a_trainee(conn: sa.Connection, n: int = 1) -> int:
    return insert(conn, "trainees", name=f"学员{n}", id_number_enc=secrets.token_bytes(46),
                  id_number_hash=f"{n:064x}", id_number_masked="5001**********123X",
                  id_kind="resident", gender="F", birth_date=date(1990, 1, 1),
                  password_hash="scrypt:…", must_change_password=False, status="active",
                  source="register", session_epoch=0, created_at=NOW, updated_at=NOW)


def a_plan(conn: sa.Connection, **overrides) -> int:
    values = {"code": "GX-2024", "category": "public", "plan_year": 2024,
              "title_series_id": None, "name": "2024年专技人员公需科目", "required_hours": 30,
              "price_fen": 3300, "status": "open", "sort_order": 0, "created_at": NOW,
              "updated_at": NOW}
    return insert(conn, "plans", **(values | overrides))


def an_order(conn: sa.Connection, buyer_id: int, plan_id: int, **overrides) -> int:
    values = {"out_trade_no": "CQ2026030100000001", "kind": "individual", "buyer_id": buyer_id,
              "plan_id": plan_id, "amount_fen": 3300, "state": "pending",
              "invoice_choice": "later", "expires_at": NOW, "needs_review": False,
              "created_at": NOW, "updated_at": NOW}
    return insert(conn, "orders", **(values | overrides))


def an_order_line(conn: sa.Connection, order_id: int, trainee_id: int, plan_id: int,
                  open_key: str | None) -> int:
    return insert(conn, "order_items", order_id=order_id, trainee_id=trainee_id,
                  plan_id=plan_id, price_fen=3300, state="pending", open_key=open_key)


def an_enrollment(conn: sa.Connection, trainee_id: int, plan_id: int) -> int:
    return insert(conn, "enrollments", trainee_id=trainee_id, plan_id=plan_id, earned_hours=0,
                  created_at=NOW)


def spellings_of(constraint: str) -> set[str]:
    """How the databases name a violated constraint: MariaDB by its name, SQLite a unique
    key by its columns (`enrollments.trainee_id, enrollments.plan_id`)."""
    spellings = {constraint}
    for table in db.metadata.tables.values():
        for declared in table.constraints:
            if declared.name == constraint and isinstance(declared, sa.UniqueConstraint):
                spellings.add(", ".join(f"{table.name}.{column.name}"
                                        for column in declared.columns))
    return spellings


@contextmanager
def refused_by(constraint: str):
    """The statements inside fail with an integrity error that names `constraint`.

    MariaDB reports a failed CHECK as error 4025, which PyMySQL raises as an
    OperationalError rather than an IntegrityError.
    """
    with pytest.raises(sa.exc.DBAPIError) as refusal:
        yield
    error = refusal.value
    assert isinstance(error, IntegrityError) or error.orig.args[0] == MARIADB_CHECK_FAILED
    message = str(error.orig)
    assert any(spelling in message for spelling in spellings_of(constraint)), message


# --- what the migrations build --------------------------------------------------------------

def test_mariadb_and_sqlite_get_the_same_schema(mariadb_engine, sqlite_engine):
    """Do the migrations build the same tables, columns, keys, checks and indexes on both?"""
    on_mariadb, on_sqlite = schema_of(mariadb_engine), schema_of(sqlite_engine)

    assert sorted(on_mariadb) == sorted(db.metadata.tables)
    for table in on_mariadb:
        assert on_mariadb[table] == on_sqlite[table], table


def test_every_check_constraint_of_the_models_is_in_the_database(engine):
    """Does the database hold exactly the CHECK constraints the models declare?

    (Alembic's comparison does not look at CHECK constraints, so this test does.)
    """
    declared = {table.name: sorted(constraint.name for constraint in table.constraints
                                   if isinstance(constraint, sa.CheckConstraint))
                for table in db.metadata.tables.values()}

    assert {table: found["checks"] for table, found in schema_of(engine).items()} == declared


def test_models_and_migrations_agree(engine):
    """Would autogenerate find nothing to add, drop or alter after the migrations?"""
    assert differences(engine) == []


def test_the_comparison_notices_timestamps_losing_microseconds(mysql_url):
    """Would a DATETIME that lost its (6) show up as a difference, or pass unnoticed?"""
    with empty_mariadb(mysql_url) as url:
        migrate(url, "upgrade")
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE orders MODIFY paid_at DATETIME NULL"))

        found = differences(engine)
        engine.dispose()

    assert [(change[0][0], change[0][2], change[0][3]) for change in found] == [
        ("modify_type", "orders", "paid_at")]


def test_every_mariadb_table_and_text_column_is_utf8mb4(mariadb_engine):
    """Is every table InnoDB in utf8mb4, and does no text column use another character set?"""
    inspector = sa.inspect(mariadb_engine)
    for table in inspector.get_table_names():
        options = inspector.get_table_options(table)
        assert options["mysql_engine"] == "InnoDB", table
        assert options["mysql_default charset"] == "utf8mb4", table
        assert options["mysql_collate"] == "utf8mb4_unicode_ci", table

    with mariadb_engine.connect() as conn:
        others = conn.execute(sa.text(
            "SELECT table_name, column_name, character_set_name FROM information_schema.columns "
            "WHERE table_schema = DATABASE() AND character_set_name IS NOT NULL "
            "AND character_set_name <> 'utf8mb4'")).all()
    assert others == []


def test_the_districts_are_there_after_upgrade(engine):
    """Are the 41 districts and counties of Chongqing in place, in order, with fixed ids?"""
    expected = [(position, code, name, kind, position)
                for position, (code, name, kind) in enumerate(DISTRICTS, start=1)]

    assert len(expected) == 41
    assert districts_of(engine) == expected


def documented_columns() -> dict[str, set[str]]:
    """Table name → the columns listed in its section of docs/schema.md."""
    sections = re.split(r"^### ", SCHEMA_DOC.read_text(), flags=re.MULTILINE)[1:]
    documented = {}
    for section in sections:
        table = section.split()[0]
        rows = re.findall(r"^\| ([a-z_0-9, ]+) \|", section, flags=re.MULTILINE)
        documented[table] = {name.strip() for row in rows if row != "column"
                             for name in row.split(",")}
    return documented


def test_the_schema_document_lists_every_table_and_column():
    """Does docs/schema.md describe each table, with exactly the columns it has?"""
    declared = {table.name: {column.name for column in table.columns}
                for table in db.metadata.tables.values()}

    assert documented_columns() == declared


def test_downgrade_to_base_and_upgrade_again_round_trips_on_mariadb(mysql_url):
    """On MariaDB, does downgrade to base leave no table, and upgrade rebuild the same schema?"""
    with empty_mariadb(mysql_url) as url:
        migrate(url, "upgrade")
        engine = sa.create_engine(url)
        built, districts = schema_of(engine), districts_of(engine)

        migrate(url, "downgrade")
        left = sa.inspect(engine).get_table_names()
        migrate(url, "upgrade")
        rebuilt, districts_again = schema_of(engine), districts_of(engine)
        engine.dispose()

    assert left == ["alembic_version"]
    assert rebuilt == built
    assert districts_again == districts


def test_flask_db_downgrade_and_upgrade_round_trip_on_sqlite(tmp_path):
    """Do the deploy commands `flask db upgrade`, `downgrade base`, `upgrade` work on SQLite?"""
    url = f"sqlite:///{tmp_path / 'deploy.sqlite3'}"
    environment = {key: value for key, value in os.environ.items()
                   if key not in {"REDIS_URL", "DATA_KEY", "SECRET_KEY"}}
    environment.update(APP_ENV="testing", DATABASE_URL=url,
                       WX_APP_INSTANCE=str(tmp_path / "instance"))

    def flask_db(*arguments: str) -> None:
        subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", *arguments],
                       cwd=ROOT, env=environment, check=True, capture_output=True, timeout=120)

    engine = sa.create_engine(url)
    flask_db("upgrade")
    built, districts = schema_of(engine), districts_of(engine)
    flask_db("downgrade", "base")
    left = sa.inspect(engine).get_table_names()
    flask_db("upgrade")
    rebuilt = schema_of(engine)
    engine.dispose()

    assert len(districts) == 41
    assert left == ["alembic_version"]
    assert rebuilt == built


# --- what the database refuses -------------------------------------------------------------

def test_a_second_enrollment_in_the_same_plan_is_refused(connection):
    """Does the database itself refuse to enroll a trainee twice in one plan?"""
    trainee, plan = a_trainee(connection), a_plan(connection)
    an_enrollment(connection, trainee, plan)

    with refused_by("uq_enrollments_trainee_id_plan_id"), connection.begin_nested():
        an_enrollment(connection, trainee, plan)


def test_a_second_open_order_line_for_the_same_trainee_and_plan_is_refused(connection):
    """Can a trainee have only one unpaid line per plan, and a new one once it is closed?"""
    trainee, plan = a_trainee(connection), a_plan(connection)
    first = an_order(connection, trainee, plan, out_trade_no="CQ0001")
    second = an_order(connection, trainee, plan, out_trade_no="CQ0002")
    third = an_order(connection, trainee, plan, out_trade_no="CQ0003")
    open_key = f"{trainee}:{plan}"
    line = an_order_line(connection, first, trainee, plan, open_key)

    with refused_by("uq_order_items_open_key"), connection.begin_nested():
        an_order_line(connection, second, trainee, plan, open_key)

    connection.execute(sa.text("UPDATE order_items SET state = 'cancelled', open_key = NULL "
                               "WHERE id = :id"), {"id": line})
    an_order_line(connection, third, trainee, plan, open_key)


def test_a_duplicate_out_trade_no_is_refused(connection):
    """Does the database refuse a second order with the same out_trade_no?"""
    trainee, plan = a_trainee(connection), a_plan(connection)
    an_order(connection, trainee, plan, out_trade_no="CQ2026030100000042")

    with refused_by("uq_orders_out_trade_no"), connection.begin_nested():
        an_order(connection, trainee, plan, out_trade_no="CQ2026030100000042")


def test_a_duplicate_transaction_id_is_refused(connection):
    """Can one WeChat Pay transaction be recorded against two orders?"""
    trainee, plan = a_trainee(connection), a_plan(connection)
    an_order(connection, trainee, plan, out_trade_no="CQ0001", transaction_id="4200000001")

    with refused_by("uq_orders_transaction_id"), connection.begin_nested():
        an_order(connection, trainee, plan, out_trade_no="CQ0002", transaction_id="4200000001")


PLANS_BREAKING_A_CHECK = [
    ({"price_fen": -1}, "ck_plans_price_fen_not_negative"),
    ({"category": "x"}, "ck_plans_category"),
    ({"status": "closed"}, "ck_plans_status"),
    ({"required_hours": 0}, "ck_plans_required_hours_positive"),
    ({"plan_year": 1999}, "ck_plans_plan_year_range"),
    ({"category": "professional"}, "ck_plans_series_matches_category"),
]


@pytest.mark.parametrize(("overrides", "constraint"), PLANS_BREAKING_A_CHECK,
                         ids=[constraint for _, constraint in PLANS_BREAKING_A_CHECK])
def test_a_plan_breaking_a_check_constraint_is_refused(connection, overrides, constraint):
    """Does the database refuse a plan with a negative price, an unknown category, …?"""
    with refused_by(constraint), connection.begin_nested():
        a_plan(connection, **overrides)


def test_an_order_in_an_unknown_state_or_for_nothing_is_refused(connection):
    """Does the database refuse an order state outside the list, and an amount of 0 fen?"""
    trainee, plan = a_trainee(connection), a_plan(connection)

    with refused_by("ck_orders_state"), connection.begin_nested():
        an_order(connection, trainee, plan, state="shipped")
    with refused_by("ck_orders_amount_fen_positive"), connection.begin_nested():
        an_order(connection, trainee, plan, amount_fen=0)


def test_a_wechat_nickname_with_emoji_round_trips(mariadb_engine):
    """Does a nickname such as 小王🎓👍 come back from MariaDB exactly as written?"""
    nickname = "小王🎓👍"
    with mariadb_engine.connect() as conn, conn.begin() as transaction:
        binding = insert(conn, "wechat_bindings", openid="o6_bmjrPTlm6_2sgVt7hMZOPfL2M",
                         nickname=nickname, subscribed=True, created_at=NOW, updated_at=NOW)
        stored = conn.execute(sa.text("SELECT nickname FROM wechat_bindings WHERE id = :id"),
                              {"id": binding}).scalar_one()
        transaction.rollback()

    assert stored == nickname


def test_timestamps_keep_their_microseconds(mariadb_engine):
    """Does a DATETIME(6) column keep the microseconds of a naive UTC timestamp?"""
    with mariadb_engine.connect() as conn, conn.begin() as transaction:
        plan = a_plan(conn)
        stored = conn.execute(sa.text("SELECT created_at FROM plans WHERE id = :id"),
                              {"id": plan}).scalar_one()
        transaction.rollback()

    assert stored == NOW
