"""Blueprints: thin handlers that parse input, call the domain, and render."""

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from . import (
        auth,
        group_purchase,
        h5,
        health,
        jssdk,
        orders,
        pay,
        plans,
        profile,
        wechat_callback,
    )

    app.register_blueprint(health.bp)
    app.register_blueprint(h5.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(profile.bp)
    app.register_blueprint(wechat_callback.bp)
    app.register_blueprint(jssdk.bp)
    app.register_blueprint(group_purchase.bp)
    app.register_blueprint(plans.bp)
    app.register_blueprint(orders.bp)
    app.register_blueprint(pay.bp)
