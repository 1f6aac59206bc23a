"""The WeChat callback: a signed, encrypted text message in, an encrypted reply out.

Both figures come from the same gunicorn app in the same run: the bare liveness endpoint
(/healthz/live) is the baseline; the callback does what it does for WeChat (safe mode:
msg_signature check, AES decryption, defusedxml and wechatpy parsing, the Redis claim and
kept reply, the keyword reply, AES encryption). Every message has its own MsgId, so none is
answered from the de-duplication record. The pushes are signed and encrypted before timing
starts, so the client's cost is not measured; the two alternate over five rounds and the
medians are compared.
"""

from __future__ import annotations

import statistics

import requests

import config
from wx_app.sandbox import push

from . import support

GOAL = 0.5
COUNT = 3000
ROUNDS = 5
WARM_UP = 300
SETTINGS = {"WECHAT_TOKEN": config.SANDBOX_TOKEN, "WECHAT_APPID": config.SANDBOX_APPID,
            "WECHAT_ENCODING_AES_KEY": config.SANDBOX_ENCODING_AES_KEY}
OPENID = "oSbxZ3k9QvR2mT7wYpL4cN8dF1aE"


def signed_messages(count: int, first_msg_id: int) -> list[support.Request]:
    """`count` safe-mode pushes of the text 客服, each with its own MsgId."""
    requests = []
    for n in range(count):
        spec = push.PushSpec(callback_url="", openid=OPENID, kind="text", content="客服",
                             event="", event_key="", msg_id=str(first_msg_id + n),
                             create_time=0, mode="aes", repeat=1)
        xml = push.message_xml(spec)
        params, body = push.signed_push(xml, OPENID, "aes", SETTINGS)
        query = "&".join(f"{name}={value}" for name, value in params.items())
        requests.append(("POST", f"/wx/callback?{query}", body,
                         {"Content-Type": "text/xml"}))
    return requests


def _check_reply(app_url: str, request: support.Request) -> None:
    """Refuse to measure unless the callback answers with the real, encrypted reply."""
    method, path, body, headers = request
    response = requests.post(app_url + path, data=body, headers=headers, timeout=10)
    delivery = push.open_reply(response.status_code, response.text, "aes", SETTINGS)
    if not delivery["reply"] or "400-023-9229" not in delivery["reply"].get("Content", ""):
        raise RuntimeError(f"the callback did not reply as expected: {delivery}")


def main() -> bool:
    with support.running_stack() as stack:
        warm_up = signed_messages(WARM_UP, 1)
        timed = [signed_messages(COUNT, 10_000_000 * (round_ + 1)) for round_ in range(ROUNDS)]
        bare = ("GET", "/healthz/live", None, {})

        _check_reply(stack.app_url, signed_messages(1, 0)[0])
        support.throughput(stack.app_url, lambda i: warm_up[i], WARM_UP)
        support.throughput(stack.app_url, lambda i: bare, WARM_UP)
        # Alternate the two, so that a busy moment of the machine does not fall on one only.
        baselines, measured = [], []
        for pushes in timed:
            baselines.append(support.throughput(stack.app_url, lambda i: bare, COUNT))
            measured.append(support.throughput(stack.app_url, lambda i, p=pushes: p[i], COUNT))

    return support.report("callback (text message, safe mode)", statistics.median(measured),
                          statistics.median(baselines), GOAL)
