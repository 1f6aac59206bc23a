"""团体购买: checking a pasted list of ID numbers, the error file, one order for the valid
ones paid through the sandbox, and 团购订单."""

from __future__ import annotations

import io
from datetime import date, timedelta

import openpyxl
import pytest
import requests
import sqlalchemy as sa

from tests import factories
from tests.auth_support import account, csrf_from, log_in
from tests.support import StatementCounter
from wx_app import group_purchase
from wx_app.extensions import db
from wx_app.id_numbers import check_character
from wx_app.models import Enrollment, Invoice, Order, OrderItem, Trainee
from wx_app.models._types import utcnow
from wx_app.passwords import INITIAL_PASSWORD_HASH
from wx_app.personal_data import encrypt, lookup_hash, mask_id_number

PLAN = "GX-2023"
PRICE_FEN = 3300


def number(serial: int) -> str:
    """A distinct valid fictitious ID number per serial (one birth date each, from 1960 on)."""
    birth = date(1960, 1, 1) + timedelta(days=serial % 20_000)
    sequence = 300 + serial // 20_000 * 2 + serial % 2
    first_seventeen = f"500103{birth:%Y%m%d}{sequence:03d}"
    return first_seventeen + check_character(first_seventeen)


def number_ending_in_x(start: int = 5000) -> str:
    serial = start
    while not number(serial).endswith("X"):
        serial += 1
    return number(serial)


def with_bad_check(valid: str) -> str:
    return valid[:17] + ("1" if valid[17] != "1" else "2")


def register(numbers: list[str], *, names: str = "学员") -> list[int]:
    """Accounts for `numbers` in one multi-row INSERT (initial password: no scrypt)."""
    now = utcnow()
    db.session.execute(sa.insert(Trainee.__table__), [{
        "name": f"{names}{index}", "id_number_enc": encrypt(value),
        "id_number_hash": lookup_hash(value), "id_number_masked": mask_id_number(value),
        "id_kind": "resident", "gender": "M" if int(value[16]) % 2 else "F",
        "birth_date": date(int(value[6:10]), int(value[10:12]), int(value[12:14])),
        "password_hash": INITIAL_PASSWORD_HASH, "must_change_password": False,
        "status": "active", "source": "roster", "session_epoch": 0,
        "created_at": now, "updated_at": now,
    } for index, value in enumerate(numbers)])
    hashes = [lookup_hash(value) for value in numbers]
    by_hash = dict(db.session.execute(
        sa.select(Trainee.id_number_hash, Trainee.id).where(Trainee.id_number_hash.in_(hashes))
    ).all())
    return [by_hash[value] for value in hashes]


def open_line(trainee_id: int, plan, buyer_id: int | None = None) -> None:
    """A line of someone else's unpaid order for `plan`, as the order module leaves it."""
    order = Order(out_trade_no=f"T{trainee_id:08d}X{plan.id:04d}", kind="individual",
                  buyer_id=buyer_id or trainee_id, plan_id=plan.id, amount_fen=plan.price_fen,
                  expires_at=utcnow() + timedelta(minutes=30))
    db.session.add(order)
    db.session.flush()
    db.session.add(OrderItem(order_id=order.id, trainee_id=trainee_id, plan_id=plan.id,
                             price_fen=plan.price_fen, open_key=f"{trainee_id}:{plan.id}"))
    db.session.flush()


