"""WeChat Pay's notifications: POST /pay/notify (payments) and /pay/refund-notify (refunds).

Each notification is stored as received and committed first, so that it is kept whatever
happens next; only then is it verified, decrypted and applied, and its outcome written.
WeChat Pay takes 200 or 204 as "received" and sends anything else again, with the same id,
over the next 24 hours: 204 for a notification applied (or applied before), 4xx with
{"code": "FAIL", "message": …} for one refused, 500 when something failed here.
No login and no CSRF token: the signature is the proof (checked before anything is read).

回调通知注意事项 https://pay.weixin.qq.com/doc/v3/merchant/4012075420
"""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify, request

from .. import orders, refunds
from ..extensions import db

log = logging.getLogger(__name__)

bp = Blueprint("pay", __name__, url_prefix="/pay")

#: Refusals of the signature itself; everything else refused is 400.
UNAUTHENTIC = frozenset({"bad_signature", "unknown_serial", "stale_timestamp"})
ACCEPTED = frozenset({"applied", "repeat"})


@bp.post("/notify")
def payment_notification():
    """支付成功回调通知: settle the order it names."""
    return _handle("payment", orders.process_payment_notification)


@bp.post("/refund-notify")
def refund_notification():
    """退款结果回调通知: complete the refund it names."""
    return _handle("refund", refunds.process_refund_notification)


def _handle(kind: str, process):
    body = request.get_data(cache=False)
    row_id = orders.record_notification(kind, request.headers, body)
    db.session.commit()

    try:
        outcome = process(row_id, request.headers, body)
        db.session.commit()
    except Exception:
        db.session.rollback()
        log.exception("%s notification %s failed while being applied", kind, row_id)
        orders.finish_notification(row_id, "error")
        db.session.commit()
        return _fail("error", 500)

    if outcome in ACCEPTED:
        return "", 204
    return _fail(outcome, 401 if outcome in UNAUTHENTIC else 400)


def _fail(outcome: str, status: int):
    return jsonify({"code": "FAIL", "message": f"通知未处理：{outcome}"}), status
