"""`flask catalog load FILE`: load or update the course catalogue (see docs/catalog.md)."""

import logging

import click
from flask.cli import AppGroup
from sqlalchemy.exc import IntegrityError

from ..catalog import CatalogError, load_catalog
from ..extensions import db

log = logging.getLogger(__name__)


@click.group("catalog", cls=AppGroup)
def command() -> None:
    """The course catalogue: title series, plans, courses and chapters."""


@command.command("load")
@click.argument("path", type=click.Path(dir_okay=False, path_type=str))
@click.option("--dry-run", is_flag=True,
              help="Check the file and report what would change, without writing.")
def load(path: str, dry_run: bool) -> None:
    """Load a catalogue file; a file with any problem is refused whole."""
    try:
        report = load_catalog(path)
    except CatalogError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from None
    except IntegrityError:
        db.session.rollback()
        log.exception("catalogue %s collided with a concurrent change", path)
        raise click.ClickException(f"{path}: another change to the catalogue was written at "
                                   "the same time; nothing was written, load it again") from None

    if dry_run:
        db.session.rollback()
        log.info("dry run of catalogue %s: rolled back", path)
    else:
        db.session.commit()

    for line in report.lines():
        click.echo(line)
    if dry_run:
        click.echo("dry run: nothing was written")
