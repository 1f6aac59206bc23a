"""Server-side sessions in Redis, who is logged in, and CSRF protection of the H5 forms.

The session cookie holds only a random id; the session's data lives in Redis under a hash of
that id, with a time to live. Logging in gives the browser a new id (so an id planted before
the login is worth nothing), logging out deletes the data, and every session remembers the
trainee's `session_epoch`: a password reset raises the epoch and so ends every session
issued before it, on every machine, at the next request.

What other pages use:

- `current_trainee()`: the logged-in Trainee, or None;
- `login_required`: a view decorator (OAuth inside WeChat, the login page elsewhere, a JSON
  401 `login_required` under /h5/api/);
- `csrf_field()` in templates, inside every POST form; `X-CSRF-Token` (from the page's
  `<meta name="csrf-token">`) on POSTs to /h5/api/.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import secrets
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from flask import Flask, g, redirect, request, session, url_for
from flask.sessions import SessionInterface, SessionMixin
from markupsafe import Markup, escape
from werkzeug.datastructures import CallbackDict

from . import store
from .errors import LoginRequired, NotAllowed
from .extensions import db
from .models import Trainee

log = logging.getLogger(__name__)

#: Lifetime of a logged-in session, renewed by every request: a week without a visit ends it.
LOGGED_IN_TTL = timedelta(days=7)
#: Lifetime of an anonymous session (CSRF token of the login form, OAuth state, "next").
ANONYMOUS_TTL = timedelta(days=1)
SESSION_ID_BYTES = 32

#: Session keys.
TRAINEE_ID, EPOCH, OPENID, CSRF = "trainee_id", "epoch", "openid", "csrf"
CSRF_FORM_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Pages a trainee who must change the initial password may still open.
OPEN_DURING_PASSWORD_CHANGE = frozenset({"auth.change_password", "auth.logout",
                                         "h5.help_page", "static"})
DEFAULT_NEXT = "/h5/"


class CsrfFailed(NotAllowed):
    code = "csrf_failed"
    message = "页面已过期，请返回上一页刷新后重新提交。"


class PasswordChangeRequired(NotAllowed):
    code = "password_change_required"
    message = "请先修改初始密码。"


# --- the session store -----------------------------------------------------------------------

class ServerSession(CallbackDict, SessionMixin):
    """The session's data, loaded from Redis; `sid` is None until it is first saved."""

    def __init__(self, initial: dict | None = None, sid: str | None = None,
                 *, untouched: bool = False):
        def on_update(data: ServerSession) -> None:
            data.modified = True
            data.accessed = True

        super().__init__(initial, on_update)
        self.sid = sid
        self.modified = False
        self.accessed = False
        #: A request that must neither read nor renew the session (a static file).
        self.untouched = untouched
        #: The id to drop when the data moves to a new id (at login).
        self.replaced_sid: str | None = None

    def __getitem__(self, key):
        self.accessed = True
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.accessed = True
        return super().get(key, default)

    def renew_id(self) -> None:
        """Move the data to a fresh id when it is saved; the old id stops working."""
        if self.sid and not self.replaced_sid:
            self.replaced_sid = self.sid
        self.sid = None
        self.modified = True


def _redis_key(sid: str) -> str:
    # The id itself is never stored: someone who reads Redis cannot use what they read.
    return store.key("session", hashlib.sha256(sid.encode()).hexdigest())


