"""The catalogue loader: the sample file, loading in place, and refusing bad files whole."""

from __future__ import annotations

import json
import re
import struct
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from wx_app.catalog import CatalogError, load_catalog
from wx_app.demo import SAMPLE_CATALOG
from wx_app.extensions import db
from wx_app.models import (
    Chapter,
    ChapterProgress,
    Course,
    CourseCompletion,
    Enrollment,
    Plan,
    PlanCourse,
    TitleSeries,
    Trainee,
)
from wx_app.passwords import hash_password

STATIC = Path(__file__).resolve().parent.parent / "wx_app" / "static"


def sample() -> dict:
    """A fresh copy of the shipped sample catalogue, to edit."""
    return json.loads(SAMPLE_CATALOG.read_text(encoding="utf-8"))


def load(document: dict):
    return load_catalog(json.dumps(document, ensure_ascii=False))


def catalogue_rows() -> dict[str, list[tuple]]:
    """Every catalogue row as plain tuples, ids included, to compare before and after."""
    tables = {
        "title_series": (TitleSeries.id, TitleSeries.code, TitleSeries.name,
                         TitleSeries.sort_order),
        "plans": (Plan.id, Plan.code, Plan.category, Plan.plan_year, Plan.title_series_id,
                  Plan.name, Plan.description, Plan.required_hours, Plan.price_fen, Plan.status,
                  Plan.sort_order, Plan.updated_at),
        "courses": (Course.id, Course.code, Course.title, Course.teacher, Course.description,
                    Course.credit_hours, Course.updated_at),
        "chapters": (Chapter.id, Chapter.code, Chapter.course_id, Chapter.position,
                     Chapter.title, Chapter.duration_seconds, Chapter.media_url),
        "plan_courses": (PlanCourse.plan_id, PlanCourse.course_id, PlanCourse.position),
    }
    return {name: sorted(tuple(row) for row in db.session.execute(sa.select(*columns)))
            for name, columns in tables.items()}


def by_code(model, code: str):
    return db.session.scalar(sa.select(model).filter_by(code=code))


def plan_course_codes(plan_code: str) -> list[str]:
    return [link.course.code for link in by_code(Plan, plan_code).plan_courses]


def mp4_duration_seconds(path: Path) -> float:
    """The duration in the movie header (moov/mvhd) of an MP4 file."""
    data = path.read_bytes()

    def boxes(start: int, end: int):
        while start < end:
            size, kind = struct.unpack(">I4s", data[start:start + 8])
            yield kind, start + 8, start + size
            start += size

    moov = next((body, end) for kind, body, end in boxes(0, len(data)) if kind == b"moov")
    body = next(body for kind, body, _ in boxes(*moov) if kind == b"mvhd")
    if data[body] == 1:
        timescale, duration = struct.unpack(">IQ", data[body + 20:body + 32])
    else:
        timescale, duration = struct.unpack(">II", data[body + 12:body + 20])
    return duration / timescale


def make_trainee() -> Trainee:
    trainee = Trainee(name="测试学员", gender="F", birth_date=date(1949, 12, 31),
                      password_hash=hash_password("Demo@2024"))
    trainee.id_number = "11010519491231002X"
    db.session.add(trainee)
    return trainee


# --- the sample ---------------------------------------------------------------------------

def test_loading_the_sample_twice_leaves_the_same_rows(ctx):
    """Does a second load of the same file create, change and remove nothing?"""
    first = load_catalog(SAMPLE_CATALOG)
    db.session.commit()
    before = catalogue_rows()

    second = load_catalog(SAMPLE_CATALOG)
    db.session.commit()

    assert (first.title_series.created, first.courses.created, first.chapters.created,
            first.plans.created) == (5, 69, 213, 19)
    assert not second.changed
    assert (second.title_series.unchanged, second.courses.unchanged,
            second.chapters.unchanged, second.plans.unchanged) == (5, 69, 213, 19)
    assert catalogue_rows() == before


