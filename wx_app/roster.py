"""Registration rosters (注册名单, 附件2 of the letter): accounts for an employer's staff.

An employer fills in the letter's Excel template: a header block (区县, 联系人, 单位全称,
联系电话), then one row per trainee (序号, 姓名, 身份证号码, 手机号码, 性别, 备注). Staff
import it; each valid row becomes an account whose username is the ID number and whose
password is the initial one (see wx_app/passwords.py), under the employer's organisation.

Reading is tolerant of what employers do to the template (merged cells, notes in the column
titles, blank rows, full-width characters, stray spaces); checking is strict, because the
data goes onto certificates. Every problem of every row is collected, never only the first,
so that the employer can correct the whole file in one go. See docs/roster.md.
"""

from __future__ import annotations

import logging
import re
import unicodedata
import warnings
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import openpyxl
import sqlalchemy as sa
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font
from openpyxl.utils.exceptions import InvalidFileException
from sqlalchemy.exc import IntegrityError

from . import trainee_fields
from .errors import InvalidInput
from .extensions import db
from .id_numbers import IdNumber, parse
from .models import District, Organisation, Trainee
from .models._types import utcnow
from .passwords import INITIAL_PASSWORD_HASH
from .personal_data import encrypt, lookup_hash, mask_id_number, mask_phone

log = logging.getLogger(__name__)

#: Rows checked against the database, inserted and committed together: two SELECTs and one
#: multi-row INSERT per chunk, whatever the chunk's size.
CHUNK_ROWS = 1000
#: The header row is looked for among the first rows of each sheet.
HEADER_SEARCH_ROWS = 30

#: Column titles (without their notes in brackets) and the field each one fills.
COLUMN_TITLES = {
    "序号": "serial",
    "姓名": "name",
    "身份证号码": "id_number", "身份证号": "id_number", "证件号码": "id_number",
    "手机号码": "phone", "手机号": "phone", "手机": "phone",
    "性别": "gender",
    "备注": "remark",
}
#: Without these three columns a sheet is not a roster. 性别 may be missing: the ID number
#: states it.
REQUIRED_COLUMNS = {"name": "姓名", "id_number": "身份证号码", "phone": "手机号码"}
#: Labels of the header block above the column titles.
HEADER_LABELS = {
    "区县": "district",
    "联系人": "contact_name",
    "单位全称": "organisation", "单位名称": "organisation",
    "联系电话": "contact_phone",
}
_HEADER_LABEL = re.compile(rf"^({'|'.join(HEADER_LABELS)}):?(.*)$")
#: The notes under the template's rows start with 注意： (or 注：, 说明：).
_NOTES = re.compile(r"^(注意|注:|说明:)")
#: What Excel shows for an ID number it stored as a number: 5.00101199003071E+17.
_SCIENTIFIC = re.compile(r"^\d(\.\d+)?E\+?\d+$", re.IGNORECASE)

CellValue = str | int | float | None

# The reasons a row is refused, in the employer's words.
NUMERIC_ID_NUMBER = ("身份证号码被Excel存成了数字，最后几位（或末尾的X）已经丢失：请把这一列设为"
                     "“文本”格式，重新输入后再发送。")
SPACE_IN_ID_NUMBER = "身份证号码中间不能有空格。"
ALREADY_REGISTERED = "该身份证号码已经注册过账号，账号未作改动（请用原来的密码登录）。"
PHONE_TAKEN = "手机号码已被其他账号使用：一个手机号码只能注册一个账号。"


class RosterError(InvalidInput):
    """The file as a whole cannot be imported: nothing was written."""

    code = "invalid_roster"
    message = "注册名单无法导入。"


@dataclass(frozen=True)
class RosterRow:
    """One filled-in row, with its cells as the workbook holds them (text or number)."""

    #: The row number Excel shows, so that the employer finds the row.
    row_number: int
    name: CellValue
    id_number: CellValue
    phone: CellValue
    gender: CellValue = None
    remark: CellValue = None


@dataclass
class Roster:
    """The header block and the filled-in rows of one roster workbook."""

    source: str
    sheet: str
    district: str = ""
    contact_name: str = ""
    organisation: str = ""
    contact_phone: str = ""
    rows: list[RosterRow] = field(default_factory=list)


