"""ID numbers (公民身份号码, GB 11643-1999) and the permits that share their format.

Three kinds of 18-character number are accepted as a username and printed on certificates:

- the resident ID card of the mainland (居民身份证);
- the residence permit of Hong Kong, Macao and Taiwan residents (港澳台居民居住证), whose
  first six characters are 810000, 820000 or 830000;
- the foreign permanent-residence ID card of 2023 (外国人永久居留身份证), which starts with 9.

All three carry the birth date in characters 7–14, the gender in the 17th (odd for men) and
the GB 11643 check character last. The six-character region code is deliberately not
checked against a list: codes are retired when districts merge, and a number issued under a
retired code stays valid for life.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from .errors import InvalidInput

#: Weight of each of the first 17 characters: 2^(17 - i) mod 11.
WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
#: The check character for each remainder of the weighted sum modulo 11.
CHECK_CHARACTERS = "10X98765432"

HMT_PERMIT_PREFIXES = ("810000", "820000", "830000")  # Hong Kong, Macao, Taiwan
FOREIGN_PERMANENT_PREFIX = "9"
EARLIEST_BIRTH_YEAR = 1900

_SHAPE = re.compile(r"\d{17}[\dX]")


class InvalidIdNumber(InvalidInput):
    code = "invalid_id_number"
    message = "身份证号码不正确，请核对后重新输入。"


@dataclass(frozen=True)
class IdNumber:
    """A checked ID number and what it says about its holder."""

    number: str
    #: resident, hmt_permit or foreign_permanent (the values of Trainee.id_kind).
    kind: str
    birth_date: date
    #: M or F.
    gender: str

    @property
    def last_six(self) -> str:
        return self.number[-6:]


def normalise(raw: str) -> str:
    """Trim, turn full-width characters into half-width ones, and upper-case the X."""
    # NFKC folds full-width digits and letters (０-９, ｘ) into ASCII; it also turns the
    # ideographic space into a plain one, which strip() then removes.
    return unicodedata.normalize("NFKC", raw).strip().upper()


def check_character(first_seventeen: str) -> str:
    """The GB 11643 check character for the first 17 digits of a number."""
    total = sum(int(digit) * weight for digit, weight in zip(first_seventeen, WEIGHTS,
                                                            strict=True))
    return CHECK_CHARACTERS[total % 11]


def kind_of(number: str) -> str:
    """Which document a well-formed number belongs to."""
    if number.startswith(HMT_PERMIT_PREFIXES):
        return "hmt_permit"
    if number.startswith(FOREIGN_PERMANENT_PREFIX):
        return "foreign_permanent"
    return "resident"


def parse(raw: str, *, today: date | None = None) -> IdNumber:
    """Normalise and check an ID number; raise InvalidIdNumber with the reason in Chinese."""
    number = normalise(raw)
    today = today or date.today()

    if not number:
        raise InvalidIdNumber("请输入身份证号码。")
    if len(number) != 18:
        raise InvalidIdNumber(f"身份证号码应为18位，您输入了{len(number)}位。")
    if not _SHAPE.fullmatch(number):
        raise InvalidIdNumber("身份证号码只能由数字组成，最后一位可以是数字或大写字母X。")

    birth_date = _birth_date(number)
    if birth_date is None or not date(EARLIEST_BIRTH_YEAR, 1, 1) <= birth_date <= today:
        raise InvalidIdNumber("身份证号码中的出生日期不正确，请核对后重新输入。")

    if check_character(number[:17]) != number[17]:
        raise InvalidIdNumber("身份证号码校验位不正确，请核对后重新输入。")

    gender = "M" if int(number[16]) % 2 == 1 else "F"
    return IdNumber(number=number, kind=kind_of(number), birth_date=birth_date, gender=gender)


def is_valid(raw: str) -> bool:
    """True when `raw` is an acceptable ID number once normalised."""
    try:
        parse(raw)
    except InvalidIdNumber:
        return False
    return True


def _birth_date(number: str) -> date | None:
    try:
        return date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return None
