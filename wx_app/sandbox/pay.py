"""The api.mch.weixin.qq.com side (WeChat Pay v3, public-key mode): keys, signatures, cipher.

The sandbox plays WeChat Pay: it checks the merchant's request signatures with the merchant
public key, signs its answers and notifications with the WeChat Pay private key (which the
app checks with its configured WECHATPAY_PUBLIC_KEY_PATH), and encrypts notification
resources with the APIv3 key. This module is that foundation and WeChat Pay's error codes;
the endpoints are in `pay_api`, what the sandbox remembers in `pay_ledger`, the notifications
in `pay_notify`, the payment page and admin calls in `pay_admin`.

Signatures https://pay.weixin.qq.com/doc/v3/merchant/4012365336
Public key https://pay.weixin.qq.com/doc/v3/merchant/4013053249
Decryption https://pay.weixin.qq.com/doc/v3/merchant/4012071382
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Blueprint, Response, current_app

from .keys import ensure_key_material, load_private_key, load_public_key

EXTENSION = "wechat_sandbox_pay"
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
RESOURCE_ALGORITHM = "AEAD_AES_256_GCM"
#: Seconds a request's timestamp may differ from the sandbox's wall clock.
TIMESTAMP_TOLERANCE = 300
#: WeChat Pay writes every time in RFC 3339 with the China offset.
CHINA_TIME = timezone(timedelta(hours=8))
#: A public key id the app does not hold, for answers and notifications signed "by another key".
OTHER_PUBLIC_KEY_ID = "PUB_KEY_ID_0119999999992026010100000000000099"


@dataclass(frozen=True)
class PayKeys:
    mchid: str
    apiv3_key: str
    #: Sent as Wechatpay-Serial: the id of the WeChat Pay public key the app holds.
    public_key_id: str
    #: The serial the app names in its Authorization header.
    merchant_serial_no: str
    wechatpay_private_key: rsa.RSAPrivateKey
    merchant_public_key: rsa.RSAPublicKey


def load_pay_keys(settings: dict) -> PayKeys:
    """The sandbox's side of the key material, generated first if the instance has none."""
    material = ensure_key_material(settings["INSTANCE_PATH"])
    return PayKeys(
        mchid=str(settings["WECHATPAY_MCHID"]),
        apiv3_key=str(settings["WECHATPAY_APIV3_KEY"]),
        public_key_id=str(settings["WECHATPAY_PUBLIC_KEY_ID"]),
        merchant_serial_no=str(settings["WECHATPAY_CERT_SERIAL_NO"]),
        wechatpay_private_key=load_private_key(material.wechatpay.private_path),
        merchant_public_key=load_public_key(material.merchant.public_path))


def signed_message(timestamp: str, nonce: str, body: str) -> bytes:
    """The string WeChat Pay signs on an answer or notification: three lines, each ending \\n.

    https://pay.weixin.qq.com/doc/v3/merchant/4013053249
    """
    return f"{timestamp}\n{nonce}\n{body}\n".encode()


def sign(keys: PayKeys, message: bytes) -> str:
    """Base64 SHA256-with-RSA signature by the WeChat Pay private key (Wechatpay-Signature)."""
    signature = keys.wechatpay_private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode()


def merchant_message(method: str, url: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """What the merchant signs on a request: method, URL path and query, timestamp, nonce, body.

    https://pay.weixin.qq.com/doc/v3/merchant/4012365336
    """
    return f"{method}\n{url}\n{timestamp}\n{nonce}\n".encode() + body + b"\n"


def merchant_signature_valid(keys: PayKeys, message: bytes, signature: str) -> bool:
    """Whether `signature` (base64) is the merchant's SHA256-with-RSA signature of `message`."""
    try:
        keys.merchant_public_key.verify(base64.b64decode(signature), message,
                                        padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def encrypt_resource(keys: PayKeys, plaintext: dict, associated_data: str) -> dict:
    """A notification `resource`: the JSON of `plaintext` under AEAD_AES_256_GCM.

    The nonce is 12 random characters; the ciphertext is base64 of text and 16-byte tag.
    https://pay.weixin.qq.com/doc/v3/merchant/4012071382
    """
    nonce = secrets.token_urlsafe(9)[:12]
    data = json.dumps(plaintext, ensure_ascii=False, separators=(",", ":")).encode()
    ciphertext = AESGCM(keys.apiv3_key.encode()).encrypt(nonce.encode(), data,
                                                        associated_data.encode())
    return {"algorithm": RESOURCE_ALGORITHM, "ciphertext": base64.b64encode(ciphertext).decode(),
            "associated_data": associated_data, "nonce": nonce}


def china_time(epoch_seconds: float) -> str:
    """An instant as WeChat Pay writes it: 2018-06-08T10:34:56+08:00."""
    return datetime.fromtimestamp(epoch_seconds, UTC).astimezone(CHINA_TIME).isoformat(
        timespec="seconds")


# --- WeChat Pay's error answers ------------------------------------------------------------

@dataclass(frozen=True)
class PayErrorCode:
    status: int
    code: str
    message: str


# https://pay.weixin.qq.com/doc/v3/merchant/4012791856 (错误码) and the pages of each endpoint.
PARAM_ERROR = PayErrorCode(400, "PARAM_ERROR", "参数错误")
INVALID_REQUEST = PayErrorCode(400, "INVALID_REQUEST", "无效请求")
APPID_MCHID_NOT_MATCH = PayErrorCode(400, "APPID_MCHID_NOT_MATCH", "AppID和mch_id不匹配")
MCH_NOT_EXISTS = PayErrorCode(400, "MCH_NOT_EXISTS", "商户号不存在")
ORDER_CLOSED = PayErrorCode(400, "ORDER_CLOSED", "订单已关闭")
SIGN_ERROR = PayErrorCode(401, "SIGN_ERROR", "签名错误")
ORDERPAID = PayErrorCode(403, "ORDERPAID", "该订单已支付")
OUT_TRADE_NO_USED = PayErrorCode(403, "OUT_TRADE_NO_USED", "商户订单号重复")
ORDER_NOT_EXIST = PayErrorCode(404, "ORDER_NOT_EXIST", "订单不存在")
RESOURCE_NOT_EXISTS = PayErrorCode(404, "RESOURCE_NOT_EXISTS", "资源不存在")


class PayApiError(Exception):
    """A refusal as WeChat Pay answers it: an HTTP status and {"code", "message", "detail"}."""

    def __init__(self, error: PayErrorCode, message: str = "", field: str | None = None):
        super().__init__(f"{error.status} {error.code}")
        self.error = error
        self.message = message or error.message
        self.field = field

    def to_response(self) -> Response:
        """The JSON answer; a PARAM_ERROR names the field as a JSON pointer in `detail`."""
        body: dict = {"code": self.error.code, "message": self.message}
        if self.field:
            body["detail"] = {"field": self.field, "location": "body", "issue": self.message}
        return pay_json(body, self.error.status)


def pay_json(body: dict | None, status: int = 200) -> Response:
    """An answer with UTF-8 JSON (or no body), as api.mch.weixin.qq.com sends it."""
    if body is None:
        return Response(b"", status=status)
    return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")), status=status,
                    content_type="application/json; charset=utf-8")


def current_keys() -> PayKeys:
    """The key material of the sandbox serving this request."""
    return current_app.extensions[EXTENSION]


def blueprints() -> tuple[Blueprint, ...]:
    """The WeChat Pay endpoints, and the sandbox's payment page and admin calls."""
    from . import pay_admin, pay_api  # both build on this module

    return pay_api.bp, pay_admin.bp
