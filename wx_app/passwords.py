"""Passwords: a slow salted hash (scrypt) and the initial password of roster accounts."""

from __future__ import annotations

from werkzeug.security import check_password_hash, generate_password_hash

from .id_numbers import normalise

#: scrypt with werkzeug's parameters (N=2^15, r=8, p=1): about a tenth of a second per
#: check, which makes guessing from a stolen table expensive and costs a login nothing.
HASH_METHOD = "scrypt"
INITIAL_PASSWORD_PREFIX = "edu@"


def hash_password(password: str) -> str:
    """A salted scrypt hash of `password`, in werkzeug's `method$salt$hash` form."""
    return generate_password_hash(password, method=HASH_METHOD)


def verify_password(password_hash: str, password: str) -> bool:
    """True when `password` matches the stored hash; compares in constant time."""
    if not password_hash:
        return False
    return check_password_hash(password_hash, password)


def initial_password(id_number: str) -> str:
    """The roster password: `edu@` + the last six characters of the ID number (X upper)."""
    return INITIAL_PASSWORD_PREFIX + normalise(id_number)[-6:]
