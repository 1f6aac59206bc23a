"""Group purchase (团体购买): one buyer pays one plan for many trainees, by their ID numbers.

An employer's appointed person pastes the trainees' ID numbers, one a line, as copied from
the roster's column (附件1 二（二）2.统一缴费). Every line is checked, never only the first
bad one, so that the whole list can be corrected in one go:

1. normalised (trimmed, full-width folded to half-width, x upper-cased; blank lines dropped);
2. format, birth date and check character (GB 11643, `id_numbers.parse`);
3. repeated in the list: the first line counts, every later one is reported;
4. a registered, active account;
5. not already enrolled in the plan, and not on a line of another unpaid order for it.

Steps 4 and 5 are three SQL statements whatever the number of lines: every valid number is
hashed, then one `IN (…)` each for the accounts, the plan's enrollments and its open order
lines. `max_lines` (2,000) bounds the `IN` lists, so they are never split.

The valid trainees go into one order (`orders.open_order`, kind "group"), paid like an
individual order; docs/group-purchase.md tells the rest of the story.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import openpyxl
import sqlalchemy as sa
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font

from . import orders
from .errors import DomainError, InvalidInput
from .extensions import db
from .id_numbers import InvalidIdNumber, check_character, normalise, parse
from .models import Enrollment, Order, OrderItem, Plan, Trainee
from .personal_data import lookup_hash, mask_id_number

log = logging.getLogger(__name__)

#: Most ID numbers one check (and one order) takes: the manual's "人员数量较多" case, and
#: the bound on the `IN (…)` lists of the three look-ups.
MAX_LINES = 2000
#: Most characters of pasted text: 2,000 lines of 18 characters leave room for blank lines
#: and stray spaces many times over; anything longer is not a list of ID numbers.
MAX_TEXT_CHARS = 100_000
#: What of a line is kept for the page and the error file; a longer line is cut here.
SHOWN_CHARS = 40

# Why a line is not in the order: a stable code, and the reason in the buyer's words.
INVALID_FORMAT = "invalid_format"
INVALID_BIRTH_DATE = "invalid_birth_date"
INVALID_CHECKSUM = "invalid_checksum"
NOT_REGISTERED = "not_registered"
ACCOUNT_DISABLED = "account_disabled"
ALREADY_ENROLLED = "already_enrolled"
IN_OPEN_ORDER = "in_open_order"
REPEATED = "repeated"

REASONS = {
    NOT_REGISTERED: "未注册：该身份证号码还没有账号，请学员先注册。",
    ACCOUNT_DISABLED: "账号已停用，请联系管理员。",
    ALREADY_ENROLLED: "已购买该计划。",
    IN_OPEN_ORDER: "已在其他待支付订单中：该订单支付或关闭前不能再次购买。",
}

# Zero-width spaces, joiners and the byte-order mark ride along with text copied from web
# pages and chat messages; they are invisible, so the buyer could never find them.
_INVISIBLE = re.compile("[\u200b-\u200f\u2060\ufeff]")


class TooManyLines(InvalidInput):
    code = "too_many_lines"
    message = f"一次最多购买{MAX_LINES}人，请分批提交。"


class NothingToOrder(InvalidInput):
    code = "no_valid_id_numbers"
    message = "名单中没有可以购买的学员，请根据问题列表修改后重新检查。"


class CheckChanged(DomainError):
    """The list checked differently at submission than when the buyer saw it."""

    code = "group_check_changed"
    http_status = 409
    message = "名单的检查结果有变化（可能有学员刚刚购买或下单），请核对人数和金额后重新提交订单。"


@dataclass(frozen=True)
class LineProblem:
    """A pasted line that does not go into the order, and why."""

    #: The line's number in the pasted text, blank lines counted, so that the buyer finds it.
    line_number: int
    #: The line as pasted (without its line break; cut at SHOWN_CHARS). Only for the buyer
    #: who pasted it: the error file. Never logged, never stored.
    pasted: str
    #: What the page shows: the normalised number, masked.
    masked: str
    reason_code: str
    reason: str

    def to_dict(self) -> dict:
        return {"line": self.line_number, "id_number_masked": self.masked,
                "code": self.reason_code, "reason": self.reason}


@dataclass(frozen=True)
class ValidLine:
    """A line whose trainee can be bought the plan."""

    line_number: int
    trainee: Trainee

    @property
    def masked(self) -> str:
        return self.trainee.id_number_masked

    def to_dict(self) -> dict:
        return {"line": self.line_number, "name": self.trainee.name,
                "id_number_masked": self.masked}


@dataclass
class GroupCheck:
    """The outcome of checking a pasted list against one plan."""

    plan: Plan
    #: Non-blank lines.
    line_count: int = 0
    valid: list[ValidLine] = field(default_factory=list)
    #: In the order of the pasted lines.
    problems: list[LineProblem] = field(default_factory=list)

    @property
    def trainees(self) -> list[Trainee]:
        """The trainees the order is for, in the order they were pasted."""
        return [line.trainee for line in self.valid]

    @property
    def valid_count(self) -> int:
        return len(self.valid)

    @property
    def problem_count(self) -> int:
        return len(self.problems)

    @property
    def amount_fen(self) -> int:
        """What the order for the valid lines costs: count × the plan's price."""
        return self.valid_count * self.plan.price_fen

    def to_dict(self) -> dict:
        return {"plan": self.plan.code, "lines": self.line_count, "valid": self.valid_count,
                "problems": self.problem_count, "amount_fen": self.amount_fen,
                "price_fen": self.plan.price_fen,
                "valid_lines": [line.to_dict() for line in self.valid],
                "problem_lines": [problem.to_dict() for problem in self.problems]}


