"""Roster import (附件2): reading what employers send, checking every row, creating accounts."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from tests import factories
from tests.support import StatementCounter
from wx_app import roster as roster_module
from wx_app.extensions import db
from wx_app.models import Organisation, Trainee
from wx_app.passwords import INITIAL_PASSWORD_HASH, initial_password, verify_password
from wx_app.roster import (
    Roster,
    RosterError,
    RosterRow,
    error_workbook_path,
    find_district,
    import_roster,
    read_roster,
    write_error_workbook,
)

TEMPLATE = Path(__file__).resolve().parent / "data" / "roster-template.xlsx"
ORGANISATION = "重庆市渝北区人民医院"
FIRST_ROW = 5  # the template's first numbered row


def id_number(serial: int, *, male: bool = True, ends_in_x: bool = False) -> str:
    """A valid ID number; with `ends_in_x`, the first one from `serial` on whose check is X."""
    while True:
        number = factories.id_number(birth=date(1988, 3, 15), male=male, serial=serial)
        if number.endswith("X") or not ends_in_x:
            return number
        serial += 1


def phone(serial: int) -> str:
    return f"138{serial:08d}"


def with_bad_check(number: str) -> str:
    return number[:17] + ("1" if number[17] != "1" else "2")


def filled_template(folder: Path, rows: list[tuple], *, district="渝北区",
                    organisation=ORGANISATION, contact="刘老师", contact_phone="023-67891234",
                    name="注册名单.xlsx") -> Path:
    """A copy of 附件2 filled in from row 5 as an employer would (姓名, 身份证号码, 手机, 性别)."""
    workbook = openpyxl.load_workbook(TEMPLATE)
    sheet = workbook.active
    sheet["B2"], sheet["E2"] = district, contact
    sheet["B3"], sheet["E3"] = organisation, contact_phone
    for offset, values in enumerate(rows):
        for column, value in zip("BCDE", values, strict=False):
            sheet[f"{column}{FIRST_ROW + offset}"] = value
    path = folder / name
    workbook.save(path)
    return path


def good_rows(count: int, start: int = 100) -> list[tuple]:
    return [(f"学员{chr(0x4e00 + start + i)}", id_number(start + i), phone(start + i), "男")
            for i in range(count)]


def trainees() -> list[Trainee]:
    return db.session.scalars(select(Trainee).order_by(Trainee.id)).all()


# --- every kind of row ---------------------------------------------------------------------

MAN, WOMAN, WITH_X = id_number(1), id_number(2, male=False), id_number(3, ends_in_x=True)
ROWS = [
    ("张三", MAN, phone(1), "男"),                                          # 5 fine
    ("  李四\u3000", f" {WOMAN.translate(str.maketrans('0123456789', '０１２３４５６７８９'))} ",
     f" {phone(2)} ", " 女 "),                                              # 6 fine once folded
    ("王小明", WITH_X.lower(), phone(3), "男" if int(WITH_X[16]) % 2 else "女"),  # 7 lower-case x
    ("赵一", 5.00101199003071e+17, phone(4), "男"),                          # 8 cut short by Excel
    ("钱二", with_bad_check(id_number(5)), phone(5), "男"),                   # 9 bad checksum
    ("孙 三", id_number(6), phone(6), "男"),                                 # 10 name with a space
    ("周四*", id_number(7), phone(7), "男"),                                 # 11 name with a symbol
    ("吴五", id_number(8), phone(8)[:10], "男"),                             # 12 phone of 10 digits
    ("郑六", id_number(9), phone(9), "女"),                                  # 13 gender mismatch
    ("张三", MAN, phone(1), "男"),                                          # 14 duplicate of row 5
    (None, None, None, None),                                              # 15 only 序号: blank
    ("阿依古丽・买买提", id_number(10, male=False), int(phone(10)), "女"),    # 16 phone as number
    (None, None, None, None),                                              # 17 blank
    ("冯 七", id_number(11), "139 1234", "男"),                              # 18 two problems
    ("陈八", int(WITH_X[:17]), phone(12), "男"),                             # 19 number: X lost
    ("褚九", "5.00101199003071E+17", phone(13), "男"),                       # 20 Excel's display
]
GOOD_ROWS = {5, 6, 7, 16}
EXPECTED_REASONS = {
    8: "被Excel存成了数字",
    9: "校验位不正确",
    10: "姓名中间不能有空格",
    11: "不能有符号",
    12: "应为11位，您输入了10位",
    13: "性别与身份证号码不符",
    14: "与第5行重复",
    18: "姓名中间不能有空格；手机号码只能由数字组成",
    19: "被Excel存成了数字",
    20: "被Excel存成了数字",
}


def test_every_bad_row_is_reported_and_the_good_rows_are_imported(ctx, tmp_path):
    """Does a roster with every kind of bad row create the good accounts and explain the rest?"""
    path = filled_template(tmp_path, ROWS)

    roster = read_roster(path)
    report = import_roster(roster)

    assert [row.row_number for row in roster.rows] == [*range(5, 15), 16, 18, 19, 20]
    assert report.summary() == "共14行，新建4个账号，已存在0个，错误10行"
    reasons = {row.row_number: row.reason for row in report.errors}
    assert set(reasons) == set(EXPECTED_REASONS)
    for row_number, expected in EXPECTED_REASONS.items():
        assert expected in reasons[row_number], (row_number, reasons[row_number])

    created = {trainee.id_number: trainee for trainee in trainees()}
    assert set(created) == {MAN, WOMAN, WITH_X, id_number(10, male=False)}
    assert created[WOMAN].name == "李四"
    assert created[WOMAN].phone == phone(2)
    assert created[WOMAN].gender == "F"
    assert created[id_number(10, male=False)].name == "阿依古丽·买买提"
    assert created[id_number(10, male=False)].phone == phone(10)
    assert all(trainee.source == "roster" and trainee.must_change_password
               for trainee in created.values())


def test_the_error_workbook_lists_each_bad_row_with_its_reason(ctx, tmp_path):
    """Can the employer read back each refused row, its ID number as sent, and the reason?"""
    path = filled_template(tmp_path, ROWS)
    report = import_roster(read_roster(path))

    written = write_error_workbook(report, error_workbook_path(path))

    assert written == tmp_path / "注册名单.errors.xlsx"
    sheet = openpyxl.load_workbook(written).active
    lines = list(sheet.iter_rows(values_only=True))
    assert lines[0] == ("行号", "姓名", "身份证号码", "原因")
    by_row = {line[0]: line for line in lines[1:]}
    assert set(by_row) == set(EXPECTED_REASONS)
    assert by_row[8][1:3] == ("赵一", "5.00101199003071E+17")
    assert by_row[9][2] == with_bad_check(id_number(5))
    assert sheet["C3"].number_format == "@"  # text, so that Excel keeps every digit
    for row_number, expected in EXPECTED_REASONS.items():
        assert expected in by_row[row_number][3]


def test_a_second_import_of_the_same_file_changes_nothing(ctx, tmp_path):
    """Is importing the same roster twice harmless: same accounts, passwords untouched?"""
    path = filled_template(tmp_path, ROWS)
    import_roster(read_roster(path))
    before = {t.id: (t.password_hash, t.updated_at, t.name) for t in trainees()}

    again = import_roster(read_roster(path))

    db.session.expire_all()
    assert again.summary() == "共14行，新建0个账号，已存在4个，错误10行"
    assert {row.row_number for row in again.existing} == GOOD_ROWS
    assert {t.id: (t.password_hash, t.updated_at, t.name) for t in trainees()} == before
    assert db.session.scalar(select(func.count(Organisation.id))) == 1


def test_created_accounts_log_in_with_the_initial_password(ctx, tmp_path):
    """Does each new account accept edu@ + the last six of its ID, and nothing else?"""
    import_roster(read_roster(filled_template(tmp_path, ROWS[:3])))

    for trainee in trainees():
        assert trainee.password_hash == INITIAL_PASSWORD_HASH
        assert verify_password(trainee.password_hash, initial_password(trainee.id_number),
                               trainee.id_number)
        assert not verify_password(trainee.password_hash, "edu@000000", trainee.id_number)
    assert initial_password(WITH_X) == "edu@" + WITH_X[-6:]
    assert WITH_X[-1] == "X"


# --- organisations and districts -------------------------------------------------------------

def test_the_organisation_is_created_under_its_district_and_then_reused(ctx, tmp_path):
    """Is the employer created once, under the district its roster names, with its contact?"""
    first = import_roster(read_roster(filled_template(tmp_path, good_rows(2), district="渝北",
                                                      name="a.xlsx")))
    second = import_roster(read_roster(filled_template(tmp_path, good_rows(2, start=200),
                                                       district="渝北区", name="b.xlsx")))

    organisation = db.session.scalars(select(Organisation)).one()
    assert organisation.name == ORGANISATION
    assert organisation.district.name == "渝北区"
    assert organisation.contact_name == "刘老师"
    assert organisation.contact_phone == "023-67891234"
    assert (first.organisation_created, second.organisation_created) == (True, False)
    assert {t.organisation_id for t in trainees()} == {organisation.id}
    assert len(trainees()) == 4


@pytest.mark.parametrize(("written", "district"), [
    ("渝北区", "渝北区"), ("渝北", "渝北区"), (" 重庆市渝北区 ", "渝北区"), ("重庆渝北", "渝北区"),
    ("石柱", "石柱土家族自治县"), ("石柱县", "石柱土家族自治县"), ("忠县", "忠县"),
    ("两江新区", "两江新区"), ("两江", "两江新区"), ("高新区", "西部科学城重庆高新区"),
    ("万盛", "万盛经开区"), ("开县", "开州区"), ("綦江县", "綦江区"), ("ＬＪＸＱ", None),
    ("成都市", None), ("", None),
])
def test_a_district_is_found_by_the_names_people_write(ctx, written, district):
    """Are short names, former county names and the functional areas recognised?"""
    found = find_district(written)

    assert (found.name if found else None) == district


def test_an_existing_organisation_keeps_its_district_whatever_the_roster_says(ctx, tmp_path):
    """When the roster names another district, is the stored organisation used and noted?"""
    factories.organisation(ORGANISATION, district_code="500112")
    db.session.commit()

    report = import_roster(read_roster(filled_template(tmp_path, good_rows(1), district="江北")))

    assert report.created == 1
    assert report.district == "渝北区"
    assert report.notes == [f"单位“{ORGANISATION}”已登记在渝北区，名单写的是江北区："
                            "单位信息未作改动。"]


def test_a_new_organisation_in_an_unknown_district_is_refused(ctx, tmp_path):
    """Is a roster whose 区县 names no district of Chongqing refused before anything is written?"""
    path = filled_template(tmp_path, good_rows(2), district="成都市武侯区")

    with pytest.raises(RosterError, match="不是重庆市的区县"):
        import_roster(read_roster(path))
    assert trainees() == []
    assert db.session.scalars(select(Organisation)).all() == []


def test_a_roster_without_the_organisation_name_is_refused(ctx, tmp_path):
    """Is a roster without 单位全称 refused, since its accounts would belong to no employer?"""
    with pytest.raises(RosterError, match="没有填写单位全称"):
        import_roster(read_roster(filled_template(tmp_path, good_rows(1), organisation=None)))


# --- accounts that exist -------------------------------------------------------------------

def test_an_existing_account_is_reported_and_left_untouched(ctx, tmp_path):
    """Is a row whose ID number has an account reported as existing, the account unchanged?"""
    existing = factories.trainee(name="张三丰", id_number_=MAN, phone="13700000001")
    db.session.commit()
    before = (existing.password_hash, existing.name, existing.phone, existing.organisation_id)

    report = import_roster(read_roster(filled_template(tmp_path, [ROWS[0], ROWS[2]])))

    db.session.expire_all()
    assert report.summary() == "共2行，新建1个账号，已存在1个，错误0行"
    assert report.existing[0].row_number == 5
    assert "已经注册" in report.existing[0].reason
    stored = db.session.get(Trainee, existing.id)
    assert (stored.password_hash, stored.name, stored.phone, stored.organisation_id) == before


def test_a_phone_number_of_another_account_is_refused(ctx, tmp_path):
    """Is a row whose phone number belongs to someone else's account refused, not created?"""
    factories.trainee(phone=phone(1))
    db.session.commit()

    report = import_roster(read_roster(filled_template(tmp_path, [ROWS[0]])))

    assert report.summary() == "共1行，新建0个账号，已存在0个，错误1行"
    assert "已被其他账号使用" in report.errors[0].reason
    assert len(trainees()) == 1


