"""在线学习中心's catalogue: 专技人员公需科目 by year, 专技人员专业科目 by title series and year,
and a plan's page with its courses, 学分要求, price and 立即购买 (or 进入学习)."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from tests import factories
from tests import orders_support as support
from tests.support import StatementCounter
from wx_app import orders
from wx_app.extensions import db
from wx_app.models import Plan, PlanCourse, TitleSeries


def add_plans(count: int) -> None:
    """More 公需 and 专业 plans (with a new series), as a later catalogue would bring."""
    series = TitleSeries(code="extra", name="档案", sort_order=90)
    db.session.add(series)
    course_id = db.session.scalar(sa.select(PlanCourse.course_id).limit(1))
    for n in range(count):
        for category, series_id, price in (("public", None, 3300),
                                           ("professional", series, 9000)):
            plan = Plan(code=f"X-{category[:3]}-{n}", category=category, plan_year=2010 + n,
                        title_series=series_id, name=f"{2010 + n}年度测试计划{n}",
                        required_hours=30 if category == "public" else 60, price_fen=price,
                        status="open", sort_order=0)
            plan.plan_courses = [PlanCourse(course_id=course_id, position=1)]
            db.session.add(plan)
    db.session.commit()


def plan_names(html: str) -> list[str]:
    return re.findall(r'<span class="wx-plan__name">([^<]+)</span>', html)


def test_public_plans_are_listed_by_year_with_their_state(ctx, client):
    """Are 公需 plans listed newest year first, each with 学分要求 and price, 2024 marked
    暂未开放?"""
    support.catalogue()

    html = client.get("/h5/plans/public").text

    assert "<title>专技人员公需科目</title>" in html
    assert re.findall(r'<h2 class="wx-plan-group__title">([^<]+)</h2>', html) == [
        "2024年度", "2023年度", "2022年度", "2021年度"]
    gx_2024 = re.search(r'data-plan="GX-2024">(.*?)</a>', html, re.S).group(1)
    gx_2023 = re.search(r'data-plan="GX-2023">(.*?)</a>', html, re.S).group(1)
    assert "暂未开放" in gx_2024 and "暂未开放" not in gx_2023
    assert "学分要求30学时" in gx_2023 and "33.00元" in gx_2023


def test_professional_plans_are_listed_by_title_series_then_year(ctx, client):
    """Are 专业 plans grouped under their 职称系列 in the catalogue's order, newest first?"""
    support.catalogue()

    html = client.get("/h5/plans/professional").text

    assert "<title>专技人员专业科目</title>" in html
    assert re.findall(r'<h2 class="wx-plan-group__title">([^<]+)</h2>', html) == [
        "工程系列", "教育系列", "农业系列", "经济系列", "卫生系列"]
    engineering = re.search(r'id="series-engineering">(.*?)</section>', html, re.S).group(1)
    assert re.findall(r'data-plan="([^"]+)"', engineering) == [
        "ZY-ENG-2024", "ZY-ENG-2023", "ZY-ENG-2022"]
    assert "学分要求60学时" in engineering and "90.00元" in engineering


@pytest.mark.parametrize("category", ["public", "professional"])
def test_list_pages_do_not_query_per_plan(app, category):
    """Does a list page send the same number of SQL statements with four more plans, for a
    visitor and for a logged-in trainee?"""
    visitor, trainee_client = app.test_client(), app.test_client()
    with app.app_context():
        support.catalogue()
        trainee = factories.trainee()
        factories.enrollment(trainee, support.plan("GX-2023"))
        db.session.commit()
        support.logged_in(app, trainee_client, trainee)
        engine = db.engine
    # The requests run outside the test's app context, each in its own, as in production.

    with StatementCounter(engine) as anonymous_before:
        visitor.get(f"/h5/plans/{category}")
    with StatementCounter(engine) as trainee_before:
        trainee_client.get(f"/h5/plans/{category}")
    with app.app_context():
        add_plans(4)
    with StatementCounter(engine) as anonymous_after:
        html = visitor.get(f"/h5/plans/{category}").text
    with StatementCounter(engine) as trainee_after:
        trainee_client.get(f"/h5/plans/{category}")

    assert len(plan_names(html)) == (8 if category == "public" else 19)
    assert anonymous_after.count == anonymous_before.count == 1
    assert trainee_after.count == trainee_before.count == 4


def test_a_plan_page_shows_courses_hours_requirement_and_price(ctx, client):
    """Does the plan page show its courses with their hours, 学分要求, the price in yuan,
    and 立即购买 leading to the purchase page?"""
    support.catalogue()
    plan = support.plan("ZY-ENG-2023")
    courses = [entry.course for entry in plan.plan_courses]

    html = client.get("/h5/plans/ZY-ENG-2023").text

    assert f"<title>{plan.name}</title>" in html
    assert "学分要求" in html and "60学时" in html and "90.00元" in html
    for course in courses:
        assert course.title in html
        assert f"{course.credit_hours}学时 · {len(course.chapters)}个章节" in html
    assert re.search(r'href="/h5/plans/ZY-ENG-2023/buy">立即购买</a>', html)
    assert "进入学习" not in html


def test_a_plan_not_open_says_so_and_offers_no_purchase(ctx, client):
    """Does a plan not yet open show 暂未开放 instead of 立即购买?"""
    support.catalogue()

    html = client.get("/h5/plans/GX-2024").text

    assert "暂未开放" in html and "立即购买" not in html


def test_an_owned_plan_offers_to_study(ctx, app, client):
    """For a trainee who has the plan, does its page offer 进入学习 and no 立即购买, and
    the list mark it 已购买?"""
    support.catalogue()
    trainee = factories.trainee()
    factories.enrollment(trainee, support.plan("GX-2023"))
    db.session.commit()
    support.logged_in(app, client, trainee)

    html = client.get("/h5/plans/GX-2023").text
    listed = client.get("/h5/plans/public").text

    assert re.search(r'href="/h5/training">进入学习</a>', html) and "立即购买" not in html
    assert "已购买" in re.search(r'data-plan="GX-2023">(.*?)</a>', listed, re.S).group(1)


def test_an_unpaid_order_is_offered_again(ctx, app, client):
    """With an unpaid order for the plan, does its page offer 继续支付 to that order?"""
    support.catalogue()
    trainee = factories.trainee()
    order = orders.open_order(trainee, support.plan("GX-2023"), [trainee], kind="individual")
    db.session.commit()
    support.logged_in(app, client, trainee)

    html = client.get("/h5/plans/GX-2023").text

    assert f'href="/h5/orders/{order.out_trade_no}/pay">继续支付</a>' in html


def test_browsing_needs_no_login_and_unknown_plans_are_not_found(ctx, client):
    """Are the lists and a plan open to visitors, and an unknown code the 404 page?"""
    support.catalogue()

    assert client.get("/h5/plans/public").status_code == 200
    assert client.get("/h5/plans/GX-2023").status_code == 200
    missing = client.get("/h5/plans/GX-1999")
    assert missing.status_code == 404 and "您访问的页面不存在" in missing.text


def test_an_empty_catalogue_says_so(ctx, client):
    """Before any catalogue is loaded, does a list page say there is nothing yet?"""
    html = client.get("/h5/plans/professional").text

    assert "暂无可选的学习计划" in html
