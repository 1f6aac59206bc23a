"""The custom menu: checked against WeChat's limits, compared with WeChat's, then pushed."""

from __future__ import annotations

import copy

import pytest
import requests
from flask import current_app

import config.menu
from config.menu import click, group, view
from wx_app.wechat import menu
from wx_app.wechat.client import WeChatAPIError, client


def sandbox_stats(sandbox_url: str) -> dict:
    return requests.get(f"{sandbox_url}/sandbox/api/stats", timeout=5).json()


def reset_sandbox_stats(sandbox_url: str) -> None:
    requests.post(f"{sandbox_url}/sandbox/api/stats/reset", timeout=5).raise_for_status()


def sandbox_menu(sandbox_url: str) -> dict | None:
    return requests.get(f"{sandbox_url}/sandbox/api/menu", timeout=5).json()["menu"]


def menu_creations(sandbox_url: str) -> int:
    return sandbox_stats(sandbox_url)["calls"].get("cgi-bin/menu/create", 0)


def ctx_base_url() -> str:
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/")


@pytest.fixture
def no_menu_at_wechat(ctx):
    """The sandbox account starts without a custom menu."""
    client().get("menu/delete")


@pytest.fixture
def sync(app):
    def run(*args: str):
        return app.test_cli_runner().invoke(args=["wechat", "sync-menu", *args])

    return run


def test_the_configured_menu_is_the_manuals_menu_on_public_base_url(ctx):
    """Does the menu offer the manual's entries, each VIEW on PUBLIC_BASE_URL's pages?"""
    base = ctx_base_url()

    built = menu.build()

    assert menu.problems(built) == []
    assert menu.describe(built) == [
        "继续教育",
        f"    专技人员公需科目  [view] {base}/h5/plans/public",
        f"    专技人员专业科目  [view] {base}/h5/plans/professional",
        f"    课程培训  [view] {base}/h5/training",
        "我的",
        f"    我的证书  [view] {base}/h5/certificates",
        f"    我的发票  [view] {base}/h5/invoices",
        f"    团购订单  [view] {base}/h5/group-orders",
        "    学习进度  [click] PROGRESS",
        "帮助",
        f"    操作手册  [view] {base}/h5/help",
        f"    联系客服  [view] {base}/h5/help#contact",
    ]


LONG_KEY = "K" * 129
LONG_URL = "/h5/help?" + "q" * 1030
BROKEN_MENUS = {
    "four top buttons": (
        (group("甲", view("一", "/h5/")), group("乙", view("二", "/h5/")),
         group("丙", view("三", "/h5/")), group("丁", view("四", "/h5/"))),
        "the menu has 4 top buttons; WeChat allows 1 to 3"),
    "six sub-buttons": (
        (group("继续教育", *(view(f"第{n}项", "/h5/") for n in range(6))),),
        "button '继续教育': has 6 sub-buttons; WeChat allows at most 5"),
    "top name over 16 bytes": (
        (group("继续教育学习", view("课程培训", "/h5/training")),),
        "button '继续教育学习': name is 18 bytes in UTF-8; WeChat allows at most 16 for a "
        "top button"),
    "sub name over 60 bytes": (
        (group("帮助", view("操作手册" * 5 + "一", "/h5/help")),),
        "name is 63 bytes in UTF-8; WeChat allows at most 60 for a sub-button"),
    "key over 128 bytes": (
        (group("我的", click("学习进度", LONG_KEY)),),
        "button '我的' › '学习进度': key is 129 bytes; at most 128"),
    "url over 1024 bytes": (
        (group("帮助", view("操作手册", LONG_URL)),),
        "bytes; at most 1024"),
    "view without url": (
        (group("帮助", {"type": "view", "name": "操作手册"}),),
        "button '帮助' › '操作手册': a view button needs a url"),
    "click without key": (
        (group("我的", {"type": "click", "name": "学习进度"}),),
        "button '我的' › '学习进度': a click button needs a key"),
    "unknown type": (
        (group("我的", {"type": "link", "name": "学习进度", "key": "PROGRESS"}),),
        "type 'link' is not a WeChat button type"),
    "empty name": (
        (group("我的", view(" ", "/h5/")),),
        "the name is empty"),
}


@pytest.mark.parametrize("broken", BROKEN_MENUS, ids=list(BROKEN_MENUS))
def test_a_menu_that_breaks_a_limit_is_refused_before_reaching_wechat(
        broken, sync, monkeypatch, no_menu_at_wechat, sandbox_url):
    """Is each of WeChat's limits checked here, with a message naming the button, and nothing
    sent?"""
    definition, problem = BROKEN_MENUS[broken]
    monkeypatch.setattr(config.menu, "MENU", definition)
    reset_sandbox_stats(sandbox_url)

    result = sync()

    assert result.exit_code != 0
    assert "menu refused, nothing was sent to WeChat" in result.output
    assert problem in result.output
    assert menu_creations(sandbox_url) == 0
    assert sandbox_menu(sandbox_url) is None


def test_every_problem_is_listed_at_once(ctx):
    """With several problems, does staff see all of them, not only the first?"""
    broken = menu.build((group("继续教育学习", view("课程培训", "/h5/training"),
                               {"type": "click", "name": "学习进度"}),))

    found = menu.problems(broken)

    assert len(found) == 2


