"""Command-line contract: `flask --app wsgi …` or the `wx-app` console script."""

from __future__ import annotations

import importlib
import sys

from flask import Flask

#: Command modules under wx_app/commands/; each defines a click command or group `command`.
COMMAND_MODULES = ("catalog", "roster", "wechat", "demo", "worker", "orders")


def register_commands(app: Flask) -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"wx_app.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"wx_app.commands.{name}":
                raise
            continue
        app.cli.add_command(module.command)


def main() -> None:
    """`wx-app …` is `flask --app wsgi …`."""
    from flask.cli import FlaskGroup

    from . import create_app

    group = FlaskGroup(create_app=lambda: create_app())
    sys.exit(group.main())
