"""What WeChat pushes to /wx/callback: verify, decrypt, parse and de-duplicate; seal the reply.

The protocol details (signature strings, query parameters, the encrypted envelope, retries)
live here, next to the official documents:

- server verification and the `signature` parameter:
  https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/Access_Overview.html
- safe mode (`encrypt_type=aes`, `msg_signature`, AES-256-CBC):
  https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Message_encryption_and_decryption_instructions.html
- messages, events, and the five-second deadline with its three retries:
  https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_standard_messages.html
  https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_event_pushes.html
  https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Passive_user_reply_message.html

Nothing here reads a Flask request: the handler passes the body and the query parameters, and
tests call the same functions. docs/wechat.md tells the story and the decisions behind it.
"""

from __future__ import annotations

import binascii
import functools
import logging
import re
import secrets
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from xml.etree.ElementTree import ParseError

import redis
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as parse_xml_safely
from wechatpy.crypto import PrpCrypto, WeChatCrypto
from wechatpy.events import EVENT_TYPES
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.messages import MESSAGE_TYPES, BaseMessage, UnknownMessage
from wechatpy.utils import check_signature

from .. import store
from ..extensions import db

log = logging.getLogger(__name__)

#: What an empty reply says: WeChat takes it as handled and neither retries nor shows an error.
EMPTY_REPLY = "success"

#: Bodies above this are refused before parsing; real pushes are a few hundred bytes.
MAX_BODY_BYTES = 64 * 1024
#: A push whose timestamp is further than this from our clock is refused as a replay.
FRESHNESS_SECONDS = 300
#: How long a push is remembered, with its reply; twice the freshness window, so a replay
#: that passes the timestamp check always meets its first delivery's record.
DEDUPE_SECONDS = 2 * FRESHNESS_SECONDS
#: A delivery claims a push just before it commits. The claim outlasts any healthy commit,
#: and lapses before WeChat's last retry (about 15 s after the first delivery), so a push
#: whose process died between claim and reply is still acted on.
CLAIM_SECONDS = 10
#: A repeat waits at most this long for the first delivery's reply (inside its own deadline).
REPEAT_WAIT_SECONDS = 4.0
REPEAT_POLL_SECONDS = 0.02

#: EventKey of a follow through a QR code: the prefix, then the scene.
SCENE_PREFIX = "qrscene_"
OPENID = re.compile(r"[A-Za-z0-9_-]{1,64}")
REQUIRED_FIELDS = ("ToUserName", "FromUserName", "CreateTime", "MsgType")
_CLAIM, _REPLY = b"claim:", b"reply:"


class PushRefused(Exception):
    """The push is not answered: `status` is the HTTP status, `reason` a stable code for logs."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Credentials:
    """The callback settings of the official account (开发者中心 → 服务器配置)."""

    token: str
    appid: str
    encoding_aes_key: str | None
    accept_plain: bool

    @classmethod
    def from_config(cls, config: Mapping) -> Credentials:
        return cls(token=config["WECHAT_TOKEN"], appid=config["WECHAT_APPID"],
                   encoding_aes_key=config["WECHAT_ENCODING_AES_KEY"] or None,
                   accept_plain=bool(config["WECHAT_ACCEPT_PLAIN_PUSHES"]))


@dataclass(frozen=True)
class Push:
    """One verified message or event, with what is needed to answer in the same mode."""

    message: BaseMessage
    #: The fields of the message XML: text, or a dict for a nested element.
    fields: dict
    encrypted: bool
    timestamp: str
    nonce: str

    @property
    def openid(self) -> str:
        return self.fields["FromUserName"]

    def text(self, name: str) -> str:
        """A field's text; "" when it is absent or a nested element."""
        value = self.fields.get(name, "")
        return value if isinstance(value, str) else ""

    @property
    def dedupe_key(self) -> tuple[str, ...]:
        """WeChat's advice: messages by MsgId, events by sender and CreateTime.

        The event name is added so that two different events of one user within the same
        second (a CLICK right after subscribing) are not taken for one push.
        """
        msg_id = self.text("MsgId")
        if msg_id and self.fields["MsgType"] != "event":
            return ("msg", msg_id)
        return ("event", self.openid, self.fields["CreateTime"],
                self.text("Event") or self.fields["MsgType"])


# --- verification --------------------------------------------------------------------------

def url_signature_matches(token: str, signature: str, timestamp: str, nonce: str) -> bool:
    """The `signature` parameter: SHA1 of the sorted token, timestamp and nonce.

    https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/Access_Overview.html
    """
    try:
        check_signature(token, signature, timestamp, nonce)
    except InvalidSignatureException:
        return False
    return True


class _SecurePrpCrypto(PrpCrypto):
    # wechatpy draws the 16 random bytes that open each encrypted reply from `random`; with
    # WeChat's fixed IV (the key's first 16 bytes) they play the IV's part, so they come
    # from the operating system's generator here.
    def get_random_string(self) -> str:
        return secrets.token_urlsafe(12)


