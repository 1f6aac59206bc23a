"""Settings: one table of every key with its local default, overridden by the environment.

Each key below is read from the environment variable of the same name. The names are a
contract (deployments and external checks set them); see docs/configuration.md.
"""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

# Local sandbox endpoints. `make run` starts the sandbox on this port.
SANDBOX_ORIGIN = "http://127.0.0.1:5001"

# Values the sandbox shares with the app in a local run. They are public on purpose:
# production refuses every one of them.
SANDBOX_APPID = "wx5a4b3c2d1e0f9081"
SANDBOX_SECRET = "5b0c1f9e8d7a6b5c4d3e2f1a0b9c8d7e"
SANDBOX_TOKEN = "sandboxtoken"
SANDBOX_ENCODING_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
SANDBOX_MCHID = "1900000109"
SANDBOX_APIV3_KEY = "sandboxapiv3key0123456789abcdefg"
SANDBOX_CERT_SERIAL_NO = "5157F09EFDC096DE15EBE81A47057A72F0D3A5C1"
SANDBOX_PUBLIC_KEY_ID = "PUB_KEY_ID_0119000001092026120300000000000001"

OFFICIAL_HOSTS = {
    "WECHAT_API_BASE": "api.weixin.qq.com",
    "WECHAT_OPEN_BASE": "open.weixin.qq.com",
    "WECHATPAY_API_BASE": "api.mch.weixin.qq.com",
}


class ConfigError(RuntimeError):
    """The configuration cannot be used; the message names every problem."""


@dataclass(frozen=True)
class Setting:
    name: str
    doc: str
    default: str | None
    kind: str = "str"  # str, int, bool, path
    secret: bool = False


def _key_path(name: str) -> str:
    return f"{{instance}}/sandbox-keys/{name}"


SETTINGS: tuple[Setting, ...] = (
    Setting("APP_ENV", "development, testing or production", "development"),
    Setting("DATABASE_URL", "SQLAlchemy URL (mysql+pymysql://…?charset=utf8mb4)",
            "sqlite:///{instance}/wx_app.sqlite3"),
    Setting("REDIS_URL", "Redis URL; unset means an in-process store (one process only)", None),
    Setting("SECRET_KEY", "session signing key", None, secret=True),
    Setting("DATA_KEY", "base64 of 32 bytes: encrypts ID and phone numbers at rest", None,
            secret=True),
    Setting("PUBLIC_BASE_URL", "public origin for OAuth redirects, notify URLs, QR links",
            "http://127.0.0.1:5000"),
    Setting("WECHAT_APPID", "official account AppID", SANDBOX_APPID),
    Setting("WECHAT_SECRET", "official account AppSecret", SANDBOX_SECRET, secret=True),
    Setting("WECHAT_TOKEN", "callback Token", SANDBOX_TOKEN, secret=True),
    Setting("WECHAT_ENCODING_AES_KEY", "callback EncodingAESKey; set means safe mode",
            SANDBOX_ENCODING_AES_KEY, secret=True),
    Setting("WECHAT_API_BASE", "base URL of api.weixin.qq.com",
            f"{SANDBOX_ORIGIN}/api.weixin.qq.com/"),
    Setting("WECHAT_OPEN_BASE", "base URL of open.weixin.qq.com",
            f"{SANDBOX_ORIGIN}/open.weixin.qq.com/"),
    Setting("WECHATPAY_MCHID", "merchant id", SANDBOX_MCHID),
    Setting("WECHATPAY_APIV3_KEY", "APIv3 key (32 characters)", SANDBOX_APIV3_KEY, secret=True),
    Setting("WECHATPAY_PRIVATE_KEY_PATH", "merchant API private key (PEM)",
            _key_path("merchant_private_key.pem"), kind="path"),
    Setting("WECHATPAY_CERT_SERIAL_NO", "serial number of the merchant API certificate",
            SANDBOX_CERT_SERIAL_NO),
    Setting("WECHATPAY_PUBLIC_KEY_PATH", "WeChat Pay public key (PEM), public-key mode",
            _key_path("wechatpay_public_key.pem"), kind="path"),
    Setting("WECHATPAY_PUBLIC_KEY_ID", "id of the WeChat Pay public key (PUB_KEY_ID_…)",
            SANDBOX_PUBLIC_KEY_ID),
    Setting("WECHATPAY_API_BASE", "base URL of api.mch.weixin.qq.com",
            f"{SANDBOX_ORIGIN}/api.mch.weixin.qq.com/"),
)

# Keys that are not part of the deployment contract but may be tuned; same override rule.
TUNABLES: tuple[Setting, ...] = (
    Setting("REDIS_KEY_PREFIX", "prefix of every Redis key the app writes", "wx:"),
    Setting("ORDER_TTL_MINUTES", "minutes before an unpaid order expires", "30", kind="int"),
    Setting("REFUND_REQUIRES_NO_CREDIT", "refund only while no hours are earned", "true",
            kind="bool"),
    Setting("LOG_LEVEL", "root log level", "INFO"),
    Setting("TEMPLATE_ID_PAYMENT_SUCCESS", "template message id: payment succeeded",
            "sandbox-tpl-payment-success"),
    Setting("TEMPLATE_ID_CERTIFICATE_ISSUED", "template message id: certificate issued",
            "sandbox-tpl-certificate-issued"),
    Setting("TEMPLATE_ID_INVOICE_ISSUED", "template message id: invoice issued",
            "sandbox-tpl-invoice-issued"),
    Setting("WECHAT_ACCEPT_PLAIN_PUSHES", "accept callback pushes in plain mode (明文模式)",
            "false", kind="bool"),
)

