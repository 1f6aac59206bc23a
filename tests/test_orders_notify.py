"""POST /pay/notify: WeChat Pay's payment notifications, sent by the sandbox (or signed here
with its key) to the live server, stored, verified, and settled once."""

from __future__ import annotations

import logging
import threading

import pytest
import requests
import sqlalchemy as sa

from tests import orders_support as support
from wx_app.extensions import db


@pytest.fixture(autouse=True)
def pay_defaults(sandbox_url):
    """The sandbox's default options, but no retries: a refused notification sent again
    a second later would land in the next test's tables."""
    support.reset_sandbox_pay(sandbox_url, notify_retry_delays=[])


def test_one_payment_notified_five_times_pays_once(ctx, app, live_server, sandbox_url):
    """Paid once and notified five times (twice at once, then three resends): is the order
    paid once, the trainee enrolled once, and every notification answered 204?"""
    support.catalogue()
    placed = support.place_order()

    paid = support.confirm(sandbox_url, placed.out_trade_no, notify="concurrent")
    notification_id = paid["notification"]["notification_id"]
    for _ in range(3):
        support.sandbox_post(sandbox_url, "/sandbox/api/pay/notifications/resend",
                             {"notification_id": notification_id})

    [delivery] = support.deliveries(sandbox_url, notification_id=notification_id)
    assert [attempt["http_status"] for attempt in delivery["attempts"]] == [204] * 5
    order = support.fresh_order(placed.out_trade_no)
    assert (order.state, order.transaction_id) == ("paid", paid["transaction_id"])
    assert order.payer_openid == support.ZHANG_WEI and order.paid_at is not None
    assert [(e.trainee_id, e.order_item_id) for e in support.enrollments()] == [
        (placed.buyer_id, order.items[0].id)]
    assert [item.state for item in order.items] == ["enrolled"]
    assert order.items[0].open_key is None
    outcomes = sorted(n.outcome for n in support.notifications_stored())
    assert outcomes == ["applied"] + ["repeat"] * 4


def test_eight_threads_posting_one_notification_enroll_each_trainee_once(ctx, app,
                                                                          live_server,
                                                                          sandbox_url):
    """Eight threads post the same valid notification of a group order at the same moment:
    is there one paid order, one enrollment per trainee, and eight 204 answers?"""
    support.catalogue()
    placed = support.place_order("ZY-ENG-2023", group_size=3)
    support.confirm(sandbox_url, placed.out_trade_no, notify="none")
    resource = support.wechat_view(support.sandbox_transaction(sandbox_url, placed.out_trade_no))
    headers, body = support.signed_notification(app, resource)

    start = threading.Barrier(8)
    statuses: list[int] = []

    def post() -> None:
        start.wait()
        answer = requests.post(f"{live_server}/pay/notify", data=body, headers=headers,
                               timeout=30)
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [204] * 8
    order = support.fresh_order(placed.out_trade_no)
    assert order.state == "paid" and order.amount_fen == 3 * 9000
    assert sorted(e.trainee_id for e in support.enrollments()) == sorted(placed.trainee_ids)
    assert sorted(n.outcome for n in support.notifications_stored()) == (
        ["applied"] + ["repeat"] * 7)


REFUSALS = [
    # (what is wrong, notify-raw tamper, resource changes, stored outcome, HTTP status)
    ("bad signature", "signature", {}, "bad_signature", 401),
    ("another key serial", "serial", {}, "unknown_serial", 401),
    ("ten-minute-old timestamp", "timestamp", {}, "stale_timestamp", 401),
    ("tampered ciphertext", "ciphertext", {}, "bad_ciphertext", 400),
    ("another merchant", "none", {"mchid": "1900000999"}, "merchant_mismatch", 400),
    ("another app", "none", {"appid": "wx0000000000000001"}, "app_mismatch", 400),
    ("another amount", "none", {"amount": {"total": 1, "currency": "CNY"}}, "amount_mismatch",
     400),
    ("unknown order", "none", {"out_trade_no": "WX20240101000000NOSUCH00"}, "unknown_order",
     400),
]


@pytest.mark.parametrize("what, tamper, changes, outcome, status", REFUSALS,
                         ids=[refusal[0] for refusal in REFUSALS])