class MessageCrypto(WeChatCrypto):
    """wechatpy's safe-mode crypto, with unpredictable random bytes in encrypted replies."""

    def encrypt_message(self, msg, nonce, timestamp=None):
        return self._encrypt_message(msg, nonce, timestamp, _SecurePrpCrypto)


@functools.lru_cache(maxsize=4)
def _crypto(credentials: Credentials) -> MessageCrypto:
    # Holds only the key, token and AppID, so one per account serves every thread.
    return MessageCrypto(credentials.token, credentials.encoding_aes_key, credentials.appid)


def open_push(body: bytes, params: Mapping[str, str], credentials: Credentials,
              now: float | None = None) -> Push:
    """Verify, decrypt and parse one POST to the callback, or raise `PushRefused`.

    Safe mode (`encrypt_type=aes`) is checked by `msg_signature`, which covers the encrypted
    body. Plain mode is checked by `signature`, which covers only the token, timestamp and
    nonce, so anyone who once saw a signed URL could replay it with a body of their own; plain
    pushes are therefore accepted only when WECHAT_ACCEPT_PLAIN_PUSHES says so. WeChat's
    兼容模式 sends `encrypt_type=aes` with both the plain fields and `Encrypt`: only the
    encrypted part is read.
    https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Message_encryption_and_decryption_instructions.html
    """
    if len(body) > MAX_BODY_BYTES:
        raise PushRefused(413, "too_large")
    timestamp, nonce = params.get("timestamp", ""), params.get("nonce", "")
    encrypted = params.get("encrypt_type", "").lower() == "aes"

    if encrypted:
        envelope = _parse_fields(body)
        inner = _decrypt(envelope.get("Encrypt", ""), params.get("msg_signature", ""),
                         timestamp, nonce, credentials)
    else:
        if not credentials.accept_plain:
            raise PushRefused(403, "plain_push_refused")
        if not url_signature_matches(credentials.token, params.get("signature", ""),
                                     timestamp, nonce):
            raise PushRefused(403, "bad_signature")
        inner = body
    _check_fresh(timestamp, time.time() if now is None else now)

    fields = _parse_fields(inner)
    _check_fields(fields)
    return Push(_message(fields), fields, encrypted, timestamp, nonce)


def _decrypt(encrypt: object, msg_signature: str, timestamp: str, nonce: str,
             credentials: Credentials) -> str:
    if not credentials.encoding_aes_key:
        raise PushRefused(403, "no_aes_key")
    if not encrypt or not isinstance(encrypt, str):
        raise PushRefused(400, "no_encrypt_field")
    try:
        xml = _crypto(credentials).decrypt_message({"Encrypt": encrypt}, msg_signature,
                                                   timestamp, nonce)
    except InvalidSignatureException as exc:
        raise PushRefused(403, "bad_msg_signature") from exc
    except InvalidAppIdException as exc:
        raise PushRefused(403, "other_appid") from exc
    except (ValueError, binascii.Error, struct.error, IndexError) as exc:
        # Signed by someone holding the token but not decryptable with our key.
        raise PushRefused(400, "undecryptable") from exc
    return xml


def _check_fresh(timestamp: str, now: float) -> None:
    if not timestamp.isdigit():
        raise PushRefused(403, "bad_timestamp")
    if abs(now - int(timestamp)) > FRESHNESS_SECONDS:
        raise PushRefused(403, "stale_timestamp")


def _parse_fields(xml: bytes | str) -> dict[str, str]:
    """The top-level fields of `<xml>…</xml>`; refuses any DTD, entity or malformed XML.

    defusedxml with `forbid_dtd` refuses a DOCTYPE before any entity is declared, so no file
    or URL is read and nothing expands. WeChat sends UTF-8 only.
    """
    try:
        text = xml.decode("utf-8") if isinstance(xml, bytes) else xml
        root = parse_xml_safely(text, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise PushRefused(400, "forbidden_xml") from exc
    except (ParseError, UnicodeDecodeError, ValueError) as exc:
        raise PushRefused(400, "malformed_xml") from exc
    if root.tag != "xml":
        raise PushRefused(400, "malformed_xml")
    return _element_fields(root)


def _element_fields(element) -> dict:
    # Nested elements (ScanCodeInfo, SendPicsInfo…) become dicts, as wechatpy expects them.
    return {child.tag: _element_fields(child) if len(child) else (child.text or "").strip()
            for child in element}


def _check_fields(fields: dict) -> None:
    if any(not isinstance(fields.get(name), str) or not fields[name]
           for name in REQUIRED_FIELDS):
        raise PushRefused(400, "missing_field")
    create_time = fields["CreateTime"]
    if not OPENID.fullmatch(fields["FromUserName"]) or not (
            create_time.isdigit() and len(create_time) <= 10):
        raise PushRefused(400, "bad_field")


def _message(fields: dict) -> BaseMessage:
    """wechatpy's message or event object, chosen as `wechatpy.parse_message` chooses it.

    parse_message would parse the XML a second time (with xmltodict); the fields parsed and
    checked above are handed to wechatpy's classes instead.
    """
    data = dict(fields)
    message_type = fields["MsgType"].lower()
    if message_type != "event":
        return MESSAGE_TYPES.get(message_type, UnknownMessage)(data)
    event_type = str(fields.get("Event", "")).lower()
    event_key = fields.get("EventKey")
    if event_type == "subscribe" and isinstance(event_key, str) and event_key.startswith(
            SCENE_PREFIX):
        # A follow through a QR code: wechatpy's SubscribeScanEvent, the scene without prefix.
        event_type = data["Event"] = "subscribe_scan"
        data["EventKey"] = event_key[len(SCENE_PREFIX):]
    return EVENT_TYPES.get(event_type, UnknownMessage)(data)


# --- the reply -----------------------------------------------------------------------------

def seal_reply(reply_xml: str, push: Push, credentials: Credentials) -> str:
    """The body answering `push`: the reply XML, encrypted when the push was; or `success`.

    https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Passive_user_reply_message.html
    """
    if not reply_xml:
        return EMPTY_REPLY
    if not push.encrypted:
        return reply_xml
    return _crypto(credentials).encrypt_message(reply_xml, push.nonce, str(int(time.time())))


# --- exactly once --------------------------------------------------------------------------

def answer_once(push: Push, answer: Callable[[Push], str]) -> str:
    """The reply XML to `push` ("" for none), acted on at most once across processes.

    WeChat retries a push it got no answer to within five seconds, up to three times, and any
    app process may receive each delivery. So every delivery works out its answer (`answer`
    only flushes), and the push's record in Redis decides which delivery's work counts:

    - an answer that used no database session (a keyword reply) is the whole outcome: it is
      kept with SET NX, and a delivery that finds a reply kept already returns that one;
    - an answer that read or wrote tables first claims the push with SET NX, then commits,
      then keeps its reply; a delivery that finds the push claimed rolls its work back and
      returns the first delivery's reply, waiting for it while the first one commits.

    A delivery that fails before claiming leaves no record, so WeChat's retry acts; one whose
    commit fails gives its claim back. The reply is kept DEDUPE_SECONDS, so a retry whose
    first attempt's answer was lost on the way gets the same reply.

    This is the one place the callback commits: a reply may be kept only once the action it
    reports is durable.
    """
    key = store.key("wechat", "push", *push.dedupe_key)
    deadline = time.monotonic() + REPEAT_WAIT_SECONDS
    while True:
        reply_xml = answer(push)
        if _settle(key, reply_xml):
            return reply_xml

        db.session.rollback()
        kept = _kept_reply(key, deadline)
        if kept is not None:
            log.info("wechat push repeated; answered with the first delivery's reply")
            return kept
        # The first delivery gave the push up (its commit failed): this one acts instead.


def _settle(key: str, reply_xml: str) -> bool:
    """Make this delivery's answer the push's outcome; False when another delivery's is."""
    client = store.client()
    reply = _REPLY + reply_xml.encode()
    if not db.session.registry.has():
        return bool(client.set(key, reply, nx=True, ex=DEDUPE_SECONDS))

    claim = _CLAIM + secrets.token_hex(8).encode()
    if not client.set(key, claim, nx=True, ex=CLAIM_SECONDS):
        return False
    try:
        db.session.commit()
    except Exception:
        db.session.rollback()
        _release(key, claim)
        raise
    client.set(key, reply, ex=DEDUPE_SECONDS)
    return True


def _kept_reply(key: str, deadline: float) -> str | None:
    """The reply kept for the push, waiting while it is claimed; None when nothing is kept.

    When the wait runs out, "" (answered with `success`): the first delivery still holds the
    push, and its own answer is the one that counts.
    """
    client = store.client()
    while True:
        kept = client.get(key)
        if kept is None:
            return None
        if kept.startswith(_REPLY):
            return kept[len(_REPLY):].decode()
        if time.monotonic() >= deadline:
            log.warning("wechat push repeated while the first delivery is still at work")
            return ""
        time.sleep(REPEAT_POLL_SECONDS)


def _release(key: str, claim: bytes) -> None:
    """Give the push up after a failed commit, unless the claim is no longer ours."""
    def delete_if_ours(pipe) -> None:
        if pipe.get(key) != claim:
            pipe.unwatch()
            return
        pipe.multi()
        pipe.delete(key)

    try:
        store.client().transaction(delete_if_ours, key)
    except redis.RedisError:
        log.exception("wechat push: could not give the claim back; retries will wait for it")
