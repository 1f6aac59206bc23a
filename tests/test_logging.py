"""Log lines carry a request id and never a clear ID or phone number."""

from __future__ import annotations

import io
import logging

from flask import Blueprint


def app_log_stream() -> io.StringIO:
    """Point the handler the app installed on the root logger at a buffer the test reads."""
    handler = next(h for h in logging.getLogger().handlers if getattr(h, "_wx_app", False))
    stream = io.StringIO()
    handler.setStream(stream)
    return stream


def test_every_log_line_of_a_request_carries_its_request_id(tmp_path, monkeypatch):
    """Can an operator follow one request through the log by its id, and is the id returned?"""
    from wx_app import create_app

    monkeypatch.setenv("WX_APP_INSTANCE", str(tmp_path))
    app = create_app({"APP_ENV": "testing", "REDIS_URL": ""})
    probe = Blueprint("probe", __name__)

    @probe.get("/probe")
    def log_something():
        logging.getLogger("wx_app.probe").warning("trainee %s phone %s looked up",
                                                  "50010119900307123X", "13812345678")
        return "ok"

    app.register_blueprint(probe)
    stream = app_log_stream()

    response = app.test_client().get("/probe", headers={"X-Request-Id": "req-0123456789"})

    assert response.headers["X-Request-Id"] == "req-0123456789"
    line = next(line for line in stream.getvalue().splitlines() if "looked up" in line)
    assert "[req-0123456789]" in line
    assert "5001**********123X" in line and "138****5678" in line
    assert "50010119900307123X" not in line and "13812345678" not in line


def test_a_forged_request_id_is_replaced(tmp_path, monkeypatch):
    """Is a request id with odd characters (log injection) replaced by a generated one?"""
    from wx_app import create_app

    monkeypatch.setenv("WX_APP_INSTANCE", str(tmp_path))
    app = create_app({"APP_ENV": "testing", "REDIS_URL": ""})

    response = app.test_client().get("/healthz", headers={"X-Request-Id": "x [admin] ok; rm"})

    assert "admin" not in response.headers["X-Request-Id"]
    assert len(response.headers["X-Request-Id"]) == 16