# --- checking --------------------------------------------------------------------------------

def pasted_lines(text: str, *, max_lines: int = MAX_LINES) -> list[tuple[int, str, str]]:
    """(line number, line as pasted, normalised) of each non-blank line.

    Refuses (TooManyLines, InvalidInput) text with more than `max_lines` non-blank lines or
    more than MAX_TEXT_CHARS characters, before any of it is checked.
    """
    if len(text) > MAX_TEXT_CHARS:
        raise TooManyLines(f"粘贴的内容过长（超过{MAX_TEXT_CHARS}个字符）：请每行只粘贴一个"
                           f"身份证号码，一次最多{max_lines}人。")
    lines = []
    for line_number, raw in enumerate(text.splitlines(), start=1):
        normalised = _INVISIBLE.sub("", normalise(raw)).strip()
        if normalised:
            lines.append((line_number, raw, normalised))
    if len(lines) > max_lines:
        raise TooManyLines(f"一次最多购买{max_lines}人，您粘贴了{len(lines)}行：请分批提交。")
    return lines


def check_id_lines(plan: Plan, text: str, *, max_lines: int = MAX_LINES) -> GroupCheck:
    """Check each pasted line for a group purchase of `plan`; at most three SQL statements."""
    check = GroupCheck(plan=plan)
    lines = pasted_lines(text, max_lines=max_lines)
    check.line_count = len(lines)

    # Each line on its own: format, birth date, check character, repetition.
    candidates: dict[str, tuple[int, str, str]] = {}  # hash → (line number, as pasted, number)
    first_line_of: dict[str, int] = {}
    problems: list[LineProblem] = []
    for line_number, raw, normalised in lines:
        try:
            number = parse(normalised).number
        except InvalidIdNumber as exc:
            problems.append(_problem(line_number, raw, normalised, _format_code(normalised),
                                     exc.message))
            continue
        if number in first_line_of:
            problems.append(_problem(line_number, raw, number, REPEATED,
                                     f"重复：与第{first_line_of[number]}行相同。"))
            continue
        first_line_of[number] = line_number
        candidates[lookup_hash(number)] = (line_number, raw, number)

    # Every distinct valid number at once against the accounts, the enrollments and the
    # open order lines of the plan.
    trainees = _trainees_by_hash(candidates)
    active_ids = [trainee.id for trainee in trainees.values() if trainee.status == "active"]
    enrolled = _enrolled(plan, active_ids)
    in_open_orders = _in_open_orders(plan, active_ids)

    for number_hash, (line_number, raw, number) in candidates.items():
        trainee = trainees.get(number_hash)
        reason_code = None
        if trainee is None:
            reason_code = NOT_REGISTERED
        elif trainee.status != "active":
            reason_code = ACCOUNT_DISABLED
        elif trainee.id in enrolled:
            reason_code = ALREADY_ENROLLED
        elif trainee.id in in_open_orders:
            reason_code = IN_OPEN_ORDER
        if reason_code is None:
            check.valid.append(ValidLine(line_number=line_number, trainee=trainee))
        else:
            problems.append(_problem(line_number, raw, number, reason_code,
                                     REASONS[reason_code]))

    check.problems = sorted(problems, key=lambda problem: problem.line_number)
    return check


def _trainees_by_hash(candidates: dict) -> dict[str, Trainee]:
    if not candidates:
        return {}
    found = db.session.scalars(
        sa.select(Trainee).where(Trainee.id_number_hash.in_(list(candidates))))
    return {trainee.id_number_hash: trainee for trainee in found}


