"""No notification, late payments and unpaid orders: the query fallback and the expiry."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from rq.registry import ScheduledJobRegistry

from tests import factories
from tests import orders_support as support
from wx_app import jobs, orders
from wx_app.extensions import db
from wx_app.models import Order, OrderItem
from wx_app.models._types import utcnow


@pytest.fixture(autouse=True)
def pay_defaults(sandbox_url):
    support.reset_sandbox_pay(sandbox_url, notify_retry_delays=[])


def make_overdue(out_trade_no: str) -> None:
    """Move the order's deadline into the past, as if ORDER_TTL_MINUTES had gone by."""
    db.session.execute(sa.update(Order).where(Order.out_trade_no == out_trade_no)
                       .values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()


def test_without_any_notification_the_result_page_api_settles_by_query(ctx, app, client,
                                                                        live_server,
                                                                        sandbox_url):
    """WeChat Pay never notifies (notify none): does polling GET /h5/api/orders/<no> settle
    the order from WeChat Pay's query answer a few seconds after the prepay?"""
    support.catalogue()
    placed = support.place_order()
    buyer = db.session.get(factories.Trainee, placed.buyer_id)
    support.logged_in(app, client, buyer)
    paid = support.confirm(sandbox_url, placed.out_trade_no, notify="none")

    first = client.get(f"/h5/api/orders/{placed.out_trade_no}").get_json()
    assert first["state"] == "pending"  # the prepay is younger than QUERY_AFTER

    def settled():
        """the API says paid"""
        return client.get(f"/h5/api/orders/{placed.out_trade_no}").get_json()["state"] == "paid"

    support.wait_until(settled, timeout=20, interval=1)
    order = support.fresh_order(placed.out_trade_no)
    assert order.transaction_id == paid["transaction_id"]
    assert [e.trainee_id for e in support.enrollments()] == [placed.buyer_id]
    assert support.notifications_stored() == []


def test_queries_are_limited_to_one_per_order_every_few_seconds(ctx, app, client,
                                                                live_server, sandbox_url):
    """Does a page polling many times a second cause at most one query to WeChat Pay per
    order in QUERY_INTERVAL_SECONDS?"""
    support.catalogue()
    placed = support.place_order()
    buyer = db.session.get(factories.Trainee, placed.buyer_id)
    support.logged_in(app, client, buyer)
    db.session.execute(sa.update(Order).where(Order.id == placed.order_id)
                       .values(prepay_created_at=utcnow() - timedelta(seconds=30)))
    db.session.commit()
    before = _query_calls(sandbox_url)

    for _ in range(10):
        assert client.get(f"/h5/api/orders/{placed.out_trade_no}").status_code == 200

    assert _query_calls(sandbox_url) - before == 1


def _query_calls(sandbox_url: str) -> int:
    import requests

    calls = requests.get(f"{sandbox_url}/sandbox/api/stats", timeout=5).json()["calls"]
    return sum(count for path, count in calls.items() if "/out-trade-no/" in path
               and not path.endswith("/close"))


def test_an_overdue_order_that_was_paid_is_settled_not_closed(ctx, app, live_server,
                                                              sandbox_url):
    """An order paid at WeChat Pay whose notification never came, found by the expiry job
    after its time: is it settled (paid, enrolled) rather than closed?"""
    support.catalogue()
    placed = support.place_order()
    paid = support.confirm(sandbox_url, placed.out_trade_no, notify="none")
    make_overdue(placed.out_trade_no)

    orders.expire_order_job(placed.order_id)

    order = support.fresh_order(placed.out_trade_no)
    assert (order.state, order.transaction_id) == ("paid", paid["transaction_id"])
    assert [e.trainee_id for e in support.enrollments()] == [placed.buyer_id]


def test_an_overdue_unpaid_order_is_closed_at_wechat_pay_and_here(ctx, app, live_server,
                                                                 sandbox_url):
    """`flask orders expire-overdue`: is an unpaid order past its time closed at WeChat Pay
    (it can no longer be paid) and here (lines cancelled, their open_key freed)?"""
    support.catalogue()
    placed = support.place_order(group_size=2)
    make_overdue(placed.out_trade_no)

    result = app.test_cli_runner().invoke(args=["orders", "expire-overdue"])

    assert result.exit_code == 0, result.output
    assert "关闭 1 笔" in result.output
    order = support.fresh_order(placed.out_trade_no)
    assert order.state == "closed" and order.closed_at is not None
    assert [(item.state, item.open_key) for item in order.items] == [("cancelled", None)] * 2
    assert support.sandbox_transaction(sandbox_url, placed.out_trade_no)[
        "trade_state"] == "CLOSED"
    refused = support.sandbox_post(sandbox_url, "/sandbox/api/pay/confirm",
                                   {"out_trade_no": placed.out_trade_no}, expect=409)
    assert refused["code"] == "order_closed"


def test_an_order_never_prepaid_is_closed_here_only(ctx, app, live_server, sandbox_url):
    """An order nobody started to pay (WeChat Pay never heard of it): is it closed here?"""
    support.catalogue()
    placed = support.place_order(prepay=False)
    make_overdue(placed.out_trade_no)

    orders.expire_order_job(placed.order_id)

    assert support.fresh_order(placed.out_trade_no).state == "closed"


def test_a_closed_order_leaves_room_for_a_new_one(ctx, app, live_server, sandbox_url):
    """After an individual order was closed, does 提交订单 open a new order for the plan?"""
    support.catalogue()
    placed = support.place_order(prepay=False)
    make_overdue(placed.out_trade_no)
    orders.expire_order_job(placed.order_id)
    buyer = db.session.get(factories.Trainee, placed.buyer_id)

    again = orders.open_order(buyer, support.plan(), [buyer], kind="individual")
    db.session.commit()

    assert again.out_trade_no != placed.out_trade_no and again.state == "pending"


def test_looking_at_an_overdue_order_expires_it_without_a_scheduler(ctx, app, client,
                                                                   live_server, sandbox_url):
    """With no job scheduler (the local run), does opening the pay page of an overdue
    unpaid order close it and show 订单已关闭?"""
    support.catalogue()
    placed = support.place_order()
    buyer = db.session.get(factories.Trainee, placed.buyer_id)
    support.logged_in(app, client, buyer)
    make_overdue(placed.out_trade_no)

    page = client.get(f"/h5/orders/{placed.out_trade_no}/pay", follow_redirects=True)

    assert "订单已关闭" in page.text
    assert support.fresh_order(placed.out_trade_no).state == "closed"


def test_opening_an_order_schedules_its_expiry(ctx, app):
    """Is the expiry job scheduled ORDER_TTL_MINUTES ahead once the order commits?"""
    support.catalogue()
    registry = ScheduledJobRegistry(queue=jobs.queue())

    support.place_order(prepay=False)

    [job_id] = registry.get_job_ids()
    job = jobs.queue().fetch_job(job_id)
    assert job.func_name == "wx_app.orders.expire_order_job"
    due = registry.get_scheduled_time(job)
    assert timedelta(minutes=29) < due.replace(tzinfo=None) - utcnow() <= timedelta(minutes=30)


def test_an_expired_order_is_not_reopened_by_a_late_look(ctx, app, live_server, sandbox_url):
    """Does the expiry leave no open line behind (no trainee locked out of buying again)?"""
    support.catalogue()
    placed = support.place_order(prepay=False)
    make_overdue(placed.out_trade_no)
    orders.expire_order_job(placed.order_id)

    open_lines = db.session.scalar(sa.select(sa.func.count(OrderItem.id))
                                   .where(OrderItem.open_key.is_not(None)))
    assert open_lines == 0
