"""WeChat Pay's notifications as the sandbox sends them: encrypted, signed, retried, recorded.

A notification is a POST of UTF-8 JSON to the order's (or refund's) notify_url:

    {"id": "<uuid>", "create_time": "2024-06-08T10:34:56+08:00",
     "event_type": "TRANSACTION.SUCCESS", "resource_type": "encrypt-resource",
     "summary": "支付成功",
     "resource": {"original_type": "transaction", "algorithm": "AEAD_AES_256_GCM",
                  "ciphertext": "…", "associated_data": "transaction", "nonce": "…"}}

with Wechatpay-Timestamp, Wechatpay-Nonce, Wechatpay-Signature (the WeChat Pay private key
over `timestamp\\nnonce\\nbody\\n`), Wechatpay-Serial (the public key id) and
Wechatpay-Signature-Type. An answer other than 2xx within the timeout is a failure, and the
same notification (same id, fresh signature) is sent again after each retry delay.

支付成功回调通知 https://pay.weixin.qq.com/doc/v3/merchant/4012791861
退款结果回调通知 https://pay.weixin.qq.com/doc/v3/merchant/4012791865
回调通知注意事项 https://pay.weixin.qq.com/doc/v3/merchant/4012075420

Sending happens in threads, which have no app context: `Sender` carries what they need.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import threading
import time
import uuid
from dataclasses import dataclass

import requests

from .pay import (
    OTHER_PUBLIC_KEY_ID,
    SIGNATURE_TYPE,
    PayKeys,
    china_time,
    encrypt_resource,
    sign,
)
from .pay import signed_message as signature_string
from .pay_ledger import Attempt, Delivery, PayLedger
from .state import SandboxState

log = logging.getLogger(__name__)

TAMPERS = ("none", "signature", "serial", "timestamp", "ciphertext")
#: How much of the app's answer is kept in the record.
ANSWER_KEPT = 500


@dataclass(frozen=True)
class Sender:
    """What sending needs, captured in the request that starts it."""

    keys: PayKeys
    ledger: PayLedger
    clock: SandboxState


@dataclass(frozen=True)
class Event:
    """A notification to build: its kind, event type, summary and decrypted resource."""

    kind: str  # payment or refund
    event_type: str
    summary: str
    original_type: str
    resource: dict


def payment_event(resource: dict) -> Event:
    """TRANSACTION.SUCCESS with the paid order as its resource."""
    return Event("payment", "TRANSACTION.SUCCESS", "支付成功", "transaction", resource)


REFUND_SUMMARIES = {"SUCCESS": "退款成功", "ABNORMAL": "退款异常", "CLOSED": "退款关闭"}


def refund_event(resource: dict) -> Event:
    """REFUND.SUCCESS (or ABNORMAL, CLOSED) with the refund as its resource."""
    status = resource["refund_status"]
    return Event("refund", f"REFUND.{status}", REFUND_SUMMARIES[status], "refund", resource)


def build_body(sender: Sender, event: Event, tamper: str = "none") -> tuple[str, str]:
    """A fresh notification id and the JSON body; `ciphertext` spoils the resource's tag."""
    resource = encrypt_resource(sender.keys, event.resource, event.original_type)
    resource["original_type"] = event.original_type
    if tamper == "ciphertext":
        sealed = bytearray(base64.b64decode(resource["ciphertext"]))
        sealed[-1] ^= 0x01
        resource["ciphertext"] = base64.b64encode(bytes(sealed)).decode()
    notification_id = str(uuid.uuid4())
    body = {"id": notification_id, "create_time": china_time(sender.clock.now()),
            "resource_type": "encrypt-resource", "event_type": event.event_type,
            "summary": event.summary, "resource": resource}
    return notification_id, json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def signed_headers(keys: PayKeys, body: str, tamper: str = "none") -> dict:
    """The Wechatpay-* headers of one sending; a tamper spoils one of them on purpose."""
    timestamp = int(time.time()) - (600 if tamper == "timestamp" else 0)
    nonce = secrets.token_hex(16).upper()
    signature = sign(keys, signature_string(str(timestamp), nonce, body))
    if tamper == "signature":
        signature = sign(keys, signature_string(str(timestamp), nonce, body + " "))
    return {"Content-Type": "application/json", "Wechatpay-Timestamp": str(timestamp),
            "Wechatpay-Nonce": nonce, "Wechatpay-Signature": signature,
            "Wechatpay-Serial": OTHER_PUBLIC_KEY_ID if tamper == "serial" else keys.public_key_id,
            "Wechatpay-Signature-Type": SIGNATURE_TYPE,
            "Request-ID": str(uuid.uuid4())}


