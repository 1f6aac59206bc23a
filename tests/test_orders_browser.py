"""个人购买 in Chromium at phone size inside "WeChat": from the plan page through 立即购买,
个人购买 and 提交订单 to 微信支付, with a stand-in WeixinJSBridge that pays at the sandbox."""

from __future__ import annotations

import base64

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from playwright.sync_api import expect

from tests import factories
from tests import orders_support as support
from tests.test_h5_browser import TEXT_SIZES_JS
from wx_app.extensions import db

pytestmark = pytest.mark.browser

# What WeChat's own bridge would do: check the call's shape as the JSAPI document lists it,
# let "the payer" pay (the test records the call and confirms at the sandbox), answer ok.
STAND_IN_BRIDGE = """
window.WeixinJSBridge = {
  invoke: function (name, params, callback) {
    var keys = Object.keys(params).sort().join(",");
    var shaped = name === "getBrandWCPayRequest"
      && keys === "appId,nonceStr,package,paySign,signType,timeStamp"
      && /^\\d{10}$/.test(params.timeStamp) && /^prepay_id=wx\\w+$/.test(params.package)
      && params.signType === "RSA" && /^[A-Za-z0-9+\\/]+=*$/.test(params.paySign);
    if (!shaped) { callback({err_msg: "get_brand_wcpay_request:fail"}); return; }
    window.payAtSandbox(name, params).then(function () {
      callback({err_msg: "get_brand_wcpay_request:ok"});
    });
  }
};
"""


def test_individual_purchase_from_plan_page_to_payment_success(page, app, live_server,
                                                               sandbox_url, instance_dir):
    """Does a logged-in trainee inside WeChat buy GX-2023 by 立即购买 → 个人购买 → 提交订单 →
    微信支付, with well-formed, correctly signed JSAPI parameters, and see 支付成功 once the
    notification has settled the order?"""
    support.reset_sandbox_pay(sandbox_url)
    with app.app_context():
        support.catalogue()
        trainee = factories.trainee(name="陈静")
        db.session.commit()
        cookie = factories.session_cookie(trainee, openid=support.LI_XIUYING)
        trainee_id = trainee.id
    page.context.add_cookies([{"name": app.config["SESSION_COOKIE_NAME"], "value": cookie,
                               "url": live_server}])
    invocations: list[tuple[str, dict]] = []
    paid: list[dict] = []

    def pay_at_sandbox(name: str, params: dict) -> None:
        invocations.append((name, params))
        prepay_id = params["package"].removeprefix("prepay_id=")
        answer = requests.post(f"{sandbox_url}/sandbox/api/pay/confirm",
                               json={"prepay_id": prepay_id, "notify": "once"}, timeout=30)
        paid.append(answer.json())

    page.expose_function("payAtSandbox", pay_at_sandbox)
    page.add_init_script(STAND_IN_BRIDGE)

    page.goto(f"{live_server}/h5/plans/GX-2023")
    expect(page.get_by_text("学分要求").first).to_be_visible()
    page.get_by_role("link", name="立即购买").click()
    page.get_by_role("link", name="个人购买").click()
    expect(page.get_by_role("radio", name="以后申请")).to_be_checked()
    _assert_fits_the_phone(page)
    page.get_by_role("button", name="提交订单").click()
    expect(page).to_have_title("订单支付")
    _assert_fits_the_phone(page)
    page.get_by_role("button", name="微信支付").click()

    expect(page.get_by_role("heading", name="支付成功")).to_be_visible(timeout=20_000)
    expect(page.get_by_role("link", name="进入学习")).to_be_visible()
    _assert_fits_the_phone(page)
    [(name, params)] = invocations
    assert name == "getBrandWCPayRequest"
    _assert_pay_sign(params, app, instance_dir)
    assert paid[0]["trade_state"] == "SUCCESS"
    with app.app_context():
        order = support.fresh_order(paid[0]["out_trade_no"])
        assert (order.state, order.buyer_id, order.amount_fen) == ("paid", trainee_id, 3300)
        assert order.payer_openid == support.LI_XIUYING
        assert [e.trainee_id for e in support.enrollments()] == [trainee_id]


def _assert_pay_sign(params: dict, app, instance_dir) -> None:
    """paySign is the merchant key's signature over appId, timeStamp, nonceStr, package."""
    assert params["appId"] == app.config["WECHAT_APPID"]
    key = serialization.load_pem_public_key(
        (instance_dir / "sandbox-keys" / "merchant_public_key.pem").read_bytes())
    message = "".join(f"{params[name]}\n" for name in ("appId", "timeStamp", "nonceStr",
                                                        "package"))
    key.verify(base64.b64decode(params["paySign"]), message.encode(), padding.PKCS1v15(),
               hashes.SHA256())


def _assert_fits_the_phone(tab) -> None:
    """No sideways scrolling at 375 px, and no text under 14 px."""
    assert tab.evaluate("document.scrollingElement.scrollWidth") <= 375
    assert [(text, size) for text, size in tab.evaluate(TEXT_SIZES_JS) if size < 14] == []


def test_outside_wechat_the_sandbox_payment_page_takes_over(browser, app, live_server,
                                                            sandbox_url):
    """In an ordinary phone browser against the sandbox, does 微信支付 open the sandbox's
    payment page, and does 确认支付 there lead back to 支付成功?"""
    support.reset_sandbox_pay(sandbox_url)
    with app.app_context():
        support.catalogue()
        trainee = factories.trainee(name="王磊")
        placed_order = _open_order(trainee)
        cookie = factories.session_cookie(trainee)
    context = browser.new_context(viewport={"width": 375, "height": 812}, is_mobile=True,
                                  locale="zh-CN")
    context.add_cookies([{"name": app.config["SESSION_COOKIE_NAME"], "value": cookie,
                          "url": live_server}])
    tab = context.new_page()
    try:
        tab.goto(f"{live_server}/h5/orders/{placed_order}/pay")
        tab.get_by_role("button", name="微信支付").click()
        tab.wait_for_url(f"{sandbox_url}/sandbox/pay/confirm*")
        tab.get_by_role("button", name="确认支付").click()
        expect(tab.get_by_role("heading", name="支付成功")).to_be_visible(timeout=20_000)
    finally:
        context.close()


def _open_order(trainee) -> str:
    from wx_app import orders

    order = orders.open_order(trainee, support.plan("GX-2023"), [trainee], kind="individual")
    db.session.commit()
    return order.out_trade_no