def every_kind_of_line(plan) -> tuple[str, dict]:
    """Pasted text with one line of each kind, and what each line should come to.

    Returns the text and {"valid": [line numbers], reason code: [line numbers]…}.
    """
    good, full_width_good, x_good, enrolled, ordered = (
        number(1), number(2), number_ending_in_x(), number(3), number(4))
    ids = register([good, full_width_good, x_good, enrolled, ordered])
    db.session.add(Enrollment(trainee_id=ids[3], plan_id=plan.id))
    open_line(ids[4], plan)
    db.session.commit()

    full_width = full_width_good.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ"))
    lines = [
        good,                              # 1 valid
        "",                                # 2 blank: dropped
        f"  {full_width}\u3000",          # 3 full-width with spaces: valid
        x_good.lower(),                    # 4 lower-case x: valid
        "50010319900307123",               # 5 seventeen characters: format
        with_bad_check(number(5)),         # 6 check character wrong
        "500103199002301234",              # 7 30 February: birth date
        number(6),                         # 8 valid, but no account
        enrolled,                          # 9 already enrolled
        ordered,                           # 10 on a line of another unpaid order
        f" {good} ",                       # 11 repeats line 1
        "   ",                             # 12 blank
        "张三 500103",                      # 13 not a number at all: format
    ]
    expected = {
        "valid": [1, 3, 4],
        group_purchase.INVALID_FORMAT: [5, 13],
        group_purchase.INVALID_CHECKSUM: [6],
        group_purchase.INVALID_BIRTH_DATE: [7],
        group_purchase.NOT_REGISTERED: [8],
        group_purchase.ALREADY_ENROLLED: [9],
        group_purchase.IN_OPEN_ORDER: [10],
        group_purchase.REPEATED: [11],
    }
    return "\r\n".join(lines), expected


REASON_WORDS = {
    group_purchase.INVALID_FORMAT: "身份证号码",
    group_purchase.INVALID_CHECKSUM: "校验位",
    group_purchase.INVALID_BIRTH_DATE: "出生日期",
    group_purchase.NOT_REGISTERED: "未注册",
    group_purchase.ALREADY_ENROLLED: "已购买该计划",
    group_purchase.IN_OPEN_ORDER: "已在其他待支付订单中",
    group_purchase.REPEATED: "重复：与第1行相同",
}


@pytest.fixture
def catalog(app):
    with app.app_context():
        factories.sample_catalog()
        db.session.commit()


def buyer_client(app, client):
    """The test client logged in as a buyer; returns the buyer's account."""
    buyer = account(app, name="刘老师")
    log_in(client, buyer.id_number, buyer.password)
    return buyer


def group_form(client, text: str, action: str = "check", **fields):
    token = csrf_from(client.get(f"/h5/plans/{PLAN}/group").text)
    return client.post(f"/h5/plans/{PLAN}/group",
                       data={"id_numbers": text, "action": action, "csrf_token": token,
                             **fields})


# --- checking ---------------------------------------------------------------------------

def test_every_kind_of_line_comes_to_its_reason(ctx, catalog):
    """Does each pasted line end up valid or with its own reason, blank lines dropped?"""
    plan = factories.plan(PLAN)
    text, expected = every_kind_of_line(plan)

    check = group_purchase.check_id_lines(plan, text)

    assert [line.line_number for line in check.valid] == expected.pop("valid")
    found: dict[str, list[int]] = {}
    for problem in check.problems:
        found.setdefault(problem.reason_code, []).append(problem.line_number)
    assert found == expected
    assert check.line_count == 11 and check.valid_count == 3 and check.problem_count == 8
    assert check.amount_fen == 3 * PRICE_FEN
    for problem in check.problems:
        assert REASON_WORDS[problem.reason_code] in problem.reason


def test_full_width_and_lower_case_x_find_the_account(ctx, catalog):
    """Are a full-width number and a lower-case x taken as the registered numbers they are?"""
    plan = factories.plan(PLAN)
    x_number = number_ending_in_x()
    plain = number(7)
    ids = register([x_number, plain])
    full_width = plain.translate(str.maketrans("0123456789", "０１２３４５６７８９"))

    check = group_purchase.check_id_lines(plan, f"{x_number.lower()}\n\n\n{full_width}\n")

    assert [line.trainee.id for line in check.valid] == ids
    assert [line.line_number for line in check.valid] == [1, 4]
    assert check.problems == []


def test_problem_lines_show_masked_numbers(ctx, catalog):
    """Does a problem line carry the number masked for the page, and in full only for the
    error file?"""
    plan = factories.plan(PLAN)
    unregistered = number(8)

    check = group_purchase.check_id_lines(plan, unregistered)

    (problem,) = check.problems
    assert problem.masked == f"{unregistered[:4]}**********{unregistered[-4:]}"
    assert problem.pasted == unregistered
    assert unregistered not in str(problem.to_dict())


