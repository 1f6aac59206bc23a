"""个人购买: 立即购买 → 个人购买 → 提交订单 (立即申请 or 以后申请) → the pay page, and the
rules of open_order that the group purchase relies on too."""

from __future__ import annotations

import re
import threading

import pytest
import requests
import sqlalchemy as sa

from tests import factories
from tests import orders_support as support
from tests.auth_support import field_errors
from wx_app import orders
from wx_app.credit_codes import check_character, check_credit_code
from wx_app.errors import InvalidInput
from wx_app.extensions import db
from wx_app.models import Invoice, Order, OrderItem

VALID_CREDIT_CODE = "91500000MA5U8XXXX" + check_character("91500000MA5U8XXXX")


@pytest.fixture
def buyer(ctx, app, client):
    """A trainee logged in on the test client, with the sample catalogue committed."""
    support.catalogue()
    trainee = factories.trainee(name="李文静")
    db.session.commit()
    csrf = support.logged_in(app, client, trainee)
    return trainee, csrf


def pay_url(response) -> str:
    return response.headers["Location"]


def only_order() -> Order:
    db.session.rollback()
    return db.session.scalars(sa.select(Order)).one()


# --- the pages -------------------------------------------------------------------------------

def test_buy_page_offers_individual_and_group_purchase(buyer, client):
    """Does 立即购买 show the plan's facts and lead to 个人购买 and 团体购买?"""
    html = client.get("/h5/plans/GX-2023/buy").text

    assert "<title>立即购买</title>" in html
    assert "2023年度专业技术人员公需科目" in html and "30学时" in html and "33.00元" in html
    assert re.search(r'href="/h5/plans/GX-2023/order">\s*<span class="wx-way__title">个人购买',
                     html)
    assert re.search(r'href="/h5/plans/GX-2023/group">\s*<span class="wx-way__title">团体购买',
                     html)


def test_submit_order_opens_the_order_and_goes_to_its_payment(buyer, client):
    """个人购买 → 提交订单 with 以后申请: is a pending order of 3300 fen opened and the buyer
    sent to its pay page, which offers 微信支付?"""
    trainee, csrf = buyer
    form = client.get("/h5/plans/GX-2023/order").text
    assert "提交订单" in form and "立即申请" in form and "以后申请" in form

    response = client.post("/h5/plans/GX-2023/order",
                           data={"csrf_token": csrf, "invoice_choice": "later"})

    order = only_order()
    assert response.status_code == 303
    assert pay_url(response) == f"/h5/orders/{order.out_trade_no}/pay"
    assert (order.kind, order.state, order.amount_fen, order.invoice_choice) == (
        "individual", "pending", 3300, "later")
    assert [(i.trainee_id, i.price_fen, i.open_key) for i in order.items] == [
        (trainee.id, 3300, f"{trainee.id}:{order.plan_id}")]
    assert 6 <= len(order.out_trade_no) <= 32 and order.out_trade_no.isalnum()
    page = client.get(pay_url(response)).text
    assert "微信支付" in page and "33.00元" in page and order.out_trade_no in page


def test_the_price_comes_from_the_plan_not_the_form(buyer, client):
    """Is a 专业 plan charged 150 fen × its hours, whatever amount the form carries?"""
    _, csrf = buyer

    client.post("/h5/plans/ZY-ENG-2023/order",
                data={"csrf_token": csrf, "invoice_choice": "later", "amount_fen": "1",
                      "price": "0.01"})

    assert only_order().amount_fen == 60 * 150


def test_asking_again_reuses_the_open_order(buyer, client):
    """Does 提交订单 twice give the same order (one open order per trainee and plan), with
    the second invoice choice?"""
    _, csrf = buyer
    first = client.post("/h5/plans/GX-2023/order",
                        data={"csrf_token": csrf, "invoice_choice": "later"})
    second = client.post("/h5/plans/GX-2023/order", data={
        "csrf_token": csrf, "invoice_choice": "now", "invoice_title_kind": "personal",
        "invoice_title": "李文静", "invoice_email": "li@example.com"})

    assert pay_url(first) == pay_url(second)
    order = only_order()
    assert order.invoice_choice == "now"
    assert db.session.scalar(sa.select(sa.func.count(Invoice.id))) == 1