def test_the_sample_follows_the_fee_standard_and_the_letter(ctx):
    """Are 公需 plans 30 hours for 3300 fen (2024 not yet open) and 专业 plans 60 for 9000?"""
    load_catalog(SAMPLE_CATALOG)
    plans = db.session.scalars(sa.select(Plan)).all()

    public = {plan.plan_year: plan for plan in plans if plan.category == "public"}
    assert sorted(public) == [2021, 2022, 2023, 2024]
    assert {(plan.required_hours, plan.price_fen, plan.title_series) for plan in
            public.values()} == {(30, 3300, None)}
    assert [year for year, plan in sorted(public.items()) if not plan.is_open] == [2024]

    professional = [plan for plan in plans if plan.category == "professional"]
    assert len({plan.title_series.code for plan in professional}) >= 5
    assert {plan.plan_year for plan in professional} == {2022, 2023, 2024}
    assert {(plan.required_hours, plan.price_fen) for plan in professional} == {(60, 9000)}
    assert all(plan.is_open for plan in professional)


def test_every_sample_plan_offers_more_hours_than_it_requires(ctx):
    """Can a trainee choose among courses, offered beyond the plan's requirement?"""
    load_catalog(SAMPLE_CATALOG)

    for plan in db.session.scalars(sa.select(Plan)):
        offered = sum(link.course.credit_hours for link in plan.plan_courses)
        assert offered > plan.required_hours, plan.code


def test_sample_chapters_play_short_clips_of_their_stated_length(ctx):
    """Does every chapter name a shipped clip whose real length is its duration_seconds?"""
    load_catalog(SAMPLE_CATALOG)
    chapters = db.session.scalars(sa.select(Chapter)).all()
    clips = {chapter.media_url for chapter in chapters}

    for course in db.session.scalars(sa.select(Course)):
        assert 2 <= len(course.chapters) <= 6, course.code
        assert course.teacher and course.title
    for chapter in chapters:
        clip = STATIC / chapter.media_url
        assert round(mp4_duration_seconds(clip)) == chapter.duration_seconds, chapter.code
    sizes = [(STATIC / clip).stat().st_size for clip in clips]
    assert 3 <= len(clips) <= 5
    assert max(sizes) < 150_000
    assert sum(sizes) < 1_000_000


# --- loading in place ---------------------------------------------------------------------

def test_an_edited_file_updates_rows_in_place(ctx):
    """Do edits of titles, hours, prices, status, chapters and plan courses keep the ids?"""
    load_catalog(SAMPLE_CATALOG)
    db.session.commit()
    ids = {code: by_code(model, code).id for model, code in (
        (Plan, "GX-2024"), (Plan, "ZY-ENG-2023"), (Course, "ENG-02"), (Chapter, "ENG-02-1"),
        (Chapter, "ENG-02-4"), (TitleSeries, "health"))}

    edited = sample()
    gx_2024 = next(plan for plan in edited["plans"] if plan["code"] == "GX-2024")
    gx_2024["status"] = "open"
    eng_2023 = next(plan for plan in edited["plans"] if plan["code"] == "ZY-ENG-2023")
    eng_2023.update(name="2023年度工程系列专业科目（修订）", required_hours=64)
    eng_2023["courses"] = ["ENG-09", *eng_2023["courses"][1:]]  # ENG-02 out, ENG-09 first
    course = next(course for course in edited["courses"] if course["code"] == "ENG-02")
    course.update(title="装配式建筑设计与施工技术（2023修订）", credit_hours=9)
    first, second, third, fourth = course["chapters"]
    fourth["title"] = "第四讲 质量验收与常见问题"
    third_removed = third["code"]
    course["chapters"] = [fourth, first, second, {
        "code": "ENG-02-5", "title": "第五讲 工程案例", "duration_seconds": 20,
        "media_url": "media/clip-1.mp4"}]
    next(series for series in edited["title_series"]
         if series["code"] == "health")["name"] = "卫生技术"

    report = load(edited)
    db.session.commit()
    db.session.expire_all()

    assert {code: by_code(model, code).id for model, code in (
        (Plan, "GX-2024"), (Plan, "ZY-ENG-2023"), (Course, "ENG-02"), (Chapter, "ENG-02-1"),
        (Chapter, "ENG-02-4"), (TitleSeries, "health"))} == ids
    assert by_code(Plan, "GX-2024").status == "open"
    plan = by_code(Plan, "ZY-ENG-2023")
    assert (plan.name, plan.required_hours, plan.price_fen) == (
        "2023年度工程系列专业科目（修订）", 64, 64 * 150)
    assert plan_course_codes("ZY-ENG-2023") == ["ENG-09", "ENG-03", "ENG-04", "ENG-05",
                                                "ENG-06", "ENG-07", "ENG-08"]
    course_row = by_code(Course, "ENG-02")
    assert course_row.title == "装配式建筑设计与施工技术（2023修订）"
    assert course_row.credit_hours == 9
    assert [(chapter.code, chapter.position) for chapter in course_row.chapters] == [
        ("ENG-02-4", 1), ("ENG-02-1", 2), ("ENG-02-2", 3), ("ENG-02-5", 4)]
    assert by_code(Chapter, third_removed) is None
    assert by_code(TitleSeries, "health").name == "卫生技术"
    assert (report.plans.updated, report.courses.updated, report.title_series.updated) == (
        2, 1, 1)
    assert (report.chapters.created, report.chapters.removed, report.chapters.updated) == (
        1, 1, 3)


