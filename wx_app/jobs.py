"""Background jobs on a Redis-backed queue (rq), enqueued only once the database commits.

Domain code calls `enqueue_after_commit(job_function, *args)`. The job is held on the
SQLAlchemy session and handed to the queue by the session's `after_commit` event, so a
rolled-back transaction never leaves a job behind and a job never sees uncommitted rows.
Without Redis (the single-process local run) the job runs inline, in a fresh app context,
right after the commit.
"""

from __future__ import annotations

import functools
import logging
from datetime import timedelta

from flask import Flask, current_app, has_app_context
from rq import Queue, Retry
from sqlalchemy import event
from sqlalchemy.orm import Session

from . import logs, store
from .extensions import db

log = logging.getLogger(__name__)

QUEUE_NAME = "default"
DEFAULT_RETRY = Retry(max=3, interval=[10, 60, 300])
_PENDING = "wx_app_pending_jobs"
_worker_app: Flask | None = None


def job(func):
    """Make `func` a queue job: it runs in its own app context and commits once at the end."""

    @functools.wraps(func)
    def run(*args, **kwargs):
        app = current_app._get_current_object() if has_app_context() else _app_for_worker()
        with app.app_context():
            try:
                result = func(*args, **kwargs)
                db.session.commit()
                return result
            except Exception:
                db.session.rollback()
                raise

    run.is_job = True
    return run


def _app_for_worker() -> Flask:
    global _worker_app
    if _worker_app is None:
        from . import create_app

        _worker_app = create_app()
    return _worker_app


def queue() -> Queue:
    return Queue(QUEUE_NAME, connection=store.client())


def enqueue_after_commit(func, *args, retry: Retry | None = DEFAULT_RETRY,
                         delay: timedelta | None = None, **kwargs) -> None:
    """Queue `func(*args, **kwargs)` to run once the current transaction commits.

    With `delay`, the job runs that much later (the worker's scheduler moves it to the
    queue). Without Redis there is no scheduler: a delayed job is not run, so whatever it
    does must also happen when the object is next looked at.
    """
    if not getattr(func, "is_job", False):
        raise TypeError(f"{func.__qualname__} is not decorated with @job")
    db.session.info.setdefault(_PENDING, []).append((func, args, kwargs, retry, delay))


@event.listens_for(Session, "after_commit")
def _dispatch_pending(session: Session) -> None:
    for func, args, kwargs, retry, delay in session.info.pop(_PENDING, []):
        if store.in_process():
            if delay is None:
                _run_inline(func, args, kwargs)
            else:
                log.info("no scheduler without Redis: %s not delayed-run", func.__qualname__)
        elif delay is None:
            queued = queue().enqueue(func, *args, retry=retry, **kwargs)
            log.info("job queued: %s id=%s", func.__qualname__, queued.id)
        else:
            queued = queue().enqueue_in(delay, func, *args, retry=retry, **kwargs)
            log.info("job scheduled in %s: %s id=%s", delay, func.__qualname__, queued.id)


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    dropped = session.info.pop(_PENDING, [])
    if dropped:
        log.info("rollback dropped %d unqueued job(s)", len(dropped))


def _run_inline(func, args, kwargs) -> None:
    # A failing inline job must not undo or fail the request that already committed.
    try:
        func(*args, **kwargs)
    except Exception:
        log.exception("inline job failed: %s", func.__qualname__)


def work(burst: bool = False) -> bool:
    """Run a worker on the default queue until stopped (or, with burst, until it is empty)."""
    from rq import Worker

    if store.in_process():
        raise RuntimeError("the worker needs REDIS_URL; without it jobs run inline")
    # The worker forks a child per job: the parent must hold no database connection that a
    # child could inherit and share with it.
    db.engine.dispose()
    worker = Worker([queue()], connection=store.client())
    logs.request_id.set("worker")
    return worker.work(burst=burst, with_scheduler=True)
