"""Checking a WeChat Pay notification before anything in it is believed.

`verify_and_decrypt()` is what /pay/notify and /pay/refund-notify call first, on the raw
headers and body: the signature (with the WeChat Pay public key), the timestamp, the event
type, then the decryption of the resource with the APIv3 key. A refusal carries a stable
code that the route stores with the notification and answers with a 4xx, so that WeChat Pay
sends it again later. `check_merchant()` then checks that the resource is ours; amounts
and order numbers are the settlement's to check.

支付成功回调通知 https://pay.weixin.qq.com/doc/v3/merchant/4012791861
退款结果回调通知 https://pay.weixin.qq.com/doc/v3/merchant/4012791865
回调报文解密 https://pay.weixin.qq.com/doc/v3/merchant/4012071382
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import DomainError
from .signing import VerificationFailed, credentials, decrypt_resource, verify_signature

RESOURCE_TYPE = "encrypt-resource"


@dataclass(frozen=True)
class NotificationKind:
    #: event_type values this endpoint accepts.
    event_types: frozenset[str]
    #: resource.original_type of those events.
    original_type: str
    #: Fields every decrypted resource of this kind has.
    required_fields: tuple[str, ...]


KINDS = {
    "payment": NotificationKind(frozenset({"TRANSACTION.SUCCESS"}), "transaction",
                                ("mchid", "appid", "out_trade_no", "transaction_id",
                                 "trade_state", "amount")),
    # A refund notification's resource carries no appid.
    "refund": NotificationKind(frozenset({"REFUND.SUCCESS", "REFUND.ABNORMAL",
                                          "REFUND.CLOSED"}), "refund",
                               ("mchid", "out_trade_no", "out_refund_no", "refund_id",
                                "refund_status", "amount")),
}


class NotificationRefused(DomainError):
    """A notification we do not believe or cannot use; `code` says why.

    Codes: malformed, bad_signature, unknown_serial, stale_timestamp, bad_ciphertext,
    wrong_event, and from check_merchant merchant_mismatch, app_mismatch.
    """

    http_status = 400
    message = "通知验证失败。"

    def __init__(self, code: str, detail: str = ""):
        super().__init__(code=code)
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}" if self.detail else self.code


def verify_and_decrypt(headers: Mapping, body: bytes | str, kind: str) -> dict:
    """The notification with its resource decrypted, once it is proven WeChat Pay's.

    `kind` is "payment" or "refund". Returns {"id", "create_time", "event_type", "summary",
    "resource"}, where resource is the decrypted transaction or refund.
    """
    expected = KINDS[kind]
    creds = credentials()
    raw = body.encode() if isinstance(body, str) else body
    try:
        verify_signature(creds, headers, raw)
    except VerificationFailed as failure:
        raise NotificationRefused(failure.code, failure.detail) from None

    envelope = _envelope(raw)
    if envelope["event_type"] not in expected.event_types:
        raise NotificationRefused("wrong_event", str(envelope["event_type"]))
    resource = envelope["resource"]
    if resource.get("original_type", expected.original_type) != expected.original_type:
        raise NotificationRefused("wrong_event", f"original_type {resource['original_type']}")

    try:
        plaintext = decrypt_resource(creds.apiv3_key, resource)
    except VerificationFailed as failure:
        raise NotificationRefused(failure.code, failure.detail) from None
    try:
        decrypted = json.loads(plaintext)
    except ValueError:
        raise NotificationRefused("malformed", "resource is not JSON") from None
    if not isinstance(decrypted, dict):
        raise NotificationRefused("malformed", "resource is not a JSON object")
    missing = [name for name in expected.required_fields if name not in decrypted]
    if missing:
        raise NotificationRefused("malformed", "resource lacks " + ", ".join(missing))

    return {"id": envelope["id"], "create_time": envelope.get("create_time"),
            "event_type": envelope["event_type"], "summary": envelope.get("summary"),
            "resource": decrypted}


def _envelope(raw: bytes) -> dict:
    """The outer JSON of a notification: id, event_type, resource_type and an object resource."""
    try:
        envelope = json.loads(raw)
    except ValueError:
        raise NotificationRefused("malformed", "body is not JSON") from None
    if not isinstance(envelope, dict):
        raise NotificationRefused("malformed", "body is not a JSON object")
    if not isinstance(envelope.get("id"), str) or not isinstance(envelope.get("event_type"),
                                                                  str):
        raise NotificationRefused("malformed", "id or event_type missing")
    if envelope.get("resource_type") != RESOURCE_TYPE or not isinstance(
            envelope.get("resource"), dict):
        raise NotificationRefused("malformed", "no encrypted resource")
    return envelope


def check_merchant(resource: Mapping) -> None:
    """Refuse a decrypted resource of another merchant or another app.

    mchid must be WECHATPAY_MCHID (merchant_mismatch); appid, when the resource has one (a
    refund's has none), must be WECHAT_APPID (app_mismatch).
    """
    creds = credentials()
    if resource.get("mchid") != creds.mchid:
        raise NotificationRefused("merchant_mismatch", str(resource.get("mchid")))
    if "appid" in resource and resource["appid"] != creds.appid:
        raise NotificationRefused("app_mismatch", str(resource["appid"]))
