"""The sandbox's SMS inbox: where the app's local SMS sender drops the texts it would send.

WeChat has no such thing; it stands in for the trainee's phone. A person reads the codes on
the page /sandbox/sms, a test reads them from GET /sandbox/api/sms?phone=….
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field

from flask import Blueprint, current_app, jsonify, render_template, request

from ..personal_data import mask_phone

bp = Blueprint("sandbox_sms", __name__, url_prefix="/sandbox")

EXTENSION = "wechat_sandbox_sms"
#: The inbox keeps the latest messages only.
INBOX_SIZE = 500
TEXT_MAX = 500
_PHONE = re.compile(r"1\d{10}")


@dataclass(frozen=True)
class TextMessage:
    phone: str
    text: str
    purpose: str
    sent_at: float

    def to_dict(self) -> dict:
        return {**asdict(self), "phone_masked": mask_phone(self.phone),
                "sent_at_text": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.sent_at))}


@dataclass
class Inbox:
    messages: deque = field(default_factory=lambda: deque(maxlen=INBOX_SIZE))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, message: TextMessage) -> None:
        with self.lock:
            self.messages.append(message)

    def latest_first(self, phone: str | None = None) -> list[TextMessage]:
        with self.lock:
            return [message for message in reversed(self.messages)
                    if phone is None or message.phone == phone]


def _inbox() -> Inbox:
    return current_app.extensions.setdefault(EXTENSION, Inbox())


@bp.post("/api/sms")
def receive():
    """Record a text: {"phone": "13800138000", "text": "…", "purpose": "…"} → 201."""
    body = request.get_json(silent=True)
    body = body if isinstance(body, dict) else {}
    phone, text = str(body.get("phone") or ""), str(body.get("text") or "")
    if not _PHONE.fullmatch(phone):
        return jsonify({"code": "invalid_phone", "message": "phone must be 11 digits"}), 400
    if not text or len(text) > TEXT_MAX:
        return jsonify({"code": "invalid_text",
                        "message": f"text must be 1 to {TEXT_MAX} characters"}), 400

    message = TextMessage(phone, text, str(body.get("purpose") or "")[:32], time.time())
    _inbox().add(message)
    return jsonify(message.to_dict()), 201


@bp.get("/api/sms")
def list_messages():
    """The texts received, latest first; `?phone=` keeps one phone's."""
    phone = request.args.get("phone") or None
    return jsonify({"messages": [message.to_dict() for message in _inbox().latest_first(phone)]})


@bp.get("/sms")
def inbox_page():
    """The texts received, latest first, for a person playing the trainee's phone."""
    return render_template("sms.html", messages=_inbox().latest_first())