def test_chapters_can_swap_places(ctx):
    """Can a course's chapters be put in reverse order, although positions are unique?"""
    load_catalog(SAMPLE_CATALOG)
    edited = sample()
    course = next(course for course in edited["courses"] if course["code"] == "MED-01")
    course["chapters"].reverse()

    load(edited)
    db.session.expire_all()

    codes = [chapter.code for chapter in by_code(Course, "MED-01").chapters]
    assert codes == ["MED-01-3", "MED-01-2", "MED-01-1"]


def test_a_file_may_carry_one_years_plans_over_existing_courses(ctx):
    """May a later file add a plan that offers courses loaded by an earlier file?"""
    load_catalog(SAMPLE_CATALOG)

    report = load({"plans": [{
        "code": "ZY-ENG-2025", "category": "professional", "plan_year": 2025,
        "title_series": "engineering", "name": "2025年度工程系列专业科目",
        "courses": ["ENG-03", "ENG-04", "ENG-05", "ENG-06", "ENG-07", "ENG-08", "ENG-09"]}]})

    plan = by_code(Plan, "ZY-ENG-2025")
    assert report.plans.created == 1 and report.courses.created == 0
    assert (plan.required_hours, plan.price_fen, plan.status) == (60, 9000, "open")
    assert by_code(Plan, "ZY-ENG-2024") is not None  # plans missing from a file stay


def test_a_stated_price_wins_over_the_standard_with_a_warning(ctx):
    """Is an explicit price kept as written, and does the report warn that it differs?"""
    document = sample()
    document["plans"][4]["price_fen"] = 8000

    report = load(document)

    assert by_code(Plan, document["plans"][4]["code"]).price_fen == 8000
    assert report.warnings == [
        "plans[4].price_fen: 8000 fen differs from the fee standard 9000 fen "
        "(150 fen × 60 hours)"]


# --- refusals -----------------------------------------------------------------------------

def plan(document: dict, code: str) -> dict:
    return next(entry for entry in document["plans"] if entry["code"] == code)


def set_in(document: dict, path: tuple, value) -> dict:
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return document