def attempt(sender: Sender, delivery: Delivery) -> Attempt:
    """POST the notification once, freshly signed, and record the app's answer."""
    headers = signed_headers(sender.keys, delivery.body, delivery.tamper)
    sent_at = time.time()
    try:
        answer = requests.post(delivery.url, data=delivery.body.encode(), headers=headers,
                               timeout=sender.ledger.options.notify_timeout,
                               allow_redirects=False)
        result = Attempt(sent_at, answer.status_code, answer.text[:ANSWER_KEPT])
    except (requests.RequestException, ValueError) as exc:
        result = Attempt(sent_at, None, "", f"{type(exc).__name__}: {exc}"[:ANSWER_KEPT])
    sender.ledger.record(delivery, result)
    log.info("notification %s (%s) to %s: %s", delivery.notification_id, delivery.event_type,
             delivery.url, result.http_status or result.error)
    return result


def notify(sender: Sender, event: Event, url: str, mode: str, *, tamper: str = "none",
           late_seconds: float | None = None, wait: bool = True,
           out_trade_no: str | None = None, out_refund_no: str | None = None,
           ) -> Delivery | None:
    """Send one notification as `mode` says; with `wait`, the first sending(s) happen now.

    once: one sending; twice: two sendings one after the other (a duplicate, as when the
    app's answer is lost); concurrent: two at the same moment; late: one after late_seconds;
    none: nothing, ever. A notification no sending got a 2xx for is retried after each of
    the options' retry delays, in the background.
    """
    if mode == "none":
        return None
    notification_id, body = build_body(sender, event, tamper)
    delivery = sender.ledger.new_delivery(
        notification_id=notification_id, kind=event.kind, event_type=event.event_type,
        url=url, body=body, tamper=tamper, mode=mode, out_trade_no=out_trade_no,
        out_refund_no=out_refund_no)
    delay = sender.ledger.options.late_seconds if late_seconds is None else late_seconds

    def run():
        if mode == "late":
            time.sleep(delay)
        sender.ledger.set_state(delivery, "sending")
        if mode == "concurrent":
            pair = [threading.Thread(target=attempt, args=(sender, delivery)) for _ in range(2)]
            for thread in pair:
                thread.start()
            for thread in pair:
                thread.join()
        else:
            for _ in range(2 if mode == "twice" else 1):
                attempt(sender, delivery)
        if delivery.state != "delivered":
            _in_background(_retry, sender, delivery)

    if wait and mode != "late":
        run()
    else:
        _in_background(run)
    return delivery


def _retry(sender: Sender, delivery: Delivery) -> None:
    sender.ledger.set_state(delivery, "retrying")
    for delay in list(sender.ledger.options.notify_retry_delays):
        time.sleep(delay)
        if delivery.state == "delivered":
            return
        if attempt(sender, delivery).accepted:
            return
    sender.ledger.set_state(delivery, "failed")
    log.info("notification %s gave up after %d attempts", delivery.notification_id,
             len(delivery.attempts))


def send_raw(sender: Sender, url: str, body: str, tamper: str, event_type: str) -> Delivery:
    """Send a crafted body once, signed (or spoiled) like a notification, and record it."""
    try:
        notification_id = str(json.loads(body).get("id", ""))
    except (ValueError, AttributeError):
        notification_id = ""
    delivery = sender.ledger.new_delivery(
        notification_id=notification_id, kind="raw", event_type=event_type, url=url,
        body=body, tamper=tamper, mode="once")
    attempt(sender, delivery)
    sender.ledger.set_state(delivery, "sent")
    return delivery


def _in_background(target, *args) -> None:
    threading.Thread(target=target, args=args, daemon=True).start()
