"""Configuration: every contract name is honoured, and production refuses unsafe settings."""

from __future__ import annotations

import base64
import secrets

import pytest

import config


def production_environment(tmp_path) -> dict[str, str]:
    """A complete, valid production environment with real-looking values."""
    private_key = tmp_path / "apiclient_key.pem"
    public_key = tmp_path / "pub_key.pem"
    private_key.write_text("placeholder")
    public_key.write_text("placeholder")
    return {
        "APP_ENV": "production",
        "DATABASE_URL": "mysql+pymysql://app:pw@db.internal:3306/cqjj?charset=utf8mb4",
        "REDIS_URL": "redis://cache.internal:6379/0",
        "SECRET_KEY": secrets.token_urlsafe(32),
        "DATA_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "PUBLIC_BASE_URL": "https://jxjy.example.cn",
        "WECHAT_APPID": "wx1234567890abcdef",
        "WECHAT_SECRET": "0123456789abcdef0123456789abcdef",
        "WECHAT_TOKEN": "livetoken",
        "WECHAT_ENCODING_AES_KEY": "A" * 43,
        "WECHAT_API_BASE": "https://api.weixin.qq.com/",
        "WECHAT_OPEN_BASE": "https://open.weixin.qq.com/",
        "WECHATPAY_MCHID": "1600000001",
        "WECHATPAY_APIV3_KEY": "L" * 32,
        "WECHATPAY_PRIVATE_KEY_PATH": str(private_key),
        "WECHATPAY_CERT_SERIAL_NO": "ABCDEF0123456789",
        "WECHATPAY_PUBLIC_KEY_PATH": str(public_key),
        "WECHATPAY_PUBLIC_KEY_ID": "PUB_KEY_ID_0116000000012026000000000000000001",
        "WECHATPAY_API_BASE": "https://api.mch.weixin.qq.com/",
    }


def test_every_contract_name_has_a_default_and_an_override(tmp_path):
    """Does each variable of the design's table have a local default that the env overrides?"""
    names = {setting.name for setting in config.SETTINGS}
    assert names == {
        "APP_ENV", "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DATA_KEY", "PUBLIC_BASE_URL",
        "WECHAT_APPID", "WECHAT_SECRET", "WECHAT_TOKEN", "WECHAT_ENCODING_AES_KEY",
        "WECHAT_API_BASE", "WECHAT_OPEN_BASE", "WECHATPAY_MCHID", "WECHATPAY_APIV3_KEY",
        "WECHATPAY_PRIVATE_KEY_PATH", "WECHATPAY_CERT_SERIAL_NO", "WECHATPAY_PUBLIC_KEY_PATH",
        "WECHATPAY_PUBLIC_KEY_ID", "WECHATPAY_API_BASE",
    }
    defaults = config.load({}, tmp_path)
    assert defaults["APP_ENV"] == "development"
    assert defaults["DATABASE_URL"].startswith("sqlite:///")
    assert defaults["REDIS_URL"] is None
    assert defaults["PUBLIC_BASE_URL"] == "http://127.0.0.1:5000"
    assert config.uses_sandbox(defaults)

    overridden = config.load({"PUBLIC_BASE_URL": "http://10.0.0.5:8000",
                              "WECHAT_APPID": "wxoverride00000001"}, tmp_path)
    assert overridden["PUBLIC_BASE_URL"] == "http://10.0.0.5:8000"
    assert overridden["WECHAT_APPID"] == "wxoverride00000001"


def test_local_secrets_are_generated_once_and_kept(tmp_path):
    """Does a local run keep the same SECRET_KEY and DATA_KEY across restarts?"""
    first = config.load({}, tmp_path)
    second = config.load({}, tmp_path)

    assert first["SECRET_KEY"] == second["SECRET_KEY"]
    assert first["DATA_KEY"] == second["DATA_KEY"]
    assert len(base64.b64decode(first["DATA_KEY"])) == 32
    assert set(first["GENERATED_SECRETS"]) == {"SECRET_KEY", "DATA_KEY"}
    assert (tmp_path / "data_key").stat().st_mode & 0o077 == 0


def test_a_complete_production_configuration_is_accepted(tmp_path):
    """Does production start when every value is real?"""
    values = config.load(production_environment(tmp_path), tmp_path)

    assert values["APP_ENV"] == "production"
    assert not config.uses_sandbox(values)
    assert values["GENERATED_SECRETS"] == ()


@pytest.mark.parametrize("name, value, complaint", [
    ("WECHAT_API_BASE", "http://127.0.0.1:5001/api.weixin.qq.com/", "WECHAT_API_BASE points"),
    ("WECHAT_OPEN_BASE", "http://127.0.0.1:5001/open.weixin.qq.com/", "WECHAT_OPEN_BASE"),
    ("WECHATPAY_API_BASE", "http://sandbox.local/api.mch.weixin.qq.com/",
     "WECHATPAY_API_BASE points"),
    ("SECRET_KEY", "", "SECRET_KEY is not set"),
    ("DATA_KEY", "", "DATA_KEY is not set"),
    ("DATA_KEY", base64.b64encode(b"short").decode(), "DATA_KEY must be the base64"),
    ("WECHAT_SECRET", config.SANDBOX_SECRET, "WECHAT_SECRET still has the sandbox value"),
    ("WECHATPAY_APIV3_KEY", config.SANDBOX_APIV3_KEY, "WECHATPAY_APIV3_KEY still has"),
    ("WECHATPAY_PUBLIC_KEY_PATH", "/nonexistent/pub_key.pem", "no file at"),
    ("REDIS_URL", "", "REDIS_URL is not set"),
    ("DATABASE_URL", "sqlite:////tmp/x.sqlite3", "must name MySQL"),
    ("PUBLIC_BASE_URL", "http://jxjy.example.cn", "PUBLIC_BASE_URL must be https"),
])
def test_production_refuses_unsafe_settings_and_names_them(tmp_path, name, value, complaint):
    """Does production refuse to start with a sandbox URL, a missing or generated secret, a
    sandbox credential or a missing key, and say which setting is wrong?"""
    environment = production_environment(tmp_path)
    environment[name] = value

    with pytest.raises(config.ConfigError) as refused:
        config.load(environment, tmp_path)

    assert complaint in str(refused.value)


def test_production_never_writes_generated_secrets(tmp_path):
    """Is no secret generated into the instance folder when production lacks one?"""
    environment = production_environment(tmp_path)
    del environment["SECRET_KEY"]

    with pytest.raises(config.ConfigError):
        config.load(environment, tmp_path / "instance")

    assert not (tmp_path / "instance" / "secret_key").exists()


def test_create_app_refuses_production_with_sandbox_urls(tmp_path, monkeypatch):
    """Does the application itself refuse to start in production with the sandbox defaults?"""
    from wx_app import create_app

    monkeypatch.setenv("WX_APP_INSTANCE", str(tmp_path))
    with pytest.raises(config.ConfigError) as refused:
        create_app({"APP_ENV": "production"})

    message = str(refused.value)
    assert "WECHAT_API_BASE" in message and "SECRET_KEY is not set" in message


def test_every_setting_is_documented():
    """Does docs/configuration.md describe every setting the app reads?"""
    from pathlib import Path

    text = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()

    missing = [s.name for s in config.ALL_SETTINGS if f"`{s.name}`" not in text]
    assert missing == []
