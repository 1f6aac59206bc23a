"""统一社会信用代码 (unified social credit code), as GB 32100-2015 defines it.

Eighteen characters from the 31-character set (digits and capital letters without I, O, Z,
S, V): the registration authority, the kind of body, the administrative division, the
organisation code, and a check character computed over the first seventeen with the
weights 3^i mod 31. A company invoice title (发票抬头) must carry it, so a mistyped character
is caught here rather than by the tax office after the invoice is issued.
"""

from __future__ import annotations

import unicodedata

from .errors import InvalidInput

CHARACTERS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
LENGTH = 18


def check_character(first_seventeen: str) -> str:
    """The 18th character of a code that starts with these seventeen."""
    total = sum(CHARACTERS.index(char) * weight
                for char, weight in zip(first_seventeen, WEIGHTS, strict=True))
    return CHARACTERS[(31 - total % 31) % 31]


def normalise(raw: str | None) -> str:
    """Full-width characters folded, spaces removed, letters upper-cased."""
    return "".join(unicodedata.normalize("NFKC", raw or "").split()).upper()


def check_credit_code(raw: str | None) -> str:
    """The code, normalised, or InvalidInput saying in Chinese what is wrong with it."""
    code = normalise(raw)
    if not code:
        raise InvalidInput("请填写统一社会信用代码。")
    if len(code) != LENGTH:
        raise InvalidInput(f"统一社会信用代码应为18位，您填写了{len(code)}位。")
    wrong = sorted({char for char in code if char not in CHARACTERS})
    if wrong:
        raise InvalidInput("统一社会信用代码不能含有字符：" + "、".join(wrong)
                           + "（不使用字母I、O、Z、S、V）。")
    if check_character(code[:17]) != code[17]:
        raise InvalidInput("统一社会信用代码校验位不正确，请与营业执照核对。")
    return code
