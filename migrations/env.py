"""Alembic environment for `flask db …`: the app's engine and models, reviewed comparisons.

Migrations run as a deploy step (`flask --app wsgi db upgrade`), never from create_app().
"""

import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app

from wx_app.models._types import compare_type

config = context.config
logger = logging.getLogger("alembic.env")

# create_app() has already installed the app's log handler (request id, personal-data
# masking). alembic.ini's logging section would replace it and disable every logger that
# exists already, which silences the app for the rest of a process that migrates in-process
# (the tests do). It only applies when nothing has configured logging.
if config.config_file_name is not None and not logging.getLogger().handlers:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def get_engine():
    return current_app.extensions["migrate"].db.engine


def get_engine_url() -> str:
    return get_engine().url.render_as_string(hide_password=False).replace("%", "%%")


config.set_main_option("sqlalchemy.url", get_engine_url())
target_db = current_app.extensions["migrate"].db


def get_metadata():
    if hasattr(target_db, "metadatas"):
        return target_db.metadatas[None]
    return target_db.metadata


def run_migrations_offline():
    """Emit the SQL of the migrations to standard output instead of running them."""
    context.configure(url=config.get_main_option("sqlalchemy.url"),
                      target_metadata=get_metadata(), literal_binds=True,
                      compare_type=compare_type)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    """Run the migrations on a connection of the app's engine."""

    def process_revision_directives(context, revision, directives):
        # An autogenerate that finds no change writes no empty revision file.
        if getattr(config.cmd_opts, "autogenerate", False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info("No changes in schema detected.")

    conf_args = dict(current_app.extensions["migrate"].configure_args)
    conf_args.setdefault("process_revision_directives", process_revision_directives)
    # DATETIME(6) must not compare equal to a DATETIME that lost its microseconds.
    conf_args["compare_type"] = compare_type

    with get_engine().connect() as connection:
        context.configure(connection=connection, target_metadata=get_metadata(), **conf_args)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