def test_a_notification_that_is_not_right_is_refused_and_kept(ctx, app, live_server,
                                                              sandbox_url, caplog, what,
                                                              tamper, changes, outcome,
                                                              status):
    """Is a notification with something wrong refused with {"code": "FAIL"}, nobody
    enrolled, stored with its outcome, and logged?"""
    support.catalogue()
    placed = support.place_order(prepay=False)
    resource = support.transaction_resource(app, placed, **changes)

    caplog.set_level(logging.INFO)
    sent = support.sandbox_post(sandbox_url, "/sandbox/api/pay/notify-raw", {
        "url": f"{live_server}/pay/notify", "resource": resource, "tamper": tamper})

    assert sent["http_status"] == status
    assert '"code":"FAIL"' in sent["answer"].replace(" ", "")
    assert support.enrollments() == []
    order = support.fresh_order(placed.out_trade_no)
    assert order.state == "pending" and order.transaction_id is None
    [stored] = support.notifications_stored()
    assert stored.outcome == outcome and stored.body and stored.wechatpay_signature
    assert any(outcome in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("changes, reason", [
    ({"amount": {"total": 1, "currency": "CNY"}}, "amount_mismatch"),
    ({"mchid": "1900000999"}, "merchant_mismatch"),
])
def test_a_mismatch_holds_the_order_for_staff(ctx, app, live_server, sandbox_url, caplog,
                                              changes, reason):
    """After a verified notification with another amount or merchant, is the order held for
    review with the reason, logged as an ERROR, and does a later correct one enroll nobody?"""
    support.catalogue()
    placed = support.place_order(prepay=False)
    caplog.set_level(logging.INFO)

    support.sandbox_post(sandbox_url, "/sandbox/api/pay/notify-raw", {
        "url": f"{live_server}/pay/notify",
        "resource": support.transaction_resource(app, placed, **changes)})
    right = support.sandbox_post(sandbox_url, "/sandbox/api/pay/notify-raw", {
        "url": f"{live_server}/pay/notify", "resource": support.transaction_resource(app, placed)})

    order = support.fresh_order(placed.out_trade_no)
    assert order.needs_review and order.review_reason.startswith(reason)
    assert order.state == "pending" and support.enrollments() == []
    assert right["http_status"] == 400
    assert [n.outcome for n in support.notifications_stored()] == [reason, "under_review"]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert any(placed.out_trade_no in r.getMessage() and reason in r.getMessage()
               for r in errors)


def test_a_notification_is_stored_even_when_it_is_junk(ctx, app, live_server, sandbox_url):
    """Is a body that is not even JSON kept as received, with outcome malformed, and 400?"""
    sent = support.sandbox_post(sandbox_url, "/sandbox/api/pay/notify-raw", {
        "url": f"{live_server}/pay/notify", "raw_body": "这不是JSON"})

    assert sent["http_status"] == 400
    [stored] = support.notifications_stored()
    assert (stored.body, stored.outcome) == ("这不是JSON", "malformed")


def test_a_trainee_enrolled_meanwhile_gets_that_line_refunded(ctx, app, live_server,
                                                              sandbox_url):
    """When one trainee of a paid group order was enrolled meanwhile (by staff or another
    order), are the others enrolled, that line set refunding, and a refund of its price
    started by a job that WeChat Pay completes?"""
    from tests import factories
    from wx_app import refunds
    from wx_app.models import Refund

    support.catalogue()
    placed = support.place_order("GX-2023", group_size=2)
    doubled_id = placed.trainee_ids[1]
    factories.enrollment(db.session.get(factories.Trainee, doubled_id), support.plan("GX-2023"))
    db.session.commit()

    support.confirm(sandbox_url, placed.out_trade_no)

    order = support.fresh_order(placed.out_trade_no)
    assert order.state == "paid"
    assert {item.trainee_id: item.state for item in order.items} == {
        placed.trainee_ids[0]: "enrolled", doubled_id: "refunding"}
    [refund] = db.session.scalars(sa.select(Refund)).all()
    assert (refund.amount_fen, refund.requested_by, refund.state) == (3300, "system",
                                                                      "processing")

    refunds.submit_refund_job(refund.id)  # what the worker does with the queued job
    support.wait_until(lambda: support.fresh_order(placed.out_trade_no).items[1].state
                       == "refunded")
    order = support.fresh_order(placed.out_trade_no)
    assert order.state == "partially_refunded"
    assert sorted(e.trainee_id for e in support.enrollments()) == sorted(placed.trainee_ids)


def test_staff_see_a_flagged_order_and_clear_it(ctx, app, live_server, sandbox_url):
    """Does `orders flagged` list an order held after a wrong amount, with the reason, and
    does `orders clear-review` settle it from WeChat Pay's own (right) answer?"""
    support.catalogue()
    placed = support.place_order()
    paid = support.confirm(sandbox_url, placed.out_trade_no, notify="none")
    support.sandbox_post(sandbox_url, "/sandbox/api/pay/notify-raw", {
        "url": f"{live_server}/pay/notify", "resource": support.transaction_resource(
            app, placed, amount={"total": 1, "currency": "CNY"})})
    cli = app.test_cli_runner()

    listed = cli.invoke(args=["orders", "flagged"])
    cleared = cli.invoke(args=["orders", "clear-review", placed.out_trade_no,
                               "--note", "核对了商户平台的交易记录"])

    assert placed.out_trade_no in listed.output and "amount_mismatch" in listed.output
    assert "共 1 笔待核查订单" in listed.output
    assert cleared.exit_code == 0, cleared.output
    order = support.fresh_order(placed.out_trade_no)
    assert (order.state, order.needs_review, order.transaction_id) == (
        "paid", False, paid["transaction_id"])
    assert [e.trainee_id for e in support.enrollments()] == [placed.buyer_id]