def test_check_statements_do_not_grow_with_the_list(ctx, catalog):
    """Does checking 1,000 numbers take as many SQL statements as checking 10?"""
    plan = factories.plan(PLAN)
    numbers = [number(serial) for serial in range(100, 1100)]
    ids = register(numbers)
    db.session.add_all(Enrollment(trainee_id=trainee_id, plan_id=plan.id)
                       for trainee_id in ids[::7])
    db.session.commit()
    plan = factories.plan(PLAN)
    small, large = "\n".join(numbers[:10]), "\n".join(numbers)

    with StatementCounter(db.engine) as for_ten:
        small_check = group_purchase.check_id_lines(plan, small)
    with StatementCounter(db.engine) as for_thousand:
        large_check = group_purchase.check_id_lines(plan, large)

    assert small_check.valid_count == 8 and large_check.valid_count == 1000 - 143
    assert for_ten.count == for_thousand.count == 3


def test_more_than_2000_lines_are_refused(ctx, catalog):
    """Is a list of 2,001 numbers refused as a whole, with the limit said in Chinese, while
    2,000 numbers and blank lines between them are taken?"""
    plan = factories.plan(PLAN)
    numbers = [number(serial) for serial in range(2000, 4001)]

    with pytest.raises(group_purchase.TooManyLines) as refused:
        group_purchase.check_id_lines(plan, "\n".join(numbers))
    check = group_purchase.check_id_lines(plan, "\n\n".join(numbers[:2000]))

    assert refused.value.code == "too_many_lines"
    assert "一次最多购买2000人" in refused.value.message and "2001行" in refused.value.message
    assert check.line_count == 2000 and check.problem_count == 2000


def test_error_file_lists_every_problem_line(ctx, catalog):
    """Does the error file hold 行号, 身份证号 as pasted and 原因 for each problem line,
    with the numbers as text and a pasted formula kept as text?"""
    plan = factories.plan(PLAN)
    text, expected = every_kind_of_line(plan)
    text += "\n=HYPERLINK(\"http://example.com\")\n\x07500103"

    check = group_purchase.check_id_lines(plan, text)
    sheet = openpyxl.load_workbook(io.BytesIO(group_purchase.error_workbook(check))).active
    rows = list(sheet.iter_rows(values_only=True))

    assert rows[0] == ("行号", "身份证号", "原因")
    assert [row[0] for row in rows[1:]] == [5, 6, 7, 8, 9, 10, 11, 13, 14, 15]
    pasted = text.splitlines()
    for row in rows[1:9]:
        assert row[1] == pasted[row[0] - 1].strip()
    assert rows[8][1] == "张三 500103"
    assert rows[9][1] == '=HYPERLINK("http://example.com")'
    assert sheet.cell(row=10, column=2).data_type == "s"
    assert rows[10][1] == "500103"  # the control character dropped
    reasons = dict((row[0], row[2]) for row in rows[1:])
    for code, line_numbers in expected.items():
        for line_number in line_numbers:
            if code != "valid":
                assert REASON_WORDS[code] in reasons[line_number]


# --- the page -------------------------------------------------------------------------------

def test_page_shows_counts_and_problems(app, client, catalog):
    """Does 检查 show 有效 N 人，问题 N 行，合计 金额 and each problem line with its reason,
    the numbers masked, the pasted list kept in the form?"""
    buyer_client(app, client)
    with app.app_context():
        text, expected = every_kind_of_line(factories.plan(PLAN))

    page = group_form(client, text).text

    assert 'data-count="valid">3<' in page and 'data-count="problems">8<' in page
    assert 'data-count="amount">99.00<' in page
    for code, line_numbers in expected.items():
        if code != "valid":
            assert page.count(f'data-reason="{code}"') == len(line_numbers)
    for word in REASON_WORDS.values():
        assert word in page
    assert "下载错误文件" in page and "提交订单" in page
    assert "立即申请" in page and "以后申请" in page
    unregistered = number(6)
    assert unregistered not in page.split("</textarea>")[1]
    assert mask_id_number(unregistered) in page


