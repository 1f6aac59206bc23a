"""Template messages (模板消息) to trainees: payment succeeded, certificate issued, invoice issued.

Each message is a queue job. The code that pays an order, issues a certificate or issues an
invoice calls the matching `queue_…` helper; the job is queued once that transaction commits,
so a message never announces something that was rolled back.

A trainee with no WeChat binding, or one who no longer follows the account, is skipped with a
log line: retrying cannot reach them. Any other failure (a WeChat errcode, the network) is
logged and raised, and the queue tries again after each of RETRY's intervals.

The template ids come from the TEMPLATE_ID_* settings; each template's keywords and their
Chinese labels are listed beside the function that fills them (and in
docs/wechat-account.md). WeChat limits a `thing` keyword to 20 characters and a
`character_string` to 32.

https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Template_Message_Interface.html
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta, timezone

from flask import current_app
from rq import Retry
from sqlalchemy import select

from . import jobs
from .errors import UpstreamError
from .extensions import db
from .models import Certificate, Invoice, Order, WechatBinding
from .wechat.client import WeChatAPIError, client

log = logging.getLogger(__name__)

#: Seconds between attempts: a WeChat hiccup passes within minutes, an outage within hours.
RETRY = Retry(max=4, interval=[30, 120, 600, 1800])
#: errcodes after which no retry can deliver: the user does not follow (43004), the openid
#: is unknown to the account (40003), the user refuses the account's messages (43101).
UNDELIVERABLE = {43004, 40003, 43101}
THING_MAX = 20
#: China Standard Time, the time trainees read (no daylight saving).
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")


def queue_payment_succeeded(order_id: int) -> None:
    """Send 缴费成功通知 for the order once the current transaction commits."""
    jobs.enqueue_after_commit(notify_payment_succeeded, order_id, retry=RETRY)


def queue_certificate_issued(certificate_id: int) -> None:
    """Send 证书发放通知 for the certificate once the current transaction commits."""
    jobs.enqueue_after_commit(notify_certificate_issued, certificate_id, retry=RETRY)


def queue_invoice_issued(invoice_id: int) -> None:
    """Send 发票开具通知 for the invoice once the current transaction commits."""
    jobs.enqueue_after_commit(notify_invoice_issued, invoice_id, retry=RETRY)


@jobs.job
def notify_payment_succeeded(order_id: int) -> None:
    """Tell the buyer that the order is paid (缴费成功通知)."""
    order = db.session.get(Order, order_id)
    if order is None or order.paid_at is None:
        log.warning("payment notification for order %s skipped: no paid order", order_id)
        return

    path = "/h5/group-orders" if order.kind == "group" else "/h5/training"
    _send(order.buyer_id, "TEMPLATE_ID_PAYMENT_SUCCESS", path, f"order {order.id}", {
        "character_string1": order.out_trade_no,  # 订单号
        "thing2": thing(order.plan.name),  # 培训计划
        "amount3": yuan(order.amount_fen),  # 金额
        "time4": beijing_time(order.paid_at),  # 支付时间
    })


@jobs.job
def notify_certificate_issued(certificate_id: int) -> None:
    """Tell the holder that the certificate can be printed (证书发放通知)."""
    certificate = db.session.get(Certificate, certificate_id)
    if certificate is None:
        log.warning("certificate notification for certificate %s skipped: no such "
                    "certificate", certificate_id)
        return

    _send(certificate.trainee_id, "TEMPLATE_ID_CERTIFICATE_ISSUED", "/h5/certificates",
          f"certificate {certificate.id}", {
              "thing1": thing(certificate.plan_name),  # 培训计划
              "character_string2": certificate.serial_no,  # 证书编号
              "thing3": f"{certificate.credit_hours}学时",  # 获得学时
              "time4": beijing_time(certificate.issued_at),  # 发证时间
          })


@jobs.job
def notify_invoice_issued(invoice_id: int) -> None:
    """Tell the buyer that the invoice is ready (发票开具通知)."""
    invoice = db.session.get(Invoice, invoice_id)
    if invoice is None or invoice.issued_at is None:
        log.warning("invoice notification for invoice %s skipped: no issued invoice",
                    invoice_id)
        return

    _send(invoice.order.buyer_id, "TEMPLATE_ID_INVOICE_ISSUED", "/h5/invoices",
          f"invoice {invoice.id}", {
              "character_string1": invoice.order.out_trade_no,  # 订单号
              "thing2": thing(invoice.title),  # 发票抬头
              "amount3": yuan(invoice.amount_fen),  # 开票金额
              "time4": beijing_time(invoice.issued_at),  # 开票时间
          })


def _send(trainee_id: int, template_setting: str, path: str, about: str,
          values: dict[str, str]) -> None:
    """POST message/template/send to the trainee's WeChat user, or skip them with a log line."""
    binding = db.session.scalars(
        select(WechatBinding).where(WechatBinding.trainee_id == trainee_id)).first()
    if binding is None:
        log.info("%s for %s skipped: trainee %s has no WeChat binding",
                 template_setting, about, trainee_id)
        return
    if not binding.subscribed:
        log.info("%s for %s skipped: binding %s no longer follows the account",
                 template_setting, about, binding.id)
        return

    config = current_app.config
    try:
        answer = client().post("message/template/send", data={
            "touser": binding.openid,
            "template_id": config[template_setting],
            "url": config["PUBLIC_BASE_URL"].rstrip("/") + path,
            "data": {key: {"value": value} for key, value in values.items()},
        })
    except WeChatAPIError as exc:
        if exc.errcode in UNDELIVERABLE:
            log.info("%s for %s skipped: WeChat cannot deliver to binding %s (errcode %s)",
                     template_setting, about, binding.id, exc.errcode)
            return
        log.warning("%s for %s failed: errcode %s; the queue will retry",
                    template_setting, about, exc.errcode)
        raise
    except UpstreamError as exc:
        log.warning("%s for %s failed: %s; the queue will retry", template_setting, about,
                    exc.code)
        raise
    log.info("%s for %s sent to binding %s (msgid %s)", template_setting, about, binding.id,
             answer.get("msgid"))


def thing(text: str) -> str:
    """`text` as a `thing` keyword: at most 20 characters, cut with … when longer."""
    text = " ".join(text.split())
    return text if len(text) <= THING_MAX else text[:THING_MAX - 1] + "…"


def yuan(amount_fen: int) -> str:
    """3300 → 33.00元."""
    return f"{amount_fen // 100}.{amount_fen % 100:02d}元"


def beijing_time(moment: datetime) -> str:
    """A naive UTC timestamp as trainees read it: 2024年05月06日 14:30 (Beijing time)."""
    local = moment.replace(tzinfo=UTC).astimezone(BEIJING)
    return f"{local:%Y年%m月%d日 %H:%M}"

