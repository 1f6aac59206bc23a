"""Blueprints: thin handlers that parse input, call the domain, and render."""

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from . import h5, health

    app.register_blueprint(health.bp)
    app.register_blueprint(h5.bp)
