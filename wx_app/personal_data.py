"""ID and phone numbers at rest: AES-GCM encryption, a keyed hash for lookups, masking.

The clear value lives only in memory. The database holds three columns per value:
`*_enc` (nonce + ciphertext), `*_hash` (HMAC-SHA256, for exact lookups and unique keys)
and `*_masked` (what pages and reports show).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

NONCE_BYTES = 12
EXTENSION = "wx_personal_data"

ID_NUMBER_RE = re.compile(r"(?<![0-9A-Za-z])(\d{4})\d{10}(\d{3}[0-9Xx])(?![0-9A-Za-z])")
PHONE_RE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")


def derive_keys(data_key_b64: str) -> dict[str, bytes]:
    """Derive the encryption and hashing keys from DATA_KEY (two keys, one secret)."""
    master = base64.b64decode(data_key_b64)
    return {
        purpose: HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                      info=f"wx_app personal data {purpose}".encode()).derive(master)
        for purpose in ("encrypt", "lookup")
    }


def init_app(app) -> None:
    app.extensions[EXTENSION] = derive_keys(app.config["DATA_KEY"])


def _key(purpose: str) -> bytes:
    return current_app.extensions[EXTENSION][purpose]


def encrypt(clear: str) -> bytes:
    """Nonce followed by AES-256-GCM ciphertext and tag."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(_key("encrypt")).encrypt(nonce, clear.encode(), None)


def decrypt(stored: bytes) -> str:
    return AESGCM(_key("encrypt")).decrypt(stored[:NONCE_BYTES], stored[NONCE_BYTES:],
                                           None).decode()


def lookup_hash(clear: str) -> str:
    """Keyed hash of a normalised value: equal values give equal hashes, nothing else leaks."""
    return hmac.new(_key("lookup"), clear.encode(), hashlib.sha256).hexdigest()


def mask_id_number(id_number: str) -> str:
    """`500101199001011234` → `5001**********1234`."""
    if len(id_number) <= 8:
        return "*" * len(id_number)
    return id_number[:4] + "*" * (len(id_number) - 8) + id_number[-4:]


def mask_phone(phone: str) -> str:
    """`13812345678` → `138****5678`."""
    if len(phone) != 11:
        return "*" * len(phone)
    return phone[:3] + "****" + phone[-4:]


def mask_text(text: str) -> str:
    """Mask every ID-number-like and phone-number-like run in free text."""
    text = ID_NUMBER_RE.sub(lambda m: m.group(1) + "*" * 10 + m.group(2), text)
    return PHONE_RE.sub(lambda m: m.group(1) + "****" + m.group(2), text)


class MaskingFilter(logging.Filter):
    """Rewrite each record so that no ID or phone number reaches a log line in clear."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        return True
