"""The checks a trainee's personal data passes, on the registration form and in a roster.

The data goes onto the certificate, so it must be right (the letter). Each check trims and
folds full-width characters first, since that is how a value pasted from a document or an
Excel sheet usually differs from what was meant, then raises InvalidInput with a stable code
and the reason in Chinese.
"""

from __future__ import annotations

import re
import unicodedata

from .errors import InvalidInput
from .id_numbers import IdNumber, normalise

NAME_MIN_CHARACTERS = 2
NAME_MAX_CHARACTERS = 20
#: The separator of minority and transliterated names (间隔号), as it is stored.
NAME_SEPARATOR = "·"
#: What people type for the separator: the katakana middle dot of Japanese input methods
#: (and its half-width form, which NFKC turns into it), bullets, the hyphenation point.
_SEPARATOR_VARIANTS = str.maketrans(dict.fromkeys("・•‧∙⋅●", NAME_SEPARATOR))
#: Han characters (the basic block, extension A, 〇, and extensions B onwards, where some
#: rare characters of names live), or Latin letters.
_NAME_LETTER = r"[A-Za-z\u3007\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U0003134f]"
_NAME = re.compile(rf"{_NAME_LETTER}+(?:{NAME_SEPARATOR}{_NAME_LETTER}+)*")
_SPACE = re.compile(r"\s")

#: Mainland mobile numbers: 11 digits, 13x to 19x.
_PHONE = re.compile(r"1[3-9]\d{9}")

_GENDERS = {"男": "M", "男性": "M", "M": "M", "MALE": "M",
            "女": "F", "女性": "F", "F": "F", "FEMALE": "F"}
GENDER_LABELS = {"M": "男", "F": "女"}


def check_name(raw: str | None) -> str:
    """The name as it goes onto the certificate; InvalidInput (invalid_name) if unusable."""
    name = unicodedata.normalize("NFKC", raw or "").strip().translate(_SEPARATOR_VARIANTS)

    if not name:
        raise InvalidInput("请输入姓名。", code="invalid_name")
    if _SPACE.search(name):
        raise InvalidInput("姓名中间不能有空格。", code="invalid_name")
    if not _NAME.fullmatch(name):
        raise InvalidInput("姓名只能由汉字或英文字母组成，不能有符号；少数民族姓名请用间隔号“·”。",
                           code="invalid_name")
    if not NAME_MIN_CHARACTERS <= len(name) <= NAME_MAX_CHARACTERS:
        raise InvalidInput(f"姓名应为{NAME_MIN_CHARACTERS}至{NAME_MAX_CHARACTERS}个字。",
                           code="invalid_name")
    return name


def check_phone(raw: str | None) -> str:
    """An 11-digit mainland mobile number; InvalidInput (invalid_phone) otherwise.

    Full-width digits and whitespace around the number are forgiven; spaces or dashes inside
    it are not, because the letter asks for none and a login must match it exactly.
    """
    phone = unicodedata.normalize("NFKC", raw or "").strip()

    if not phone:
        raise InvalidInput("请输入手机号码。", code="invalid_phone")
    if not phone.isascii() or not phone.isdigit():
        raise InvalidInput("手机号码只能由数字组成，中间不能有空格或其他符号。",
                           code="invalid_phone")
    if len(phone) != 11:
        raise InvalidInput(f"手机号码应为11位，您输入了{len(phone)}位。", code="invalid_phone")
    if not _PHONE.fullmatch(phone):
        raise InvalidInput("手机号码不正确，请输入中国大陆的11位手机号码。", code="invalid_phone")
    return phone


def check_gender(raw: str | None, id_number: str | IdNumber, *, required: bool = True) -> str:
    """'M' or 'F' from 男/女 (or M/F), which must agree with the ID number's 17th digit.

    `id_number` is a number already checked by id_numbers.parse (or its result). With
    `required=False` a blank answer takes the gender the ID number states.
    """
    from_id = _gender_of(id_number)
    answer = unicodedata.normalize("NFKC", raw or "").strip().upper()

    if not answer:
        if required:
            raise InvalidInput("请选择性别。", code="invalid_gender")
        return from_id
    gender = _GENDERS.get(answer)
    if gender is None:
        raise InvalidInput("性别请填写“男”或“女”。", code="invalid_gender")
    if gender != from_id:
        raise InvalidInput(f"性别与身份证号码不符：身份证号码显示为{GENDER_LABELS[from_id]}。",
                           code="gender_mismatch")
    return gender


def _gender_of(id_number: str | IdNumber) -> str:
    if isinstance(id_number, IdNumber):
        return id_number.gender
    return "M" if int(normalise(id_number)[16]) % 2 == 1 else "F"
