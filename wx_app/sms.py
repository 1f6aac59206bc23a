"""Text messages (短信) to a trainee's phone: verification codes for a password reset or a new
phone number.

The app sends through one `SmsSender`, chosen when the app starts. Two ship with it:

- `LocalSmsSender`, used whenever the WeChat base URLs point at the sandbox: it logs the
  masked phone number with the text (the code is readable in the log) and posts the message
  to the sandbox's inbox (`/sandbox/api/sms`, the page `/sandbox/sms`), where a person or a
  test reads it. A sandbox that does not answer only costs a warning.
- `UnavailableSmsSender` otherwise: no SMS provider is integrated yet, so in production every
  send is refused with a message that names the hotline, and the refusal is logged. A real
  provider is a class with the same `send` method, installed with `set_sender(app, sender)`.
"""

from __future__ import annotations

import logging
from typing import Protocol

import requests
from flask import Flask, current_app

import config

from .errors import UpstreamError
from .personal_data import mask_phone

log = logging.getLogger(__name__)

EXTENSION = "wx_sms_sender"
SANDBOX_HOST_PREFIX = "api.weixin.qq.com"
SIGNATURE = "【重庆人社培训网】"


class SmsSender(Protocol):
    """Sends one text message; raises UpstreamError when the message cannot be sent."""

    def send(self, phone: str, text: str, *, purpose: str) -> None: ...


class LocalSmsSender:
    """Logs each message (phone masked) and drops it into the WeChat sandbox's inbox."""

    def __init__(self, inbox_url: str | None):
        self.inbox_url = inbox_url
        self._http = requests.Session()

    def send(self, phone: str, text: str, *, purpose: str) -> None:
        log.info("sms (%s) to %s: %s", purpose, mask_phone(phone), text)
        if not self.inbox_url:
            return
        try:
            response = self._http.post(self.inbox_url, timeout=3,
                                       json={"phone": phone, "text": text, "purpose": purpose})
            response.raise_for_status()
        except requests.RequestException as exc:
            log.warning("sms to %s not delivered to the sandbox inbox: %s",
                        mask_phone(phone), type(exc).__name__)


class UnavailableSmsSender:
    """No SMS provider: every send is refused, so no one waits for a code that never comes."""

    def send(self, phone: str, text: str, *, purpose: str) -> None:
        log.error("sms (%s) to %s not sent: no SMS provider is configured",
                  purpose, mask_phone(phone))
        raise UpstreamError("短信服务暂不可用，请拨打400-023-9229按1联系管理员。",
                            code="sms_unavailable")


def sandbox_inbox_url(api_base: str) -> str | None:
    """The sandbox's SMS inbox, when WECHAT_API_BASE names a sandbox (`<origin>/api.weixin…/`)."""
    index = api_base.find(SANDBOX_HOST_PREFIX)
    if index <= 0 or api_base.startswith("https://api.weixin.qq.com"):
        return None
    return api_base[:index] + "sandbox/api/sms"


def init_app(app: Flask) -> None:
    """Choose the sender: the local one with the sandbox, none (refusing) otherwise.

    Called on the first send unless a sender was installed before.
    """
    if app.config["APP_ENV"] != "production" and config.uses_sandbox(app.config):
        set_sender(app, LocalSmsSender(sandbox_inbox_url(str(app.config["WECHAT_API_BASE"]))))
    else:
        set_sender(app, UnavailableSmsSender())


def set_sender(app: Flask, sender: SmsSender) -> None:
    """Install `sender` as the app's way of sending text messages."""
    app.extensions[EXTENSION] = sender


def send(phone: str, text: str, *, purpose: str) -> None:
    """Send `text` (the signature is added) to `phone` through the app's sender."""
    if EXTENSION not in current_app.extensions:
        init_app(current_app)
    sender: SmsSender = current_app.extensions[EXTENSION]
    sender.send(phone, SIGNATURE + text, purpose=purpose)
