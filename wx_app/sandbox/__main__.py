"""`python -m wx_app.sandbox --host 127.0.0.1 --port 5001`: serve the WeChat sandbox.

It reads the same settings as the app (environment and the instance folder named by
WX_APP_INSTANCE, default ./instance), so both agree on AppID, secret and keys.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
from urllib.parse import urlsplit

from werkzeug.serving import make_server

import config
from wx_app import logs

from . import create_sandbox_app

log = logging.getLogger("wx_app.sandbox")

#: Query parameters the request log shows as *** (they stand in for real credentials).
CREDENTIAL_PARAMS = re.compile(r"\b(secret|code|access_token|refresh_token)=[^&\s\"]+")


class HideCredentials(logging.Filter):
    """Blank secrets, codes and tokens out of werkzeug's request lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        line = record.getMessage()
        record.msg, record.args = CREDENTIAL_PARAMS.sub(r"\1=***", line), None
        return True


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, build the sandbox and serve it until interrupted or stopped."""
    parser = argparse.ArgumentParser(prog="python -m wx_app.sandbox",
                                     description="WeChat sandbox (微信沙箱)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=urlsplit(config.SANDBOX_ORIGIN).port,
                        help="port to listen on")
    args = parser.parse_args(argv)

    instance = os.environ.get("WX_APP_INSTANCE", os.path.join(os.getcwd(), "instance"))
    try:
        settings = config.load(os.environ, instance)
    except config.ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if settings["APP_ENV"] == "production":
        print("the WeChat sandbox does not run with APP_ENV=production", file=sys.stderr)
        return 2
    logs.configure(settings["LOG_LEVEL"])
    logging.getLogger("werkzeug").addFilter(HideCredentials())

    server = make_server(args.host, args.port, create_sandbox_app(settings), threaded=True)
    signal.signal(signal.SIGTERM, _stop)
    log.info("WeChat sandbox serving on http://%s:%d/sandbox/", args.host, args.port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    log.info("WeChat sandbox stopped")
    return 0


def _stop(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
