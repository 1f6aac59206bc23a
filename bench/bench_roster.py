"""Roster import: a 10,000-row roster into a scratch MariaDB, against a per-row baseline.

The figure is the end-to-end time of `flask roster import` on 10,000 rows (read the
workbook, check every row, look up and insert the accounts, write the error workbook); the
goal is under 30 s on the 2-core development machine.

The baseline, measured in the same run on the same database, is the import as it is
usually first written: check a row, look its ID number up, look its phone number up,
add the account and flush it, row after row; it is run on a 500-row sample and scaled to
10,000 rows. Both use the initial-password marker, so the ratio is the effect of batching
alone; the scrypt line shows what hashing every initial password would have added.

The number of SQL statements is counted for 1,000 and for 10,000 rows: it grows with the
number of chunks (two look-ups and one multi-row INSERT per 1,000 rows), not with the rows.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import openpyxl
from sqlalchemy import select, text

from bench.support import report, scratch_database
from tests.support import StatementCounter
from wx_app.id_numbers import check_character

ROWS = 10_000
SMALL_ROWS = 1_000
NAIVE_SAMPLE = 500
GOAL_SECONDS = 30.0
#: The batched import should be at least this many times faster than the per-row one.
GOAL_RATIO = 5.0
#: One row in this many is bad, each time in the next of the ways employers get rows wrong.
BAD_EVERY = 50
ORGANISATION = "重庆市基准测试医院"
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"


def id_number(serial: int) -> str:
    """A distinct valid fictitious ID number per serial: one birth date each, from 1960 on."""
    birth = date(1960, 1, 1) + timedelta(days=serial % 20_000)
    sequence = 100 + serial // 20_000 * 2 + serial % 2  # the last digit's parity: gender
    first_seventeen = f"500112{birth:%Y%m%d}{sequence:03d}"
    return first_seventeen + check_character(first_seventeen)


def roster_row(serial: int) -> list:
    """(姓名, 身份证号码, 手机号码, 性别) of a good row, or every BAD_EVERY-th a bad one."""
    number = id_number(serial)
    name = SURNAMES[serial % len(SURNAMES)] + GIVEN[serial // len(SURNAMES) % len(GIVEN)] * 2
    phone = f"139{serial:08d}"
    gender = "男" if int(number[16]) % 2 else "女"
    row = [name, number, phone, gender]
    if serial % BAD_EVERY == BAD_EVERY - 1:
        kind = serial // BAD_EVERY % 5
        if kind == 0:
            row[1] = float(number[:17] + "0")          # stored as a number by Excel
        elif kind == 1:
            row[1] = number[:17] + ("1" if number[17] != "1" else "2")  # bad checksum
        elif kind == 2:
            row[0] = name[0] + " " + name[1:]          # a space in the name
        elif kind == 3:
            row[2] = phone[:10]                        # ten digits
        else:
            row[3] = "女" if gender == "男" else "男"  # disagrees with the ID number
    return row


def write_roster(path: Path, serials: range) -> Path:
    """A workbook laid out like 附件2: title, header block, titles with notes, rows, notes."""
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("注册名单")
    sheet.append(["重庆市专业技术人员继续教育培训学员注册名单"])
    sheet.append(["区 县：", "渝北区", None, "联系人：", "刘老师"])
    sheet.append(["单位全称：", ORGANISATION, None, "联系电话：", "023-67891234"])
    sheet.append(["序号", "姓名\n(姓名中间不能有空格和符号)",
                  "身份证号码\n(身份证号码含X，必须大写)", "手机号码", "性别", "备注"])
    for position, serial in enumerate(serials, start=1):
        sheet.append([position, *roster_row(serial)])
    sheet.append([])
    sheet.append(["注意："])
    sheet.append(["1.文件格式要求为Excel电子格式"])
    workbook.save(path)
    return path


def naive_import(roster, organisation_id: int) -> int:
    """The per-row baseline: two look-ups and an ORM insert for each row, one commit."""
    from wx_app.extensions import db
    from wx_app.models import Trainee
    from wx_app.passwords import INITIAL_PASSWORD_HASH
    from wx_app.personal_data import lookup_hash
    from wx_app.roster import check_row

    created = 0
    for row in roster.rows:
        checked = check_row(row)
        if isinstance(checked, list):
            continue
        number = checked.id_number.number
        if db.session.scalar(select(Trainee.id).where(
                Trainee.id_number_hash == lookup_hash(number))) is not None:
            continue
        if db.session.scalar(select(Trainee.id).where(
                Trainee.phone_hash == lookup_hash(checked.phone))) is not None:
            continue
        trainee = Trainee(name=checked.name, gender=checked.gender,
                          birth_date=checked.id_number.birth_date,
                          id_kind=checked.id_number.kind, organisation_id=organisation_id,
                          password_hash=INITIAL_PASSWORD_HASH, must_change_password=True,
                          source="roster")
        trainee.id_number, trainee.phone = number, checked.phone
        db.session.add(trainee)
        db.session.flush()
        created += 1
    db.session.commit()
    return created


def timed(action):
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


def main() -> bool:
    with tempfile.TemporaryDirectory() as folder, scratch_database() as database_url:
        folder = Path(folder)
        os.environ["WX_APP_INSTANCE"] = str(folder / "instance")
        from flask_migrate import upgrade

        from wx_app import create_app

        app = create_app({"APP_ENV": "testing", "DATABASE_URL": database_url,
                          "LOG_LEVEL": "WARNING"})
        with app.app_context():
            upgrade()
            return measure(folder)


def measure(folder: Path) -> bool:
    from wx_app.extensions import db
    from wx_app.passwords import hash_password
    from wx_app.roster import (
        check_roster,
        error_workbook_path,
        import_roster,
        read_roster,
        write_error_workbook,
    )

    big = write_roster(folder / "roster-10000.xlsx", range(ROWS))
    small = write_roster(folder / "roster-1000.xlsx", range(100_000, 100_000 + SMALL_ROWS))
    sample = write_roster(folder / "roster-500.xlsx", range(200_000, 200_000 + NAIVE_SAMPLE))

    # Statements for 1,000 rows (the organisation made beforehand, as for the 10,000), then
    # an empty table again.
    small_roster = read_roster(small)
    import_roster(dataclasses.replace(small_roster, rows=[]))
    with StatementCounter(db.engine) as small_count:
        import_roster(small_roster)
    db.session.execute(text("DELETE FROM trainees"))
    db.session.commit()

    # The batched import, end to end, as the command runs it.
    started = time.perf_counter()
    roster, read_seconds = timed(lambda: read_roster(big))
    with StatementCounter(db.engine) as big_count:
        result, import_seconds = timed(lambda: import_roster(roster))
    write_error_workbook(result, error_workbook_path(big))
    total_seconds = time.perf_counter() - started

    # Checking alone, without the database: the floor under the import step.
    _, check_seconds = timed(lambda: check_roster(roster))

    # Importing the same file again.
    rerun, rerun_seconds = timed(lambda: import_roster(read_roster(big)))

    # The per-row baseline on a 500-row sample of new people, scaled to 10,000 rows.
    sample_roster = read_roster(sample)
    organisation_id = db.session.scalar(text("SELECT id FROM organisations LIMIT 1"))
    naive_created, naive_seconds = timed(lambda: naive_import(sample_roster, organisation_id))
    naive_per_row = naive_seconds / len(sample_roster.rows)

    _, scrypt_seconds = timed(lambda: [hash_password(f"edu@{i:06d}") for i in range(10)])
    scrypt_per_row = scrypt_seconds / 10

    print(f"{ROWS} rows: read {read_seconds:.2f} s, import {import_seconds:.2f} s "
          f"(checking alone {check_seconds:.2f} s), total with the error workbook "
          f"{total_seconds:.2f} s")
    print(f"  {result.summary()}")
    print(f"  rerun: {rerun.summary()} in {rerun_seconds:.2f} s")
    print(f"  per-row baseline: {NAIVE_SAMPLE} rows ({naive_created} created) in "
          f"{naive_seconds:.2f} s → {naive_per_row * ROWS:.1f} s for {ROWS} rows")
    print(f"  scrypt for every initial password would add {scrypt_per_row * ROWS:.0f} s "
          f"({scrypt_per_row * 1000:.0f} ms a row)")

    met_time = total_seconds < GOAL_SECONDS
    print(f"roster import end to end: {total_seconds:.2f} s for {ROWS} rows "
          f"({'meets' if met_time else 'MISSES'} the goal of under {GOAL_SECONDS:.0f} s)")
    met_ratio = report("roster import step, batched vs per-row", ROWS / import_seconds,
                       1 / naive_per_row, GOAL_RATIO, unit="rows/s")

    chunks = -(-ROWS // 1000)
    bounded = big_count.count <= 3 * chunks + 10 and rerun.created == 0
    print(f"SQL statements: {small_count.count} for {SMALL_ROWS} rows, {big_count.count} for "
          f"{ROWS} rows ({big_count.count / ROWS:.4f} a row; "
          f"{'bounded by the chunks' if bounded else 'GROWS with the rows'})")
    return met_time and met_ratio and bounded