def test_download_error_file_from_the_page(app, client, catalog):
    """Does 下载错误文件 answer an xlsx of the posted list's problem lines, not cached?"""
    buyer_client(app, client)
    with app.app_context():
        text, _ = every_kind_of_line(factories.plan(PLAN))
    token = csrf_from(client.get(f"/h5/plans/{PLAN}/group").text)

    answer = client.post(f"/h5/plans/{PLAN}/group/errors.xlsx",
                         data={"id_numbers": text, "csrf_token": token})

    assert answer.status_code == 200
    assert answer.mimetype.endswith("spreadsheetml.sheet")
    assert "attachment" in answer.headers["Content-Disposition"]
    assert answer.headers["Cache-Control"] == "no-store"
    rows = list(openpyxl.load_workbook(io.BytesIO(answer.data)).active.iter_rows(
        values_only=True))
    assert len(rows) == 1 + 8


def test_page_refuses_more_than_2000_lines(app, client, catalog):
    """Does the page say plainly that 2,001 lines are too many, keeping the list?"""
    buyer_client(app, client)
    text = "\n".join(number(serial) for serial in range(2001))

    answer = group_form(client, text)

    assert answer.status_code == 400
    assert "一次最多购买2000人，您粘贴了2001行" in answer.text
    assert text in answer.text  # the list stays in the textarea, to be cut down


def test_an_enormous_paste_is_refused_before_it_is_read(app, client, catalog):
    """Is a body over the group pages' limit refused with 413 and a Chinese message?"""
    buyer_client(app, client)
    token = csrf_from(client.get(f"/h5/plans/{PLAN}/group").text)
    text = "5" * (600 * 1024)

    page = client.post(f"/h5/plans/{PLAN}/group",
                       data={"id_numbers": text, "action": "check", "csrf_token": token})
    api = client.post("/h5/api/group-check", json={"plan": PLAN, "id_numbers": text},
                      headers={"X-CSRF-Token": token})

    assert page.status_code == 413 and "一次最多粘贴2000个身份证号码" in page.text
    assert api.status_code == 413 and api.json["code"] == "too_large"


def test_check_api_answers_counts_and_problems(app, client, catalog):
    """Does POST /h5/api/group-check (with the CSRF header) answer the counts, the valid
    trainees and the problems, with masked numbers only?"""
    buyer_client(app, client)
    with app.app_context():
        text, expected = every_kind_of_line(factories.plan(PLAN))
    token = csrf_from(client.get(f"/h5/plans/{PLAN}/group").text)

    refused = client.post("/h5/api/group-check", json={"plan": PLAN, "id_numbers": text})
    answer = client.post("/h5/api/group-check", json={"plan": PLAN, "id_numbers": text},
                         headers={"X-CSRF-Token": token})

    assert refused.status_code == 403 and refused.json["code"] == "csrf_failed"
    body = answer.json
    assert (body["valid"], body["problems"], body["amount_fen"]) == (3, 8, 3 * PRICE_FEN)
    assert [line["line"] for line in body["valid_lines"]] == expected["valid"]
    assert [line["code"] for line in body["problem_lines"]][:3] == [
        "invalid_format", "invalid_checksum", "invalid_birth_date"]
    assert number(6) not in answer.text and number(1) not in answer.text


def test_group_pages_need_a_login(client, catalog):
    """Are the group page and 团购订单 behind the login?"""
    assert client.get(f"/h5/plans/{PLAN}/group").status_code == 302
    assert client.get("/h5/group-orders").status_code == 302


def test_unknown_plan_is_404(app, client, catalog):
    """Does a plan code that does not exist answer the Chinese 404 page?"""
    buyer_client(app, client)

    answer = client.get("/h5/plans/NO-SUCH/group")

    assert answer.status_code == 404 and "没有找到该培训计划" in answer.text


# --- the order ------------------------------------------------------------------------------

def credit_code(body: str = "91500000MA5U7YQX0") -> str:
    """A 统一社会信用代码 with its GB 32100 check character."""
    from wx_app.credit_codes import check_character as credit_check

    return body + credit_check(body)