@dataclass(frozen=True)
class RejectedRow:
    """A row that did not become a new account, and why (for the employer)."""

    row_number: int
    name: str
    #: The ID number as the workbook held it (the employer's own data, sent back to them).
    id_number: str
    reason: str
    #: True when the account exists already: not an error, but nothing was created either.
    existing: bool = False


@dataclass
class ImportReport:
    """What an import did: counts for the summary line, and each row not created."""

    source: str
    organisation: str
    district: str
    organisation_created: bool = False
    total_rows: int = 0
    created: int = 0
    existing: list[RejectedRow] = field(default_factory=list)
    errors: list[RejectedRow] = field(default_factory=list)
    #: Remarks about the file as a whole (e.g. a header that disagrees with what is stored).
    notes: list[str] = field(default_factory=list)

    @property
    def rejected(self) -> list[RejectedRow]:
        """Every row not created, errors and existing accounts, in the workbook's order."""
        return sorted(self.errors + self.existing, key=lambda row: row.row_number)

    def summary(self) -> str:
        return (f"共{self.total_rows}行，新建{self.created}个账号，"
                f"已存在{len(self.existing)}个，错误{len(self.errors)}行")


@dataclass(frozen=True)
class CheckedRow:
    """A row that passed every check, with its values as they will be stored."""

    row: RosterRow
    name: str
    id_number: IdNumber
    phone: str
    gender: str


# --- reading ---------------------------------------------------------------------------------

def read_roster(path: str | Path) -> Roster:
    """Read a roster workbook; RosterError (in Chinese) if it is not one."""
    path = Path(path)
    workbook = _open_workbook(path)
    incomplete: list[RosterError] = []
    try:
        for sheet in workbook.worksheets:
            rows = sheet.iter_rows(values_only=True)
            try:
                roster = _read_sheet(rows, path.name, sheet.title)
            except _IncompleteHeader as exc:
                incomplete.append(exc)  # another sheet may still hold the roster
                continue
            finally:
                rows.close()  # a sheet left half-read keeps the file open until collected
            if roster is not None:
                return roster
    finally:
        workbook.close()
    if incomplete:
        raise RosterError(incomplete[0].message)
    raise RosterError(f"{path.name}中没有找到名单的表头行（序号、姓名、身份证号码、手机号码、性别、"
                      "备注）：请使用附件2的模板填写。")


def _open_workbook(path: Path):
    if not path.is_file():
        raise RosterError(f"找不到文件{path}。")
    if path.suffix.lower() == ".xls":
        raise RosterError(f"{path.name}是旧版Excel格式（.xls）：请在Excel中另存为.xlsx格式"
                          "后再导入。")
    try:
        with warnings.catch_warnings():
            # Workbooks saved by WPS or newer Excel carry extensions openpyxl does not read
            # (data validation lists, conditional formats) and some carry no default style;
            # only cell values are used here, so what openpyxl drops does not matter.
            warnings.filterwarnings("ignore", category=UserWarning, module="openpyxl",
                                    message=r"(Data Validation|Conditional Formatting) "
                                            r"extension is not supported")
            warnings.filterwarnings("ignore", category=UserWarning, module="openpyxl",
                                    message="Workbook contains no default style")
            return openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, OSError):
        raise RosterError(f"无法读取{path.name}：它不是Excel工作簿（.xlsx），或文件已损坏。"
                          ) from None


def _read_sheet(rows: Iterator[tuple], source: str, sheet: str) -> Roster | None:
    """The roster on one sheet, or None when the sheet has no header row."""
    above: list[tuple] = []
    for row_number, values in enumerate(rows, start=1):
        columns = _column_fields(values)
        if all(name in columns for name in REQUIRED_COLUMNS):
            break
        if len(columns) >= 2:
            missing = "、".join(f"“{title}”" for name, title in REQUIRED_COLUMNS.items()
                               if name not in columns)
            raise _IncompleteHeader(f"{source}的表头行（工作表“{sheet}”第{row_number}行）"
                                    f"缺少{missing}列：请使用附件2的模板填写。")
        if row_number >= HEADER_SEARCH_ROWS:
            return None
        above.append(values)
    else:
        return None

    roster = Roster(source=source, sheet=sheet, **_header_block(above))
    header_row = row_number
    for row_number, values in enumerate(rows, start=header_row + 1):
        cells = {name: _cell(values, index) for name, index in columns.items()}
        if _is_notes(values, cells):
            break
        if all(cells.get(name) is None for name in ("name", "id_number", "phone", "gender")):
            continue  # blank, or only 序号 (and perhaps 备注) filled in
        roster.rows.append(RosterRow(
            row_number=row_number, name=cells["name"], id_number=cells["id_number"],
            phone=cells["phone"], gender=cells.get("gender"), remark=cells.get("remark")))
    return roster


