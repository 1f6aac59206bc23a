"""Logging: one line per event, a request (or job) id on each, personal data masked."""

from __future__ import annotations

import contextvars
import logging
import sys

from .personal_data import MaskingFilter

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

FORMAT = "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


def configure(level: str) -> None:
    """Install one stderr handler on the root logger; safe to call more than once."""
    root = logging.getLogger()
    for handler in root.handlers:
        if getattr(handler, "_wx_app", False):
            break
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler._wx_app = True
        handler.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(handler)
    for log_filter in (RequestIdFilter(), MaskingFilter()):
        if not any(type(f) is type(log_filter) for f in handler.filters):
            handler.addFilter(log_filter)
    root.setLevel(level)
