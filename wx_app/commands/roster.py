"""`flask roster import FILE.xlsx`: accounts from an employer's roster (see docs/roster.md)."""

from __future__ import annotations

import logging
from pathlib import Path

import click
from flask.cli import AppGroup
from sqlalchemy.exc import SQLAlchemyError

from ..extensions import db
from ..roster import (
    RosterError,
    error_workbook_path,
    import_roster,
    read_roster,
    write_error_workbook,
)
from . import Refused

log = logging.getLogger(__name__)


class RosterRefused(Refused):
    prefix = "导入失败"


@click.group("roster", cls=AppGroup)
def command() -> None:
    """Registration rosters (注册名单, 附件2) sent by employers."""


@command.command("import")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def import_(path: Path) -> None:
    """Create an account for each valid row; write FILE.errors.xlsx for the others."""
    try:
        roster = read_roster(path)
    except RosterError as exc:
        raise RosterRefused(exc.message) from None
    click.echo(f"{roster.source}（工作表“{roster.sheet}”）："
               f"单位 {roster.organisation or '未填写'}，区县 {roster.district or '未填写'}，"
               f"{len(roster.rows)}行")

    try:
        with click.progressbar(length=len(roster.rows), label="导入中") as bar:
            report = import_roster(roster, progress=bar.update)
    except RosterError as exc:
        db.session.rollback()
        raise RosterRefused(exc.message) from None
    except SQLAlchemyError:
        db.session.rollback()
        log.exception("roster %s: import stopped by a database error", roster.source)
        raise RosterRefused("数据库出错，导入中断。已导入的部分会保留；重新导入同一文件即可"
                            "接着完成，不会重复建号。") from None

    for note in report.notes:
        click.echo(note)
    if report.organisation_created:
        click.echo(f"新建单位：{report.organisation}（{report.district}）")
    if report.rejected:
        written = write_error_workbook(report, error_workbook_path(path))
        click.echo(f"未导入的行及原因已写入 {written}")
    click.echo(report.summary())
