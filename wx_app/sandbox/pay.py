"""The api.mch.weixin.qq.com side (WeChat Pay v3, public-key mode): keys and signatures.

The sandbox plays WeChat Pay: it checks the merchant's request signatures with the merchant
public key and signs its answers and notifications with the WeChat Pay private key, which
the app checks with its configured WECHATPAY_PUBLIC_KEY_PATH. The payment endpoints (JSAPI
prepay, query, close, refund, notifications) belong in this module; none is served yet.

https://pay.weixin.qq.com/docs/merchant/development/interface-rules/build-verify-sign-src.html
https://pay.weixin.qq.com/docs/partner/products/update-pub-key/wxp-pub-key-guide.html
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from flask import current_app

from .keys import ensure_key_material, load_private_key, load_public_key

EXTENSION = "wechat_sandbox_pay"
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"


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

    https://pay.weixin.qq.com/docs/merchant/development/interface-rules/build-verify-sign-src.html
    """
    return f"{timestamp}\n{nonce}\n{body}\n".encode()


def sign(keys: PayKeys, message: bytes) -> str:
    """Base64 SHA256-with-RSA signature by the WeChat Pay private key (Wechatpay-Signature)."""
    signature = keys.wechatpay_private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode()


def merchant_signature_valid(keys: PayKeys, message: bytes, signature: str) -> bool:
    """Whether `signature` (base64) is the merchant's SHA256-with-RSA signature of `message`."""
    try:
        keys.merchant_public_key.verify(base64.b64decode(signature), message,
                                        padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def current_keys() -> PayKeys:
    """The key material of the sandbox serving this request."""
    return current_app.extensions[EXTENSION]
