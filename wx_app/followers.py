"""Followers of the official account (粉丝): who follows, since when, and through which QR code.

A follower is a `WechatBinding` row, keyed by openid; it exists from the first subscribe event
(or the first login through OAuth) whether or not a trainee has logged in with it. An
organisation's follow QR code carries the scene `org:<organisation id>` (stored in
`Organisation.qr_scene`), so a follower remembers the organisation it came from: registration
offers that organisation first, and staff count followers per organisation.

The functions flush; the caller commits.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from . import jobs
from .extensions import db
from .models import Organisation, WechatBinding
from .wechat.client import WeChatAPIError, client

log = logging.getLogger(__name__)

#: The scene string of an organisation's follow QR code.
ORGANISATION_SCENE = re.compile(r"org:(\d{1,18})")
#: Scene strings are at most 64 characters at WeChat, and in our column.
SCENE_MAX = 64
#: errcode of cgi-bin/user/info for an openid that is not a user of the account.
INVALID_OPENID = 40003


@dataclass(frozen=True)
class OrganisationFollowers:
    """How many current followers came through one organisation's QR code."""

    organisation_id: int
    name: str
    followers: int


def organisation_for_scene(scene: str) -> Organisation | None:
    """The organisation a QR scene names, or None for a scene of no organisation."""
    found = db.session.scalars(
        sa.select(Organisation).where(Organisation.qr_scene == scene)).first()
    if found is not None:
        return found
    # A code made before qr_scene was stored still names its organisation by id.
    match = ORGANISATION_SCENE.fullmatch(scene)
    return db.session.get(Organisation, int(match.group(1))) if match else None


def follower(openid: str) -> WechatBinding:
    """The binding of `openid`, created (not yet following) when there is none."""
    found = db.session.scalars(
        sa.select(WechatBinding).where(WechatBinding.openid == openid)).first()
    if found is not None:
        return found
    made = WechatBinding(openid=openid, subscribed=False)
    try:
        with db.session.begin_nested():
            db.session.add(made)
    except IntegrityError:
        # Another request (an OAuth login, a push) created it a moment ago. A locking read,
        # because a plain one would still see this transaction's snapshot, without the row.
        return db.session.scalars(
            sa.select(WechatBinding).where(WechatBinding.openid == openid)
            .with_for_update()).one()
    return made


def followed(openid: str, at: datetime, scene: str | None = None) -> WechatBinding:
    """关注: the user follows the account, from a QR code when `scene` is given."""
    binding = follower(openid)
    binding.subscribed = True
    binding.subscribed_at = at
    if scene:
        _record_scene(binding, scene)
    db.session.flush()
    log.info("follower subscribed: binding=%s trainee=%s scene_organisation=%s",
             binding.id, binding.trainee_id, binding.scene_organisation_id)
    jobs.enqueue_after_commit(refresh_follower, openid)
    return binding


def scanned(openid: str, scene: str) -> WechatBinding:
    """扫码: a follower scanned a QR code; the organisation it names becomes theirs."""
    binding = follower(openid)
    # WeChat sends SCAN only to followers; a row without it predates this app's records.
    binding.subscribed = True
    if scene:
        _record_scene(binding, scene)
    db.session.flush()
    log.info("follower scanned a QR code: binding=%s scene_organisation=%s",
             binding.id, binding.scene_organisation_id)
    return binding


def unfollowed(openid: str, at: datetime) -> WechatBinding:
    """取消关注: the user no longer follows; the binding (and any trainee link) stays."""
    binding = follower(openid)
    binding.subscribed = False
    binding.unsubscribed_at = at
    db.session.flush()
    log.info("follower unsubscribed: binding=%s trainee=%s", binding.id, binding.trainee_id)
    return binding


def _record_scene(binding: WechatBinding, scene: str) -> None:
    scene = scene[:SCENE_MAX]
    organisation = organisation_for_scene(scene)
    binding.scene = scene
    binding.scene_organisation_id = organisation.id if organisation else None


def followers_by_organisation() -> list[OrganisationFollowers]:
    """Current followers per organisation whose QR code they came through, most first."""
    followers = sa.func.count(WechatBinding.id).label("followers")
    rows = db.session.execute(
        sa.select(Organisation.id, Organisation.name, followers)
        .join(WechatBinding, WechatBinding.scene_organisation_id == Organisation.id)
        .where(WechatBinding.subscribed.is_(True))
        .group_by(Organisation.id, Organisation.name)
        .order_by(followers.desc(), Organisation.name))
    return [OrganisationFollowers(row.id, row.name, row.followers) for row in rows]


@jobs.job
def refresh_follower(openid: str) -> None:
    """Fetch the follower's record from cgi-bin/user/info and keep its unionid.

    user/info no longer gives nickname or head image (those come from OAuth consent); what
    it adds is the unionid, which links the follower to the same person on the PC site.
    An unreachable WeChat raises, and the queue retries the job.
    https://developers.weixin.qq.com/doc/offiaccount/User_Management/Get_users_basic_information_UnionID.html
    """
    try:
        record = client().get("user/info", params={"openid": openid, "lang": "zh_CN"})
    except WeChatAPIError as exc:
        if exc.errcode == INVALID_OPENID:
            log.warning("follower refresh: openid unknown to WeChat, nothing kept")
            return
        raise
    binding = follower(openid)
    if record.get("unionid"):
        binding.unionid = record["unionid"]
    db.session.flush()
    log.info("follower refreshed: binding=%s following_at_wechat=%s", binding.id,
             bool(record.get("subscribe")))
