"""Template messages to trainees, sent by queue jobs after commit, retried when WeChat fails."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
import requests
from flask import current_app
from rq import SimpleWorker
from rq.job import Job, JobStatus

from tests import factories
from wx_app import jobs, notifications, store
from wx_app.extensions import db
from wx_app.models import Certificate, Invoice, Order, Trainee

#: Seeded sandbox users (wx_app/sandbox/state.py): 张伟 follows the account, 王磊 does not.
ZHANG_WEI = "oSbxZ3k9QvR2mT7wYpL4cN8dF1aE"
WANG_LEI = "oSbxM7p4LcF1yN6zRbG3hT8kV2dQ"
PAID_AT = datetime(2024, 5, 6, 6, 30)  # naive UTC: 14:30 in Chongqing


def sent_to(sandbox_url: str, openid: str) -> list[dict]:
    sent = requests.get(f"{sandbox_url}/sandbox/api/templates", timeout=5).json()["sent"]
    return [message for message in sent if message["touser"] == openid]


def fail_next_sends(sandbox_url: str, count: int) -> None:
    requests.post(f"{sandbox_url}/sandbox/api/templates/fail", json={"count": count},
                  timeout=5).raise_for_status()


def run_worker() -> None:
    SimpleWorker([jobs.queue()], connection=store.client()).work(burst=True)


def queued_job() -> Job:
    (job,) = jobs.queue().jobs
    return job


def paid_order(buyer: Trainee, out_trade_no: str, *, plan_code: str = "GX-2024",
               amount_fen: int = 3300) -> Order:
    order = Order(out_trade_no=out_trade_no, kind="individual", buyer=buyer,
                  plan=factories.plan(plan_code), amount_fen=amount_fen, state="paid",
                  paid_at=PAID_AT, expires_at=PAID_AT + timedelta(minutes=30),
                  transaction_id=f"4200{out_trade_no[-10:]}")
    db.session.add(order)
    db.session.flush()
    return order


@pytest.fixture
def catalogue(ctx):
    factories.sample_catalog()


@pytest.fixture
def follower(catalogue) -> Trainee:
    """A trainee bound to 张伟, who follows the account."""
    trainee = factories.trainee(name="张三")
    factories.binding(ZHANG_WEI, trainee, nickname="张伟")
    return trainee


@pytest.fixture(autouse=True)
def _no_failures_left(sandbox_url):
    yield
    fail_next_sends(sandbox_url, 0)


def test_a_bound_trainee_gets_the_payment_message_with_its_fields(follower, sandbox_url):
    """Does a paid order's message reach the trainee with 订单号, 培训计划, 金额 and 支付时间?"""
    order = paid_order(follower, "CQ20240506000001")
    notifications.queue_payment_succeeded(order.id)
    assert jobs.queue().count == 0

    db.session.commit()
    run_worker()

    (message,) = [sent for sent in sent_to(sandbox_url, ZHANG_WEI)
                  if "CQ20240506000001" in sent["text"]]
    assert message["template_id"] == current_app.config["TEMPLATE_ID_PAYMENT_SUCCESS"]
    assert message["url"] == current_app.config["PUBLIC_BASE_URL"] + "/h5/training"
    assert message["data"] == {
        "character_string1": {"value": "CQ20240506000001"},
        "thing2": {"value": "2024年度专业技术人员公需科目"},
        "amount3": {"value": "33.00元"},
        "time4": {"value": "2024年05月06日 14:30"},
    }
    assert message["text"] == ("订单号：CQ20240506000001\n培训计划：2024年度专业技术人员公需科目\n"
                               "金额：33.00元\n支付时间：2024年05月06日 14:30")


def test_a_trainee_without_a_binding_is_skipped_and_not_retried(catalogue, sandbox_url, caplog):
    """Is a trainee who never linked WeChat skipped with a log line, the job done?"""
    trainee = factories.trainee(name="李四")
    order = paid_order(trainee, "CQ20240506000002")
    notifications.queue_payment_succeeded(order.id)
    db.session.commit()
    job = queued_job()

    with caplog.at_level(logging.INFO, logger="wx_app.notifications"):
        run_worker()

    assert job.get_status() == JobStatus.FINISHED
    assert f"trainee {trainee.id} has no WeChat binding" in caplog.text
    assert not any("CQ20240506000002" in message["text"]
                   for message in requests.get(f"{sandbox_url}/sandbox/api/templates",
                                               timeout=5).json()["sent"])


def test_a_trainee_who_stopped_following_is_skipped_and_not_retried(catalogue, sandbox_url,
                                                                    caplog):
    """When WeChat answers 43004 (require subscribe), is the message dropped, not retried?"""
    trainee = factories.trainee(name="王五")
    factories.binding(WANG_LEI, trainee, nickname="王磊", subscribed=True)
    order = paid_order(trainee, "CQ20240506000003")
    notifications.queue_payment_succeeded(order.id)
    db.session.commit()
    job = queued_job()

    with caplog.at_level(logging.INFO, logger="wx_app.notifications"):
        run_worker()

    assert job.get_status() == JobStatus.FINISHED
    assert "errcode 43004" in caplog.text
    assert jobs.queue().scheduled_job_registry.count == 0
    assert sent_to(sandbox_url, WANG_LEI) == []


