"""Where trainees get help: the numbers published in the centre's letter and manual.

The help page, every error page and the official account's replies show these, so they live
here once. Source: 渝人服函〔2024〕4号, 六、联系方式, and its manual, 六、咨询方式.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PhoneLine:
    """A hotline; `menu` lists the keys to press after dialling and what each is for."""

    number: str
    purpose: str
    menu: tuple[tuple[str, str], ...] = ()

    @property
    def tel_href(self) -> str:
        """The `tel:` link a phone dials: the number with its separators removed."""
        return "tel:" + self.number.replace("-", "")


@dataclass(frozen=True)
class QQGroup:
    """A QQ group where the centre answers questions about one kind of plan."""

    number: str
    purpose: str


# Key 1 is for accounts (the manual adds certificates to the letter's wording), key 2 policy.
HOTLINE = PhoneLine("400-023-9229", "咨询热线",
                    menu=(("1", "账号注册、登录、证书问题"), ("2", "政策咨询")))
# The manual's technical line; its key 2 is after-sales service (售后服务).
TECHNICAL_LINE = PhoneLine("400-618-7500", "学习技术咨询热线", menu=(("2", "售后服务"),))

PHONE_LINES = (HOTLINE, TECHNICAL_LINE)
QQ_GROUPS = (
    QQGroup("729972484", "公需科目咨询"),
    QQGroup("701846858", "专业科目咨询"),
)


def as_text() -> str:
    """The contacts as plain lines, for a WeChat text reply or a message without markup."""
    lines = []
    for line in PHONE_LINES:
        menu = "；".join(f"按{key} {purpose}" for key, purpose in line.menu)
        lines.append(f"{line.purpose}：{line.number}" + (f"（{menu}）" if menu else ""))
    for group in QQ_GROUPS:
        lines.append(f"{group.purpose}QQ群：{group.number}")
    return "\n".join(lines)