class RedisSessionInterface(SessionInterface):
    """Flask sessions kept in Redis: a random id in an HttpOnly cookie, the data server-side."""

    def open_session(self, app: Flask, request) -> ServerSession:
        if request.path.startswith(f"{app.static_url_path}/"):
            # Static files are cached by phones and proxies: no Redis read, no Set-Cookie.
            return ServerSession(untouched=True)
        sid = request.cookies.get(self.get_cookie_name(app), "")
        if not 20 <= len(sid) <= 64:
            return ServerSession()
        raw = store.client().get(_redis_key(sid))
        if raw is None:
            return ServerSession()
        return ServerSession(json.loads(raw), sid=sid)

    def save_session(self, app: Flask, session: ServerSession, response) -> None:
        if session.untouched or not (session.accessed or session.modified):
            return
        name = self.get_cookie_name(app)
        domain, path = self.get_cookie_domain(app), self.get_cookie_path(app)
        response.vary.add("Cookie")

        if session.replaced_sid:
            store.client().delete(_redis_key(session.replaced_sid))
        if not session:
            if session.sid and session.modified:
                store.client().delete(_redis_key(session.sid))
            if session.sid or session.replaced_sid:
                response.delete_cookie(name, domain=domain, path=path,
                                       secure=self.get_cookie_secure(app),
                                       httponly=self.get_cookie_httponly(app),
                                       samesite=self.get_cookie_samesite(app))
            return

        ttl = LOGGED_IN_TTL if session.get(TRAINEE_ID) else ANONYMOUS_TTL
        if session.sid is None:
            session.sid = secrets.token_urlsafe(SESSION_ID_BYTES)
            session.modified = True
        if session.modified:
            store.client().set(_redis_key(session.sid), json.dumps(dict(session)), ex=ttl)
        else:
            store.client().expire(_redis_key(session.sid), ttl)
        response.set_cookie(name, session.sid, max_age=ttl,
                            expires=datetime.now(UTC) + ttl, domain=domain, path=path,
                            secure=self.get_cookie_secure(app),
                            httponly=self.get_cookie_httponly(app),
                            samesite=self.get_cookie_samesite(app))


def open_session_for(trainee: Trainee, *, openid: str | None = None,
                     extra: dict | None = None) -> str:
    """Store a logged-in session for `trainee` outside any request; returns its cookie value.

    For support tools and tests that need a browser already logged in; `extra` adds more
    session data (flashed messages, say).
    """
    sid = secrets.token_urlsafe(SESSION_ID_BYTES)
    data = {**(extra or {}), TRAINEE_ID: trainee.id, EPOCH: trainee.session_epoch,
            CSRF: secrets.token_urlsafe(32)}
    if openid:
        data[OPENID] = openid
    store.client().set(_redis_key(sid), json.dumps(data), ex=LOGGED_IN_TTL)
    return sid


# --- who is logged in --------------------------------------------------------------------------

def log_in(trainee: Trainee) -> None:
    """Make this browser's session belong to `trainee`, under a new session id."""
    session.renew_id()
    session[TRAINEE_ID] = trainee.id
    session[EPOCH] = trainee.session_epoch
    session[CSRF] = secrets.token_urlsafe(32)
    g.current_trainee = trainee


def log_out() -> None:
    """End this browser's session: its data is deleted and the cookie dropped (whatever is
    stored in the session afterwards goes under a new id)."""
    session.clear()
    session.renew_id()
    g.current_trainee = None


def current_trainee() -> Trainee | None:
    """The trainee this request's session belongs to, or None.

    A session issued before the trainee's last password reset (an older `session_epoch`),
    or for an account that is no longer active, is ended here.
    """
    if "current_trainee" in g:
        return g.current_trainee
    trainee = None
    trainee_id = session.get(TRAINEE_ID)
    if trainee_id is not None:
        trainee = db.session.get(Trainee, trainee_id)
        if (trainee is None or trainee.status != "active"
                or trainee.session_epoch != session.get(EPOCH)):
            log.info("session of trainee %s ended: account changed since login", trainee_id)
            for key in (TRAINEE_ID, EPOCH):
                session.pop(key, None)
            trainee = None
    g.current_trainee = trainee
    return trainee


def refresh_epoch(trainee: Trainee) -> None:
    """Keep this session valid after the trainee's epoch was raised on purpose here."""
    session[EPOCH] = trainee.session_epoch


def session_openid() -> str | None:
    """The openid this browser proved through OAuth, if it did."""
    return session.get(OPENID)


