"""Payment notifications: POST /pay/notify as WeChat Pay sends it, each one settling an order.

Both figures come from the same gunicorn app in the same run: the bare liveness endpoint
(/healthz/live) is the baseline; the measured requests do all that a real notification
does: store the notification and commit, check the RSA signature, the serial and the
timestamp, decrypt the AES-256-GCM resource, check merchant, app and amount, lock the order
(SELECT … FOR UPDATE), mark it paid, enroll its trainee (in a savepoint, guarded by the
unique key), queue the payment-success message in Redis, commit, and write the outcome.

Every notification is for its own pending order, so none is a cheap repeat. They are built
before timing starts, signed with the sandbox's WeChat Pay private key and encrypted with
the APIv3 key, exactly as the sandbox (or WeChat Pay) builds them.

Goal: 0.05 of the baseline. The baseline does nothing at all; a notification needs 13
round trips to MariaDB (two connection checkouts with their ping and reset, two durable
commits, seven statements), an RSA verification and a Redis enqueue, and is written as
plain ORM code rather than tuned SQL. On the 2-core machine the suite runs on, one
round trip costs about 0.5 ms and a notification about 12 ms in all, against about 1 ms for
the baseline, so 0.05–0.1 is what this work costs, not a sign of waste. It is also ample:
WeChat Pay sends one notification per paid order; even if the whole city's yearly renewals
(about a million trainees) came within one month, the busiest hour would bring a few
payments a second, while 0.05 of the baseline is some 90 notifications a second on one
small machine, each answered far within WeChat Pay's five seconds, and more web processes
add to it (orders lock only their own row).
"""

from __future__ import annotations

import os
import secrets
import time
import uuid
from datetime import date, timedelta

import requests
import sqlalchemy as sa

from . import support

GOAL = 0.05
COUNT = 2000
WARM_UP = 200
PLAN_CODE = "GX-2023"
PAYER = "oSbxZ3k9QvR2mT7wYpL4cN8dF1aE"


def _app(stack: support.Stack):
    """The app in this process, on the stack's database, Redis and instance folder."""
    os.environ["WX_APP_INSTANCE"] = stack.env["WX_APP_INSTANCE"]
    from wx_app import create_app

    keys = ("APP_ENV", "DATABASE_URL", "REDIS_URL", "REDIS_KEY_PREFIX", "PUBLIC_BASE_URL",
            "WECHAT_API_BASE", "WECHAT_OPEN_BASE", "WECHATPAY_API_BASE", "LOG_LEVEL")
    return create_app({key: stack.env[key] for key in keys})


def _id_number(serial: int) -> str:
    from wx_app.id_numbers import check_character

    first_seventeen = f"500101{date(1980, 1, 1) + timedelta(days=serial % 9000):%Y%m%d}" \
                      f"{serial % 1000:03d}"
    return first_seventeen + check_character(first_seventeen)


def pending_orders(app, count: int) -> list[tuple[str, int]]:
    """`count` trainees with one pending individual order each: (out_trade_no, amount)."""
    from wx_app import orders
    from wx_app.catalog import load_catalog
    from wx_app.extensions import db
    from wx_app.models import Order, OrderItem, Plan, Trainee
    from wx_app.models._types import utcnow
    from wx_app.passwords import hash_password
    from wx_app.personal_data import encrypt, lookup_hash, mask_id_number

    with app.app_context():
        load_catalog(support.ROOT / "wx_app" / "demo" / "catalog.json")
        db.session.commit()
        plan = db.session.scalar(sa.select(Plan).where(Plan.code == PLAN_CODE))
        password_hash, now = hash_password(secrets.token_urlsafe(12)), utcnow()
        numbers = [_id_number(serial) for serial in range(count)]
        assert len(set(numbers)) == count
        db.session.execute(sa.insert(Trainee), [
            {"name": f"学员{n}", "id_number_enc": encrypt(number),
             "id_number_hash": lookup_hash(number), "id_number_masked": mask_id_number(number),
             "id_kind": "resident", "gender": "M" if int(number[16]) % 2 else "F",
             "birth_date": date(int(number[6:10]), int(number[10:12]), int(number[12:14])),
             "password_hash": password_hash, "must_change_password": False,
             "status": "active", "source": "register", "session_epoch": 0,
             "created_at": now, "updated_at": now} for n, number in enumerate(numbers)])
        trainee_ids = list(db.session.scalars(sa.select(Trainee.id).order_by(Trainee.id)))
        placed = [(orders.new_out_trade_no()[:-4] + f"{n:04d}", trainee_id)
                  for n, trainee_id in enumerate(trainee_ids)]
        db.session.execute(sa.insert(Order), [
            {"out_trade_no": number, "kind": "individual", "buyer_id": trainee_id,
             "plan_id": plan.id, "amount_fen": plan.price_fen, "state": "pending",
             "invoice_choice": "later", "needs_review": False,
             "expires_at": now + timedelta(hours=2), "prepay_created_at": now,
             "created_at": now, "updated_at": now} for number, trainee_id in placed])
        order_ids = dict(db.session.execute(sa.select(Order.out_trade_no, Order.id)).all())
        db.session.execute(sa.insert(OrderItem), [
            {"order_id": order_ids[number], "trainee_id": trainee_id, "plan_id": plan.id,
             "price_fen": plan.price_fen, "state": "pending",
             "open_key": orders.open_key(trainee_id, plan.id)} for number, trainee_id in placed])
        db.session.commit()
        return [(number, plan.price_fen) for number, _ in placed]


