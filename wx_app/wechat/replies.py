"""What the official account does with each message and event, and what it answers.

`answer(push)` is called once per push (see `messages.answer_once`); it acts on the follower's
record, queues slow work, and returns the passive reply's XML, or "" for none. It does no
network call and at most one small transaction, because WeChat waits only five seconds.
https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Passive_user_reply_message.html
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import current_app
from wechatpy.replies import TextReply

from config.menu import PROGRESS_KEY

from .. import followers, help_contacts
from ..extensions import db
from ..models import WechatBinding
from ..yearly_credit import current_year, yearly_credit
from .messages import SCENE_PREFIX, Push

log = logging.getLogger(__name__)

#: Texts containing one of these get the help numbers and QQ groups.
HELP_KEYWORDS = ("客服", "电话", "咨询")


def answer(push: Push) -> str:
    """Act on one message or event; the reply XML, or "" when there is nothing to say."""
    message = push.message
    if message.type == "event":
        handler = EVENT_HANDLERS.get(push.text("Event").lower())
    else:
        handler = MESSAGE_HANDLERS.get(message.type)
    text = handler(push) if handler else None
    log.info("wechat push handled: %s %s, reply=%s", push.fields["MsgType"],
             push.text("Event"), "text" if text else "none")
    return TextReply(message=message, content=text).render() if text else ""


# --- events --------------------------------------------------------------------------------

def _subscribed(push: Push) -> str:
    # wechatpy names a subscribe with a scene `subscribe_scan` and strips the prefix; the raw
    # field is read here so that both kinds take the same path.
    event_key = push.text("EventKey")
    scene = event_key[len(SCENE_PREFIX):] if event_key.startswith(SCENE_PREFIX) else None
    followers.followed(push.openid, _pushed_at(push), scene=scene)
    return welcome_text()


def _scanned(push: Push) -> str:
    followers.scanned(push.openid, push.text("EventKey"))
    return welcome_text()


def _unsubscribed(push: Push) -> None:
    followers.unfollowed(push.openid, _pushed_at(push))


def _clicked(push: Push) -> str | None:
    if push.text("EventKey") == PROGRESS_KEY:
        return progress_text(push.openid)
    return None


def _pushed_at(push: Push) -> datetime:
    """When WeChat says the user acted (CreateTime), as the naive UTC the columns hold."""
    return datetime.fromtimestamp(int(push.fields["CreateTime"]), UTC).replace(tzinfo=None)


# --- messages ------------------------------------------------------------------------------

def _texted(push: Push) -> str:
    content = push.text("Content")
    if any(word in content for word in HELP_KEYWORDS):
        return "咨询方式：\n" + help_contacts.as_text()
    if "证书" in content:
        return (f"达到学分要求后，在「我的证书」中打印证书：\n"
                f'<a href="{_link("/h5/certificates")}">我的证书</a>')
    if "发票" in content:
        return (f"在「我的发票」中查看发票、申请开票：\n"
                f'<a href="{_link("/h5/invoices")}">我的发票</a>')
    return help_text()


EVENT_HANDLERS: dict[str, Callable[[Push], str | None]] = {
    "subscribe": _subscribed,
    "scan": _scanned,
    "unsubscribe": _unsubscribed,
    "click": _clicked,
}
MESSAGE_HANDLERS: dict[str, Callable[[Push], str | None]] = {
    "text": _texted,
}


# --- texts ---------------------------------------------------------------------------------

def _link(path: str) -> str:
    return str(current_app.config["PUBLIC_BASE_URL"]).rstrip("/") + path


def welcome_text() -> str:
    """The greeting of a new follower, with links into the H5 site."""
    return "\n".join((
        "欢迎关注重庆市人力资源开发服务中心！",
        "专业技术人员每年继续教育不少于90学时，其中公需科目不少于30学时、专业科目不少于60学时。",
        f'· <a href="{_link("/h5/plans/public")}">公需科目</a>',
        f'· <a href="{_link("/h5/plans/professional")}">专业科目</a>',
        f'· <a href="{_link("/h5/training")}">课程培训</a>',
        f'· <a href="{_link("/h5/certificates")}">我的证书</a>',
        "回复「客服」获取咨询电话。",
    ))


def help_text() -> str:
    """The answer to a text the account does not understand: where things are in the menu."""
    return ("您好！请使用下方菜单：\n"
            "「继续教育」：专技人员公需科目、专技人员专业科目、课程培训\n"
            "「我的」：我的证书、我的发票、团购订单、学习进度\n"
            "「帮助」：操作手册、联系客服\n"
            "也可回复「客服」「证书」「发票」。")


def progress_text(openid: str) -> str:
    """This year's hours of the trainee logged in with `openid`, or a link to log in."""
    trainee_id = db.session.scalar(
        sa.select(WechatBinding.trainee_id).where(WechatBinding.openid == openid))
    if trainee_id is None:
        return (f'您还没有登录。请先<a href="{_link("/h5/login")}">登录</a>，'
                "登录后即可查看学习进度。")
    credit = yearly_credit(trainee_id, current_year())
    return (f"{credit.year}年学习进度：\n"
            f"公需 {credit.public_hours}/{credit.public_required} 学时，"
            f"专业 {credit.professional_hours}/{credit.professional_required} 学时\n"
            f'<a href="{_link("/h5/training")}">课程培训</a>')
