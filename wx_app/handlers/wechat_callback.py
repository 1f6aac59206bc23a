"""/wx/callback: WeChat's server verification (GET) and its message and event pushes (POST).

The protocol lives in wx_app/wechat/messages.py, what each push does in
wx_app/wechat/replies.py; docs/wechat.md describes both.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, request

from ..wechat import messages, replies

log = logging.getLogger(__name__)

bp = Blueprint("wechat_callback", __name__)


def _refusal(status: int) -> Response:
    # A refusal never carries a reply: WeChat (or whoever sent it) gets the status alone.
    return Response(f"{status}\n", status=status, content_type="text/plain; charset=utf-8")


@bp.get("/wx/callback")
def verify():
    """Server verification: echo `echostr` when the signature is ours.

    https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/Access_Overview.html
    """
    args = request.args
    if not messages.url_signature_matches(current_app.config["WECHAT_TOKEN"],
                                          args.get("signature", ""), args.get("timestamp", ""),
                                          args.get("nonce", "")):
        log.warning("wechat verification refused: bad_signature from %s", request.remote_addr)
        return _refusal(403)
    return Response(args.get("echostr", ""), content_type="text/plain; charset=utf-8")


@bp.post("/wx/callback")
def receive():
    """A message or event: answered within WeChat's five seconds, in the mode it came in."""
    declared = request.content_length
    if declared is not None and declared > messages.MAX_BODY_BYTES:
        log.warning("wechat push refused: too_large (%d bytes declared)", declared)
        return _refusal(413)
    # Read one byte past the limit, so a body without a length is capped too.
    body = request.stream.read(messages.MAX_BODY_BYTES + 1)

    credentials = messages.Credentials.from_config(current_app.config)
    try:
        push = messages.open_push(body, request.args, credentials)
    except messages.PushRefused as refused:
        log.warning("wechat push refused: %s (%d) from %s", refused.reason, refused.status,
                    request.remote_addr)
        return _refusal(refused.status)

    reply_xml = messages.answer_once(push, replies.answer)
    body = messages.seal_reply(reply_xml, push, credentials)
    content_type = "application/xml" if reply_xml else "text/plain"
    return Response(body, content_type=f"{content_type}; charset=utf-8")