def signed_notifications(app, placed: list[tuple[str, int]]) -> list[support.Request]:
    """One TRANSACTION.SUCCESS notification per order, signed and encrypted as WeChat Pay."""
    import json

    from wx_app.sandbox.pay import china_time, encrypt_resource, load_pay_keys
    from wx_app.sandbox.pay_notify import signed_headers

    keys = load_pay_keys(app.config)
    made = []
    for n, (out_trade_no, amount) in enumerate(placed):
        resource = {"mchid": app.config["WECHATPAY_MCHID"], "appid": app.config["WECHAT_APPID"],
                    "out_trade_no": out_trade_no, "transaction_id": f"4200{n:024d}",
                    "trade_type": "JSAPI", "trade_state": "SUCCESS", "bank_type": "OTHERS",
                    "success_time": china_time(time.time()), "payer": {"openid": PAYER},
                    "amount": {"total": amount, "payer_total": amount, "currency": "CNY",
                               "payer_currency": "CNY"}}
        encrypted = {**encrypt_resource(keys, resource, "transaction"),
                     "original_type": "transaction"}
        body = json.dumps({"id": str(uuid.uuid4()), "create_time": china_time(time.time()),
                           "resource_type": "encrypt-resource",
                           "event_type": "TRANSACTION.SUCCESS", "summary": "支付成功",
                           "resource": encrypted}, ensure_ascii=False, separators=(",", ":"))
        made.append(("POST", "/pay/notify", body.encode(), signed_headers(keys, body)))
    return made


def _check(app, stack: support.Stack, first: support.Request, expected_paid: int) -> None:
    """Refuse to report unless every notification was applied (not refused, not a repeat)."""
    from wx_app.extensions import db
    from wx_app.models import Enrollment, Order, PaymentNotification

    with app.app_context():
        paid = db.session.scalar(sa.select(sa.func.count(Order.id))
                                 .where(Order.state == "paid"))
        enrolled = db.session.scalar(sa.select(sa.func.count(Enrollment.id)))
        applied = db.session.scalar(sa.select(sa.func.count(PaymentNotification.id))
                                    .where(PaymentNotification.outcome == "applied"))
    if not paid == enrolled == applied == expected_paid:
        raise RuntimeError(f"expected {expected_paid} settlements: {paid} paid, {enrolled} "
                           f"enrolled, {applied} applied")
    method, path, body, headers = first
    again = requests.post(stack.app_url + path, data=body, headers=headers, timeout=10)
    if again.status_code != 204:
        raise RuntimeError(f"a repeated notification was answered {again.status_code}")


def _empty_job_queue(app) -> None:
    """The payment-success messages queued by the run are not for anyone: drop them."""
    from wx_app import jobs

    with app.app_context():
        jobs.queue().empty()


def main() -> bool:
    with support.running_stack() as stack:
        app = _app(stack)
        placed = pending_orders(app, WARM_UP + COUNT)
        notifications = signed_notifications(app, placed)
        warm_up, timed = notifications[:WARM_UP], notifications[WARM_UP:]
        bare = ("GET", "/healthz/live", None, {})

        try:
            support.throughput(stack.app_url, lambda i: warm_up[i], WARM_UP)
            support.throughput(stack.app_url, lambda i: bare, WARM_UP)
            baseline = support.throughput(stack.app_url, lambda i: bare, COUNT)
            measured = support.throughput(stack.app_url, lambda i: timed[i], COUNT)
            _check(app, stack, timed[0], WARM_UP + COUNT)
        finally:
            _empty_job_queue(app)

    return support.report("payment notification (verify, decrypt, settle)", measured,
                          baseline, GOAL)