class _IncompleteHeader(RosterError):
    """A row with some of the column titles but not all that are needed."""


def _column_fields(values: tuple) -> dict[str, int]:
    """{field: column index} of the roster's column titles found in `values`."""
    columns: dict[str, int] = {}
    for index, value in enumerate(values):
        if isinstance(value, str):
            name = COLUMN_TITLES.get(_title(value))
            if name and name not in columns:
                columns[name] = index
    return columns


def _title(text: str) -> str:
    """A column title without its note: "姓名（姓名中间不能有空格和符号）" → "姓名"."""
    folded = re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))
    return re.split(r"[(\[【]", folded, maxsplit=1)[0].rstrip(":")


def _header_block(rows: list[tuple]) -> dict[str, str]:
    """区县, 联系人, 单位全称, 联系电话: each label's value is in the next filled cell."""
    found: dict[str, str] = {}
    for values in rows:
        texts = [_text(value) for value in values]
        for index, text in enumerate(texts):
            match = _HEADER_LABEL.match(re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)))
            if not match:
                continue
            name, inline = HEADER_LABELS[match.group(1)], match.group(2)
            found.setdefault(name, inline or _value_right_of(texts, index))
    return found


def _value_right_of(texts: list[str], index: int) -> str:
    for text in texts[index + 1:]:
        if not text:
            continue  # the rest of a merged label cell, or an empty spacer column
        normalised = re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))
        return "" if _HEADER_LABEL.match(normalised) else text
    return ""


def _cell(values: tuple, index: int) -> CellValue:
    value = values[index] if index < len(values) else None
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return value
    return None if value is None else str(value)  # a date typed into a text column


def _is_notes(values: tuple, cells: dict[str, CellValue]) -> bool:
    """True for the first row of the notes under the template's numbered rows."""
    first = next((value for value in values if value not in (None, "")), None)
    if not isinstance(first, str) or cells.get("id_number") is not None:
        return False
    return bool(_NOTES.match(re.sub(r"\s+", "", unicodedata.normalize("NFKC", first))))


def _text(value: CellValue) -> str:
    """A cell as trimmed text; a whole number (a phone typed as a number) without '.0'."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.15G}"  # as Excel shows it: 5.00101199003071E+17
    return str(value).strip()


# --- checking --------------------------------------------------------------------------------

def check_row(row: RosterRow) -> CheckedRow | list[str]:
    """The row's checked values, or every reason it cannot become an account."""
    reasons: list[str] = []

    name = _check(reasons, trainee_fields.check_name, _text(row.name))
    id_number = _check(reasons, _check_id_number, row.id_number)
    phone = _check(reasons, trainee_fields.check_phone, _text(row.phone))
    gender = None
    if id_number is not None:
        gender = _check(reasons, trainee_fields.check_gender, _text(row.gender), id_number,
                        required=False)

    if reasons:
        return reasons
    return CheckedRow(row=row, name=name, id_number=id_number, phone=phone, gender=gender)


def _check(reasons: list[str], check: Callable, *args, **kwargs):
    try:
        return check(*args, **kwargs)
    except InvalidInput as exc:
        reasons.append(exc.message)
        return None