def remember_openid(openid: str | None) -> None:
    if openid:
        session[OPENID] = openid
    else:
        session.pop(OPENID, None)


def in_wechat() -> bool:
    """True in WeChat's own browser (its User-Agent names MicroMessenger)."""
    return "MicroMessenger" in request.headers.get("User-Agent", "")


def safe_next(target: str | None, default: str = DEFAULT_NEXT) -> str:
    """`target` when it is a path of the H5 pages on this site, else `default`.

    Only same-site relative paths pass: no scheme, no host, no `//` or `\\` that a browser
    would read as another host, no control characters.
    """
    if not target or len(target) > 512:
        return default
    if any(ord(char) < 32 or char == "\\" for char in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/h5/"):
        return default
    return target


def _requested_path() -> str:
    return request.full_path.rstrip("?") if request.query_string else request.path


def login_url(next_path: str | None = None) -> str:
    """Where a visitor without a session goes: OAuth inside WeChat, the login page elsewhere."""
    next_path = safe_next(next_path or _requested_path())
    if in_wechat() and not session_openid():
        return url_for("auth.oauth_start", next=next_path)
    return url_for("auth.login", next=next_path)


def login_required(view):
    """Let the view run only for a logged-in trainee.

    Without one: a JSON 401 `login_required` under /h5/api/; inside WeChat, a redirect to
    OAuth (which logs a bound WeChat user straight in); elsewhere, the login page. Either
    way the trainee comes back to the page first asked for.
    """

    @functools.wraps(view)
    def guarded(*args, **kwargs):
        if current_trainee() is None:
            if request.path.startswith("/h5/api/"):
                raise LoginRequired()
            return redirect(login_url())
        return view(*args, **kwargs)

    return guarded


def oauth_in_wechat(view):
    """For a public page: inside WeChat, without a login or an openid, go through OAuth first.

    A bound WeChat user is then logged in without typing anything, as on the menu's entry
    page; everyone else sees the page as it is.
    """

    @functools.wraps(view)
    def entry(*args, **kwargs):
        if in_wechat() and current_trainee() is None and not session_openid():
            return redirect(url_for("auth.oauth_start", next=safe_next(_requested_path())))
        return view(*args, **kwargs)

    return entry


# --- CSRF ----------------------------------------------------------------------------------

def csrf_token() -> str:
    """This session's CSRF token, made on first use."""
    token = session.get(CSRF)
    if not token:
        token = secrets.token_urlsafe(32)
        session[CSRF] = token
    return token


def csrf_field() -> Markup:
    """The hidden input every POST form carries: `{{ csrf_field() }}`."""
    return Markup('<input type="hidden" name="{}" value="{}">').format(
        CSRF_FORM_FIELD, escape(csrf_token()))


def check_csrf() -> None:
    """Refuse an unsafe request under /h5/ whose token does not match the session's."""
    expected = session.get(CSRF)
    sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FORM_FIELD, "")
    if not expected or not hmac.compare_digest(str(sent).encode(), expected.encode()):
        log.info("refused %s %s: CSRF token missing or wrong", request.method, request.path)
        raise CsrfFailed()


# --- wiring ----------------------------------------------------------------------------------

def init_app(app: Flask) -> None:
    """Install the Redis sessions, the CSRF check, the password-change gate, template helpers."""
    app.session_interface = RedisSessionInterface()
    app.jinja_env.globals.update(csrf_field=csrf_field, csrf_token=csrf_token,
                                 current_trainee=current_trainee)

    @app.before_request
    def guard_h5_requests():
        if not request.path.startswith("/h5/"):
            return None
        if request.method in UNSAFE_METHODS:
            check_csrf()
        trainee = current_trainee()
        if (trainee is not None and trainee.must_change_password
                and request.endpoint not in OPEN_DURING_PASSWORD_CHANGE):
            if request.path.startswith("/h5/api/"):
                raise PasswordChangeRequired()
            return redirect(url_for("auth.change_password", next=safe_next(_requested_path())))
        return None

