"""Personal data: ID and phone numbers encrypted at rest, found by keyed hash, masked everywhere."""

from __future__ import annotations

import hashlib
import io
import logging
from datetime import date

import pytest
import sqlalchemy as sa
from cryptography.exceptions import InvalidTag

from wx_app.extensions import db
from wx_app.models import Organisation, Trainee
from wx_app.personal_data import (
    decrypt,
    encrypt,
    lookup_hash,
    mask_id_number,
    mask_phone,
    mask_text,
)

ID_NUMBER = "50010119900101123X"
PHONE = "13812345678"
MASKED_ID = "5001**********123X"
MASKED_PHONE = "138****5678"


def a_trainee(**overrides) -> Trainee:
    trainee = Trainee(name="张三", gender="M", birth_date=date(1990, 1, 1),
                      password_hash="scrypt:…", **overrides)
    trainee.id_number = ID_NUMBER
    trainee.phone = PHONE
    db.session.add(trainee)
    db.session.commit()
    return trainee


def raw_row(table: str, row_id: int) -> dict:
    """The row as the database holds it, read past the models."""
    statement = sa.select(sa.text("*")).select_from(sa.table(table)).where(
        sa.column("id") == row_id)
    with db.engine.connect() as conn:
        return dict(conn.execute(statement).mappings().one())


def as_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode()


def test_the_database_never_holds_a_clear_id_or_phone_number(ctx):
    """Does any column of the stored trainee or organisation contain the clear numbers?"""
    organisation = Organisation(name="重庆市渝中区人民医院", district_id=3,
                                contact_name="李四", contact_phone=PHONE)
    db.session.add(organisation)
    db.session.commit()
    trainee = a_trainee(organisation_id=organisation.id)

    trainee_row = raw_row("trainees", trainee.id)
    organisation_row = raw_row("organisations", organisation.id)

    for row in (trainee_row, organisation_row):
        for column, value in row.items():
            assert ID_NUMBER.encode() not in as_bytes(value), column
            assert PHONE.encode() not in as_bytes(value), column
    assert trainee_row["id_number_masked"] == MASKED_ID
    assert trainee_row["phone_masked"] == MASKED_PHONE
    assert organisation_row["contact_phone_masked"] == MASKED_PHONE


def test_a_trainee_is_found_by_the_hash_of_the_normalised_id_number(ctx):
    """Is a trainee found by the keyed hash of the number as typed at login, lower-case x?"""
    trainee = a_trainee()
    typed = " 50010119900101123x "

    found = db.session.scalars(sa.select(Trainee).where(
        Trainee.id_number_hash == lookup_hash(typed.strip().upper()))).one()
    by_phone = db.session.scalars(sa.select(Trainee).where(
        Trainee.phone_hash == lookup_hash(PHONE))).one()

    assert found.id == by_phone.id == trainee.id
    assert found.id_number == ID_NUMBER
    assert found.phone == PHONE


def test_two_encryptions_differ_but_their_hashes_match(ctx):
    """Does each encryption use a fresh nonce, while the lookup hash stays the same?"""
    first, second = encrypt(ID_NUMBER), encrypt(ID_NUMBER)

    assert first != second
    assert first[:12] != second[:12]
    assert decrypt(first) == decrypt(second) == ID_NUMBER
    assert lookup_hash(ID_NUMBER) == lookup_hash(ID_NUMBER)
    # Keyed: not the plain SHA-256 that anyone could compute from a guessed number.
    assert lookup_hash(ID_NUMBER) != hashlib.sha256(ID_NUMBER.encode()).hexdigest()


@pytest.mark.parametrize("position", [0, 12, -1], ids=["nonce", "ciphertext", "tag"])
def test_a_tampered_ciphertext_fails_to_decrypt(ctx, position):
    """Is a changed byte anywhere in nonce, ciphertext or tag detected instead of decrypted?"""
    stored = bytearray(encrypt(ID_NUMBER))
    stored[position] ^= 0x01

    with pytest.raises(InvalidTag):
        decrypt(bytes(stored))


def test_a_tampered_row_fails_to_decrypt(ctx):
    """Does a ciphertext changed in the database itself fail to decrypt when read back?"""
    trainee = a_trainee()
    stored = bytearray(raw_row("trainees", trainee.id)["id_number_enc"])
    stored[20] ^= 0xFF
    db.session.execute(sa.text("UPDATE trainees SET id_number_enc = :value WHERE id = :id"),
                       {"value": bytes(stored), "id": trainee.id})
    db.session.commit()

    reloaded = db.session.get(Trainee, trainee.id)
    with pytest.raises(InvalidTag):
        reloaded.id_number  # noqa: B018  (reading the property decrypts)


def test_masks_keep_only_the_ends_of_a_number():
    """Do the masks show 5001**********123X and 138****5678?"""
    assert mask_id_number(ID_NUMBER) == MASKED_ID
    assert mask_id_number("500101199001011234") == "5001**********1234"
    assert mask_phone(PHONE) == MASKED_PHONE
    assert mask_text(f"登录失败：{ID_NUMBER}，手机{PHONE}") == (
        f"登录失败：{MASKED_ID}，手机{MASKED_PHONE}")


def test_templates_mask_id_and_phone_numbers(ctx, app):
    """Do the template filters mask_id and mask_phone render only the masked forms?"""
    template = app.jinja_env.from_string(
        "<dd>{{ id_number|mask_id }}</dd><dd>{{ phone|mask_phone }}</dd>")

    html = template.render(id_number=ID_NUMBER, phone=PHONE)

    assert html == f"<dd>{MASKED_ID}</dd><dd>{MASKED_PHONE}</dd>"


def test_log_lines_show_only_masked_numbers(app):
    """Through the app's log handler, do a message and a traceback hide the clear numbers?"""
    handler = next(handler for handler in logging.getLogger().handlers
                   if getattr(handler, "_wx_app", False))
    output = io.StringIO()
    previous = handler.setStream(output)
    try:
        try:
            raise ValueError(f"no trainee with ID {ID_NUMBER}")
        except ValueError:
            logging.getLogger("wx_app.accounts").exception(
                "login failed for %s (phone %s)", ID_NUMBER, PHONE)
    finally:
        handler.setStream(previous)
    line = output.getvalue()

    assert f"login failed for {MASKED_ID} (phone {MASKED_PHONE})" in line
    assert f"ValueError: no trainee with ID {MASKED_ID}" in line
    assert ID_NUMBER not in line
    assert PHONE not in line
