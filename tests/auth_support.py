"""Helpers of the account tests: committed trainees, form tokens, field errors, texts received."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import date

import requests

from tests import factories
from wx_app.extensions import db
from wx_app.id_numbers import check_character
from wx_app.passwords import INITIAL_PASSWORD_HASH, initial_password

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"|name="csrf-token" content="([^"]+)"')
FIELD_ERROR_RE = re.compile(r'<p class="wx-field__error" id="f-([a-z_]+)-error" role="alert">'
                            r"([^<]*)</p>")
FORM_ERROR_RE = re.compile(r'<p class="wx-form__error" role="alert">([^<]*)</p>')
CODE_RE = re.compile(r"验证码为(\d{6})")


@dataclass(frozen=True)
class Account:
    """A committed trainee and what its owner knows: username forms and password."""

    id: int
    id_number: str
    phone: str
    password: str


def account(app, *, password: str = factories.DEFAULT_PASSWORD, roster: bool = False,
            id_number: str | None = None, **fields) -> Account:
    """A trainee committed to the database (the live server reads it on its own connection).

    `roster=True` makes an account as the roster import does: no hash, the initial password
    applies, and it must be changed at the first login.
    """
    with app.app_context():
        made = factories.trainee(password=password, id_number_=id_number, **fields)
        if roster:
            made.password_hash = INITIAL_PASSWORD_HASH
            made.must_change_password = True
            made.source = "roster"
            password = initial_password(made.id_number)
        db.session.commit()
        return Account(made.id, made.id_number, made.phone, password)


def id_number_ending_in_x(birth: date = date(1988, 3, 15), *, male: bool = False) -> str:
    """A valid resident ID number whose check character is X."""
    for serial in range(1, 500):
        number = factories.id_number(birth, male=male, serial=serial)
        if number.endswith("X"):
            return number
    raise AssertionError("no serial gives the check character X")


def permit_number(prefix: str, birth: date = date(1990, 5, 20), serial: str = "123") -> str:
    """A valid 18-character number of another kind (810000…, 830000…, 9…)."""
    first_seventeen = (prefix + f"{birth:%Y%m%d}" + serial)[:17].ljust(17, "0")
    return first_seventeen + check_character(first_seventeen)


def csrf_from(page_html: str) -> str:
    found = CSRF_RE.search(page_html)
    return found.group(1) or found.group(2)


def field_errors(page_html: str) -> dict[str, str]:
    """The message shown next to each refused field, by field name."""
    return {name: html.unescape(message) for name, message in FIELD_ERROR_RE.findall(page_html)}


def form_error(page_html: str) -> str | None:
    found = FORM_ERROR_RE.search(page_html)
    return html.unescape(found.group(1)) if found else None


def input_value(page_html: str, name: str) -> str | None:
    """The value attribute of the input `name`, unescaped; None when it has none."""
    tag = re.search(rf'<input[^>]*\bname="{name}"[^>]*>', page_html)
    if tag is None:
        return None
    value = re.search(r'\bvalue="([^"]*)"', tag.group(0))
    return html.unescape(value.group(1)) if value else None


def texts_to(sandbox_url: str, phone: str) -> list[str]:
    """Texts the sandbox's SMS inbox received for `phone`, latest first."""
    answer = requests.get(f"{sandbox_url}/sandbox/api/sms", params={"phone": phone}, timeout=5)
    answer.raise_for_status()
    return [message["text"] for message in answer.json()["messages"]]


def latest_code(sandbox_url: str, phone: str) -> str | None:
    """The code in the latest text to `phone`, if any."""
    for text in texts_to(sandbox_url, phone):
        found = CODE_RE.search(text)
        if found:
            return found.group(1)
    return None


def log_in(client, username: str, password: str, *, next_path: str = "",
           ip: str = "127.0.0.1"):
    """Fill the login form of a Flask test client and post it (not following redirects)."""
    token = csrf_from(client.get("/h5/login").text)
    return client.post("/h5/login", data={"username": username, "password": password,
                                          "next": next_path, "csrf_token": token},
                       environ_base={"REMOTE_ADDR": ip})
