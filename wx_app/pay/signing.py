"""Every signature and cipher of WeChat Pay API v3 in public-key mode (微信支付公钥模式).

- A request carries `Authorization: WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",
  signature="…",timestamp="…",serial_no="…"`, the signature being SHA256-with-RSA by the
  merchant API private key over `METHOD\\nPATH?QUERY\\ntimestamp\\nnonce\\nbody\\n`.
  https://pay.weixin.qq.com/doc/v3/merchant/4012365336
- An answer or a notification carries Wechatpay-Timestamp, Wechatpay-Nonce,
  Wechatpay-Signature and Wechatpay-Serial; the signature is by WeChat Pay's private key over
  `timestamp\\nnonce\\nbody\\n`, checked with the WeChat Pay public key, whose id
  (PUB_KEY_ID_…) must be the Wechatpay-Serial. A timestamp more than five minutes away from
  our clock is refused, so that a recorded message cannot be replayed later.
  https://pay.weixin.qq.com/doc/v3/merchant/4013053249
  https://pay.weixin.qq.com/doc/v3/merchant/4012153196
- A notification's `resource` is AEAD_AES_256_GCM under the APIv3 key (32 bytes), with its
  `nonce` (12 bytes) and `associated_data`; the ciphertext is base64 of text then 16-byte tag.
  https://pay.weixin.qq.com/doc/v3/merchant/4012071382
- The JSAPI page gets appId, timeStamp, nonceStr, package=`prepay_id=…`, signType=RSA and
  paySign, SHA256-with-RSA by the merchant key over `appId\\ntimeStamp\\nnonceStr\\npackage\\n`.
  https://pay.weixin.qq.com/doc/v3/merchant/4012791857
  https://pay.weixin.qq.com/doc/v3/merchant/4012365339
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app

EXTENSION = "wx_pay_credentials"

#: The only signature scheme of API v3: the Authorization schema and Wechatpay-Signature-Type.
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
#: Seconds an answer's or notification's timestamp may differ from our clock.
TIMESTAMP_TOLERANCE = 300

HEADER_TIMESTAMP = "Wechatpay-Timestamp"
HEADER_NONCE = "Wechatpay-Nonce"
HEADER_SIGNATURE = "Wechatpay-Signature"
HEADER_SERIAL = "Wechatpay-Serial"
HEADER_SIGNATURE_TYPE = "Wechatpay-Signature-Type"

#: The only cipher of notification resources.
RESOURCE_ALGORITHM = "AEAD_AES_256_GCM"
#: WeChat Pay writes times in RFC 3339 with the China offset (2018-06-08T10:34:56+08:00).
CHINA_TIME = timezone(timedelta(hours=8))


class VerificationFailed(Exception):
    """A signed or encrypted message from WeChat Pay that we must not trust.

    `code` is one of malformed, unknown_serial, stale_timestamp, bad_signature, bad_ciphertext.
    """

    def __init__(self, code: str, detail: str = ""):
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Credentials:
    """What the merchant holds: its ids, its API private key, the APIv3 key, WeChat Pay's key."""

    mchid: str
    appid: str
    merchant_serial_no: str
    merchant_private_key: rsa.RSAPrivateKey
    apiv3_key: bytes
    public_key_id: str
    public_key: rsa.RSAPublicKey


def load_credentials(settings: Mapping) -> Credentials:
    """Read the merchant's key material from the files the settings name."""
    private_key = serialization.load_pem_private_key(
        Path(str(settings["WECHATPAY_PRIVATE_KEY_PATH"])).read_bytes(), password=None)
    public_key = serialization.load_pem_public_key(
        Path(str(settings["WECHATPAY_PUBLIC_KEY_PATH"])).read_bytes())
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise ValueError("WECHATPAY_PRIVATE_KEY_PATH does not hold an RSA private key")
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise ValueError("WECHATPAY_PUBLIC_KEY_PATH does not hold an RSA public key")
    return Credentials(
        mchid=str(settings["WECHATPAY_MCHID"]),
        appid=str(settings["WECHAT_APPID"]),
        merchant_serial_no=str(settings["WECHATPAY_CERT_SERIAL_NO"]),
        merchant_private_key=private_key,
        apiv3_key=str(settings["WECHATPAY_APIV3_KEY"]).encode(),
        public_key_id=str(settings["WECHATPAY_PUBLIC_KEY_ID"]),
        public_key=public_key)


def credentials() -> Credentials:
    """The app's credentials, read from disk once per app."""
    app = current_app._get_current_object()
    if EXTENSION not in app.extensions:
        app.extensions[EXTENSION] = load_credentials(app.config)
    return app.extensions[EXTENSION]


def new_nonce() -> str:
    """A random nonce string: 32 characters, as WeChat Pay's examples use."""
    return secrets.token_hex(16).upper()


def rsa_sign(private_key: rsa.RSAPrivateKey, message: bytes) -> str:
    """Base64 of the SHA256-with-RSA (PKCS#1 v1.5) signature of `message`."""
    return base64.b64encode(private_key.sign(message, padding.PKCS1v15(),
                                             hashes.SHA256())).decode()


def _as_bytes(body: str | bytes | None) -> bytes:
    if body is None:
        return b""
    return body.encode() if isinstance(body, str) else body


# --- requests ------------------------------------------------------------------------------