def _check_id_number(value: CellValue) -> IdNumber:
    # Excel keeps 15 significant digits of a number: an 18-digit ID number typed into a
    # General cell loses its last three digits, and an X cannot be a number at all. The
    # checksum would catch only ten in eleven of those, so a number cell is never trusted.
    if isinstance(value, int | float):
        raise InvalidInput(NUMERIC_ID_NUMBER, code="invalid_id_number")
    text = unicodedata.normalize("NFKC", _text(value)).strip()
    if _SCIENTIFIC.match(text):
        raise InvalidInput(NUMERIC_ID_NUMBER, code="invalid_id_number")
    if re.search(r"\s", text):
        raise InvalidInput(SPACE_IN_ID_NUMBER, code="invalid_id_number")
    return parse(text)


def check_roster(roster: Roster) -> tuple[list[CheckedRow], list[RejectedRow]]:
    """(rows to import, rows refused with every reason), without touching the database."""
    checked: list[CheckedRow] = []
    refused: list[RejectedRow] = []
    for row in roster.rows:
        outcome = check_row(row)
        if isinstance(outcome, list):
            refused.append(_rejected(row, _join(outcome)))
        else:
            checked.append(outcome)

    duplicates = _duplicates(checked)
    refused.extend(_rejected(row.row, duplicates[row.row.row_number]) for row in checked
                   if row.row.row_number in duplicates)
    accepted = [row for row in checked if row.row.row_number not in duplicates]
    return accepted, refused


def _join(reasons: Iterable[str]) -> str:
    return "；".join(reason.rstrip("。") for reason in reasons) + "。"


def _duplicates(checked: list[CheckedRow]) -> dict[int, str]:
    """{row number: reason} for rows that repeat another row's ID or phone number."""
    reasons: dict[int, str] = {}

    by_id: dict[str, list[CheckedRow]] = defaultdict(list)
    for row in checked:
        by_id[row.id_number.number].append(row)
    for rows in by_id.values():
        if len(rows) < 2:
            continue
        first = rows[0]
        if all((row.name, row.phone, row.gender) == (first.name, first.phone, first.gender)
               for row in rows):
            for row in rows[1:]:
                reasons[row.row.row_number] = (f"与第{first.row.row_number}行重复（同一个人），"
                                               "只按第一次出现的行导入。")
        else:
            for row in rows:
                others = "、".join(str(o.row.row_number) for o in rows if o is not row)
                reasons[row.row.row_number] = (f"身份证号码与第{others}行相同，但姓名或手机号码"
                                               "不同：请核对后重新发送。")

    by_phone: dict[str, list[CheckedRow]] = defaultdict(list)
    for row in checked:
        if row.row.row_number not in reasons:
            by_phone[row.phone].append(row)
    for rows in by_phone.values():
        if len(rows) < 2:
            continue
        for row in rows:
            others = "、".join(str(o.row.row_number) for o in rows if o is not row)
            reasons[row.row.row_number] = (f"手机号码与第{others}行相同：一个手机号码只能注册一个"
                                           "账号。")
    return reasons


# --- importing -------------------------------------------------------------------------------

def import_roster(roster: Roster, progress: Callable[[int], None] | None = None
                  ) -> ImportReport:
    """Create an account for each valid row that has none; report every other row.

    A batch job, so it commits itself, once per chunk of CHUNK_ROWS rows: a crash loses at
    most the chunk in flight, and a rerun finishes the job, since rows whose ID number
    already has an account are skipped (and the unique keys forbid a second one).
    `progress(n)` is called as each chunk of `n` rows is done.
    """
    organisation, report = _organisation_for(roster)
    organisation_id = organisation.id  # read once: each commit expires the object
    report.total_rows = len(roster.rows)

    candidates, report.errors = check_roster(roster)
    by_row_number = {row.row.row_number: row for row in candidates}

    for start in range(0, len(roster.rows), CHUNK_ROWS):
        chunk = roster.rows[start:start + CHUNK_ROWS]
        rows = [by_row_number[row.row_number] for row in chunk if row.row_number in by_row_number]
        _import_chunk(rows, organisation_id, report)
        if progress:
            progress(len(chunk))
    db.session.commit()

    report.errors.sort(key=lambda row: row.row_number)
    log.info("roster %s imported for organisation %s: %d rows, %d accounts created, "
             "%d existing, %d errors", roster.source, organisation_id, report.total_rows,
             report.created, len(report.existing), len(report.errors))
    return report


