"""Group purchase check: 2,000 pasted ID numbers against MariaDB, against a per-ID baseline.

The figure is the time of `group_purchase.check_id_lines` on a list of 2,000 numbers (one
in twenty a problem: bad check character, no account, already enrolled, on another open
order line, repeated), on a scratch database holding 2,000 accounts of the list and 20,000
others. The baseline, measured in the same run on the same list, is the check as it is
usually first written: parse a line, look its account up, then its enrollment, then its open
order line, line after line (three statements a line).

The number of SQL statements is counted for 20 and for 2,000 numbers: it must not grow with
the list (three statements, whatever its length).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa

from bench.support import report, scratch_database
from tests.support import StatementCounter
from wx_app.id_numbers import check_character

LIST_SIZE = 2000
SMALL_SIZE = 20
OTHER_ACCOUNTS = 20_000
PLAN_CODE = "GX-2023"
REPEATS = 5
#: The batched check should be at least this many times faster than the per-ID one.
GOAL_RATIO = 5.0
#: One line in this many is a problem, each time in the next of the ways lists go wrong.
BAD_EVERY = 20


def id_number(serial: int) -> str:
    """A distinct valid fictitious ID number per serial: one birth date each, from 1950 on."""
    birth = date(1950, 1, 1) + timedelta(days=serial % 20_000)
    sequence = 500 + serial // 20_000 * 2 + serial % 2
    first_seventeen = f"500105{birth:%Y%m%d}{sequence:03d}"
    return first_seventeen + check_character(first_seventeen)


def main() -> bool:
    with tempfile.TemporaryDirectory() as folder, scratch_database() as database_url:
        os.environ["WX_APP_INSTANCE"] = str(Path(folder) / "instance")
        from flask_migrate import upgrade

        from wx_app import create_app

        app = create_app({"APP_ENV": "testing", "DATABASE_URL": database_url,
                          "LOG_LEVEL": "WARNING"})
        with app.app_context():
            upgrade()
            return measure()


def seed() -> tuple[object, list[str]]:
    """The plan, 22,000 accounts, and the pasted list of 2,000 lines with its problems."""
    from wx_app.catalog import load_catalog
    from wx_app.extensions import db
    from wx_app.models import Enrollment, Order, OrderItem, Plan, Trainee
    from wx_app.models._types import utcnow
    from wx_app.passwords import INITIAL_PASSWORD_HASH
    from wx_app.personal_data import encrypt, lookup_hash, mask_id_number

    load_catalog(Path(__file__).resolve().parent.parent / "wx_app" / "demo" / "catalog.json")
    plan = db.session.scalars(sa.select(Plan).where(Plan.code == PLAN_CODE)).one()

    serials = range(LIST_SIZE + OTHER_ACCOUNTS)
    kinds = {serial: serial // BAD_EVERY % 5 for serial in range(LIST_SIZE)
             if serial % BAD_EVERY == BAD_EVERY - 1}
    registered = [serial for serial in serials if kinds.get(serial) != 1]  # 1: no account
    now = utcnow()
    for start in range(0, len(registered), 5000):
        db.session.execute(sa.insert(Trainee.__table__), [{
            "name": f"学员{serial}", "id_number_enc": encrypt(id_number(serial)),
            "id_number_hash": lookup_hash(id_number(serial)),
            "id_number_masked": mask_id_number(id_number(serial)), "id_kind": "resident",
            "gender": "M" if serial % 2 else "F",
            "birth_date": date(1950, 1, 1) + timedelta(days=serial % 20_000),
            "password_hash": INITIAL_PASSWORD_HASH, "must_change_password": False,
            "status": "active", "source": "roster", "session_epoch": 0,
            "created_at": now, "updated_at": now,
        } for serial in registered[start:start + 5000]])
    ids = dict(db.session.execute(sa.select(Trainee.name, Trainee.id)).all())

    def trainee_id(serial: int) -> int:
        return ids[f"学员{serial}"]

    db.session.execute(sa.insert(Enrollment.__table__), [
        {"trainee_id": trainee_id(serial), "plan_id": plan.id, "earned_hours": 0,
         "created_at": now} for serial, kind in kinds.items() if kind == 2])
    for serial, kind in kinds.items():
        if kind != 3:
            continue
        order = Order(out_trade_no=f"BENCH{serial:08d}", kind="individual",
                      buyer_id=trainee_id(serial), plan_id=plan.id, amount_fen=plan.price_fen,
                      expires_at=now + timedelta(minutes=30))
        db.session.add(order)
        db.session.flush()
        db.session.add(OrderItem(order_id=order.id, trainee_id=trainee_id(serial),
                                 plan_id=plan.id, price_fen=plan.price_fen,
                                 open_key=f"{trainee_id(serial)}:{plan.id}"))
    db.session.commit()

    lines = []
    for serial in range(LIST_SIZE):
        kind, number = kinds.get(serial), id_number(serial)
        if kind == 0:
            number = number[:17] + ("1" if number[17] != "1" else "2")  # bad check character
        elif kind == 4:
            number = id_number(serial - 1)                              # repeats the line above
        lines.append(number)
    return plan, lines


def per_id_check(plan, lines: list[str]) -> int:
    """The baseline: each line parsed, then its account, enrollment and open line looked up."""
    from wx_app.extensions import db
    from wx_app.id_numbers import InvalidIdNumber, parse
    from wx_app.models import Enrollment, OrderItem, Trainee
    from wx_app.personal_data import lookup_hash

    valid, seen = 0, set()
    for line in lines:
        try:
            number = parse(line).number
        except InvalidIdNumber:
            continue
        if number in seen:
            continue
        seen.add(number)
        trainee = db.session.scalars(sa.select(Trainee).where(
            Trainee.id_number_hash == lookup_hash(number))).first()
        if trainee is None:
            continue
        if db.session.scalar(sa.select(Enrollment.id).where(
                Enrollment.trainee_id == trainee.id, Enrollment.plan_id == plan.id)):
            continue
        if db.session.scalar(sa.select(OrderItem.id).where(
                OrderItem.open_key == f"{trainee.id}:{plan.id}")):
            continue
        valid += 1
    return valid


def timed(action, *args) -> tuple[object, float]:
    started = time.perf_counter()
    result = action(*args)
    return result, time.perf_counter() - started


def measure() -> bool:
    from wx_app.extensions import db
    from wx_app.group_purchase import check_id_lines

    plan, lines = seed()
    text = "\n".join(lines)
    plan.price_fen  # noqa: B018  (load the plan, expired by the seed's commit, before counting)

    with StatementCounter(db.engine) as small_count:
        check_id_lines(plan, "\n".join(lines[:SMALL_SIZE]))
    db.session.expunge_all()
    plan = db.session.merge(plan, load=False)
    with StatementCounter(db.engine) as large_count:
        check = check_id_lines(plan, text)

    batched = []
    for _ in range(REPEATS):
        db.session.expunge_all()  # each run loads its accounts afresh, as a request does
        plan = db.session.merge(plan, load=False)
        batched.append(timed(check_id_lines, plan, text)[1])
    baseline = []
    for _ in range(REPEATS):
        db.session.expunge_all()
        plan = db.session.merge(plan, load=False)
        valid, seconds = timed(per_id_check, plan, lines)
        baseline.append(seconds)
    batched_seconds, baseline_seconds = statistics.median(batched), statistics.median(baseline)

    reasons: dict[str, int] = {}
    for problem in check.problems:
        reasons[problem.reason_code] = reasons.get(problem.reason_code, 0) + 1
    print(f"list of {LIST_SIZE} lines against {LIST_SIZE + OTHER_ACCOUNTS} accounts: "
          f"{check.valid_count} valid, {check.problem_count} problems "
          f"({', '.join(f'{code} {count}' for code, count in sorted(reasons.items()))}); "
          f"per-ID baseline finds {valid} valid")
    print(f"  batched check: median {batched_seconds * 1000:.0f} ms of {REPEATS} runs "
          f"({', '.join(f'{s * 1000:.0f}' for s in batched)} ms)")
    print(f"  per-ID baseline: median {baseline_seconds * 1000:.0f} ms of {REPEATS} runs "
          f"({', '.join(f'{s * 1000:.0f}' for s in baseline)} ms)")

    statement_ratio = large_count.count / small_count.count
    bounded = large_count.count == small_count.count and valid == check.valid_count
    print(f"SQL statements: {small_count.count} for {SMALL_SIZE} IDs, {large_count.count} for "
          f"{LIST_SIZE} IDs → ratio {statement_ratio:.2f} "
          f"({'does not grow' if bounded else 'GROWS'} with the list; the per-ID baseline "
          f"sends up to {3 * LIST_SIZE})")
    met = report(f"group check of {LIST_SIZE} IDs, batched vs per-ID",
                 LIST_SIZE / batched_seconds, LIST_SIZE / baseline_seconds, GOAL_RATIO,
                 unit="IDs/s")
    return met and bounded