def test_two_taps_at_once_give_one_order(buyer, app, live_server):
    """Two 提交订单 posted at the same moment: one order, both sent to its pay page?"""
    trainee, csrf = buyer
    cookie = factories.session_cookie(trainee)
    db.session.commit()
    barrier = threading.Barrier(2)
    locations: list[str] = []

    def tap() -> None:
        session = requests.Session()
        session.cookies.set(app.config["SESSION_COOKIE_NAME"], cookie)
        token = support.CSRF_META.search(session.get(f"{live_server}/h5/me").text).group(1)
        barrier.wait()
        answer = session.post(f"{live_server}/h5/plans/GX-2023/order",
                              data={"csrf_token": token, "invoice_choice": "later"},
                              allow_redirects=False, timeout=30)
        locations.append(answer.headers.get("Location", str(answer.status_code)))

    threads = [threading.Thread(target=tap) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    order = only_order()
    assert locations == [f"/h5/orders/{order.out_trade_no}/pay"] * 2


def test_a_plan_not_open_cannot_be_bought(buyer, client):
    """Is 2024 公需 (not yet open) refused with 暂未开放, on the page and by open_order?"""
    trainee, csrf = buyer

    page = client.get("/h5/plans/GX-2024/order").text
    posted = client.post("/h5/plans/GX-2024/order",
                         data={"csrf_token": csrf, "invoice_choice": "later"})

    assert "暂未开放" in page and 'type="submit"' not in page
    assert posted.status_code == 409 and "该学习计划暂未开放，暂不能购买。" in posted.text
    with pytest.raises(orders.PlanNotOpen):
        orders.open_order(trainee, support.plan("GX-2024"), [trainee], kind="individual")
    assert db.session.scalar(sa.select(sa.func.count(Order.id))) == 0


def test_a_plan_already_owned_cannot_be_bought_again(buyer, client):
    """Is a plan the trainee already has refused, pointing to 进入学习?"""
    trainee, csrf = buyer
    factories.enrollment(trainee, support.plan("GX-2023"))
    db.session.commit()

    page = client.get("/h5/plans/GX-2023/order").text
    posted = client.post("/h5/plans/GX-2023/order",
                         data={"csrf_token": csrf, "invoice_choice": "later"})

    assert "您已购买该学习计划" in page and "进入学习" in page
    assert posted.status_code == 409 and "您已购买该学习计划" in posted.text
    with pytest.raises(orders.AlreadyEnrolled) as refused:
        orders.open_order(trainee, support.plan("GX-2023"), [trainee], kind="individual")
    assert refused.value.trainee_ids == [trainee.id]


def test_ordering_needs_a_login(ctx, client):
    """Does 立即购买 send a visitor without a session to 登录, and back afterwards?"""
    support.catalogue()

    response = client.get("/h5/plans/GX-2023/buy")

    assert response.status_code == 302
    assert response.headers["Location"] == "/h5/login?next=/h5/plans/GX-2023/buy"


def test_another_buyers_order_is_not_shown(buyer, client):
    """Is the pay page of an order someone else placed a 404?"""
    placed = support.place_order(prepay=False)

    assert client.get(f"/h5/orders/{placed.out_trade_no}/pay").status_code == 404
    assert client.get(f"/h5/api/orders/{placed.out_trade_no}").status_code == 404


# --- invoices --------------------------------------------------------------------------------

def test_invoice_now_stores_a_requested_company_invoice(buyer, client):
    """立即申请 with a company title: is an Invoice stored as requested, with the checked
    统一社会信用代码 (normalised), the email and the order's amount?"""
    _, csrf = buyer

    client.post("/h5/plans/GX-2023/order", data={
        "csrf_token": csrf, "invoice_choice": "now", "invoice_title_kind": "company",
        "invoice_title": "重庆市渝北区人民医院",
        "invoice_tax_number": " " + VALID_CREDIT_CODE.lower() + " ",
        "invoice_email": "caiwu@example.com"})

    order = only_order()
    invoice = db.session.scalars(sa.select(Invoice)).one()
    assert order.invoice_choice == "now"
    assert (invoice.order_id, invoice.state, invoice.title_kind, invoice.title,
            invoice.tax_number, invoice.email, invoice.amount_fen) == (
        order.id, "requested", "company", "重庆市渝北区人民医院", VALID_CREDIT_CODE,
        "caiwu@example.com", 3300)


def test_a_wrong_credit_code_is_refused_next_to_its_field(buyer, client):
    """Is a 统一社会信用代码 with a wrong check character refused beside its field, and no
    order opened?"""
    _, csrf = buyer
    wrong = VALID_CREDIT_CODE[:17] + ("1" if VALID_CREDIT_CODE[17] != "1" else "2")

    response = client.post("/h5/plans/GX-2023/order", data={
        "csrf_token": csrf, "invoice_choice": "now", "invoice_title_kind": "company",
        "invoice_title": "重庆某公司", "invoice_tax_number": wrong,
        "invoice_email": "caiwu@example.com"})

    assert response.status_code == 400
    assert field_errors(response.text) == {
        "invoice_tax_number": "统一社会信用代码校验位不正确，请与营业执照核对。"}
    assert db.session.scalar(sa.select(sa.func.count(Order.id))) == 0


@pytest.mark.parametrize("raw, message", [
    ("", "请填写统一社会信用代码。"),
    ("91500000MA5U8XXX", "统一社会信用代码应为18位，您填写了16位。"),
    ("91500000MA5U8XXXIO", "统一社会信用代码不能含有字符：I、O（不使用字母I、O、Z、S、V）。"),
    ("91350100M000100Y44", "统一社会信用代码校验位不正确，请与营业执照核对。"),
])
def test_credit_codes_are_checked_per_gb_32100(raw, message):
    """Does the GB 32100-2015 check refuse each kind of mistake with its own message?"""
    with pytest.raises(InvalidInput) as refused:
        check_credit_code(raw)
    assert refused.value.message == message


@pytest.mark.parametrize("code", ["91350100M000100Y43", "91110000802100433B",
                                  "91310000717854505W"])
def test_real_credit_codes_pass(code):
    """Do published codes of real companies pass the check character test?"""
    assert check_credit_code(code) == code


def test_a_personal_invoice_needs_a_title_and_an_email(buyer):
    """Does 立即申请 without title or email name both fields?"""
    trainee, _ = buyer
    with pytest.raises(InvalidInput) as refused:
        orders.open_order(trainee, support.plan(), [trainee], kind="individual",
                          invoice_request={"title_kind": "personal", "title": " ",
                                           "email": "not-an-email"})
    assert set(refused.value.fields) == {"invoice_title", "invoice_email"}


# --- open_order for the group purchase -------------------------------------------------------

def test_a_group_order_is_priced_per_trainee(buyer):
    """Is a group order of three trainees 3 × the plan's price, with a line each?"""
    trainee, _ = buyer
    colleagues = [factories.trainee(name=f"同事{n}") for n in range(3)]

    order = orders.open_order(trainee, support.plan("ZY-EDU-2024"), colleagues, kind="group")

    assert order.amount_fen == 3 * 9000
    assert sorted(item.trainee_id for item in order.items) == sorted(c.id for c in colleagues)


def test_a_trainee_on_an_open_line_cannot_join_another_order(buyer):
    """A trainee with an unpaid individual order: is a group order including them refused
    with already_in_open_order naming them, and the individual order still reused?"""
    trainee, _ = buyer
    mine = orders.open_order(trainee, support.plan(), [trainee], kind="individual")
    db.session.commit()
    organiser = factories.trainee(name="组织者")
    other = factories.trainee(name="同事")

    with pytest.raises(orders.AlreadyInOpenOrder) as refused:
        orders.open_order(organiser, support.plan(), [other, trainee], kind="group")

    assert refused.value.code == "already_in_open_order"
    assert refused.value.trainee_ids == [trainee.id]
    db.session.rollback()
    again = orders.open_order(trainee, support.plan(), [trainee], kind="individual")
    assert again.id == mine.id


def test_the_database_refuses_a_second_open_line(buyer):
    """Even past the checks, does the open_key unique key refuse a second unpaid line?"""
    trainee, _ = buyer
    order = orders.open_order(trainee, support.plan(), [trainee], kind="individual")
    db.session.commit()

    duplicate = Order(out_trade_no=orders.new_out_trade_no(), kind="individual",
                      buyer_id=trainee.id, plan_id=order.plan_id, amount_fen=3300,
                      state="pending", invoice_choice="later", needs_review=False,
                      expires_at=order.expires_at)
    duplicate.items = [OrderItem(trainee_id=trainee.id, plan_id=order.plan_id, price_fen=3300,
                                 state="pending",
                                 open_key=orders.open_key(trainee.id, order.plan_id))]
    db.session.add(duplicate)
    with pytest.raises(sa.exc.IntegrityError) as refused:
        db.session.flush()
    assert "open_key" in str(refused.value.orig)


def test_outside_wechat_against_real_wechat_pay_the_page_says_open_in_wechat(app, app_settings):
    """Configured for WeChat Pay's real host, in a desktop browser: does the pay page say
    请在微信中打开完成支付 instead of offering a payment, and the API refuse plainly?"""
    from wx_app import create_app

    real = create_app({**app_settings, "WECHATPAY_API_BASE": "https://api.mch.weixin.qq.com/"})
    browser = real.test_client()
    with real.app_context():
        support.catalogue()
        trainee = factories.trainee()
        order = orders.open_order(trainee, support.plan(), [trainee], kind="individual")
        db.session.commit()
        csrf = support.logged_in(real, browser, trainee)
        number = order.out_trade_no

    page = browser.get(f"/h5/orders/{number}/pay").text
    refused = browser.post(f"/h5/api/orders/{number}/pay-params",
                           headers={"X-CSRF-Token": csrf})

    assert "请在微信中打开完成支付" in page and 'id="pay-button"' not in page
    assert refused.status_code == 409
    assert refused.get_json() == {"code": "open_in_wechat", "message": "请在微信中打开完成支付。"}


@pytest.mark.parametrize("bound", [True, False], ids=["bound WeChat", "no WeChat at all"])
def test_a_desktop_browser_pays_at_the_sandbox(buyer, client, live_server, sandbox_url, bound):
    """Outside WeChat, against the sandbox: does pay-params send the browser to the
    sandbox's payment page, the payer being the trainee's bound WeChat user, or else a
    sandbox user made for the trainee (the same one on every attempt)?"""
    trainee, csrf = buyer
    if bound:
        factories.binding(support.ZHANG_WEI, trainee)
    order = orders.open_order(trainee, support.plan(), [trainee], kind="individual")
    db.session.commit()

    answers = [client.post(f"/h5/api/orders/{order.out_trade_no}/pay-params",
                           headers={"X-CSRF-Token": csrf}).get_json() for _ in range(2)]

    assert [answer["mode"] for answer in answers] == ["sandbox", "sandbox"]
    assert answers[0]["redirect"] == answers[1]["redirect"]
    assert answers[0]["redirect"].startswith(f"{sandbox_url}/sandbox/pay/confirm?prepay_id=wx")
    assert f"/h5/orders/{order.out_trade_no}" in requests.utils.unquote(answers[0]["redirect"])
    payer = support.sandbox_transaction(sandbox_url, order.out_trade_no)["payer_openid"]
    if bound:
        assert payer == support.ZHANG_WEI
    else:
        users = requests.get(f"{sandbox_url}/sandbox/api/users", timeout=5).json()["users"]
        assert {user["nickname"] for user in users if user["openid"] == payer} == {
            f"学员{trainee.id}"}