BAD_FILES = {
    "unknown course code": (
        lambda d: set_in(d, ("plans", 3, "courses", 1), "X"),
        'plans[3].courses[1]: unknown course code "X"'),
    "zero duration": (
        lambda d: set_in(d, ("courses", 2, "chapters", 0, "duration_seconds"), 0),
        "courses[2].chapters[0].duration_seconds: must be a positive whole number"),
    "duration as text": (
        lambda d: set_in(d, ("courses", 2, "chapters", 0, "duration_seconds"), "45"),
        "courses[2].chapters[0].duration_seconds: must be a positive whole number"),
    "fractional hours": (
        lambda d: set_in(d, ("courses", 0, "credit_hours"), 5.5),
        "courses[0].credit_hours: must be a positive whole number"),
    "hours as true": (
        lambda d: set_in(d, ("courses", 0, "credit_hours"), True),
        "courses[0].credit_hours: must be a positive whole number"),
    "negative price": (
        lambda d: set_in(d, ("plans", 5, "price_fen"), -1),
        "plans[5].price_fen: must be a whole number of fen, 0 or more"),
    "price in yuan": (
        lambda d: set_in(d, ("plans", 5, "price_fen"), 90.0),
        "plans[5].price_fen: must be a whole number of fen, 0 or more"),
    "misspelt field": (
        lambda d: set_in(d, ("plans", 5, "price"), 9000),
        'plans[5].price: unknown field; did you mean "price_fen"?'),
    "public plan with a series": (
        lambda d: set_in(d, ("plans", 0, "title_series"), "health"),
        "plans[0].title_series: a public (公需) plan has no title series"),
    "professional plan without a series": (
        lambda d: d["plans"][6].pop("title_series") and d,
        "plans[6].title_series: is required for a professional (专业) plan"),
    "unknown series": (
        lambda d: set_in(d, ("plans", 6, "title_series"), "forestry"),
        'plans[6].title_series: unknown title series code "forestry"'),
    "too few hours": (
        lambda d: set_in(d, ("plans", 7, "courses"), d["plans"][7]["courses"][:2]),
        "plans[7].courses: the courses offer 18 credit hours, fewer than the 60"),
    "no courses": (
        lambda d: set_in(d, ("plans", 7, "courses"), []),
        "plans[7].courses: a plan needs at least one course"),
    "course listed twice": (
        lambda d: set_in(d, ("plans", 0, "courses", 1), d["plans"][0]["courses"][0]),
        'plans[0].courses[1]: course "GX2021-01" is listed twice'),
    "bad category": (
        lambda d: set_in(d, ("plans", 1, "category"), "公需"),
        'plans[1].category: must be one of public, professional, not "公需"'),
    "bad status": (
        lambda d: set_in(d, ("plans", 1, "status"), "closed"),
        'plans[1].status: must be one of open, not_open, not "closed"'),
    "bad year": (
        lambda d: set_in(d, ("plans", 1, "plan_year"), 23),
        "plans[1].plan_year: must be a year between 2000 and 2100"),
    "second public plan for a year": (
        lambda d: set_in(d, ("plans", 1, "plan_year"), 2021),
        'plans[1]: plans[0] ("GX-2021") is already the public plan for 2021'),
    "duplicate course code": (
        lambda d: set_in(d, ("courses", 1, "code"), "GX2021-01"),
        'courses[1].code: "GX2021-01" is already used by courses[0]'),
    "course code repeated in another case": (
        lambda d: set_in(d, ("courses", 1, "code"), "gx2021-01"),
        'courses[1].code: "gx2021-01" is already used by courses[0]'),
    "duplicate chapter code": (
        lambda d: set_in(d, ("courses", 4, "chapters", 0, "code"), "GX2021-01-1"),
        'courses[4].chapters[0].code: "GX2021-01-1" is already used by courses[0].chapters[0]'),
    "missing title": (
        lambda d: d["courses"][3].pop("title") and d,
        "courses[3].title: is required"),
    "empty chapter list": (
        lambda d: set_in(d, ("courses", 3, "chapters"), []),
        "courses[3].chapters: a course needs at least one chapter"),
    "chapter is not an object": (
        lambda d: set_in(d, ("courses", 3, "chapters", 1), "第二讲"),
        "courses[3].chapters[1]: must be an object"),
    "media path leaving the media root": (
        lambda d: set_in(d, ("courses", 3, "chapters", 0, "media_url"), "media/../../app.py"),
        'courses[3].chapters[0].media_url: must not contain ".."'),
    "code with spaces": (
        lambda d: set_in(d, ("title_series", 0, "code"), "engineering works"),
        'title_series[0].code: "engineering works" is not a code'),
    "title too long": (
        lambda d: set_in(d, ("plans", 2, "name"), "年" * 101),
        "plans[2].name: is 101 characters long; at most 100"),
    "plans not a list": (
        lambda d: set_in(d, ("plans",), {"code": "GX-2021"}),
        "plans: must be a list"),
    "unknown top-level key": (
        lambda d: set_in(d, ("plan",), []),
        'plan: unknown field; did you mean "plans"?'),
}


