"""`make run`: the WeChat sandbox and the app side by side, for a desktop browser.

The sandbox runs as a child process on SANDBOX_PORT (default 5001, as config.SANDBOX_ORIGIN),
the app in this process on PORT (default 5000), both on HOST (default 127.0.0.1). The child
is stopped when this process ends (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from urllib.error import URLError
from urllib.parse import urlsplit

from werkzeug.serving import make_server

import config

from .sandbox.keys import ensure_key_material

HEALTH_TIMEOUT = 20.0


def main() -> int:
    """Start the sandbox, wait for it, then serve the app until interrupted."""
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "5000"))
    sandbox_port = int(os.environ.get("SANDBOX_PORT", urlsplit(config.SANDBOX_ORIGIN).port))
    # A browser cannot open 0.0.0.0; the printed and configured URLs use the loopback then.
    visible_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    sandbox_origin = f"http://{visible_host}:{sandbox_port}"
    instance = os.environ.setdefault("WX_APP_INSTANCE", os.path.join(os.getcwd(), "instance"))
    # Ports other than the defaults move the URLs the app and the sandbox use, unless the
    # environment names them itself.
    os.environ.setdefault("PUBLIC_BASE_URL", f"http://{visible_host}:{port}")
    for name, wechat_host in config.OFFICIAL_HOSTS.items():
        os.environ.setdefault(name, f"{sandbox_origin}/{wechat_host}/")

    for what, number in (("应用 app", port), ("沙箱 sandbox", sandbox_port)):
        if not _port_free(host, number):
            print(f"端口 {number} 已被占用（{what}）。Port {number} is already in use ({what}).",
                  file=sys.stderr)
            return 1
    ensure_key_material(instance)

    sandbox = subprocess.Popen([sys.executable, "-m", "wx_app.sandbox", "--host", host,
                                "--port", str(sandbox_port)])
    signal.signal(signal.SIGTERM, _stop)
    try:
        _wait_for_health(f"{sandbox_origin}/sandbox/api/health", sandbox)
        from . import create_app

        server = make_server(host, port, create_app(), threaded=True)
        _print_banner(os.environ["PUBLIC_BASE_URL"], sandbox_origin)
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        _stop_child(sandbox)
    return 0


def _print_banner(app_origin: str, sandbox_origin: str) -> None:
    print(f"""
  学员页面 Trainee pages:   {app_origin}/h5/
  微信沙箱 WeChat sandbox:  {sandbox_origin}/sandbox/

  在授权页上选择扮演哪位微信用户。On the authorization page, choose which WeChat user you are.
  按 Ctrl-C 停止。Press Ctrl-C to stop.
""", flush=True)


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _wait_for_health(url: str, sandbox: subprocess.Popen) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT
    while time.monotonic() < deadline:
        if sandbox.poll() is not None:
            raise RuntimeError(f"微信沙箱未能启动（退出码 {sandbox.returncode}）。"
                               f"The WeChat sandbox exited with {sandbox.returncode}.")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except (URLError, OSError):
            time.sleep(0.2)
    raise RuntimeError(f"微信沙箱 {HEALTH_TIMEOUT:.0f} 秒内未响应。"
                       f"The WeChat sandbox did not answer {url} in time.")


def _stop_child(sandbox: subprocess.Popen) -> None:
    if sandbox.poll() is None:
        sandbox.terminate()
        try:
            sandbox.wait(timeout=5)
        except subprocess.TimeoutExpired:
            sandbox.kill()
            sandbox.wait()


def _stop(signum, frame):
    # Stop once: a second SIGTERM during the shutdown must not interrupt the shutdown itself.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
