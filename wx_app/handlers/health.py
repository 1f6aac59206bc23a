"""GET /healthz: liveness, and readiness of MySQL and Redis."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from .. import store
from ..extensions import db

bp = Blueprint("health", __name__)


def _database_state() -> dict:
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        db.session.rollback()
        return {"ok": False, "error": type(exc).__name__}
    finally:
        db.session.remove()
    return {"ok": True, "dialect": db.engine.dialect.name}


@bp.get("/healthz/live")
def live():
    """Liveness only: the process answers. Also the bare endpoint the benchmarks compare with."""
    return jsonify({"status": "ok"})


@bp.get("/healthz")
def healthz():
    checks = {"database": _database_state(), "redis": store.ping()}
    ready = all(check["ok"] for check in checks.values())
    body = {"status": "ok" if ready else "unavailable", "checks": checks}
    return jsonify(body), 200 if ready else 503