@pytest.mark.parametrize("mutate, expected", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_a_bad_file_is_refused_naming_the_field_and_nothing_is_written(ctx, mutate, expected):
    """Is each kind of mistake refused with its field path, before anything is written?"""
    document = mutate(sample())

    with pytest.raises(CatalogError) as refusal:
        load(document)
    db.session.rollback()

    assert expected in refusal.value.message
    assert "nothing was written" in refusal.value.message
    assert catalogue_rows() == {name: [] for name in catalogue_rows()}


def test_a_key_given_twice_is_refused(ctx):
    """Is a field written twice in one object refused, rather than the last silently kept?"""
    text = SAMPLE_CATALOG.read_text(encoding="utf-8").replace(
        '"price_fen": 3300,', '"price_fen": 3300, "price_fen": 330,', 1)

    with pytest.raises(CatalogError, match=r"plans\[0\]\.price_fen: is given more than once"):
        load_catalog(text)


def test_a_syntax_error_is_refused_naming_its_line(ctx, tmp_path):
    """Does a JSON syntax error (a trailing comma) come back with its line and column?"""
    path = tmp_path / "catalog.json"
    lines = SAMPLE_CATALOG.read_text(encoding="utf-8").splitlines()
    line_number = next(number for number, line in enumerate(lines, start=1)
                       if '"code": "GX2022-03"' in line)
    lines[line_number - 1] += ","  # "code": "GX2022-03",,
    path.write_text("\n".join(lines), encoding="utf-8")

    with pytest.raises(CatalogError) as refusal:
        load_catalog(path)

    assert f"line {line_number}, column" in refusal.value.message
    assert str(path) in refusal.value.message


def test_a_file_that_is_not_utf8_is_refused_naming_its_line(ctx, tmp_path):
    """Is a file saved in GBK refused with the line of the first bad byte?"""
    path = tmp_path / "catalog.json"
    path.write_bytes('{\n  "title_series": [\n    {"code": "x", "name": "工程"}\n  ]\n}\n'
                     .encode("gbk"))

    with pytest.raises(CatalogError, match="line 3: not UTF-8 text"):
        load_catalog(path)


def test_a_utf8_file_with_a_byte_order_mark_loads(ctx, tmp_path):
    """Does a file saved by a Windows editor (UTF-8 with BOM) load?"""
    path = tmp_path / "catalog.json"
    path.write_bytes(SAMPLE_CATALOG.read_bytes().join([b"\xef\xbb\xbf", b""]))

    assert load_catalog(path).plans.created == 19


def test_a_bad_last_plan_leaves_the_database_as_it_was(ctx):
    """After edits to everything and a bad last plan, is the database exactly as before?"""
    load_catalog(SAMPLE_CATALOG)
    db.session.commit()
    before = catalogue_rows()

    edited = sample()
    for course in edited["courses"]:
        course["title"] += "（新版）"
        course["chapters"] = course["chapters"][:-1] if len(course["chapters"]) > 2 else (
            course["chapters"])
    for entry in edited["plans"]:
        entry["status"] = "not_open"
    edited["plans"][-1]["courses"].append("NO-SUCH-COURSE")

    with pytest.raises(CatalogError, match=r'plans\[18\]\.courses\[7\]: unknown course code'):
        load(edited)
    db.session.rollback()

    assert catalogue_rows() == before


def test_a_code_must_be_spelt_as_in_the_database(ctx):
    """Is a code that matches an existing one only when case is ignored refused?"""
    load_catalog(SAMPLE_CATALOG)
    edited = sample()
    edited["courses"][0]["code"] = "gx2021-01"

    with pytest.raises(CatalogError, match=(
            r'courses\[0\]\.code: "gx2021-01" differs only in case from the existing course '
            r'"GX2021-01"')):
        load(edited)


def test_a_chapter_cannot_move_to_another_course(ctx):
    """Is a chapter code reused under a different course refused, naming its course?"""
    load_catalog(SAMPLE_CATALOG)
    edited = sample()
    moved = edited["courses"][0]["chapters"].pop()
    edited["courses"][1]["chapters"].append(moved)

    with pytest.raises(CatalogError, match=(
            rf'courses\[1\]\.chapters\[\d\]\.code: chapter "{moved["code"]}" belongs to '
            r'course "GX2021-01"')):
        load(edited)


def test_a_studied_chapter_cannot_be_removed(ctx):
    """Is removing a chapter that a trainee has progress on refused, and nothing written?"""
    load_catalog(SAMPLE_CATALOG)
    enrollment = Enrollment(trainee=make_trainee(), plan=by_code(Plan, "GX-2023"))
    db.session.add(enrollment)
    db.session.flush()
    db.session.add(ChapterProgress(enrollment_id=enrollment.id,
                                   chapter_id=by_code(Chapter, "GX2023-02-3").id,
                                   credited_seconds=12))
    db.session.commit()
    before = catalogue_rows()

    edited = sample()
    course = next(course for course in edited["courses"] if course["code"] == "GX2023-02")
    course["chapters"].pop()
    course["title"] = "人工智能与数字化转型（新版）"
    path = f"courses[{edited['courses'].index(course)}].chapters"

    with pytest.raises(CatalogError) as refusal:
        load(edited)
    db.session.rollback()

    assert f'{path}: chapter "GX2023-02-3"' in refusal.value.message
    assert "trainees have studied it" in refusal.value.message
    assert catalogue_rows() == before


def test_an_unstudied_chapter_is_removed(ctx):
    """Is a chapter nobody has studied deleted when it leaves the file?"""
    load_catalog(SAMPLE_CATALOG)
    edited = sample()
    course = next(course for course in edited["courses"] if course["code"] == "GX2023-02")
    course["chapters"].pop()

    report = load(edited)

    assert report.chapters.removed == 1
    assert by_code(Chapter, "GX2023-02-3") is None


def test_a_studied_course_stays_in_its_plan(ctx):
    """Is taking a course out of a plan refused when trainees of that plan completed it?"""
    load_catalog(SAMPLE_CATALOG)
    enrollment = Enrollment(trainee=make_trainee(), plan=by_code(Plan, "ZY-EDU-2022"),
                            earned_hours=10)
    db.session.add(enrollment)
    db.session.flush()
    db.session.add(CourseCompletion(enrollment_id=enrollment.id,
                                    course_id=by_code(Course, "EDU-01").id, credit_hours=10))
    db.session.commit()

    edited = sample()
    edu_2022 = plan(edited, "ZY-EDU-2022")
    edu_2022["courses"] = [code for code in edu_2022["courses"] if code != "EDU-01"] + ["EDU-09"]

    with pytest.raises(CatalogError, match=r'course "EDU-01" .* is missing from the plan'):
        load(edited)
    db.session.rollback()
    assert plan_course_codes("ZY-EDU-2022")[0] == "EDU-01"


# --- the command --------------------------------------------------------------------------

def test_the_command_loads_a_file_and_prints_the_report(app, ctx):
    """Does `flask catalog load FILE` write the catalogue and print the counts?"""
    result = app.test_cli_runner().invoke(args=["catalog", "load", str(SAMPLE_CATALOG)])

    assert result.exit_code == 0, result.output
    assert re.search(r"courses +69 created", result.output)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Plan)) == 19


def test_the_command_refuses_a_bad_file_with_a_non_zero_exit(app, ctx, tmp_path):
    """Does a bad file make `flask catalog load` exit non-zero with the field path?"""
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(set_in(sample(), ("plans", 3, "courses", 1), "X"),
                               ensure_ascii=False), encoding="utf-8")

    result = app.test_cli_runner().invoke(args=["catalog", "load", str(path)])

    assert result.exit_code != 0
    assert 'plans[3].courses[1]: unknown course code "X"' in result.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Plan)) == 0


def test_the_command_dry_run_writes_nothing(app, ctx):
    """Does `--dry-run` report what would be created without writing it?"""
    result = app.test_cli_runner().invoke(
        args=["catalog", "load", "--dry-run", str(SAMPLE_CATALOG)])

    assert result.exit_code == 0, result.output
    assert re.search(r"plans +19 created", result.output)
    assert "nothing was written" in result.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Plan)) == 0
