"""The WeChat backend of the Chongqing continuing-education platform."""

from __future__ import annotations

import logging
import os
import secrets
import time

from flask import Flask, g, request

import config

from . import jobs, logs, personal_data, static_files, store  # noqa: F401  (jobs: session events)
from .extensions import db, migrate

log = logging.getLogger(__name__)


def create_app(overrides: dict | None = None) -> Flask:
    """Build the app from the environment (and `overrides`, for tests); never migrates."""
    app = Flask(__name__, template_folder="templates_h5", static_folder="static",
                instance_path=os.environ.get("WX_APP_INSTANCE",
                                             os.path.join(os.getcwd(), "instance")))
    environ = dict(os.environ)
    environ.update({key: str(value) for key, value in (overrides or {}).items()
                    if value is not None})
    settings = config.load(environ, app.instance_path)
    if settings["APP_ENV"] != "production":
        from .sandbox.keys import ensure_configured_key_material

        ensure_configured_key_material(settings)  # the sandbox's WeChat Pay keys, once
    app.config.update(settings)
    app.config.update(
        TESTING=settings["APP_ENV"] == "testing",
        SQLALCHEMY_DATABASE_URI=settings["DATABASE_URL"],
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(settings["DATABASE_URL"]),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=str(settings["PUBLIC_BASE_URL"]).startswith("https://"),
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        JSON_AS_ASCII=False,
    )

    logs.configure(settings["LOG_LEVEL"])
    personal_data.init_app(app)
    store.init_app(app)
    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(__file__), "..",
                                                     "migrations"))

    from . import models  # noqa: F401  (registers the tables)
    from .cli import register_commands
    from .handlers import register_blueprints
    from .handlers.errors import register_error_handlers
    from .sessions import init_app as init_sessions

    register_blueprints(app)
    register_error_handlers(app)
    static_files.init_app(app)
    register_commands(app)
    app.jinja_env.filters["mask_id"] = personal_data.mask_id_number
    app.jinja_env.filters["mask_phone"] = personal_data.mask_phone
    _install_request_id(app)
    init_sessions(app)  # server-side sessions in Redis, CSRF, login helpers
    if settings["GENERATED_SECRETS"] and settings["APP_ENV"] == "development":
        log.info("using generated %s from the instance folder",
                 ", ".join(settings["GENERATED_SECRETS"]))
    return app


def _engine_options(url: str) -> dict:
    if url.startswith("mysql"):
        return {"pool_pre_ping": True, "pool_recycle": 1800,
                "connect_args": {"connect_timeout": 3, "read_timeout": 30,
                                 "write_timeout": 30}}
    return {}


def _install_request_id(app: Flask) -> None:
    @app.before_request
    def assign_request_id():
        incoming = request.headers.get("X-Request-Id", "")
        ok = 8 <= len(incoming) <= 64 and incoming.replace("-", "").isalnum()
        g.request_id = incoming if ok else secrets.token_hex(8)
        g.request_started = time.perf_counter()
        logs.request_id.set(g.request_id)

    @app.after_request
    def tag_response(response):
        if "request_id" in g:
            response.headers["X-Request-Id"] = g.request_id
        return response

    @app.teardown_request
    def forget_request_id(exc):
        logs.request_id.set("-")
