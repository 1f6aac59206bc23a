"""Passwords: a slow salted hash (scrypt) and the initial password of roster accounts.

Accounts created from an employer's roster (附件2) store `INITIAL_PASSWORD_HASH`, a marker,
instead of a hash. It means "the initial password applies": `edu@` + the last six characters
of the account's own ID number, as the letter announces it to every trainee. Anyone who knows
the ID number can derive that password, so a salted hash of it would protect nothing, while
computing 10,000 of them (a tenth of a second of scrypt each) would make a roster import take
a quarter of an hour. Such accounts carry `must_change_password`; the first change of password
replaces the marker with a real hash.
"""

from __future__ import annotations

import hmac

from werkzeug.security import check_password_hash, generate_password_hash

from .id_numbers import normalise

#: scrypt with werkzeug's parameters (N=2^15, r=8, p=1): about a tenth of a second per
#: check, which makes guessing from a stolen table expensive and costs a login nothing.
HASH_METHOD = "scrypt"
INITIAL_PASSWORD_PREFIX = "edu@"
#: Stored in `Trainee.password_hash` for "the initial password of this ID number applies".
#: It contains no `$`, so it can never be mistaken for (or collide with) a werkzeug hash.
INITIAL_PASSWORD_HASH = "initial:edu@"


def hash_password(password: str) -> str:
    """A salted scrypt hash of `password`, in werkzeug's `method$salt$hash` form."""
    return generate_password_hash(password, method=HASH_METHOD)


def verify_password(password_hash: str, password: str, id_number: str | None = None) -> bool:
    """True when `password` matches the stored hash; compares in constant time.

    For an account that still has its initial password (`INITIAL_PASSWORD_HASH`), the
    password must be `edu@` + the last six characters of `id_number`, the account's own ID
    number; without `id_number` such an account never verifies.
    """
    if not password_hash:
        return False
    if uses_initial_password(password_hash):
        if not id_number:
            return False
        return hmac.compare_digest(password.encode(), initial_password(id_number).encode())
    return check_password_hash(password_hash, password)


def uses_initial_password(password_hash: str) -> bool:
    """True for a roster account whose password is still the initial one (no hash stored)."""
    return password_hash == INITIAL_PASSWORD_HASH


def initial_password(id_number: str) -> str:
    """The roster password: `edu@` + the last six characters of the ID number (X upper)."""
    return INITIAL_PASSWORD_PREFIX + normalise(id_number)[-6:]