def test_rows_that_share_an_id_or_phone_number_but_disagree_are_all_refused(ctx, tmp_path):
    """When two rows give one ID (or phone) number to different people, is neither imported?"""
    rows = [("张三", MAN, phone(1), "男"), ("张山", MAN, phone(1), "男"),
            ("李四", id_number(20), phone(20), "男"), ("李斯", id_number(21), phone(20), "男")]

    report = import_roster(read_roster(filled_template(tmp_path, rows)))

    reasons = {row.row_number: row.reason for row in report.errors}
    assert report.created == 0
    assert "与第6行相同，但姓名或手机号码不同" in reasons[5]
    assert "与第5行相同" in reasons[6]
    assert "手机号码与第8行相同" in reasons[7]
    assert "手机号码与第7行相同" in reasons[8]


# --- reading ---------------------------------------------------------------------------------

def test_the_header_row_is_found_by_its_titles_not_its_position(ctx, tmp_path):
    """Does a rearranged sheet with notes in the titles, merged cells and no 性别 column read?"""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "名单"
    sheet["A1"] = "重庆市专业技术人员继续教育培训学员注册名单"
    sheet.merge_cells("A1:F1")
    sheet["A3"], sheet["E3"] = "区县：两江新区", "联系人"
    sheet["F3"] = "王老师"
    sheet["A4"] = "单位全称"
    sheet.merge_cells("A4:B4")
    sheet["C4"] = "  重庆两江(新区)测试有限公司 "
    sheet.merge_cells("C4:D4")
    sheet.append([])
    sheet.append(["序 号", "身份证号码（身份证号码含X，必须大写）", "备注",
                  "姓名（姓名中间不能有空格和符号）", "手机号码"])
    sheet.append([1, id_number(30), "新入职", "陈晨", phone(30)])
    sheet.append([2])
    sheet.append([3, None, "调出"])
    sheet.append(["注意：", None, None, None, None])
    sheet.append(["1.文件格式要求为Excel电子格式"])
    path = tmp_path / "rearranged.xlsx"
    workbook.save(path)

    roster = read_roster(path)
    report = import_roster(roster)

    assert (roster.district, roster.contact_name) == ("两江新区", "王老师")
    assert roster.organisation.strip() == "重庆两江(新区)测试有限公司"
    assert roster.rows == [RosterRow(row_number=7, name="陈晨", id_number=id_number(30),
                                     phone=phone(30), gender=None, remark="新入职")]
    assert report.summary() == "共1行，新建1个账号，已存在0个，错误0行"
    organisation = db.session.scalars(select(Organisation)).one()
    assert organisation.name == "重庆两江（新区）测试有限公司"
    assert organisation.district.code == "LJXQ"


