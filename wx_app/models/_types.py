"""Column types and table options shared by every model."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

#: Every MySQL table is InnoDB in utf8mb4, so that names and WeChat nicknames with emoji
#: round-trip; the PC site reads the same tables.
MYSQL_TABLE = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}

#: Timestamps are naive UTC with microseconds (MySQL's DATETIME(6)).
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

#: AES-GCM ciphertexts: nonce (12) + text + tag (16).
Ciphertext = sa.LargeBinary().with_variant(mysql.VARBINARY(255), "mysql", "mariadb")

#: HMAC-SHA256 hex digests used as lookup keys.
LookupHash = sa.CHAR(64)


def compare_type(context, inspected_column, metadata_column, inspected_type, metadata_type):
    """Alembic's type comparison, plus the fractional-second precision of MySQL DATETIME.

    Alembic compares only the type arguments both sides state, so a DATETIME that lost its
    `(6)` would pass unnoticed and timestamps would silently drop their microseconds.
    Returning None leaves every other type to Alembic's own comparison.
    """
    dialect = context.dialect
    if dialect.name not in ("mysql", "mariadb"):
        return None
    expected = metadata_type.dialect_impl(dialect)
    if isinstance(expected, sa.DateTime) and isinstance(inspected_type, sa.DateTime):
        if getattr(inspected_type, "fsp", None) != getattr(expected, "fsp", None):
            return True
    return None


def utcnow() -> datetime:
    """Naive UTC now, the form every timestamp column stores."""
    return datetime.now(UTC).replace(tzinfo=None)


def table_args(*constraints) -> tuple:
    """`__table_args__` with the given constraints and the MySQL table options."""
    return (*constraints, MYSQL_TABLE)


def one_of(column: str, values: tuple[str, ...], name: str) -> sa.CheckConstraint:
    """A named CHECK that `column` holds one of `values` (NULL passes, as in SQL)."""
    quoted = ", ".join(f"'{value}'" for value in values)
    return sa.CheckConstraint(f"{column} IN ({quoted})", name=name)
