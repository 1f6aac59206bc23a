"""Background jobs run only for committed work, on the Redis queue or inline locally."""

from __future__ import annotations

from rq import SimpleWorker
from sqlalchemy import select

from wx_app import jobs, store
from wx_app.extensions import db
from wx_app.models import District, Organisation


@jobs.job
def record_organisation_seen(organisation_id: int) -> None:
    """A job that needs the committed row: it fails if the organisation is not visible."""
    organisation = db.session.get(Organisation, organisation_id)
    store.client().rpush(store.key("test", "seen"), organisation.name)


def add_organisation(name: str) -> Organisation:
    district = db.session.scalars(select(District).limit(1)).one()
    organisation = Organisation(name=name, district=district)
    db.session.add(organisation)
    db.session.flush()
    return organisation


def seen() -> list[str]:
    return [name.decode() for name in store.client().lrange(store.key("test", "seen"), 0, -1)]


def test_a_job_is_queued_only_when_its_transaction_commits(ctx):
    """Is the job absent from the queue until commit, and does the worker then see the row?"""
    organisation = add_organisation("重庆市渝北区人民医院")
    jobs.enqueue_after_commit(record_organisation_seen, organisation.id)
    assert jobs.queue().count == 0

    db.session.commit()
    assert jobs.queue().count == 1
    SimpleWorker([jobs.queue()], connection=store.client()).work(burst=True)

    assert seen() == ["重庆市渝北区人民医院"]
    assert jobs.queue().count == 0


def test_a_rolled_back_transaction_leaves_no_job(ctx):
    """When the work is rolled back, is its job dropped rather than run against nothing?"""
    organisation = add_organisation("重庆市沙坪坝区教育委员会")
    jobs.enqueue_after_commit(record_organisation_seen, organisation.id)

    db.session.rollback()
    db.session.commit()

    assert jobs.queue().count == 0


def test_without_redis_jobs_run_inline_after_commit(tmp_path, monkeypatch):
    """In the single-process local run, does a job run right after the commit, and not before?"""
    from flask_migrate import upgrade

    from wx_app import create_app

    monkeypatch.setenv("WX_APP_INSTANCE", str(tmp_path))
    local = create_app({"APP_ENV": "testing", "REDIS_URL": "",
                        "DATABASE_URL": f"sqlite:///{tmp_path}/local.sqlite3"})
    with local.app_context():
        upgrade()
        organisation = add_organisation("重庆市万州区人民政府")
        jobs.enqueue_after_commit(record_organisation_seen, organisation.id)
        assert seen() == []

        db.session.commit()

        assert seen() == ["重庆市万州区人民政府"]


def test_only_job_functions_can_be_queued(ctx):
    """Is a plain function refused, so every queued job gets its own app context and commit?"""
    import pytest

    with pytest.raises(TypeError):
        jobs.enqueue_after_commit(print, "x")


def test_the_worker_command_runs_queued_jobs(app, ctx):
    """Does `flask worker --burst` run what the app queued, as a deployment's worker would?"""
    organisation = add_organisation("重庆市江北区卫生健康委员会")
    jobs.enqueue_after_commit(record_organisation_seen, organisation.id)
    db.session.commit()

    result = app.test_cli_runner().invoke(args=["worker", "--burst"])

    assert result.exit_code == 0, result.output
    assert seen() == ["重庆市江北区卫生健康委员会"]


def test_a_delayed_job_waits_for_its_time(ctx):
    """Is a delayed job kept off the queue until its time, so an order can expire later?"""
    from datetime import timedelta

    organisation = add_organisation("重庆市南岸区人力资源和社会保障局")
    jobs.enqueue_after_commit(record_organisation_seen, organisation.id,
                              delay=timedelta(minutes=30))
    db.session.commit()

    assert jobs.queue().count == 0
    assert jobs.queue().scheduled_job_registry.count == 1
