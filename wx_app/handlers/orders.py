"""Paying an order (individual or group): the pay page, its JSON API, the result page.

The page's "ok" from WeixinJSBridge (or from the sandbox's payment page) is never trusted:
the result page polls the order's state, which only a verified notification or WeChat
Pay's answer to a query changes (wx_app/orders.py).
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, url_for

from .. import orders, sessions
from ..errors import NotFound
from ..extensions import db
from ..models import Order
from ..sessions import current_trainee, login_required

bp = Blueprint("orders", __name__)

KIND_LABELS = {"individual": "个人购买", "group": "团体购买"}


def _order(out_trade_no: str) -> Order:
    order = orders.buyer_order(out_trade_no, current_trainee())
    if order is None:
        raise NotFound("没有找到该订单。")
    return order


def _result_url(order: Order) -> str:
    """Where the payment ends, as an absolute URL (the sandbox's page sends the browser there)."""
    return (current_app.config["PUBLIC_BASE_URL"].rstrip("/")
            + url_for("orders.result_page", out_trade_no=order.out_trade_no))


@bp.get("/h5/orders/<out_trade_no>/pay")
@login_required
def pay_page(out_trade_no: str):
    """The order's summary and 微信支付."""
    order = orders.check_payment(_order(out_trade_no))
    db.session.commit()
    if order.state != "pending":
        return redirect(url_for("orders.result_page", out_trade_no=order.out_trade_no))

    in_wechat = sessions.in_wechat()
    if (in_wechat and not sessions.session_openid()
            and orders.bound_openid(current_trainee()) is None):
        # Inside WeChat the payer is the WeChat user at the phone: learn who through OAuth.
        return redirect(url_for("auth.oauth_start", next=request.path))
    payable_here = in_wechat or orders.uses_pay_sandbox()
    return render_template("order_pay.html", order=order, kind_label=KIND_LABELS[order.kind],
                           payable_here=payable_here,
                           state_label=orders.STATE_LABELS[order.state])


@bp.get("/h5/orders/<out_trade_no>")
@login_required
def result_page(out_trade_no: str):
    """支付结果: the order's state, polled until a notification or a query settles it."""
    order = orders.check_payment(_order(out_trade_no))
    db.session.commit()
    cancelled = request.args.get("err_msg", "").endswith(":cancel")
    return render_template("order_result.html", order=order, kind_label=KIND_LABELS[order.kind],
                           state_label=orders.STATE_LABELS[order.state], cancelled=cancelled)


@bp.get("/h5/api/orders/<out_trade_no>")
@login_required
def order_state_api(out_trade_no: str):
    """{"out_trade_no", "state", "state_label", "amount_fen"}, after a cheap check at WeChat."""
    order = orders.check_payment(_order(out_trade_no))
    db.session.commit()
    return jsonify({"out_trade_no": order.out_trade_no, "state": order.state,
                    "state_label": orders.STATE_LABELS[order.state],
                    "amount_fen": order.amount_fen})


@bp.post("/h5/api/orders/<out_trade_no>/pay-params")
@login_required
def pay_params_api(out_trade_no: str):
    """What the page does to pay: {"mode": "jsapi", "params": {appId, timeStamp, nonceStr,
    package, signType, paySign}}, or {"mode": "sandbox" | "paid" | "closed", "redirect"}."""
    order = _order(out_trade_no)
    start = orders.start_payment(order, current_trainee(), openid=sessions.session_openid(),
                                 in_wechat=sessions.in_wechat(),
                                 return_url=_result_url(order))
    db.session.commit()
    body = {"mode": start.mode}
    if start.params is not None:
        body["params"] = start.params
    if start.redirect is not None:
        body["redirect"] = start.redirect
    return jsonify(body)
