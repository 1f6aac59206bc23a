"""`flask orders refund`: staff refunds through WeChat Pay's refund API, completed by the
refund notification the sandbox sends to /pay/refund-notify on the live server."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests import orders_support as support
from wx_app.extensions import db
from wx_app.models import Enrollment, Refund, Trainee


@pytest.fixture(autouse=True)
def pay_defaults(sandbox_url):
    support.reset_sandbox_pay(sandbox_url, notify_retry_delays=[])


def paid_order(sandbox_url, plan_code: str = "GX-2023", *, group_size: int = 0):
    """A committed order, paid at the sandbox and settled by its notification."""
    support.catalogue()
    placed = support.place_order(plan_code, group_size=group_size)
    support.confirm(sandbox_url, placed.out_trade_no)
    assert support.fresh_order(placed.out_trade_no).state == "paid"
    return placed


def refund(app, *args: str):
    return app.test_cli_runner().invoke(args=["orders", "refund", *args, "--by", "客服小王"])


def refunds_of(order_id: int) -> list[Refund]:
    db.session.rollback()
    return list(db.session.scalars(sa.select(Refund).where(Refund.order_id == order_id)
                                   .order_by(Refund.id)
                                   .execution_options(populate_existing=True)))


def id_number_of(trainee_id: int) -> str:
    return db.session.get(Trainee, trainee_id).id_number


def test_a_paid_order_is_refunded_in_full_and_the_enrollment_removed(ctx, app, live_server,
                                                                    sandbox_url):
    """Does `orders refund` refund the whole order at WeChat Pay, and does the refund
    notification mark it refunded and withdraw the trainee's enrollment?"""
    placed = paid_order(sandbox_url)

    result = refund(app, placed.out_trade_no, "--reason", "学员申请退款")

    assert result.exit_code == 0, result.output
    [made] = refunds_of(placed.order_id)
    assert (made.order_item_id, made.amount_fen, made.reason, made.requested_by) == (
        None, 3300, "学员申请退款", "staff:客服小王")
    assert made.out_refund_no in result.output
    support.wait_until(lambda: refunds_of(placed.order_id)[0].state == "success")
    order = support.fresh_order(placed.out_trade_no)
    assert order.state == "refunded"
    assert [item.state for item in order.items] == ["refunded"]
    assert support.enrollments() == []
    assert support.sandbox_transaction(sandbox_url, placed.out_trade_no)["refunded_fen"] == 3300
    [notified] = support.notifications_stored("refund")
    assert (notified.outcome, notified.out_trade_no) == ("applied", placed.out_trade_no)


def test_no_refund_once_hours_are_earned(ctx, app, live_server, sandbox_url):
    """Is a refund refused, with the hours named, once the trainee has earned credit hours
    in the plan, and nothing sent to WeChat Pay?"""
    placed = paid_order(sandbox_url)
    db.session.execute(sa.update(Enrollment).values(earned_hours=4))
    db.session.commit()

    result = refund(app, placed.out_trade_no, "--reason", "学员申请退款")

    assert result.exit_code == 1
    assert "已获得学时，不能退款" in result.output and "4学时" in result.output
    assert refunds_of(placed.order_id) == []
    assert support.fresh_order(placed.out_trade_no).state == "paid"
    assert support.sandbox_transaction(sandbox_url, placed.out_trade_no)["refunded_fen"] == 0


def test_a_refund_is_not_made_twice(ctx, app, live_server, sandbox_url):
    """Is a second refund of the same order refused, while processing and once refunded?"""
    placed = paid_order(sandbox_url)
    support.reset_sandbox_pay(sandbox_url, notify_retry_delays=[], refund_delay_seconds=None)
    assert refund(app, placed.out_trade_no, "--reason", "学员申请退款").exit_code == 0

    while_processing = refund(app, placed.out_trade_no, "--reason", "再退一次")
    [made] = refunds_of(placed.order_id)
    support.sandbox_post(sandbox_url, "/sandbox/api/pay/refunds/complete",
                         {"out_refund_no": made.out_refund_no})
    support.wait_until(lambda: refunds_of(placed.order_id)[0].state == "success")
    once_refunded = refund(app, placed.out_trade_no, "--reason", "再退一次")

    assert while_processing.exit_code == 1 and "退款正在处理中" in while_processing.output
    assert once_refunded.exit_code == 1 and "已退款" in once_refunded.output
    assert len(refunds_of(placed.order_id)) == 1
    assert support.sandbox_transaction(sandbox_url, placed.out_trade_no)["refunded_fen"] == 3300