def _enrolled(plan: Plan, trainee_ids: list[int]) -> set[int]:
    if not trainee_ids:
        return set()
    return set(db.session.scalars(
        sa.select(Enrollment.trainee_id).where(Enrollment.plan_id == plan.id,
                                               Enrollment.trainee_id.in_(trainee_ids))))


def _in_open_orders(plan: Plan, trainee_ids: list[int]) -> set[int]:
    """Trainees on a line of an unpaid order for the plan: the lines holding an open_key."""
    if not trainee_ids:
        return set()
    open_keys = [orders.open_key(trainee_id, plan.id) for trainee_id in trainee_ids]
    return set(db.session.scalars(
        sa.select(OrderItem.trainee_id).where(OrderItem.open_key.in_(open_keys))))


def _format_code(normalised: str) -> str:
    """Which of parse()'s checks refused a number: format, birth date or check character."""
    if len(normalised) != 18 or not re.fullmatch(r"\d{17}[\dX]", normalised):
        return INVALID_FORMAT
    # parse() checks the birth date before the check character: with a correct check
    # character the number either passes (so the check character was the fault) or not.
    try:
        parse(normalised[:17] + check_character(normalised[:17]))
    except InvalidIdNumber:
        return INVALID_BIRTH_DATE
    return INVALID_CHECKSUM


def _problem(line_number: int, raw: str, normalised: str, reason_code: str,
             reason: str) -> LineProblem:
    return LineProblem(line_number=line_number, pasted=_shown(raw),
                       masked=mask_id_number(normalised[:SHOWN_CHARS]), reason_code=reason_code,
                       reason=reason)


def _shown(raw: str) -> str:
    text = raw.strip()
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…"


# --- ordering --------------------------------------------------------------------------------

def place_group_order(buyer: Trainee, plan: Plan, text: str, *,
                      invoice_request: orders.InvoiceRequest | Mapping | None = None,
                      expected_count: int | None = None, max_lines: int = MAX_LINES) -> Order:
    """One pending group order for the valid lines of `text`; flushes, the caller commits.

    The list is checked again here, since trainees may have bought or been ordered since
    the buyer saw the check: with `expected_count` (the count the buyer saw) a different
    count refuses the order (CheckChanged) instead of charging another amount. A trainee
    enrolled or put on another order between this check and the order's insert refuses it
    the same way. `invoice_request` is 立即申请's invoice (one for the whole order), None
    for 以后申请.
    """
    check = check_id_lines(plan, text, max_lines=max_lines)
    if not check.valid:
        raise NothingToOrder()
    if expected_count is not None and expected_count != check.valid_count:
        raise CheckChanged()

    try:
        order = orders.open_order(buyer, plan, check.trainees, kind="group",
                                  invoice_request=invoice_request)
    except (orders.AlreadyEnrolled, orders.AlreadyInOpenOrder) as exc:
        raise CheckChanged() from exc
    log.info("group order %s placed by trainee %s for plan %s: %d trainees, %d lines refused",
             order.out_trade_no, buyer.id, plan.code, check.valid_count, check.problem_count)
    return order


# --- the error file --------------------------------------------------------------------------

ERROR_COLUMNS = ("行号", "身份证号", "原因")


def error_workbook(check: GroupCheck) -> bytes:
    """下载错误文件: an xlsx of every refused line (行号, 身份证号, 原因).

    身份证号 is the line as the buyer pasted it, in full: the file goes only to the buyer
    who pasted it, in answer to that paste, and a masked number would not let them find the
    row to correct. The cell is text, so that Excel keeps every digit and never reads a
    pasted "=…" as a formula.
    """
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("错误行")
    for letter, width in zip("ABC", (8, 24, 60), strict=True):
        sheet.column_dimensions[letter].width = width
    sheet.freeze_panes = "A2"

    bold, wrap = Font(bold=True), Alignment(wrap_text=True, vertical="top")
    sheet.append([_cell(sheet, title, font=bold) for title in ERROR_COLUMNS])
    for problem in check.problems:
        sheet.append([problem.line_number,
                      _cell(sheet, problem.pasted, number_format="@"),
                      _cell(sheet, problem.reason, alignment=wrap)])

    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _cell(sheet, text: str, **style) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, value=ILLEGAL_CHARACTERS_RE.sub("", text))
    cell.data_type = "s"  # text, even when it starts with "="
    for name, setting in style.items():
        setattr(cell, name, setting)
    return cell