def test_one_order_for_the_valid_lines_at_count_times_price(app, client, catalog):
    """Does 提交订单 make one pending group order of the valid trainees only, priced valid
    count × plan price, one line each, and go to its pay page?"""
    buyer = buyer_client(app, client)
    with app.app_context():
        text, _ = every_kind_of_line(factories.plan(PLAN))
        valid_ids = [line.trainee.id for line in
                     group_purchase.check_id_lines(factories.plan(PLAN), text).valid]

    answer = group_form(client, text, "submit", expected_count="3", invoice_choice="later")

    with app.app_context():
        (order,) = db.session.scalars(sa.select(Order).where(Order.buyer_id == buyer.id)).all()
        assert answer.status_code == 303
        assert answer.headers["Location"] == f"/h5/orders/{order.out_trade_no}/pay"
        assert (order.kind, order.state, order.invoice_choice) == ("group", "pending", "later")
        assert order.amount_fen == 3 * PRICE_FEN
        assert [(item.trainee_id, item.price_fen, item.state) for item in order.items] == [
            (trainee_id, PRICE_FEN, "pending") for trainee_id in valid_ids]
    assert "团体购买" in client.get(answer.headers["Location"]).text


def test_invoice_now_asks_one_invoice_for_the_whole_order(app, client, catalog):
    """Does 立即申请 with a company title ask one invoice of the order's whole amount, and do
    bad invoice fields show under their fields without making an order?"""
    buyer = buyer_client(app, client)
    with app.app_context():
        ids = register([number(serial) for serial in range(600, 605)])
        db.session.commit()
    text = "\n".join(number(serial) for serial in range(600, 605))
    invoice = {"invoice_choice": "now", "invoice_title_kind": "company",
               "invoice_title": "重庆市渝北区人民医院", "invoice_email": "caiwu@example.cn"}

    refused = group_form(client, text, "submit", expected_count="5",
                         **{**invoice, "invoice_tax_number": "915000001234"})
    answer = group_form(client, text, "submit", expected_count="5",
                        **{**invoice, "invoice_tax_number": credit_code()})

    assert refused.status_code == 400
    assert 'id="f-invoice_tax_number-error"' in refused.text and "18位" in refused.text
    assert answer.status_code == 303
    with app.app_context():
        (order,) = db.session.scalars(sa.select(Order).where(Order.buyer_id == buyer.id)).all()
        (requested,) = db.session.scalars(sa.select(Invoice)).all()
        assert order.invoice_choice == "now" and len(order.items) == len(ids)
        assert (requested.order_id, requested.amount_fen, requested.title_kind) == (
            order.id, 5 * PRICE_FEN, "company")


def test_a_changed_check_refuses_the_order(app, client, catalog):
    """When the list checks differently at 提交订单 than the buyer saw (a trainee bought the
    plan meanwhile), is the order refused with the new counts shown, and nothing made?"""
    buyer_client(app, client)
    numbers = [number(serial) for serial in range(700, 704)]
    with app.app_context():
        ids = register(numbers)
        db.session.commit()
    text = "\n".join(numbers)
    assert 'data-count="valid">4<' in group_form(client, text).text
    with app.app_context():
        db.session.add(Enrollment(trainee_id=ids[2], plan_id=factories.plan(PLAN).id))
        db.session.commit()

    answer = group_form(client, text, "submit", expected_count="4", invoice_choice="later")

    assert answer.status_code == 409
    assert "名单的检查结果有变化" in answer.text and 'data-count="valid">3<' in answer.text
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Order.id))) == 0


def test_a_list_without_valid_lines_makes_no_order(app, client, catalog):
    """Is 提交订单 for a list with no valid line refused in Chinese, making no order?"""
    buyer_client(app, client)

    answer = group_form(client, f"{number(800)}\n123", "submit", invoice_choice="later")

    assert answer.status_code == 400 and "名单中没有可以购买的学员" in answer.text
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Order.id))) == 0


def test_a_plan_not_open_cannot_be_ordered(app, client, catalog):
    """Does a plan not yet open say so on the group page and refuse an order?"""
    buyer_client(app, client)
    with app.app_context():
        register([number(810)])
        db.session.commit()
    token = csrf_from(client.get("/h5/plans/GX-2024/group").text)

    page = client.get("/h5/plans/GX-2024/group").text
    answer = client.post("/h5/plans/GX-2024/group",
                         data={"id_numbers": number(810), "action": "submit",
                               "invoice_choice": "later", "csrf_token": token})

    assert "该计划尚未开放购买" in page
    assert answer.status_code == 409 and "暂未开放" in answer.text