def _import_chunk(rows: list[CheckedRow], organisation_id: int, report: ImportReport) -> None:
    """Look the chunk's ID and phone numbers up at once, insert the new ones, commit."""
    for attempt in (1, 2):
        existing, taken, new = _sort_out(rows)
        try:
            if new:
                db.session.execute(sa.insert(Trainee.__table__),
                                   [_account(row, organisation_id) for row in new])
            db.session.commit()
            break
        except IntegrityError:
            # Someone registered one of these numbers between our look-up and our insert;
            # looking again finds it, and it is reported like any existing account.
            db.session.rollback()
            if attempt == 2:
                raise
            log.warning("roster chunk collided with a concurrent registration; retrying")

    report.created += len(new)
    report.existing.extend(_rejected(row.row, ALREADY_REGISTERED, existing=True)
                           for row in existing)
    report.errors.extend(_rejected(row.row, PHONE_TAKEN) for row in taken)


def _sort_out(rows: list[CheckedRow]
              ) -> tuple[list[CheckedRow], list[CheckedRow], list[CheckedRow]]:
    """(rows whose ID number has an account, rows whose phone is another's, new rows)."""
    if not rows:
        return [], [], []
    id_hashes = {row.row.row_number: lookup_hash(row.id_number.number) for row in rows}
    phone_hashes = {row.row.row_number: lookup_hash(row.phone) for row in rows}
    known_ids = set(db.session.scalars(
        sa.select(Trainee.id_number_hash).where(Trainee.id_number_hash.in_(id_hashes.values()))))
    known_phones = set(db.session.scalars(
        sa.select(Trainee.phone_hash).where(Trainee.phone_hash.in_(phone_hashes.values()))))

    existing, taken, new = [], [], []
    for row in rows:
        if id_hashes[row.row.row_number] in known_ids:
            existing.append(row)
        elif phone_hashes[row.row.row_number] in known_phones:
            taken.append(row)
        else:
            new.append(row)
    return existing, taken, new


def _account(row: CheckedRow, organisation_id: int) -> dict:
    """The trainees row of a roster account: initial password, to be changed at first login."""
    number, now = row.id_number.number, utcnow()
    return {
        "name": row.name,
        "id_number_enc": encrypt(number),
        "id_number_hash": lookup_hash(number),
        "id_number_masked": mask_id_number(number),
        "id_kind": row.id_number.kind,
        "phone_enc": encrypt(row.phone),
        "phone_hash": lookup_hash(row.phone),
        "phone_masked": mask_phone(row.phone),
        "gender": row.gender,
        "birth_date": row.id_number.birth_date,
        "organisation_id": organisation_id,
        "password_hash": INITIAL_PASSWORD_HASH,
        "must_change_password": True,
        "status": "active",
        "source": "roster",
        "session_epoch": 0,
        "created_at": now,
        "updated_at": now,
    }


def _rejected(row: RosterRow, reason: str, *, existing: bool = False) -> RejectedRow:
    return RejectedRow(row_number=row.row_number, name=_text(row.name),
                       id_number=_text(row.id_number), reason=reason, existing=existing)


# --- the employer and its district -----------------------------------------------------------

def _organisation_for(roster: Roster) -> tuple[Organisation, ImportReport]:
    """The roster's employer, created under its district when new."""
    name = organisation_name(roster.organisation)
    if not name:
        raise RosterError("名单表头没有填写单位全称：请填写后重新导入。")
    district = find_district(roster.district)
    report = ImportReport(source=roster.source, organisation=name, district="")

    organisation = _stored_organisation(name)
    if organisation is None:
        if district is None:
            raise RosterError(_district_problem(roster.district))
        organisation = Organisation(name=name, district_id=district.id,
                                    contact_name=_text(roster.contact_name)[:50] or None)
        organisation.contact_phone = _text(roster.contact_phone)[:20] or None
        db.session.add(organisation)
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()  # created by an import running at the same time
            organisation = _stored_organisation(name)
            if organisation is None:
                raise
        else:
            report.organisation_created = True
            log.info("organisation %s created from roster %s in district %s",
                     organisation.id, roster.source, district.code)
    elif district is None and roster.district.strip():
        report.notes.append(_district_problem(roster.district).replace("请核对后重新导入",
                                                                        "单位已登记，照常导入"))
    elif district is not None and organisation.district_id != district.id:
        stored = db.session.get(District, organisation.district_id)
        report.notes.append(f"单位“{name}”已登记在{stored.name}，名单写的是{district.name}："
                            "单位信息未作改动。")
    report.district = db.session.get(District, organisation.district_id).name
    return organisation, report