def test_the_template_as_sent_has_a_header_and_no_rows(tmp_path):
    """Does the blank template read as a roster with its 16 numbered rows all blank?"""
    roster = read_roster(TEMPLATE)

    assert roster.rows == []
    assert roster.district == roster.organisation == ""


def test_the_shipped_template_is_the_letters_template():
    """Is tests/data/roster-template.xlsx the same file as shared/samples/, where present?"""
    shared = Path(__file__).resolve().parents[2] / "shared" / "samples" / "roster-template.xlsx"
    if not shared.exists():
        pytest.skip("shared/samples/ is not beside the checkout")
    assert shared.read_bytes() == TEMPLATE.read_bytes()


def test_a_file_that_is_not_a_workbook_is_refused(tmp_path):
    """Are a text file, an old .xls file and a missing file refused with a reason in Chinese?"""
    text = tmp_path / "名单.xlsx"
    text.write_text("序号,姓名,身份证号码\n", encoding="utf-8")
    old = tmp_path / "名单.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0")

    with pytest.raises(RosterError, match="不是Excel工作簿"):
        read_roster(text)
    with pytest.raises(RosterError, match="另存为.xlsx"):
        read_roster(old)
    with pytest.raises(RosterError, match="找不到文件"):
        read_roster(tmp_path / "missing.xlsx")