# --- paying through the sandbox ---------------------------------------------------------------

def sandbox(sandbox_url: str, path: str, body: dict | None = None) -> dict:
    answer = requests.post(f"{sandbox_url}/sandbox/api/{path}", json=body or {}, timeout=10)
    answer.raise_for_status()
    return answer.json() if answer.content else {}


def run_jobs(app) -> None:
    from rq import SimpleWorker

    from wx_app import jobs, store

    with app.app_context():
        SimpleWorker([jobs.queue()], connection=store.client()).work(burst=True)


def item_states(app, out_trade_no: str) -> dict[int, str]:
    with app.app_context():
        return dict(db.session.execute(
            sa.select(OrderItem.trainee_id, OrderItem.state).join(Order)
            .where(Order.out_trade_no == out_trade_no)).all())


def test_paid_group_order_enrolls_everyone_and_refunds_a_line_enrolled_meanwhile(
        app, client, live_server, sandbox_url, catalog):
    """Paid at the sandbox (one notification), is every listed trainee enrolled at once,
    except one enrolled meanwhile by another order, whose line is refunded automatically,
    and does 团购订单 show each trainee's state?"""
    import time

    sandbox(sandbox_url, "pay/options/reset")
    buyer = buyer_client(app, client)
    numbers = [number(serial) for serial in range(900, 904)]
    with app.app_context():
        ids = register(numbers, names="赵")
        db.session.commit()
    answer = group_form(client, "\n".join(numbers), "submit", expected_count="4",
                        invoice_choice="later")
    out_trade_no = answer.headers["Location"].split("/")[-2]

    # Meanwhile the fourth trainee gets the plan through an order of their own.
    with app.app_context():
        plan = factories.plan(PLAN)
        other = stored_group_order(ids[3], plan, [ids[3]], ["enrolled"], serial=99,
                                   kind="individual")
        item_id = db.session.scalar(sa.select(OrderItem.id).join(Order)
                                    .where(Order.out_trade_no == other))
        db.session.add(Enrollment(trainee_id=ids[3], plan_id=plan.id, order_item_id=item_id))
        db.session.commit()

    token = csrf_from(client.get(answer.headers["Location"]).text)
    start = client.post(f"/h5/api/orders/{out_trade_no}/pay-params",
                        headers={"X-CSRF-Token": token})
    paid = sandbox(sandbox_url, "pay/confirm", {"out_trade_no": out_trade_no, "notify": "once"})

    assert start.json["mode"] == "sandbox" and paid["trade_state"] == "SUCCESS"
    states = item_states(app, out_trade_no)
    assert [states[trainee_id] for trainee_id in ids] == ["enrolled"] * 3 + ["refunding"]
    with app.app_context():
        enrolled = db.session.execute(
            sa.select(Enrollment.trainee_id, OrderItem.order_id)
            .join(OrderItem, OrderItem.id == Enrollment.order_item_id)
            .where(Enrollment.trainee_id.in_(ids))).all()
        order = db.session.scalar(sa.select(Order).where(Order.out_trade_no == out_trade_no))
        assert order.state == "paid" and order.amount_fen == 4 * PRICE_FEN
        assert sorted(trainee_id for trainee_id, order_id in enrolled
                      if order_id == order.id) == ids[:3]

    run_jobs(app)  # the automatic refund goes to WeChat Pay
    deadline = time.monotonic() + 15
    while item_states(app, out_trade_no)[ids[3]] != "refunded" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert item_states(app, out_trade_no)[ids[3]] == "refunded"

    page = client.get("/h5/group-orders").text
    assert out_trade_no in page and "已开通3人 · 已退款1人" in page
    assert "部分退款" in page
    for index, value in enumerate(numbers):
        assert f"赵{index}" in page and mask_id_number(value) in page and value not in page
    assert page.count('<tr data-state="enrolled">') == 3
    assert page.count('<tr data-state="refunded">') == 1
    assert buyer.id not in ids