ALL_SETTINGS = SETTINGS + TUNABLES

# What production must never run with.
SANDBOX_VALUES = {
    "WECHAT_APPID": SANDBOX_APPID,
    "WECHAT_SECRET": SANDBOX_SECRET,
    "WECHAT_TOKEN": SANDBOX_TOKEN,
    "WECHAT_ENCODING_AES_KEY": SANDBOX_ENCODING_AES_KEY,
    "WECHATPAY_MCHID": SANDBOX_MCHID,
    "WECHATPAY_APIV3_KEY": SANDBOX_APIV3_KEY,
    "WECHATPAY_CERT_SERIAL_NO": SANDBOX_CERT_SERIAL_NO,
    "WECHATPAY_PUBLIC_KEY_ID": SANDBOX_PUBLIC_KEY_ID,
}


def _convert(setting: Setting, raw: str) -> object:
    if setting.kind == "int":
        try:
            return int(raw)
        except ValueError as exc:
            raise ConfigError(f"{setting.name} must be a whole number, got {raw!r}") from exc
    if setting.kind == "bool":
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    return raw


def _generated_secret(instance: Path, name: str, make) -> str:
    """Read a secret generated earlier into the instance folder, or create it once."""
    path = instance / name
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(make())
        tmp.chmod(0o600)
        # os.link fails if another process won the race; then its value is the one kept.
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


def load(environ: dict[str, str] | None = None, instance_path: str | Path = "instance") -> dict:
    """Build the settings dict from defaults and the environment, and check it."""
    environ = os.environ if environ is None else environ
    instance = Path(instance_path).resolve()
    values: dict[str, object] = {}
    generated: list[str] = []

    for setting in ALL_SETTINGS:
        raw = environ.get(setting.name)
        if raw is None or raw == "":
            if setting.default is None:
                values[setting.name] = None
                continue
            raw = setting.default.replace("{instance}", str(instance))
        values[setting.name] = _convert(setting, raw)

    for name, make in (
        ("SECRET_KEY", lambda: secrets.token_urlsafe(48)),
        ("DATA_KEY", lambda: base64.b64encode(secrets.token_bytes(32)).decode()),
    ):
        if not values[name]:
            if values["APP_ENV"] != "production":
                values[name] = _generated_secret(instance, name.lower(), make)
            generated.append(name)

    values["GENERATED_SECRETS"] = tuple(generated)
    values["INSTANCE_PATH"] = str(instance)
    check(values)
    return values


def uses_sandbox(values: dict) -> bool:
    """True when any WeChat base URL points away from WeChat's own hosts."""
    return any(urlsplit(str(values[name])).hostname != host
               for name, host in OFFICIAL_HOSTS.items())


def check(values: dict) -> None:
    """Refuse settings that cannot work; in production, refuse anything local or generated."""
    problems: list[str] = []

    if values["APP_ENV"] not in {"development", "testing", "production"}:
        problems.append(f"APP_ENV must be development, testing or production, "
                        f"not {values['APP_ENV']!r}")
    if values["DATA_KEY"]:
        try:
            if len(base64.b64decode(str(values["DATA_KEY"]), validate=True)) != 32:
                raise ValueError
        except ValueError:
            problems.append("DATA_KEY must be the base64 encoding of exactly 32 bytes")
    if len(str(values["WECHATPAY_APIV3_KEY"])) != 32:
        problems.append("WECHATPAY_APIV3_KEY must be 32 characters")
    aes_key = values["WECHAT_ENCODING_AES_KEY"]
    if aes_key and len(str(aes_key)) != 43:
        problems.append("WECHAT_ENCODING_AES_KEY must be 43 characters")
    for name in ("PUBLIC_BASE_URL", *OFFICIAL_HOSTS):
        parts = urlsplit(str(values[name]))
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            problems.append(f"{name} must be an http(s) URL, got {values[name]!r}")

    if values["APP_ENV"] == "production":
        problems.extend(_production_problems(values))

    if problems:
        raise ConfigError("configuration refused:\n  - " + "\n  - ".join(problems))


def _production_problems(values: dict) -> list[str]:
    problems = [f"{name} is not set (a generated value is refused in production)"
                for name in values["GENERATED_SECRETS"]]
    for name, host in OFFICIAL_HOSTS.items():
        parts = urlsplit(str(values[name]))
        if parts.scheme != "https" or parts.hostname != host:
            problems.append(f"{name} points at {values[name]!r}; production needs https://{host}/")
    for name, sandbox_value in SANDBOX_VALUES.items():
        if values[name] == sandbox_value:
            problems.append(f"{name} still has the sandbox value")
    if not str(values["PUBLIC_BASE_URL"]).startswith("https://"):
        problems.append("PUBLIC_BASE_URL must be https in production")
    if str(values["DATABASE_URL"]).startswith("sqlite"):
        problems.append("DATABASE_URL must name MySQL in production, not SQLite")
    if not values["REDIS_URL"]:
        problems.append("REDIS_URL is not set (the in-process store serves one process only)")
    instance = str(values["INSTANCE_PATH"])
    for name in ("WECHATPAY_PRIVATE_KEY_PATH", "WECHATPAY_PUBLIC_KEY_PATH"):
        path = str(values[name])
        if path.startswith(os.path.join(instance, "sandbox-keys")):
            problems.append(f"{name} is the sandbox's generated key")
        elif not Path(path).is_file():
            problems.append(f"{name}: no file at {path}")
    return problems
