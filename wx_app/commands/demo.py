"""`flask demo seed`: sample catalogue, organisations and trainees for the local run."""

import click
from flask import current_app
from flask.cli import AppGroup

from ..catalog import CatalogError
from ..demo import seed_demo
from ..demo.seed import MissingReferenceData
from ..extensions import db


@click.group("demo", cls=AppGroup)
def command() -> None:
    """Demo data for a local run."""


@command.command("seed")
def seed() -> None:
    """Create the demo data once, and print how to log in as the demo trainees."""
    try:
        report = seed_demo()
    except (CatalogError, MissingReferenceData) as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    db.session.commit()

    for line in report.lines():
        click.echo(line)
    click.echo(f"Open {current_app.config['PUBLIC_BASE_URL'].rstrip('/')}/h5/ to log in.")