def test_a_workbook_without_a_header_row_is_refused(tmp_path):
    """Is a workbook whose sheets have no 姓名/身份证号码/手机号码 titles refused?"""
    workbook = openpyxl.Workbook()
    workbook.active.append(["名字", "证件", "电话"])
    workbook.active.append(["张三", MAN, phone(1)])
    path = tmp_path / "other.xlsx"
    workbook.save(path)

    with pytest.raises(RosterError, match="没有找到名单的表头行"):
        read_roster(path)


def test_a_header_row_without_the_phone_column_is_refused_by_name(tmp_path):
    """Is a roster whose titles lack 手机号码 refused with the missing column named?"""
    workbook = openpyxl.Workbook()
    workbook.active.append(["序号", "姓名", "身份证号码", "性别"])
    workbook.active.append([1, "张三", MAN, "男"])
    path = tmp_path / "no-phone.xlsx"
    workbook.save(path)

    with pytest.raises(RosterError, match="第1行）缺少“手机号码”列"):
        read_roster(path)


# --- batching ------------------------------------------------------------------------------

def count_statements(action) -> int:
    with StatementCounter(db.engine) as counter:
        action()
    return counter.count


def test_the_number_of_statements_does_not_grow_with_the_rows(ctx):
    """Does importing 40 rows take as many SQL statements as importing 2 (one chunk each)?"""
    def roster(start: int, count: int) -> Roster:
        rows = [RosterRow(FIRST_ROW + i, name, number, phone_, gender)
                for i, (name, number, phone_, gender) in enumerate(good_rows(count, start))]
        return Roster(source="test", sheet="注册名单", district="渝北区",
                      organisation=ORGANISATION, rows=rows)

    import_roster(roster(500, 1))  # creates the organisation, which costs statements once

    few = count_statements(lambda: import_roster(roster(100, 2)))
    many = count_statements(lambda: import_roster(roster(200, 40)))

    assert many == few
    assert few <= 8
    assert len(trainees()) == 43


