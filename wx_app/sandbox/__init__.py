"""The WeChat sandbox: a small server that speaks WeChat's protocols, for runs without internet.

Each WeChat host is a path prefix, so the app reaches the sandbox only by its base URLs:
WECHAT_API_BASE = <sandbox>/api.weixin.qq.com/, WECHAT_OPEN_BASE = <sandbox>/open.weixin.qq.com/,
WECHATPAY_API_BASE = <sandbox>/api.mch.weixin.qq.com/. The sandbox's own pages and JSON API
are under /sandbox/. One module per protocol area: `official` (cgi-bin), `oauth` (网页授权),
`pay` (WeChat Pay v3); `admin` is the sandbox's own; `state` is what it remembers.

Start it with `python -m wx_app.sandbox --host 127.0.0.1 --port 5001`; docs/sandbox.md
lists every endpoint.
"""

from __future__ import annotations

from flask import Flask, request

from . import admin, errcodes, oauth, official, pay, push, sms, state
from .errcodes import WeChatError
from .responses import wechat_json

#: Path prefixes standing for WeChat's hosts.
WECHAT_HOSTS = ("/api.weixin.qq.com/", "/open.weixin.qq.com/", "/api.mch.weixin.qq.com/")


def create_sandbox_app(settings: dict) -> Flask:
    """The sandbox, sharing AppID, secret and keys with the app through `settings`."""
    app = Flask(__name__, template_folder="templates", static_folder=None)
    app.config.update(settings)
    app.json.ensure_ascii = False

    sandbox_state = state.SandboxState()
    sandbox_state.seed()
    app.extensions[state.EXTENSION] = sandbox_state
    app.extensions[pay.EXTENSION] = pay.load_pay_keys(settings)

    for blueprint in (official.bp, oauth.bp, admin.bp, sms.bp, push.bp, *pay.blueprints()):
        app.register_blueprint(blueprint)
    _register_protocol_handlers(app)
    return app


def _register_protocol_handlers(app: Flask) -> None:
    @app.before_request
    def count_wechat_call():
        for prefix in WECHAT_HOSTS:
            if request.path.startswith(prefix):
                state.current().count_call(request.path[len(prefix):])

    @app.errorhandler(WeChatError)
    def wechat_error(exc: WeChatError):
        return wechat_json(exc.to_body())

    @app.errorhandler(404)
    def not_offered(exc):
        if request.path.startswith("/api.weixin.qq.com/"):
            # The errmsg says the sandbox lacks the endpoint: what a developer reads in a log.
            detail = f"the WeChat sandbox does not offer {request.method} {request.path}"
            return wechat_json(WeChatError(errcodes.INVALID_URL, detail).to_body())
        return exc
