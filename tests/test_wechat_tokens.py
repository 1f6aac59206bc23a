"""One access token and one JS-API ticket for every process, refreshed once when refused."""

from __future__ import annotations

import multiprocessing
import os
import queue

import pytest
import requests
from flask import current_app

from wx_app import store
from wx_app.wechat import menu, tokens
from wx_app.wechat.client import WeChatAPIError

PROCESSES = 10


def sandbox_stats(sandbox_url: str) -> dict:
    return requests.get(f"{sandbox_url}/sandbox/api/stats", timeout=5).json()


def reset_sandbox_stats(sandbox_url: str) -> None:
    requests.post(f"{sandbox_url}/sandbox/api/stats/reset", timeout=5).raise_for_status()


def refuse_tokens(sandbox_url: str, count: int) -> None:
    requests.post(f"{sandbox_url}/sandbox/api/tokens/refuse", json={"count": count},
                  timeout=5).raise_for_status()


def ask_for_token_together(settings: dict, instance: str, barrier, answers) -> None:
    """One OS process: build its own app, wait for the others, then ask for the token."""
    try:
        os.environ["WX_APP_INSTANCE"] = instance
        from wx_app import create_app
        from wx_app.wechat import tokens as process_tokens

        app = create_app(settings)
        with app.app_context():
            store.client().ping()
            barrier.wait(timeout=60)
            answers.put(("token", process_tokens.access_token()))
    except Exception as exc:  # reported to the test, which fails with it
        answers.put(("error", repr(exc)))


def test_ten_processes_starting_together_fetch_the_token_once(app, app_settings, instance_dir,
                                                              sandbox_url):
    """When ten processes ask for the token at the same moment, does WeChat see one fetch?"""
    reset_sandbox_stats(sandbox_url)
    # Fresh interpreters forked from a server that has imported the app once: separate
    # processes, each with its own app and connections, without ten slow imports.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__, "wx_app.models", "wx_app.sandbox", "wx_app.cli",
                                    "wx_app.handlers.h5", "wx_app.handlers.jssdk"])
    barrier = context.Barrier(PROCESSES)
    answers = context.Queue()
    processes = [context.Process(target=ask_for_token_together,
                                 args=(app_settings, str(instance_dir), barrier, answers))
                 for _ in range(PROCESSES)]
    for process in processes:
        process.start()

    try:
        results = [answers.get(timeout=120) for _ in processes]
    except queue.Empty:
        pytest.fail("not every process answered within two minutes")
    finally:
        for process in processes:
            process.join(timeout=30)

    errors = [detail for kind, detail in results if kind == "error"]
    assert errors == []
    assert [process.exitcode for process in processes] == [0] * PROCESSES
    assert len({token for _, token in results}) == 1
    assert sandbox_stats(sandbox_url)["token_fetches"] == 1


def test_the_token_is_kept_in_redis_until_ten_minutes_before_it_expires(ctx, sandbox_url):
    """Is the token kept for every process, and dropped ahead of WeChat's expiry?"""
    reset_sandbox_stats(sandbox_url)

    first = tokens.access_token()
    second = tokens.access_token()

    assert first == second
    assert sandbox_stats(sandbox_url)["token_fetches"] == 1
    appid = current_app.config["WECHAT_APPID"]
    kept_for = store.client().ttl(store.key("wechat", appid, tokens.ACCESS_TOKEN))
    assert 0 < kept_for <= 7200 - tokens.REFRESH_MARGIN


def test_an_expired_token_is_refreshed_once_and_the_call_retried(ctx, sandbox_url):
    """When WeChat says the token expired, does a menu call refresh it once and succeed?"""
    stale = tokens.access_token()
    requests.post(f"{sandbox_url}/sandbox/api/tokens/expire", timeout=5).raise_for_status()
    reset_sandbox_stats(sandbox_url)

    menu.push(menu.build())

    stats = sandbox_stats(sandbox_url)
    assert stats["token_fetches"] == 1
    assert stats["calls"]["cgi-bin/menu/create"] == 2
    assert tokens.cached(tokens.ACCESS_TOKEN) not in (None, stale)


def test_a_token_refused_again_after_the_refresh_is_not_retried_again(ctx, sandbox_url):
    """When WeChat keeps refusing the token, does the call give up after one retry?"""
    tokens.access_token()
    reset_sandbox_stats(sandbox_url)
    refuse_tokens(sandbox_url, 5)

    try:
        with pytest.raises(WeChatAPIError) as refused:
            menu.current_menu()
    finally:
        refuse_tokens(sandbox_url, 0)

    assert refused.value.errcode == 42001
    stats = sandbox_stats(sandbox_url)
    assert stats["calls"]["cgi-bin/menu/get"] == 2
    assert stats["token_fetches"] == 1


def test_a_token_another_process_already_replaced_is_not_fetched_again(ctx, sandbox_url):
    """If another process refreshed the refused token first, is its new token used as is?"""
    current = tokens.access_token()
    reset_sandbox_stats(sandbox_url)

    replaced = tokens.refresh(tokens.ACCESS_TOKEN, tokens.fetch_access_token,
                              stale="a-token-refused-earlier")

    assert replaced == current
    assert sandbox_stats(sandbox_url)["token_fetches"] == 0


def test_the_jsapi_ticket_is_fetched_once_and_shared(ctx, sandbox_url):
    """Is the JS-API ticket fetched once with the access token, then read from Redis?"""
    reset_sandbox_stats(sandbox_url)

    first = tokens.jsapi_ticket()
    second = tokens.jsapi_ticket()

    assert first == second
    assert sandbox_stats(sandbox_url)["jsapi_ticket_fetches"] == 1
    valid = requests.get(f"{sandbox_url}/sandbox/api/jsapi-tickets", timeout=5).json()
    assert first in valid["tickets"]