# --- 团购订单 --------------------------------------------------------------------------------

def stored_group_order(buyer_id: int, plan, trainee_ids: list[int], states: list[str], *,
                       serial: int, order_state: str = "paid", age_minutes: int = 0,
                       kind: str = "group") -> str:
    """An order as payment and refunds leave it, with one line in each given state."""
    order = Order(out_trade_no=f"G{serial:010d}", kind=kind, buyer_id=buyer_id,
                  plan_id=plan.id, amount_fen=len(trainee_ids) * plan.price_fen,
                  state=order_state, expires_at=utcnow() + timedelta(minutes=30),
                  created_at=utcnow() - timedelta(minutes=age_minutes))
    db.session.add(order)
    db.session.flush()
    db.session.execute(sa.insert(OrderItem.__table__), [
        {"order_id": order.id, "trainee_id": trainee_id, "plan_id": plan.id,
         "price_fen": plan.price_fen, "state": state,
         "open_key": f"{trainee_id}:{plan.id}" if state == "pending" else None}
        for trainee_id, state in zip(trainee_ids, states, strict=True)])
    return order.out_trade_no


def test_group_orders_list_each_trainee_state(app, client, catalog):
    """Does 团购订单 list the buyer's group orders newest first, each trainee with name,
    masked ID and the item state in Chinese, and nobody else's orders?"""
    buyer = buyer_client(app, client)
    numbers = [number(serial) for serial in range(300, 305)]
    with app.app_context():
        plan = factories.plan(PLAN)
        ids = register(numbers, names="王")
        older = stored_group_order(buyer.id, plan, ids[:2], ["enrolled", "refunded"], serial=1,
                                   age_minutes=60)
        newer = stored_group_order(buyer.id, plan, ids[2:], ["pending"] * 3, serial=2,
                                   order_state="pending")
        stored_group_order(ids[0], plan, ids[4:], ["enrolled"], serial=3)  # not the buyer's
        db.session.commit()

    page = client.get("/h5/group-orders").text

    assert "<title>团购订单</title>" in page
    assert page.index(newer) < page.index(older) and "G0000000003" not in page
    assert "待支付3人" in page and "已开通1人 · 已退款1人" in page
    for index, value in enumerate(numbers[:4]):
        assert f"王{index}" in page and mask_id_number(value) in page and value not in page
    assert page.count('<tr data-state="pending"><td>') == 3
    assert f'href="/h5/orders/{newer}/pay">去支付' in page
    assert f"/h5/orders/{older}/pay" not in page
    assert client.get("/h5/group-orders/G0000000003").status_code == 404


def test_group_orders_are_paged_with_a_bounded_number_of_statements(app, client, catalog):
    """Are 团购订单 paged ten orders at a time, in as many SQL statements for 12 orders as
    for 2, and does a large order link to all of its trainees, paged in turn?"""
    buyer = buyer_client(app, client)
    with app.app_context():
        plan = factories.plan(PLAN)
        ids = register([number(serial) for serial in range(400, 460)])
        for serial in range(2):
            stored_group_order(buyer.id, plan, ids[serial:serial + 1], ["enrolled"],
                               serial=serial, age_minutes=100 - serial)
        db.session.commit()
    client.get("/h5/group-orders")
    with app.app_context(), StatementCounter(db.engine) as for_two:
        client.get("/h5/group-orders")
    with app.app_context():
        plan = factories.plan(PLAN)
        for serial in range(2, 11):
            stored_group_order(buyer.id, plan, ids[serial:serial + 1], ["enrolled"],
                               serial=serial, age_minutes=100 - serial)
        stored_group_order(buyer.id, plan, ids[:55], ["enrolled"] * 55, serial=11)
        db.session.commit()

    with app.app_context(), StatementCounter(db.engine) as for_twelve:
        first = client.get("/h5/group-orders").text
    second = client.get("/h5/group-orders?page=2").text
    detail = client.get("/h5/group-orders/G0000000011").text
    detail_2 = client.get("/h5/group-orders/G0000000011?page=2").text

    assert for_twelve.count == for_two.count
    assert "第1/2页" in first and "G0000000000" not in first and "G0000000000" in second
    assert first.index("G0000000011") < first.index("G0000000010")
    assert first.count('<tr data-state="enrolled">') == 20 + 9
    assert "查看全部55人" in first
    assert detail.count('<tr data-state="enrolled">') == 50 and "第1/2页" in detail
    assert detail_2.count('<tr data-state="enrolled">') == 5
    assert client.get("/h5/group-orders/G9999999999").status_code == 404