def test_a_dry_run_shows_the_difference_and_pushes_nothing(sync, no_menu_at_wechat,
                                                           sandbox_url):
    """Does --dry-run show what would be added to WeChat's (empty) menu, without pushing?"""
    reset_sandbox_stats(sandbox_url)

    result = sync("--dry-run")

    assert result.exit_code == 0, result.output
    assert "--- menu WeChat has now" in result.output
    assert "+++ config/menu.py" in result.output
    assert "+继续教育" in result.output
    assert "+    学习进度  [click] PROGRESS" in result.output
    assert "dry run: nothing was pushed" in result.output
    assert menu_creations(sandbox_url) == 0
    assert sandbox_menu(sandbox_url) is None


def test_the_menu_is_pushed_and_wechat_then_has_it(sync, no_menu_at_wechat, sandbox_url):
    """Once pushed, does WeChat's menu/get answer the configured menu, and a second run find
    nothing to do?"""
    result = sync()

    assert result.exit_code == 0, result.output
    assert "menu pushed: 3 top buttons" in result.output
    assert menu.describe(menu.current_menu()) == menu.describe(menu.build())
    assert menu.current_menu()["button"][1]["sub_button"][3] == {
        "type": "click", "name": "学习进度", "key": "PROGRESS", "sub_button": []}

    again = sync()

    assert again.exit_code == 0, again.output
    assert "WeChat already has this menu; nothing to push." in again.output


def test_the_difference_names_the_buttons_that_change(sync, monkeypatch, no_menu_at_wechat):
    """After a button is renamed, does the diff show the old line removed and the new added?"""
    assert sync().exit_code == 0
    renamed = copy.deepcopy(config.menu.MENU)
    renamed[2]["sub_button"][0]["name"] = "使用手册"
    monkeypatch.setattr(config.menu, "MENU", renamed)

    result = sync("--dry-run")

    changed = [line for line in result.output.splitlines()
               if line.startswith(("+ ", "- ", "+" + " " * 4, "-" + " " * 4))]
    assert changed == [f"-    操作手册  [view] {ctx_base_url()}/h5/help",
                       f"+    使用手册  [view] {ctx_base_url()}/h5/help"]


def test_a_refusal_by_wechat_exits_non_zero_and_says_why(sync, no_menu_at_wechat, sandbox_url):
    """When WeChat refuses the push, does the command fail with WeChat's errcode?"""
    requests.post(f"{sandbox_url}/sandbox/api/tokens/refuse", json={"count": 3},
                  timeout=5).raise_for_status()
    try:
        result = sync()
    finally:
        requests.post(f"{sandbox_url}/sandbox/api/tokens/refuse", json={"count": 0}, timeout=5)

    assert result.exit_code == 1
    assert "WeChat refused the menu: errcode 42001" in result.output
    assert "the menu WeChat has is unchanged" in result.output


def test_long_names_that_wechat_cuts_are_warned_about(ctx):
    """Is a name WeChat takes but shows cut short on the phone pointed out?"""
    built = menu.build((group("继续教育", view("专技人员公需科目学习", "/h5/plans/public")),))

    assert menu.problems(built) == []
    assert menu.warnings(built) == [
        "button '继续教育' › '专技人员公需科目学习': WeChat shows about 8 Chinese characters of "
        "this name and cuts the rest with …"]


SANDBOX_REFUSALS = {
    "top buttons": ({"button": [{"type": "click", "name": "甲", "key": "A"}] * 4}, 40016),
    "sub-buttons": ({"button": [{"name": "甲", "sub_button": [
        {"type": "click", "name": "乙", "key": "B"}] * 6}]}, 40023),
    "top name": ({"button": [{"type": "click", "name": "继续教育学习", "key": "A"}]}, 40018),
    "sub name": ({"button": [{"name": "甲", "sub_button": [
        {"type": "click", "name": "乙" * 21, "key": "B"}]}]}, 40025),
    "key": ({"button": [{"type": "click", "name": "甲", "key": "K" * 129}]}, 40019),
    "url": ({"button": [{"type": "view", "name": "甲",
                         "url": "http://127.0.0.1/" + "u" * 1010}]}, 40020),
    "sub url": ({"button": [{"name": "甲", "sub_button": [
        {"type": "view", "name": "乙"}]}]}, 40027),
    "type": ({"button": [{"type": "link", "name": "甲", "key": "A"}]}, 40017),
}


@pytest.mark.parametrize("limit", SANDBOX_REFUSALS, ids=list(SANDBOX_REFUSALS))
def test_the_sandbox_refuses_a_broken_menu_as_wechat_does(limit, no_menu_at_wechat):
    """Does the sandbox answer menu/create with WeChat's errcode for each broken limit?"""
    body, errcode = SANDBOX_REFUSALS[limit]

    with pytest.raises(WeChatAPIError) as refused:
        menu.push(body)

    assert refused.value.errcode == errcode
    assert menu.current_menu() is None


def test_the_sandbox_shows_the_menu_in_force(no_menu_at_wechat):
    """Does get_current_selfmenu_info describe the pushed menu in its own shape?"""
    menu.push(menu.build())

    info = client().get("get_current_selfmenu_info")

    assert info["is_menu_open"] == 1
    mine = info["selfmenu_info"]["button"][1]
    assert mine["name"] == "我的"
    assert mine["sub_button"]["list"][3] == {"type": "click", "name": "学习进度",
                                             "key": "PROGRESS"}