def test_a_binding_known_to_have_unfollowed_is_not_sent_at_all(catalogue, sandbox_url):
    """Is a binding marked unsubscribed skipped without asking WeChat?"""
    trainee = factories.trainee(name="赵六")
    factories.binding(WANG_LEI, trainee, subscribed=False)
    order = paid_order(trainee, "CQ20240506000004")
    notifications.queue_payment_succeeded(order.id)
    db.session.commit()
    requests.post(f"{sandbox_url}/sandbox/api/stats/reset", timeout=5)

    run_worker()

    stats = requests.get(f"{sandbox_url}/sandbox/api/stats", timeout=5).json()
    assert "cgi-bin/message/template/send" not in stats["calls"]


def test_a_failed_send_is_retried_later_and_then_delivered(follower, sandbox_url, caplog):
    """When WeChat fails a send, is the job scheduled for a later retry that delivers it?"""
    order = paid_order(follower, "CQ20240506000005")
    notifications.queue_payment_succeeded(order.id)
    db.session.commit()
    job = queued_job()
    fail_next_sends(sandbox_url, 1)

    with caplog.at_level(logging.INFO, logger="wx_app.notifications"):
        run_worker()

    job.refresh()
    assert job.get_status() == JobStatus.SCHEDULED
    assert job.retries_left == notifications.RETRY.max - 1
    retry_at = jobs.queue().scheduled_job_registry.get_scheduled_time(job)
    delay = (retry_at - datetime.now(UTC)).total_seconds()
    assert 0 < delay <= notifications.RETRY.intervals[0]
    assert "errcode -1; the queue will retry" in caplog.text
    assert not any("CQ20240506000005" in sent["text"] for sent in sent_to(sandbox_url, ZHANG_WEI))

    # The retry's time has not come; move it to the queue now rather than wait for it.
    jobs.queue().scheduled_job_registry.requeue(job)
    run_worker()

    assert job.get_status() == JobStatus.FINISHED
    assert any("CQ20240506000005" in sent["text"] for sent in sent_to(sandbox_url, ZHANG_WEI))


def test_a_rolled_back_payment_sends_nothing(follower):
    """If the transaction that paid the order rolls back, is no message queued?"""
    order = paid_order(follower, "CQ20240506000006")
    notifications.queue_payment_succeeded(order.id)

    db.session.rollback()
    db.session.commit()

    assert jobs.queue().count == 0


def test_the_certificate_message_names_the_plan_serial_and_hours(follower, sandbox_url):
    """Does an issued certificate's message carry 培训计划, 证书编号, 获得学时 and 发证时间?"""
    plan = factories.plan("ZY-ENG-2023")
    enrollment = factories.enrollment(follower, plan, earned_hours=plan.required_hours)
    certificate = Certificate(
        serial_no="CQJJ-2023-Z-0000042", verify_code="v" * 32, enrollment=enrollment,
        trainee=follower, plan=plan, holder_name=follower.name,
        holder_id_masked=follower.id_number_masked, holder_gender=follower.gender,
        plan_name=plan.name, plan_category=plan.category, plan_year=plan.plan_year,
        credit_hours=plan.required_hours, issued_at=datetime(2024, 12, 31, 16, 5))
    db.session.add(certificate)
    db.session.flush()
    notifications.queue_certificate_issued(certificate.id)
    db.session.commit()

    run_worker()

    (message,) = [sent for sent in sent_to(sandbox_url, ZHANG_WEI)
                  if "CQJJ-2023-Z-0000042" in sent["text"]]
    assert message["url"].endswith("/h5/certificates")
    assert message["text"] == (f"培训计划：{plan.name}\n证书编号：CQJJ-2023-Z-0000042\n"
                               f"获得学时：{plan.required_hours}学时\n"
                               "发证时间：2025年01月01日 00:05")


def test_the_invoice_message_names_the_order_title_and_amount(follower, sandbox_url):
    """Does an issued invoice's message carry 订单号, 发票抬头 (cut to 20), 开票金额, 开票时间?"""
    order = paid_order(follower, "CQ20240506000007", plan_code="ZY-ENG-2024", amount_fen=9000)
    invoice = Invoice(order=order, state="issued", title_kind="company",
                      title="重庆市渝北区人民医院附属第一医院继续教育培训中心",
                      tax_number="91500000MA5U000000", amount_fen=9000,
                      invoice_number="24502000000000000042", issued_at=datetime(2024, 5, 7, 1, 0))
    db.session.add(invoice)
    db.session.flush()
    notifications.queue_invoice_issued(invoice.id)
    db.session.commit()

    run_worker()

    (message,) = [sent for sent in sent_to(sandbox_url, ZHANG_WEI)
                  if "CQ20240506000007" in sent["text"]]
    assert message["url"].endswith("/h5/invoices")
    assert message["data"]["thing2"] == {"value": "重庆市渝北区人民医院附属第一医院继续教…"}
    assert message["text"].endswith("开票金额：90.00元\n开票时间：2024年05月07日 09:00")


@pytest.mark.parametrize(("amount_fen", "shown"), [(3300, "33.00元"), (150, "1.50元"),
                                                   (5, "0.05元"), (123456, "1234.56元")])
def test_amounts_in_fen_are_shown_in_yuan(amount_fen, shown):
    """Is an amount in fen shown in yuan with two decimals, as WeChat's amount keyword wants?"""
    assert notifications.yuan(amount_fen) == shown