def _stored_organisation(name: str) -> Organisation | None:
    return db.session.scalars(sa.select(Organisation).where(Organisation.name == name)).first()


def _district_problem(written: str) -> str:
    if not written.strip():
        return "名单表头没有填写区县：请填写单位所在的区县后重新导入。"
    return f"名单表头的区县“{written.strip()}”不是重庆市的区县或功能区：请核对后重新导入。"


def organisation_name(raw: str) -> str:
    """单位全称 as stored: trimmed, half-width brackets made full-width as in official names."""
    name = unicodedata.normalize("NFKC", raw or "").strip()
    name = name.replace("(", "（").replace(")", "）")
    if re.search(r"[\u4e00-\u9fff]", name):
        return re.sub(r"\s+", "", name)  # Chinese names have no spaces
    return re.sub(r"\s+", " ", name)


#: Names people write for a district other than its full name (former names included).
DISTRICT_ALIASES = {
    "开县": "开州区",
    "万盛": "万盛经开区", "万盛区": "万盛经开区", "万盛经济技术开发区": "万盛经开区",
    "两江": "两江新区",
    "高新区": "西部科学城重庆高新区", "重庆高新区": "西部科学城重庆高新区",
    "高新技术产业开发区": "西部科学城重庆高新区", "西部科学城": "西部科学城重庆高新区",
}


def find_district(written: str) -> District | None:
    """The district a roster names: "渝北区", "渝北", "重庆市渝北区", "石柱县", "两江新区"…"""
    wanted = re.sub(r"\s+", "", unicodedata.normalize("NFKC", written or ""))
    wanted = re.sub(r"^重庆市?", "", wanted)
    if not wanted:
        return None
    districts = db.session.scalars(sa.select(District)).all()
    names = {}
    for district in districts:
        for alias in _aliases(district.name):
            names.setdefault(alias, district)
    for alias, full_name in DISTRICT_ALIASES.items():
        names.setdefault(alias, next(d for d in districts if d.name == full_name))
    return names.get(wanted)


def _aliases(name: str) -> set[str]:
    """渝北区 → {渝北区, 渝北}; 石柱土家族自治县 → {…, 石柱, 石柱县}; 两江新区 → {…, 两江}."""
    aliases = {name}
    short = re.sub(r"((土家族|苗族)+自治县|新区|区|县)$", "", name)
    if len(short) >= 2:
        aliases |= {short, short + "区", short + "县"}
    return aliases


# --- the error workbook ----------------------------------------------------------------------

ERROR_COLUMNS = ("行号", "姓名", "身份证号码", "原因")


def error_workbook_path(roster_path: str | Path) -> Path:
    """名单.xlsx → 名单.errors.xlsx, beside the roster."""
    path = Path(roster_path)
    return path.with_name(path.stem + ".errors.xlsx")


def write_error_workbook(report: ImportReport, path: str | Path) -> Path:
    """Write every row not created, with its reason, for the employer to correct and resend.

    The ID numbers are written back in full: the employer sent them, needs them to find each
    row, and gets nothing they did not send; the cell is text so that Excel keeps every digit.
    """
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("未导入的行")
    for letter, width in zip("ABCD", (8, 14, 24, 80), strict=True):
        sheet.column_dimensions[letter].width = width
    sheet.freeze_panes = "A2"

    bold = Font(bold=True)
    sheet.append([_styled(sheet, title, font=bold) for title in ERROR_COLUMNS])
    wrap = Alignment(wrap_text=True, vertical="top")
    for row in report.rejected:
        sheet.append([
            row.row_number,
            row.name,
            _styled(sheet, row.id_number, number_format="@"),
            _styled(sheet, row.reason, alignment=wrap),
        ])

    path = Path(path)
    workbook.save(path)
    return path


def _styled(sheet, value, **style) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, value=value)
    for name, setting in style.items():
        setattr(cell, name, setting)
    return cell
