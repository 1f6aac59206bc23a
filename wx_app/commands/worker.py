"""`flask worker`: run background jobs from the Redis queue."""

import click

from .. import jobs


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
def command(burst: bool) -> None:
    """Run a queue worker (needs REDIS_URL)."""
    try:
        jobs.work(burst=burst)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc
