"""WeChat's pushing side: messages and events sent, signed, to the app's callback URL.

At WeChat, every text a user sends to the account and every event (follow, QR scan, menu
click, unfollow) is POSTed as XML to the account's server URL, signed with the shared Token,
and in safe mode encrypted with the EncodingAESKey; the response is the passive reply. This
module does the same, so the account can be tried without a phone:

- `POST /sandbox/api/push` builds the push, delivers it (`repeat` times, as WeChat retries),
  and answers with each delivery's status and its reply, decrypted and checked;
- `GET /sandbox/push` is a form that does the same for a person.

https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_standard_messages.html
https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_event_pushes.html
https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Message_encryption_and_decryption_instructions.html
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import secrets
import struct
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit
from xml.etree.ElementTree import ParseError

import requests
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as parse_xml_safely
from flask import Blueprint, current_app, jsonify, render_template, request
from wechatpy.crypto import PrpCrypto
from wechatpy.exceptions import InvalidAppIdException

from . import state

log = logging.getLogger(__name__)

bp = Blueprint("sandbox_push", __name__, url_prefix="/sandbox")

#: The sandbox account's original ID (原始ID), the ToUserName of every push.
ACCOUNT_ID = "gh_5a4b3c2d1e0f"
#: Event names as WeChat spells them in the Event field, by their lower-case form.
EVENTS = {"subscribe": "subscribe", "unsubscribe": "unsubscribe", "scan": "SCAN",
          "click": "CLICK", "view": "VIEW"}
SCENE_PREFIX = "qrscene_"
MODES = ("plain", "aes")
#: WeChat gives up on an answer after five seconds.
DELIVERY_TIMEOUT = 5
MAX_REPEAT = 5
CONTENT_MAX = 2048
FIELD_MAX = 128


class PushInvalid(Exception):
    """The push asked for cannot be built; `code` and `message` go back as JSON."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class PushSpec:
    """One push as a person or a test describes it."""

    callback_url: str
    openid: str
    kind: str  # text or event
    content: str
    event: str
    event_key: str
    msg_id: str
    create_time: int
    mode: str  # plain or aes
    repeat: int


def read_spec(body: Mapping, settings: Mapping) -> PushSpec:
    """Check a push request (the JSON API's body or the form) and fill in WeChat's defaults."""
    def text(name: str, limit: int = FIELD_MAX) -> str:
        value = str(body.get(name) or "").strip()
        if len(value) > limit:
            raise PushInvalid("invalid_" + name, f"{name} is longer than {limit} characters")
        return value

    callback_url = text("app_callback_url", 512) or (
        str(settings["PUBLIC_BASE_URL"]).rstrip("/") + "/wx/callback")
    _check_callback_url(callback_url, settings)
    openid = text("openid")
    if not openid:
        raise PushInvalid("invalid_openid", "openid is required")
    kind = text("type") or "text"
    if kind not in ("text", "event"):
        raise PushInvalid("invalid_type", "type must be text or event")
    content = text("content", CONTENT_MAX)
    if kind == "text" and not content:
        raise PushInvalid("invalid_content", "a text message needs content")
    event = EVENTS.get(text("event").lower(), "")
    if kind == "event" and not event:
        raise PushInvalid("invalid_event", "event must be one of " + ", ".join(EVENTS.values()))
    mode = text("mode") or ("aes" if settings.get("WECHAT_ENCODING_AES_KEY") else "plain")
    if mode not in MODES:
        raise PushInvalid("invalid_mode", "mode must be plain or aes")
    if mode == "aes" and not settings.get("WECHAT_ENCODING_AES_KEY"):
        raise PushInvalid("invalid_mode", "safe mode needs WECHAT_ENCODING_AES_KEY")
    msg_id = text("msg_id") or str(secrets.randbits(62))
    if not msg_id.isdigit():
        raise PushInvalid("invalid_msg_id", "msg_id must be digits")
    try:
        create_time = int(body.get("create_time") or time.time())
        repeat = int(body.get("repeat") or 1)
    except (TypeError, ValueError):
        raise PushInvalid("invalid_number",
                          "create_time and repeat must be whole numbers") from None
    if not 1 <= repeat <= MAX_REPEAT:
        raise PushInvalid("invalid_repeat", f"repeat must be 1 to {MAX_REPEAT}")
    return PushSpec(callback_url, openid, kind, content, event, text("event_key"), msg_id,
                    create_time, mode, repeat)


def _check_callback_url(url: str, settings: Mapping) -> None:
    """Only the app may be pushed to: a loopback address or the host of PUBLIC_BASE_URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PushInvalid("invalid_callback_url", "app_callback_url must be an http(s) URL")
    if parts.hostname in ("localhost", urlsplit(str(settings["PUBLIC_BASE_URL"])).hostname):
        return
    try:
        if ipaddress.ip_address(parts.hostname).is_loopback:
            return
    except ValueError:
        pass
    raise PushInvalid("invalid_callback_url",
                      "the sandbox pushes only to loopback or to PUBLIC_BASE_URL's host")


# --- building and signing ------------------------------------------------------------------

def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def message_xml(spec: PushSpec) -> str:
    """The push as WeChat writes it."""
    fields = [("ToUserName", _cdata(ACCOUNT_ID)), ("FromUserName", _cdata(spec.openid)),
              ("CreateTime", str(spec.create_time))]
    if spec.kind == "text":
        fields += [("MsgType", _cdata("text")), ("Content", _cdata(spec.content)),
                   ("MsgId", spec.msg_id)]
    else:
        fields += [("MsgType", _cdata("event")), ("Event", _cdata(spec.event))]
        event_key = spec.event_key
        if spec.event == "subscribe" and event_key and not event_key.startswith(SCENE_PREFIX):
            event_key = SCENE_PREFIX + event_key  # a follow through a QR code
        fields.append(("EventKey", _cdata(event_key)))
        if event_key and spec.event in ("subscribe", "SCAN"):
            fields.append(("Ticket", _cdata(_ticket(event_key))))
    return "<xml>\n" + "\n".join(f"<{name}>{value}</{name}>" for name, value in fields) + \
        "\n</xml>"


def _ticket(scene: str) -> str:
    # WeChat's tickets are opaque; a stable one per scene is all a push needs.
    return "gQ" + base64.urlsafe_b64encode(hashlib.sha256(scene.encode()).digest()).decode()[:40]


def signature(*parts: str) -> str:
    """SHA1 of the sorted parts: `signature` (token, timestamp, nonce) and `msg_signature`
    (the same and the Encrypt text)."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def signed_push(xml: str, openid: str, mode: str, settings: Mapping,
                timestamp: str | None = None, nonce: str | None = None) -> tuple[dict, bytes]:
    """The query parameters and body WeChat sends for `xml` in `mode`."""
    token = str(settings["WECHAT_TOKEN"])
    timestamp = timestamp or str(int(time.time()))
    nonce = nonce or str(secrets.randbelow(10**10))
    params = {"signature": signature(token, timestamp, nonce), "timestamp": timestamp,
              "nonce": nonce, "openid": openid}
    if mode == "plain":
        return params, xml.encode()
    encrypt = _crypto(settings).encrypt(xml, settings["WECHAT_APPID"]).decode()
    params.update(encrypt_type="aes", msg_signature=signature(token, timestamp, nonce, encrypt))
    body = (f"<xml>\n<ToUserName>{_cdata(ACCOUNT_ID)}</ToUserName>\n"
            f"<Encrypt>{_cdata(encrypt)}</Encrypt>\n</xml>")
    return params, body.encode()


def _crypto(settings: Mapping) -> PrpCrypto:
    return PrpCrypto(base64.b64decode(str(settings["WECHAT_ENCODING_AES_KEY"]) + "="))


# --- the reply -----------------------------------------------------------------------------

def _fields(xml: str) -> dict[str, str]:
    root = parse_xml_safely(xml, forbid_dtd=True)
    return {child.tag: child.text or "" for child in root}


def open_reply(status: int, text: str, mode: str, settings: Mapping) -> dict:
    """What WeChat makes of the app's answer: the reply's fields, or the problem with it."""
    delivery = {"status": status, "body": text, "reply": None, "problem": None}
    if status != 200:
        delivery["problem"] = f"HTTP {status}: WeChat retries, then tells the user the "\
            "account cannot serve"
        return delivery
    if text.strip() in ("", "success"):
        return delivery  # handled, nothing to say
    try:
        fields = _fields(text)
        if mode == "aes":
            fields = _open_encrypted(fields, settings)
    except (DefusedXmlException, ParseError, ValueError, struct.error) as exc:
        delivery["problem"] = f"the reply is not what WeChat accepts: {exc}"
        return delivery
    delivery["reply"] = fields
    return delivery


def _open_encrypted(envelope: dict[str, str], settings: Mapping) -> dict[str, str]:
    if "Encrypt" not in envelope:
        raise ValueError("a safe-mode push got a reply that is not encrypted")
    expected = signature(str(settings["WECHAT_TOKEN"]), envelope.get("TimeStamp", ""),
                         envelope.get("Nonce", ""), envelope["Encrypt"])
    if not hmac.compare_digest(expected, envelope.get("MsgSignature", "")):
        raise ValueError("the reply's MsgSignature does not match")
    try:
        inner = _crypto(settings).decrypt(envelope["Encrypt"], settings["WECHAT_APPID"])
    except InvalidAppIdException as exc:
        raise ValueError("the reply is encrypted for another AppID") from exc
    return _fields(inner)


def deliver(spec: PushSpec, settings: Mapping) -> dict:
    """Build, sign and POST the push `spec.repeat` times; every delivery with its reply."""
    xml = message_xml(spec)
    params, body = signed_push(xml, spec.openid, spec.mode, settings)
    deliveries = []
    for _ in range(spec.repeat):
        try:
            response = requests.post(spec.callback_url, params=params, data=body,
                                     headers={"Content-Type": "text/xml"},
                                     timeout=DELIVERY_TIMEOUT)
        except requests.RequestException as exc:
            deliveries.append({"status": None, "body": "", "reply": None,
                               "problem": f"no answer: {type(exc).__name__}"})
            continue
        deliveries.append(open_reply(response.status_code, response.text, spec.mode, settings))
    log.info("pushed %s %s to the app (%s mode, %d deliveries)", spec.kind,
             spec.event or "message", spec.mode, spec.repeat)
    return {"push": asdict(spec), "xml": xml, "deliveries": deliveries,
            "reply": deliveries[0]["reply"]}


# --- JSON API and page ---------------------------------------------------------------------

@bp.post("/api/push")
def push_api():
    """Push a message or event to the app; the deliveries and decrypted replies as JSON."""
    body = request.get_json(silent=True)
    try:
        spec = read_spec(body if isinstance(body, dict) else {}, current_app.config)
    except PushInvalid as invalid:
        return jsonify({"code": invalid.code, "message": invalid.message}), 400
    return jsonify(deliver(spec, current_app.config))


@bp.route("/push", methods=["GET", "POST"])
def push_page():
    """The form: play a WeChat user who writes to the account, follows it, or taps the menu."""
    form = request.form if request.method == "POST" else {}
    result, problem = None, None
    if request.method == "POST":
        try:
            result = deliver(read_spec(form, current_app.config), current_app.config)
        except PushInvalid as invalid:
            problem = invalid.message
    settings = current_app.config
    return render_template(
        "push.html", form=form, result=result, problem=problem, events=EVENTS.values(),
        users=state.current().list_users(), has_aes_key=bool(settings["WECHAT_ENCODING_AES_KEY"]),
        default_url=str(settings["PUBLIC_BASE_URL"]).rstrip("/") + "/wx/callback")