# --- in the browser -------------------------------------------------------------------------

@pytest.mark.browser
def test_group_purchase_in_the_phone_browser(page, live_server, app, catalog):
    """At phone size, can a buyer log in, paste a list, 检查 it, see the counts and problems,
    下载错误文件 as an xlsx, and 提交订单 to reach the pay page?"""
    from tests.test_auth_browser import assert_fits_the_phone

    buyer = account(app, name="刘老师")
    numbers = [number(serial) for serial in range(500, 504)]
    with app.app_context():
        # Bound to a WeChat user, the pay page knows the payer without going through OAuth.
        factories.binding("o-group-buyer", db.session.get(Trainee, buyer.id))
        ids = register(numbers)
        db.session.add(Enrollment(trainee_id=ids[3], plan_id=factories.plan(PLAN).id))
        db.session.commit()
    pasted = "\n".join([numbers[0], numbers[1].lower(), "", with_bad_check(numbers[2]),
                        numbers[3], number(509), numbers[0]])

    page.goto(f"{live_server}/h5/login?next=/h5/plans/{PLAN}/group")
    page.get_by_label("用户名").fill(buyer.id_number)
    page.get_by_label("密码").fill(buyer.password)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{live_server}/h5/plans/{PLAN}/group")
    assert page.title() == "团体购买"
    assert "仅复制身份证号码，每行一个" in page.locator(".wx-group-notes").inner_text()

    page.get_by_label("身份证号码（每行一个）").fill(pasted)
    page.get_by_role("button", name="检查").click()
    page.wait_for_load_state("load")
    summary = page.get_by_role("status").filter(has_text="有效")
    assert summary.inner_text().split() == ["有效", "2", "人，问题", "4", "行，合计", "66.00", "元"]
    reasons = page.locator("table[aria-label='有问题的行'] tbody tr").all_inner_texts()
    assert [reason.split("\t")[0] for reason in reasons] == ["4", "5", "6", "7"]
    assert "校验位" in reasons[0] and "已购买该计划" in reasons[1]
    assert "未注册" in reasons[2] and "重复：与第1行相同" in reasons[3]
    assert page.get_by_label("身份证号码（每行一个）").input_value() == pasted
    assert_fits_the_phone(page)

    with page.expect_download() as download_info:
        page.get_by_role("button", name="下载错误文件").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".xlsx")
    workbook = openpyxl.load_workbook(io.BytesIO(download.path().read_bytes()))
    rows = list(workbook.active.iter_rows(values_only=True))
    assert rows == [("行号", "身份证号", "原因"),
                    (4, with_bad_check(numbers[2]), rows[1][2]),
                    (5, numbers[3], "已购买该计划。"),
                    (6, number(509), group_purchase.REASONS["not_registered"]),
                    (7, numbers[0], "重复：与第1行相同。")]

    page.get_by_label("以后申请").check()
    page.get_by_role("button", name="提交订单").click()
    page.wait_for_url("**/h5/orders/*/pay")
    assert page.title() != "出错了"
    with app.app_context():
        order = db.session.scalar(sa.select(Order).where(Order.buyer_id == buyer.id))
        assert page.url.endswith(f"/h5/orders/{order.out_trade_no}/pay")
        assert (order.kind, order.amount_fen, len(order.items)) == ("group", 2 * PRICE_FEN, 2)

    page.goto(f"{live_server}/h5/group-orders")
    card = page.locator(f"[data-order='{order.out_trade_no}']")
    assert card.locator("[data-state]").inner_text() == "待支付"
    assert page.locator("tr[data-state='pending']").count() == 2
    assert_fits_the_phone(page)