def test_chunks_commit_as_they_go_and_a_rerun_finishes_an_interrupted_import(
        ctx, tmp_path, monkeypatch):
    """After a crash in the third chunk, does a rerun create exactly the missing accounts?"""
    monkeypatch.setattr(roster_module, "CHUNK_ROWS", 3)
    path = filled_template(tmp_path, good_rows(10))
    real_import_chunk = roster_module._import_chunk
    calls = []

    def crashing_import_chunk(*args):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("the power went out")
        real_import_chunk(*args)

    monkeypatch.setattr(roster_module, "_import_chunk", crashing_import_chunk)
    with pytest.raises(RuntimeError):
        import_roster(read_roster(path))
    db.session.rollback()
    assert len(trainees()) == 6

    monkeypatch.setattr(roster_module, "_import_chunk", real_import_chunk)
    report = import_roster(read_roster(path))

    assert report.summary() == "共10行，新建4个账号，已存在6个，错误0行"
    assert len(trainees()) == 10
    assert db.session.scalar(select(func.count(sa.distinct(Trainee.id_number_hash)))) == 10


def test_progress_is_reported_for_every_row(ctx, tmp_path, monkeypatch):
    """Does the progress callback add up to the number of rows, chunk by chunk?"""
    monkeypatch.setattr(roster_module, "CHUNK_ROWS", 4)
    steps = []

    import_roster(read_roster(filled_template(tmp_path, good_rows(9))), progress=steps.append)

    assert steps == [4, 4, 1]


# --- the command ---------------------------------------------------------------------------

def test_the_command_imports_prints_a_summary_and_writes_the_error_workbook(app, tmp_path):
    """Does `flask roster import` exit 0 with the summary line and FILE.errors.xlsx beside it?"""
    path = filled_template(tmp_path, ROWS)

    result = app.test_cli_runner().invoke(args=["roster", "import", str(path)])

    assert result.exit_code == 0, result.output
    assert "共14行，新建4个账号，已存在0个，错误10行" in result.stdout
    assert "新建单位：重庆市渝北区人民医院（渝北区）" in result.stdout
    assert (tmp_path / "注册名单.errors.xlsx").exists()
    for number in (MAN, WOMAN, phone(1)):
        assert number not in result.output


def test_the_command_refuses_an_unreadable_file_in_chinese(app, tmp_path):
    """Does the command exit non-zero with a Chinese reason when the file is not a workbook?"""
    path = tmp_path / "名单.xlsx"
    path.write_text("not a workbook", encoding="utf-8")

    result = app.test_cli_runner().invoke(args=["roster", "import", str(path)])

    assert result.exit_code == 1
    assert "导入失败：无法读取名单.xlsx：它不是Excel工作簿" in result.stderr
    assert not (tmp_path / "名单.errors.xlsx").exists()


def test_the_command_reads_the_letters_template_filled_in(app, tmp_path):
    """Does a copy of 附件2 from shared/samples (or our copy of it) import end to end?"""
    shared = Path(__file__).resolve().parents[2] / "shared" / "samples" / "roster-template.xlsx"
    template = shared if shared.exists() else TEMPLATE
    shutil.copy(template, tmp_path / "template.xlsx")
    workbook = openpyxl.load_workbook(tmp_path / "template.xlsx")
    sheet = workbook.active
    sheet["B2"], sheet["B3"] = "江北", "重庆市江北区测试学校"
    sheet["B5"], sheet["C5"], sheet["D5"], sheet["E5"] = "周杰", id_number(40), phone(40), "男"
    path = tmp_path / "江北.xlsx"
    workbook.save(path)

    result = app.test_cli_runner().invoke(args=["roster", "import", str(path)])

    assert result.exit_code == 0, result.output
    assert "共1行，新建1个账号，已存在0个，错误0行" in result.stdout
    assert not (tmp_path / "江北.errors.xlsx").exists()