def request_message(method: str, url_path: str, timestamp: str, nonce: str,
                    body: str | bytes | None) -> bytes:
    """What the merchant signs: method, path with query, timestamp, nonce, body; each + \\n.

    `url_path` is the URL as sent without scheme and host; a GET signs an empty body.
    https://pay.weixin.qq.com/doc/v3/merchant/4012365336
    """
    head = f"{method.upper()}\n{url_path}\n{timestamp}\n{nonce}\n".encode()
    return head + _as_bytes(body) + b"\n"


def authorization(creds: Credentials, method: str, url_path: str, body: str | bytes | None,
                  *, timestamp: str | None = None, nonce: str | None = None) -> str:
    """The Authorization header of one request, signed with the merchant API private key.

    https://pay.weixin.qq.com/doc/v3/merchant/4012365336
    """
    timestamp = timestamp or str(int(time.time()))
    nonce = nonce or new_nonce()
    signature = rsa_sign(creds.merchant_private_key,
                         request_message(method, url_path, timestamp, nonce, body))
    return (f'{SIGNATURE_TYPE} mchid="{creds.mchid}",nonce_str="{nonce}",'
            f'signature="{signature}",timestamp="{timestamp}",'
            f'serial_no="{creds.merchant_serial_no}"')


# --- answers and notifications ---------------------------------------------------------------

def response_message(timestamp: str, nonce: str, body: str | bytes | None) -> bytes:
    """What WeChat Pay signs on an answer or a notification: timestamp, nonce, body; each + \\n.

    https://pay.weixin.qq.com/doc/v3/merchant/4013053249
    """
    return f"{timestamp}\n{nonce}\n".encode() + _as_bytes(body) + b"\n"


def _header(headers: Mapping, name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # a plain dict: compare names without case, as HTTP does
        lowered = name.lower()
        value = next((v for k, v in headers.items() if str(k).lower() == lowered), None)
    return None if value is None else str(value)


def verify_signature(creds: Credentials, headers: Mapping, body: str | bytes | None,
                     *, now: float | None = None) -> None:
    """Check the Wechatpay-* headers of an answer or notification; raise VerificationFailed.

    The serial must name our WeChat Pay public key (unknown_serial), the timestamp be within
    five minutes (stale_timestamp), the signature verify (bad_signature); a missing header
    is malformed.
    https://pay.weixin.qq.com/doc/v3/merchant/4013053249
    """
    values = {name: _header(headers, name)
              for name in (HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE, HEADER_SERIAL)}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise VerificationFailed("malformed", "missing " + ", ".join(missing))
    signature_type = _header(headers, HEADER_SIGNATURE_TYPE)
    if signature_type and signature_type != SIGNATURE_TYPE:
        raise VerificationFailed("bad_signature", f"signature type {signature_type}")

    if values[HEADER_SERIAL] != creds.public_key_id:
        raise VerificationFailed("unknown_serial", values[HEADER_SERIAL])

    timestamp = values[HEADER_TIMESTAMP]
    if not timestamp.isdigit():
        raise VerificationFailed("malformed", "timestamp is not a number")
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > TIMESTAMP_TOLERANCE:
        raise VerificationFailed("stale_timestamp", f"{int(now) - int(timestamp)} s off")

    message = response_message(timestamp, values[HEADER_NONCE], body)
    try:
        # Probes from WeChat Pay ("WECHATPAY/SIGNTEST/…") are not base64 and fail here too.
        signature = base64.b64decode(values[HEADER_SIGNATURE], validate=True)
        creds.public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError, binascii.Error):
        raise VerificationFailed("bad_signature") from None


def decrypt_resource(apiv3_key: bytes, resource: Mapping) -> bytes:
    """The plaintext of a notification resource (AEAD_AES_256_GCM under the APIv3 key).

    https://pay.weixin.qq.com/doc/v3/merchant/4012071382
    """
    if resource.get("algorithm") != RESOURCE_ALGORITHM:
        raise VerificationFailed("malformed", f"algorithm {resource.get('algorithm')!r}")
    nonce, ciphertext = resource.get("nonce"), resource.get("ciphertext")
    associated_data = resource.get("associated_data") or ""
    if not isinstance(nonce, str) or not isinstance(ciphertext, str) or not isinstance(
            associated_data, str):
        raise VerificationFailed("malformed", "resource lacks nonce or ciphertext")
    try:
        return AESGCM(apiv3_key).decrypt(nonce.encode(), base64.b64decode(ciphertext),
                                         associated_data.encode())
    except (InvalidTag, ValueError, binascii.Error):
        raise VerificationFailed("bad_ciphertext") from None


# --- the JSAPI page --------------------------------------------------------------------------

def jsapi_pay_params(creds: Credentials, prepay_id: str, *, timestamp: str | None = None,
                     nonce: str | None = None) -> dict:
    """The parameters of WeixinJSBridge getBrandWCPayRequest for one prepay_id, with paySign.

    https://pay.weixin.qq.com/doc/v3/merchant/4012791857
    """
    params = {"appId": creds.appid, "timeStamp": timestamp or str(int(time.time())),
              "nonceStr": nonce or new_nonce(), "package": f"prepay_id={prepay_id}",
              "signType": "RSA"}
    message = "".join(f"{params[name]}\n" for name in ("appId", "timeStamp", "nonceStr",
                                                         "package"))
    params["paySign"] = rsa_sign(creds.merchant_private_key, message.encode())
    return params


def rfc3339(moment: datetime) -> str:
    """A time as WeChat Pay writes it (2018-06-08T10:34:56+08:00); naive means UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(CHINA_TIME).isoformat(timespec="seconds")