def test_one_trainee_of_a_group_order_is_refunded(ctx, app, live_server, sandbox_url):
    """`--trainee ID_NUMBER` on a group order: is only that trainee's line refunded (its
    price), their enrollment withdrawn, the order partially refunded, and the rest later?"""
    placed = paid_order(sandbox_url, "ZY-ENG-2023", group_size=3)
    leaving = placed.trainee_ids[1]

    result = refund(app, placed.out_trade_no, "--trainee", id_number_of(leaving).lower(),
                    "--reason", "该学员已离职")

    assert result.exit_code == 0, result.output
    [made] = refunds_of(placed.order_id)
    assert made.amount_fen == 9000 and made.order_item.trainee_id == leaving
    support.wait_until(lambda: refunds_of(placed.order_id)[0].state == "success")
    order = support.fresh_order(placed.out_trade_no)
    assert order.state == "partially_refunded"
    assert {item.trainee_id: item.state for item in order.items} == {
        placed.trainee_ids[0]: "enrolled", leaving: "refunded",
        placed.trainee_ids[2]: "enrolled"}
    assert sorted(e.trainee_id for e in support.enrollments()) == sorted(
        set(placed.trainee_ids) - {leaving})

    again = refund(app, placed.out_trade_no, "--trainee", id_number_of(leaving),
                   "--reason", "该学员已离职")
    assert again.exit_code == 1 and "已退款，不能重复退款" in again.output

    rest = refund(app, placed.out_trade_no, "--reason", "单位取消培训")
    assert rest.exit_code == 0, rest.output
    support.wait_until(lambda: all(r.state == "success" for r in refunds_of(placed.order_id)))
    assert [r.amount_fen for r in refunds_of(placed.order_id)] == [9000, 9000, 9000]
    assert support.fresh_order(placed.out_trade_no).state == "refunded"
    assert support.enrollments() == []


def test_a_trainee_not_in_the_order_is_refused(ctx, app, live_server, sandbox_url):
    """Is `--trainee` with someone not in the order refused plainly?"""
    from tests import factories

    placed = paid_order(sandbox_url, group_size=2)
    stranger = factories.trainee(name="路人")
    db.session.commit()

    result = refund(app, placed.out_trade_no, "--trainee", stranger.id_number,
                    "--reason", "误操作")

    assert result.exit_code == 1 and "不在这个订单中" in result.output


def test_an_unpaid_order_cannot_be_refunded(ctx, app, live_server, sandbox_url):
    """Is a refund of an order still waiting for payment refused?"""
    support.catalogue()
    placed = support.place_order(prepay=False)

    result = refund(app, placed.out_trade_no, "--reason", "学员申请退款")

    assert result.exit_code == 1 and "待支付" in result.output


def test_a_refund_notification_is_applied_once(ctx, app, live_server, sandbox_url):
    """Is a refund notification sent twice applied once (both answered 204)?"""
    placed = paid_order(sandbox_url)
    support.reset_sandbox_pay(sandbox_url, notify_retry_delays=[], refund_delay_seconds=None)
    refund(app, placed.out_trade_no, "--reason", "学员申请退款")
    [made] = refunds_of(placed.order_id)

    completed = support.sandbox_post(sandbox_url, "/sandbox/api/pay/refunds/complete",
                                     {"out_refund_no": made.out_refund_no, "notify": "twice"})

    [delivery] = completed["notifications"]
    assert [attempt["http_status"] for attempt in delivery["attempts"]] == [204, 204]
    assert [n.outcome for n in support.notifications_stored("refund")] == ["applied", "repeat"]
    assert support.fresh_order(placed.out_trade_no).state == "refunded"


def check_refunds(app):
    return app.test_cli_runner().invoke(args=["orders", "check-refunds", "--older-than", "0"])


def test_a_refund_whose_notification_never_came_is_settled_by_asking(ctx, app, live_server,
                                                                    sandbox_url):
    """When WeChat Pay pays the money back but its notification is lost, does
    `orders check-refunds` learn it from WeChat Pay and withdraw the enrollment?"""
    placed = paid_order(sandbox_url)
    support.reset_sandbox_pay(sandbox_url, notify_retry_delays=[], refund_delay_seconds=None)
    assert refund(app, placed.out_trade_no, "--reason", "学员申请退款").exit_code == 0
    [made] = refunds_of(placed.order_id)

    still_processing = check_refunds(app)
    support.sandbox_post(sandbox_url, "/sandbox/api/pay/refunds/complete",
                         {"out_refund_no": made.out_refund_no, "notify": "none"})
    after_success = check_refunds(app)

    assert still_processing.exit_code == 0 and "仍在处理 1 笔" in still_processing.output
    assert after_success.exit_code == 0 and "已完成 1 笔" in after_success.output
    [settled] = refunds_of(placed.order_id)
    assert settled.state == "success"
    assert support.fresh_order(placed.out_trade_no).state == "refunded"
    assert support.enrollments() == []
    assert support.notifications_stored("refund") == []


def test_a_closed_refund_gives_the_enrollment_back(ctx, app, live_server, sandbox_url):
    """When WeChat Pay closes a refund without paying, and says so only when asked, does the
    trainee keep the plan they paid for?"""
    placed = paid_order(sandbox_url)
    support.reset_sandbox_pay(sandbox_url, notify_retry_delays=[], refund_delay_seconds=None)
    assert refund(app, placed.out_trade_no, "--reason", "学员申请退款").exit_code == 0
    [made] = refunds_of(placed.order_id)
    support.sandbox_post(sandbox_url, "/sandbox/api/pay/refunds/complete",
                         {"out_refund_no": made.out_refund_no, "status": "CLOSED",
                          "notify": "none"})

    result = check_refunds(app)

    assert result.exit_code == 0, result.output
    [closed] = refunds_of(placed.order_id)
    assert closed.state == "closed"
    order = support.fresh_order(placed.out_trade_no)
    assert [item.state for item in order.items] == ["enrolled"]
    assert len(support.enrollments()) == 1
