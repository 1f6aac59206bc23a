"""What the sandbox remembers: its WeChat users, the tokens and codes it issued, call counts.

Everything lives in memory behind one lock: the sandbox is one process serving many threads,
and restarting it is meeting a fresh WeChat (the seeded users keep their openids, so accounts
the app linked to them still work; users created at run time are gone).

The sandbox has its own clock, `now()`, which an admin call can move forward so that tests
see codes and tokens expire without waiting.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field

from flask import current_app

from .errcodes import (
    ACCESS_TOKEN_EXPIRED,
    CODE_BEEN_USED,
    INVALID_CODE,
    INVALID_CREDENTIAL,
    INVALID_REFRESH_TOKEN,
    REFRESH_TOKEN_EXPIRED,
    WeChatError,
)

EXTENSION = "wechat_sandbox_state"

#: Seconds an access token (either kind) or an OAuth access token lives.
TOKEN_TTL = 7200
#: A token replaced by a newer cgi-bin/token fetch keeps working this long.
REPLACED_TOKEN_GRACE = 300
#: In its last seconds a stable token is renewed by a plain (not forced) fetch.
STABLE_RENEW_BEFORE = 300
#: An OAuth code is single use and lives five minutes.
CODE_TTL = 300
#: An OAuth refresh token lives thirty days.
REFRESH_TOKEN_TTL = 30 * 86400
#: A JS-API ticket lives as long as an access token.
JSAPI_TICKET_TTL = 7200

BASIC, STABLE, OAUTH = "basic", "stable", "oauth"


@dataclass
class WeChatUser:
    openid: str
    unionid: str
    nickname: str
    subscribed: bool
    subscribe_time: int
    language: str = "zh_CN"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class AccessToken:
    value: str
    kind: str  # BASIC (cgi-bin/token), STABLE (cgi-bin/stable_token) or OAUTH (sns)
    appid: str
    expires_at: float
    #: Set when a newer token replaced this one; after it the token reads as invalid.
    replaced_until: float | None = None
    openid: str | None = None
    scope: str | None = None


@dataclass
class OAuthCode:
    value: str
    appid: str
    openid: str
    scope: str
    expires_at: float
    used: bool = False


@dataclass
class RefreshToken:
    value: str
    appid: str
    openid: str
    scope: str
    expires_at: float


@dataclass
class QrTicket:
    """A QR code ticket: temporary (with an expiry) or permanent (one per scene)."""

    ticket: str
    action_name: str
    scene: int | str
    url: str
    expires_at: float | None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TemplateMessage:
    """A template message as the sandbox accepted it, with the text the user would read."""

    msgid: int
    touser: str
    template_id: str
    url: str | None
    data: dict
    text: str
    sent_at: float

    def to_dict(self) -> dict:
        return asdict(self)


SEED_USERS = (
    ("oSbxZ3k9QvR2mT7wYpL4cN8dF1aE", "oUnZ8rQ2vL5nK9wT3yP7cM1dG4bH", "张伟", True),
    ("oSbxH5t2WnJ8rK4vXqD6sB9mC3gA", "oUnB4kT8wN2rJ6vY9qF3sD7mL1cE", "李秀英🌸", True),
    ("oSbxM7p4LcF1yN6zRbG3hT8kV2dQ", "oUnH6pM3zR8yF1nG5bT9kW2vC4dS", "王磊", False),
    ("oSbxC2d8KhV5mQ9tJwS1pX4nB7fR", "oUnQ1cV7hK4mD9tS2wX5pJ8nF3bG", "陈静", True),
)


@dataclass
class SandboxState:
    """The sandbox's memory; every method may be called from any request thread."""

    clock_offset: float = 0.0
    users: dict[str, WeChatUser] = field(default_factory=dict)
    tokens: dict[str, AccessToken] = field(default_factory=dict)
    codes: dict[str, OAuthCode] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    #: Outcomes tests ask about: token_fetches, oauth_consents, oauth_code_exchanges.
    counters: Counter = field(default_factory=Counter)
    #: Every request to a WeChat endpoint, by path below the host, whatever its outcome.
    calls: Counter = field(default_factory=Counter)
    #: The custom menu (menu/create), as it was created; None until one is.
    menu: dict | None = None
    qr_tickets: dict[str, QrTicket] = field(default_factory=dict)
    #: Every template message accepted, oldest first.
    template_messages: list[TemplateMessage] = field(default_factory=list)
    #: How many of the next template sends fail, and with which errcode (an admin call).
    template_failures: int = 0
    template_failure_errcode: int = -1
    #: How many of the next access-token checks refuse a valid token (an admin call).
    token_refusals: int = 0
    jsapi_tickets: dict[str, float] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def now(self) -> float:
        """The sandbox's clock: wall time plus whatever an admin moved it forward."""
        return time.time() + self.clock_offset

    def advance_clock(self, seconds: float) -> float:
        """Move the sandbox's clock forward; returns the total offset."""
        with self.lock:
            self.clock_offset += max(0.0, seconds)
            return self.clock_offset

    def count_call(self, endpoint: str) -> None:
        """Count a request to a WeChat endpoint (its path below the host)."""
        with self.lock:
            self.calls[endpoint] += 1

    def stats(self) -> dict:
        """The outcome counters (zero when nothing happened yet) and the calls per endpoint."""
        with self.lock:
            outcomes = {"token_fetches": 0, "oauth_consents": 0, "oauth_code_exchanges": 0,
                        "jsapi_ticket_fetches": 0, "template_messages": 0}
            outcomes.update(self.counters)
            return {**outcomes, "calls": dict(self.calls)}

    def reset_stats(self) -> None:
        """Zero every counter."""
        with self.lock:
            self.counters.clear()
            self.calls.clear()

    # --- users -------------------------------------------------------------------------

    def seed(self) -> None:
        """Add the seeded users (fixed openids) with a subscribe time a month back."""
        month_ago = int(self.now()) - 30 * 86400
        for openid, unionid, nickname, subscribed in SEED_USERS:
            self.users[openid] = WeChatUser(openid, unionid, nickname, subscribed, month_ago)

    def list_users(self) -> list[WeChatUser]:
        """Every user, seeded ones first, then in order of creation."""
        with self.lock:
            return list(self.users.values())

    def user(self, openid: str) -> WeChatUser | None:
        """The user with this openid, if the sandbox knows one."""
        with self.lock:
            return self.users.get(openid)

    def add_user(self, nickname: str, subscribed: bool = True) -> WeChatUser:
        """Create a WeChat user with fresh openid and unionid."""
        user = WeChatUser(openid=_wechat_id("o"), unionid=_wechat_id("o"), nickname=nickname,
                          subscribed=subscribed, subscribe_time=int(self.now()))
        with self.lock:
            self.users[user.openid] = user
        return user

    # --- access tokens -----------------------------------------------------------------

    def issue_access_token(self, appid: str) -> AccessToken:
        """cgi-bin/token: a new token each call; the previous one works five more minutes."""
        with self.lock:
            now = self.now()
            for token in self._live_tokens(BASIC, appid, now):
                token.replaced_until = min(token.expires_at, now + REPLACED_TOKEN_GRACE)
            token = AccessToken(_token_value(), BASIC, appid, now + TOKEN_TTL)
            self.tokens[token.value] = token
            self.counters["token_fetches"] += 1
            return token

    def issue_stable_token(self, appid: str, force_refresh: bool) -> AccessToken:
        """cgi-bin/stable_token: the same token while valid; a forced fetch revokes it."""
        with self.lock:
            now = self.now()
            live = self._live_tokens(STABLE, appid, now)
            if live and not force_refresh and live[-1].expires_at - now > STABLE_RENEW_BEFORE:
                self.counters["token_fetches"] += 1
                return live[-1]
            if force_refresh:
                for token in live:
                    token.replaced_until = now
            token = AccessToken(_token_value(), STABLE, appid, now + TOKEN_TTL)
            self.tokens[token.value] = token
            self.counters["token_fetches"] += 1
            return token

    def _live_tokens(self, kind: str, appid: str, now: float) -> list[AccessToken]:
        return [token for token in self.tokens.values()
                if token.kind == kind and token.appid == appid and token.expires_at > now
                and (token.replaced_until is None or token.replaced_until > now)]

    def check_token(self, value: str, kinds: tuple[str, ...]) -> AccessToken:
        """The token if it is one of `kinds` and still valid; else WeChat's 40001 or 42001."""
        with self.lock:
            now = self.now()
            token = self.tokens.get(value)
            if token is None or token.kind not in kinds:
                raise WeChatError(INVALID_CREDENTIAL)
            if token.replaced_until is not None and token.replaced_until <= now:
                raise WeChatError(INVALID_CREDENTIAL)
            if token.expires_at <= now:
                raise WeChatError(ACCESS_TOKEN_EXPIRED)
            return token

    def expire_tokens(self) -> int:
        """Make every token issued so far read as expired (42001); returns how many."""
        with self.lock:
            now = self.now()
            live = [token for token in self.tokens.values() if token.expires_at > now]
            for token in live:
                token.expires_at = now
            return len(live)

    def set_token_refusals(self, count: int) -> int:
        """Make the next `count` access-token checks answer 42001 even for a valid token."""
        with self.lock:
            self.token_refusals = max(0, count)
            return self.token_refusals

    def take_token_refusal(self) -> bool:
        """True (and one fewer to come) while refusals set by an admin call remain."""
        with self.lock:
            if self.token_refusals <= 0:
                return False
            self.token_refusals -= 1
            return True

    # --- menu, QR tickets, template messages, JS-API tickets ---------------------------

    def set_menu(self, menu: dict | None) -> None:
        with self.lock:
            self.menu = menu

    def current_menu(self) -> dict | None:
        with self.lock:
            return self.menu

    def issue_qr_ticket(self, action_name: str, scene: int | str,
                        expire_seconds: int | None) -> QrTicket:
        """A new temporary ticket, or the one ticket of a permanent scene."""
        with self.lock:
            if expire_seconds is None:
                for ticket in self.qr_tickets.values():
                    if ticket.expires_at is None and ticket.scene == scene \
                            and ticket.action_name == action_name:
                        return ticket
            code = secrets.token_urlsafe(16)
            ticket = QrTicket(
                ticket="gQ" + secrets.token_urlsafe(72), action_name=action_name, scene=scene,
                url=f"http://weixin.qq.com/q/{code}",
                expires_at=None if expire_seconds is None else self.now() + expire_seconds)
            self.qr_tickets[ticket.ticket] = ticket
            return ticket

    def qr_ticket(self, value: str) -> QrTicket | None:
        """The ticket if it exists and has not expired."""
        with self.lock:
            ticket = self.qr_tickets.get(value)
            if ticket is None or (ticket.expires_at is not None
                                  and ticket.expires_at <= self.now()):
                return None
            return ticket

    def list_qr_tickets(self) -> list[QrTicket]:
        with self.lock:
            return list(self.qr_tickets.values())

    def set_template_failures(self, count: int, errcode: int = -1) -> int:
        """Make the next `count` template sends fail with `errcode`."""
        with self.lock:
            self.template_failures = max(0, count)
            self.template_failure_errcode = errcode
            return self.template_failures

    def take_template_failure(self) -> int | None:
        """The errcode the next send must fail with, if a failure is still due."""
        with self.lock:
            if self.template_failures <= 0:
                return None
            self.template_failures -= 1
            return self.template_failure_errcode

    def record_template_message(self, touser: str, template_id: str, url: str | None,
                                data: dict, text: str) -> TemplateMessage:
        with self.lock:
            message = TemplateMessage(len(self.template_messages) + 2_000_000_001, touser,
                                      template_id, url, data, text, self.now())
            self.template_messages.append(message)
            self.counters["template_messages"] += 1
            return message

    def sent_templates(self) -> list[TemplateMessage]:
        with self.lock:
            return list(self.template_messages)

    def issue_jsapi_ticket(self) -> tuple[str, int]:
        """ticket/getticket: a new ticket (earlier ones stay valid until they expire)."""
        with self.lock:
            ticket = secrets.token_urlsafe(64)
            self.jsapi_tickets[ticket] = self.now() + JSAPI_TICKET_TTL
            self.counters["jsapi_ticket_fetches"] += 1
            return ticket, JSAPI_TICKET_TTL

    def valid_jsapi_tickets(self) -> list[str]:
        with self.lock:
            now = self.now()
            return [ticket for ticket, expires_at in self.jsapi_tickets.items()
                    if expires_at > now]

    # --- OAuth -------------------------------------------------------------------------

    def issue_code(self, appid: str, openid: str, scope: str) -> OAuthCode:
        """The code a user's consent gives the page's redirect."""
        with self.lock:
            code = OAuthCode(secrets.token_urlsafe(24), appid, openid, scope,
                             self.now() + CODE_TTL)
            self.codes[code.value] = code
            self.counters["oauth_consents"] += 1
            return code

    def redeem_code(self, appid: str, value: str) -> tuple[AccessToken, RefreshToken]:
        """Exchange a code once for an OAuth access token and a refresh token."""
        with self.lock:
            now = self.now()
            code = self.codes.get(value)
            if code is None or code.appid != appid or code.expires_at <= now:
                raise WeChatError(INVALID_CODE)
            if code.used:
                raise WeChatError(CODE_BEEN_USED)
            code.used = True
            refresh = RefreshToken(_token_value(), appid, code.openid, code.scope,
                                   now + REFRESH_TOKEN_TTL)
            self.refresh_tokens[refresh.value] = refresh
            self.counters["oauth_code_exchanges"] += 1
            return self._issue_oauth_token(refresh, now), refresh

    def refresh_oauth_token(self, appid: str, value: str) -> tuple[AccessToken, RefreshToken]:
        """A new OAuth access token from a refresh token (which stays the same)."""
        with self.lock:
            now = self.now()
            refresh = self.refresh_tokens.get(value)
            if refresh is None or refresh.appid != appid:
                raise WeChatError(INVALID_REFRESH_TOKEN)
            if refresh.expires_at <= now:
                raise WeChatError(REFRESH_TOKEN_EXPIRED)
            return self._issue_oauth_token(refresh, now), refresh

    def _issue_oauth_token(self, refresh: RefreshToken, now: float) -> AccessToken:
        token = AccessToken(_token_value(), OAUTH, refresh.appid, now + TOKEN_TTL,
                            openid=refresh.openid, scope=refresh.scope)
        self.tokens[token.value] = token
        return token


def _token_value() -> str:
    """A token shaped like WeChat's: long, URL-safe characters."""
    return secrets.token_urlsafe(96)


def _wechat_id(prefix: str) -> str:
    """An openid or unionid shaped like WeChat's: 28 URL-safe characters."""
    return prefix + secrets.token_urlsafe(21)[:27]


def current() -> SandboxState:
    """The state of the sandbox serving this request."""
    return current_app.extensions[EXTENSION]
