"""`flask wechat sync-menu`, `flask wechat qrcode ORG | --follow` (docs/wechat-account.md)."""

from __future__ import annotations

import logging
from pathlib import Path

import click
from flask.cli import AppGroup

from ..errors import NotFound, UpstreamError
from ..extensions import db
from ..wechat import menu, qrcodes
from ..wechat.client import WeChatAPIError

log = logging.getLogger(__name__)


@click.group("wechat", cls=AppGroup)
def command() -> None:
    """The official account: custom menu and scene QR codes."""


def _upstream_failure(exc: UpstreamError, what: str, outcome: str) -> click.ClickException:
    db.session.rollback()
    if isinstance(exc, WeChatAPIError):
        return click.ClickException(f"WeChat refused {what}: errcode {exc.errcode} "
                                    f"({exc.errmsg}); {outcome}")
    return click.ClickException(f"WeChat could not be reached for {what} ({exc.code}); "
                                f"{outcome}; try again later")


@command.command("sync-menu")
@click.option("--dry-run", is_flag=True,
              help="Check the menu and show how it differs from WeChat's, without pushing.")
def sync_menu(dry_run: bool) -> None:
    """Check config/menu.py against WeChat's limits, show the difference, and push it."""
    wanted = menu.build()
    try:
        report = menu.sync(wanted, dry_run=dry_run)
    except menu.MenuRefused as exc:
        raise click.ClickException(exc.message) from None
    except UpstreamError as exc:
        raise _upstream_failure(exc, "the menu", "the menu WeChat has is unchanged") from None

    for warning in report.warnings:
        click.echo(f"warning: {warning}")
    if not report.diff:
        click.echo("WeChat already has this menu; nothing to push.")
        return
    for line in report.diff:
        click.echo(line)
    if dry_run:
        click.echo("dry run: nothing was pushed")
    else:
        click.echo(f"menu pushed: {len(wanted['button'])} top buttons")


@command.command("qrcode")
@click.argument("organisation", required=False)
@click.option("--follow", is_flag=True,
              help="The account's own follow code (scene 'follow') served at /h5/follow-qr.png.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the PNG (default: org-<id>-qrcode.png here; for --follow, "
                   "the instance folder, which /h5/follow-qr.png serves).")
def qrcode_command(organisation: str | None, follow: bool, out: Path | None) -> None:
    """Print-ready QR code of ORGANISATION (its id or exact full name), or --follow."""
    if follow == bool(organisation):
        raise click.UsageError("name one organisation (its id or exact full name), "
                               "or use --follow")
    try:
        if follow:
            _follow_code(out)
        else:
            _organisation_code(organisation, out)
    except NotFound as exc:
        raise click.ClickException(exc.message) from None
    except OSError as exc:
        db.session.rollback()
        raise click.ClickException(f"cannot write the PNG: {exc}") from None
    except UpstreamError as exc:
        raise _upstream_failure(exc, "the QR ticket", "nothing was written") from None


def _organisation_code(reference: str, out: Path | None) -> None:
    organisation = qrcodes.find_organisation(reference)
    ticket = qrcodes.organisation_ticket(organisation)
    poster = qrcodes.organisation_poster(organisation, ticket)
    path = out or Path(f"org-{organisation.id}-qrcode.png")

    qrcodes.write_png(path, poster.png)
    db.session.commit()
    log.info("QR code of organisation %s written to %s", organisation.id, path)
    if poster.warning:
        click.echo(f"warning: {poster.warning}", err=True)
    click.echo(f"organisation {organisation.id} {organisation.name}: scene {ticket.scene}")
    click.echo(f"ticket url: {ticket.url}")
    click.echo(f"written: {path} ({poster.width}×{poster.height} px)")


def _follow_code(out: Path | None) -> None:
    ticket = qrcodes.permanent_ticket(qrcodes.FOLLOW_SCENE)
    poster = qrcodes.follow_poster(ticket)
    served = qrcodes.follow_poster_path()

    qrcodes.write_png(served, poster.png)
    if out is not None:
        qrcodes.write_png(out, poster.png)
    log.info("follow QR code written to %s", served)
    if poster.warning:
        click.echo(f"warning: {poster.warning}", err=True)
    click.echo(f"scene {ticket.scene}; ticket url: {ticket.url}")
    click.echo(f"written: {served} (served at /h5/follow-qr.png)")
    if out is not None:
        click.echo(f"written: {out}")
