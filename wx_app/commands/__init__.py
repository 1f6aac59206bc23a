"""Command-line commands, one module per group (see wx_app/cli.py)."""

import click


class Refused(click.ClickException):
    """A refusal printed in Chinese after `prefix`, without click's English "Error:"; exit 1."""

    prefix = "未执行"

    def show(self, file=None) -> None:
        click.echo(f"{self.prefix}：{self.message}", err=True)
