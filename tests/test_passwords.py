"""Passwords: the slow hash, and the initial password of roster accounts."""

from __future__ import annotations

from wx_app.passwords import (
    INITIAL_PASSWORD_HASH,
    hash_password,
    initial_password,
    uses_initial_password,
    verify_password,
)


def test_a_hash_verifies_its_password_only():
    """Does the stored hash accept the password it was made from, and nothing else?"""
    stored = hash_password("Demo@2024")

    assert verify_password(stored, "Demo@2024")
    assert not verify_password(stored, "demo@2024")
    assert not verify_password(stored, "")


def test_hashes_are_salted_and_slow():
    """Do two hashes of one password differ, and is the method scrypt?"""
    first, second = hash_password("edu@123456"), hash_password("edu@123456")

    assert first != second
    assert first.startswith("scrypt:")
    assert "edu@123456" not in first


def test_an_account_without_a_hash_never_verifies():
    """Is an empty stored hash refused rather than matched?"""
    assert not verify_password("", "")


def test_initial_password_is_edu_at_and_the_last_six_characters():
    """Is the roster password edu@ + the last six characters, with X in upper case?"""
    assert initial_password("50011219880315048X") == "edu@15048X"
    assert initial_password(" 50011219880315048x ") == "edu@15048X"
    assert initial_password("500106197911020314") == "edu@020314"


def test_a_roster_account_accepts_the_initial_password_of_its_own_id():
    """Does the initial-password marker accept edu@ + the last six of the account's ID only?"""
    id_number = "50011219880315048X"

    assert uses_initial_password(INITIAL_PASSWORD_HASH)
    assert verify_password(INITIAL_PASSWORD_HASH, "edu@15048X", id_number)
    assert not verify_password(INITIAL_PASSWORD_HASH, "edu@15048x", id_number)
    assert not verify_password(INITIAL_PASSWORD_HASH, "edu@020314", id_number)
    assert not verify_password(INITIAL_PASSWORD_HASH, "initial:edu@", id_number)


def test_the_initial_password_marker_needs_the_id_number():
    """Is a marked account refused when the caller does not say whose ID number it is?"""
    assert not verify_password(INITIAL_PASSWORD_HASH, "edu@15048X")


def test_a_real_hash_is_not_the_initial_password_marker():
    """Once the password is changed, does the initial password stop working?"""
    stored = hash_password("Changed@2024")

    assert not uses_initial_password(stored)
    assert not verify_password(stored, "edu@15048X", "50011219880315048X")
    assert verify_password(stored, "Changed@2024", "50011219880315048X")
