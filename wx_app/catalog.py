"""The catalogue loader: title series, plans, courses and chapters from a JSON file.

The file format is described in docs/catalog.md. Loading is in two steps: the whole file is
checked first (shape, values, references, the fee rules, and what the database already
holds), and only a file without a single problem is written, inside one savepoint. Rows are
matched by their `code`, so loading the same file twice changes nothing and loading an
edited file updates rows in place. Plans and courses missing from a file are left alone:
a file may carry one year's plans only.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from .errors import InvalidInput
from .extensions import db
from .models import (
    Chapter,
    ChapterProgress,
    Course,
    CourseCompletion,
    Enrollment,
    Plan,
    PlanCourse,
    StudySession,
    TitleSeries,
)
from .models.catalog import PLAN_CATEGORIES, PLAN_STATUSES

log = logging.getLogger(__name__)

# The fee standard and yearly requirements of 渝人服函〔2024〕4号.
PUBLIC_PRICE_FEN = 3300  # 公需科目: 33 元/人/年
PUBLIC_REQUIRED_HOURS = 30
PROFESSIONAL_FEN_PER_HOUR = 150  # 专业科目: 1.5 元/学时
PROFESSIONAL_REQUIRED_HOURS = 60

CODE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
#: Either an http(s) URL or a path under the media root, such as `media/clip-1.mp4`.
MEDIA_URL_PATTERN = re.compile(r"https?://[^\s]+|[A-Za-z0-9_][^\s:]*")
#: Problems listed in one refusal; a file with more is usually the wrong file altogether.
MAX_PROBLEMS = 50
#: Free text (descriptions) longer than this is almost certainly pasted by mistake.
MAX_DESCRIPTION = 10_000

TOP_LEVEL_FIELDS = ("title_series", "courses", "plans")
SERIES_FIELDS = ("code", "name", "sort_order")
COURSE_FIELDS = ("code", "title", "teacher", "description", "credit_hours", "chapters")
CHAPTER_FIELDS = ("code", "title", "duration_seconds", "media_url")
PLAN_FIELDS = ("code", "category", "plan_year", "title_series", "name", "description",
               "required_hours", "price_fen", "status", "sort_order", "courses")
#: A key accepted on every object and ignored, since JSON has no comments.
COMMENT_FIELD = "comment"


class CatalogError(InvalidInput):
    """The catalogue file was refused; `problems` lists each one with its line or field."""

    code = "invalid_catalog"

    def __init__(self, source_name: str, problems: list[str]):
        self.problems = problems
        shown = problems[:MAX_PROBLEMS]
        if len(problems) > MAX_PROBLEMS:
            shown.append(f"… and {len(problems) - MAX_PROBLEMS} more")
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"{source_name}: catalogue refused, nothing was written "
                         f"({len(problems)} {noun}):\n  " + "\n  ".join(shown))


# --- the report ---------------------------------------------------------------------------

@dataclass
class KindCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0

    def count(self, created: bool, changed: bool) -> None:
        if created:
            self.created += 1
        elif changed:
            self.updated += 1
        else:
            self.unchanged += 1


@dataclass
class LoadReport:
    """What one load did, per kind of row, and the warnings staff should read."""

    title_series: KindCounts = field(default_factory=KindCounts)
    courses: KindCounts = field(default_factory=KindCounts)
    chapters: KindCounts = field(default_factory=KindCounts)
    plans: KindCounts = field(default_factory=KindCounts)
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(counts.created or counts.updated or counts.removed
                   for counts in (self.title_series, self.courses, self.chapters, self.plans))

    def summary(self) -> str:
        """One line for the log: created/updated/unchanged(/removed) per kind."""
        return ", ".join(
            f"{label} {c.created}/{c.updated}/{c.unchanged}" + (f"/-{c.removed}" if c.removed
                                                                else "")
            for label, c in (("series", self.title_series), ("courses", self.courses),
                             ("chapters", self.chapters), ("plans", self.plans)))

    def lines(self) -> list[str]:
        """The report as staff read it on the console, one line per kind."""
        lines = []
        for label, counts in (("title series", self.title_series), ("courses", self.courses),
                              ("chapters", self.chapters), ("plans", self.plans)):
            line = (f"{label:<13} {counts.created:>4} created {counts.updated:>4} updated "
                    f"{counts.unchanged:>4} unchanged")
            if label == "chapters":
                line += f" {counts.removed:>4} removed"
            lines.append(line)
        lines.extend(f"warning: {warning}" for warning in self.warnings)
        return lines


# --- what a checked file holds ------------------------------------------------------------

@dataclass(frozen=True)
class SeriesEntry:
    path: str
    code: str | None
    name: str | None
    sort_order: int | None


@dataclass(frozen=True)
class ChapterEntry:
    path: str
    code: str | None
    title: str | None
    duration_seconds: int | None
    media_url: str | None


@dataclass(frozen=True)
class CourseEntry:
    path: str
    code: str | None
    title: str | None
    teacher: str | None
    description: str | None
    credit_hours: int | None
    chapters: tuple[ChapterEntry, ...]


@dataclass(frozen=True)
class PlanEntry:
    path: str
    code: str | None
    category: str | None
    plan_year: int | None
    series_code: str | None
    name: str | None
    description: str | None
    required_hours: int | None
    price_fen: int | None
    status: str | None
    sort_order: int | None
    course_codes: tuple[tuple[str, str], ...]  # (path, code)


@dataclass
class CheckedCatalog:
    """A file that passed every check, and the rows it will update, by code."""

    series: list[SeriesEntry]
    courses: list[CourseEntry]
    plans: list[PlanEntry]
    warnings: list[str]
    existing_series: dict[str, TitleSeries]
    existing_courses: dict[str, Course]
    existing_plans: dict[str, Plan]


# --- loading ------------------------------------------------------------------------------

def load_catalog(source: str | os.PathLike) -> LoadReport:
    """Check a catalogue file and write it in place; refuse the whole file on any problem.

    `source` is a path, or the JSON text itself (a string starting with `{`). The session is
    flushed, not committed: the caller commits. Raises CatalogError.
    """
    text, source_name = _read(source)
    document = _parse(text, source_name)
    catalog = check_catalog(document, source_name)

    # Two loads at the same moment are not serialised: both may pass the checks, and the
    # later one then fails on a unique key and is rolled back whole; loading it again works.
    report = LoadReport(warnings=list(catalog.warnings))
    with db.session.begin_nested():
        series_by_code = _write_series(catalog, report)
        courses_by_code = _write_courses(catalog, report)
        _write_plans(catalog, series_by_code, courses_by_code, report)

    log.info("catalogue %s loaded: %s", source_name, report.summary())
    return report


def _read(source: str | os.PathLike) -> tuple[str, str]:
    if isinstance(source, str) and source.lstrip().startswith("{"):
        return source, "<catalogue text>"

    path = Path(source)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CatalogError(str(path), [f"cannot be read: {exc.strerror}"]) from None
    try:
        # utf-8-sig: Windows editors put a byte-order mark at the start of UTF-8 files.
        return raw.decode("utf-8-sig"), str(path)
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise CatalogError(str(path), [f"line {line}: not UTF-8 text"]) from None


class _Object(dict):
    """A JSON object that remembers keys given twice (JSON keeps only the last silently)."""

    duplicates: tuple[str, ...] = ()


def _object_keeping_duplicates(pairs: list[tuple[str, object]]) -> _Object:
    keys = [key for key, _ in pairs]
    result = _Object(pairs)
    result.duplicates = tuple(sorted({key for key in keys if keys.count(key) > 1}))
    return result


def _parse(text: str, source_name: str) -> object:
    try:
        return json.loads(text, object_pairs_hook=_object_keeping_duplicates)
    except json.JSONDecodeError as exc:
        lines = text.splitlines()
        quoted = lines[exc.lineno - 1].strip()[:80] if exc.lineno <= len(lines) else ""
        raise CatalogError(source_name, [
            f"line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg}): {quoted}"
        ]) from None


# --- checking -----------------------------------------------------------------------------

class _Problems(list):
    def add(self, path: str, message: str) -> None:
        self.append(f"{path or 'the file'}: {message}")


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class _Fields:
    """One object of the file, read field by field; each bad field adds one problem."""

    def __init__(self, value: object, path: str, allowed: tuple[str, ...], problems: _Problems):
        self.path = path
        self.problems = problems
        if not isinstance(value, dict):
            problems.add(path, "must be an object {…}")
            value = {}
        self.value = value
        for key in getattr(value, "duplicates", ()):
            problems.add(_child(path, key), "is given more than once")
        for key in value:
            if key not in allowed and key != COMMENT_FIELD:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f'did you mean "{close[0]}"? ' if close else ""
                problems.add(_child(path, key),
                             f"unknown field; {hint}expected one of {', '.join(allowed)}")

    def _missing(self, name: str, required: bool, why: str = "") -> bool:
        if self.value.get(name) is None:
            if required:
                self.problems.add(_child(self.path, name), f"is required{why}")
            return True
        return False

    def text(self, name: str, *, max_length: int, required: bool = True,
             pattern: re.Pattern | None = None, what: str = "") -> str | None:
        if self._missing(name, required):
            return None
        value = self.value[name]
        if not isinstance(value, str) or not value.strip():
            self.problems.add(_child(self.path, name), "must be a non-empty text")
            return None
        value = value.strip()
        if len(value) > max_length:
            self.problems.add(_child(self.path, name),
                              f"is {len(value)} characters long; at most {max_length}")
            return None
        if pattern is not None and not pattern.fullmatch(value):
            self.problems.add(_child(self.path, name), f'"{value}" is not {what}')
            return None
        return value

    def code(self, name: str = "code", *, max_length: int, why: str = "") -> str | None:
        if self._missing(name, True, why):
            return None
        return self.text(name, max_length=max_length, pattern=CODE_PATTERN,
                         what="a code (letters, digits, '.', '_' and '-')")

    def whole(self, name: str, *, minimum: int, maximum: int | None = None,
              required: bool = True, what: str = "") -> int | None:
        if self._missing(name, required):
            return None
        value = self.value[name]
        # bool is an int in Python, but `true` is never a number of hours.
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum or (
                maximum is not None and value > maximum):
            self.problems.add(_child(self.path, name), f"must be {what}")
            return None
        return value

    def choice(self, name: str, options: tuple[str, ...], *, required: bool = True
               ) -> str | None:
        if self._missing(name, required):
            return None
        value = self.value[name]
        if value not in options:
            self.problems.add(_child(self.path, name),
                              f"must be one of {', '.join(options)}, "
                              f"not {json.dumps(value, ensure_ascii=False)}")
            return None
        return value

    def items(self, name: str, *, at_least_one: str = "") -> list[tuple[str, object]]:
        """The elements of a list field, each with its path; `at_least_one` makes it required."""
        if self._missing(name, bool(at_least_one)):
            return []
        value = self.value[name]
        if not isinstance(value, list):
            self.problems.add(_child(self.path, name), "must be a list […]")
            return []
        if not value and at_least_one:
            self.problems.add(_child(self.path, name), at_least_one)
        path = _child(self.path, name)
        return [(f"{path}[{index}]", element) for index, element in enumerate(value)]

    def given(self, name: str) -> bool:
        return self.value.get(name) is not None


def check_catalog(document: object, source_name: str = "<catalogue>") -> CheckedCatalog:
    """Check a parsed catalogue against the rules and the database; raise CatalogError."""
    problems = _Problems()
    top = _Fields(document, "", TOP_LEVEL_FIELDS, problems)

    series = [_read_series(item, path, problems) for path, item in top.items("title_series")]
    courses = [_read_course(item, path, problems) for path, item in top.items("courses")]
    plans = [_read_plan(item, path, problems) for path, item in top.items("plans")]
    warnings = [warning for plan in plans for warning in _fee_warnings(plan)]

    _check_unique(series, problems)
    _check_unique(courses, problems)
    _check_unique(plans, problems)
    repeated_chapters = _check_unique(
        [chapter for course in courses for chapter in course.chapters], problems)
    _check_unique(series, problems, attribute="name")

    existing = _existing_rows(series, courses, plans)
    _check_code_case(series, existing["series"], "title series", problems)
    _check_code_case(courses, existing["courses"], "course", problems)
    _check_code_case([chapter for course in courses for chapter in course.chapters],
                     existing["chapter_owners"], "chapter", problems)
    _check_code_case(plans, existing["plans"], "plan", problems)
    _check_series_names(series, existing["series"], problems)
    _check_chapters_against_database(courses, existing, repeated_chapters, problems)
    _check_plan_references(plans, series, courses, existing, problems)
    _check_plan_uniqueness(plans, existing["plans"], problems)
    _check_removed_plan_courses(plans, existing["plans"], problems)

    if problems:
        raise CatalogError(source_name, sorted(problems, key=_in_file_order))
    return CheckedCatalog(series=series, courses=courses, plans=plans, warnings=warnings,
                          existing_series=existing["series"],
                          existing_courses=existing["courses"],
                          existing_plans=existing["plans"])


def _read_series(item: object, path: str, problems: _Problems) -> SeriesEntry:
    fields = _Fields(item, path, SERIES_FIELDS, problems)
    return SeriesEntry(
        path=path,
        code=fields.code(max_length=32),
        name=fields.text("name", max_length=50),
        sort_order=fields.whole("sort_order", minimum=0, required=False,
                                what="a whole number, 0 or more"),
    )


def _read_course(item: object, path: str, problems: _Problems) -> CourseEntry:
    fields = _Fields(item, path, COURSE_FIELDS, problems)
    return CourseEntry(
        path=path,
        code=fields.code(max_length=40),
        title=fields.text("title", max_length=200),
        teacher=fields.text("teacher", max_length=100, required=False),
        description=fields.text("description", max_length=MAX_DESCRIPTION, required=False),
        credit_hours=fields.whole("credit_hours", minimum=1, what="a positive whole number"),
        chapters=tuple(
            _read_chapter(element, chapter_path, problems) for chapter_path, element
            in fields.items("chapters", at_least_one="a course needs at least one chapter")),
    )


def _read_chapter(item: object, path: str, problems: _Problems) -> ChapterEntry:
    fields = _Fields(item, path, CHAPTER_FIELDS, problems)
    code = fields.code(max_length=48)
    title = fields.text("title", max_length=200)
    duration_seconds = fields.whole("duration_seconds", minimum=1,
                                    what="a positive whole number")
    media_url = fields.text("media_url", max_length=512, pattern=MEDIA_URL_PATTERN,
                            what="an http(s) URL or a path under the media root")
    if media_url is not None and ".." in media_url.split("/"):
        problems.add(f"{path}.media_url", 'must not contain ".."')
        media_url = None
    return ChapterEntry(path=path, code=code, title=title, duration_seconds=duration_seconds,
                        media_url=media_url)


def _read_plan(item: object, path: str, problems: _Problems) -> PlanEntry:
    fields = _Fields(item, path, PLAN_FIELDS, problems)
    code = fields.code(max_length=40)
    category = fields.choice("category", PLAN_CATEGORIES)
    plan_year = fields.whole("plan_year", minimum=2000, maximum=2100,
                             what="a year between 2000 and 2100")

    series_code = None
    if category == "public" and fields.given("title_series"):
        problems.add(f"{path}.title_series", "a public (公需) plan has no title series")
    elif category == "professional":
        series_code = fields.code("title_series", max_length=32,
                                  why=" for a professional (专业) plan")

    default_hours = (PUBLIC_REQUIRED_HOURS if category == "public"
                     else PROFESSIONAL_REQUIRED_HOURS)
    required_hours = fields.whole("required_hours", minimum=1, required=False,
                                  what="a positive whole number")
    if required_hours is None and not fields.given("required_hours"):
        required_hours = default_hours

    price_fen = fields.whole("price_fen", minimum=0, required=False,
                             what="a whole number of fen, 0 or more")
    if price_fen is None and not fields.given("price_fen") and required_hours is not None:
        price_fen = standard_price_fen(category, required_hours)

    course_codes = []
    for course_path, element in fields.items("courses",
                                             at_least_one="a plan needs at least one course"):
        if not isinstance(element, str) or not element.strip():
            problems.add(course_path, "must be a course code")
        else:
            course_codes.append((course_path, element.strip()))

    return PlanEntry(
        path=path,
        code=code,
        category=category,
        plan_year=plan_year,
        series_code=series_code,
        name=fields.text("name", max_length=100),
        description=fields.text("description", max_length=MAX_DESCRIPTION, required=False),
        required_hours=required_hours,
        price_fen=price_fen,
        status=fields.choice("status", PLAN_STATUSES, required=False) or "open",
        sort_order=fields.whole("sort_order", minimum=0, required=False,
                                what="a whole number, 0 or more"),
        course_codes=tuple(course_codes),
    )


def standard_price_fen(category: str | None, required_hours: int) -> int:
    """The fee standard: 3300 fen a year for 公需, 150 fen per credit hour for 专业."""
    if category == "public":
        return PUBLIC_PRICE_FEN
    return PROFESSIONAL_FEN_PER_HOUR * required_hours


def _fee_warnings(plan: PlanEntry) -> list[str]:
    if plan.category is None or plan.required_hours is None or plan.price_fen is None:
        return []
    warnings = []
    standard = standard_price_fen(plan.category, plan.required_hours)
    if plan.price_fen != standard:
        rule = ("33 yuan a year" if plan.category == "public"
                else f"{PROFESSIONAL_FEN_PER_HOUR} fen × {plan.required_hours} hours")
        warnings.append(f"{plan.path}.price_fen: {plan.price_fen} fen differs from the fee "
                        f"standard {standard} fen ({rule})")
    minimum = (PUBLIC_REQUIRED_HOURS if plan.category == "public"
               else PROFESSIONAL_REQUIRED_HOURS)
    if plan.required_hours < minimum:
        warnings.append(f"{plan.path}.required_hours: {plan.required_hours} is below the "
                        f"yearly minimum of {minimum} hours for this category")
    return warnings


def _in_file_order(problem: str) -> list:
    """Sort key: problems in the order their fields appear in the file."""
    path = problem.split(": ", 1)[0]
    key: list = []
    for token in re.split(r"[.\[\]]+", path):
        if token.isdigit():
            key.append((1, int(token), ""))
        elif token in TOP_LEVEL_FIELDS:
            key.append((0, TOP_LEVEL_FIELDS.index(token), ""))
        elif token:
            key.append((2, 0, token))
    return key


def _check_unique(entries: list, problems: _Problems, attribute: str = "code") -> set[str]:
    """Report every repeat of a code (or name) in the file; return the repeated values.

    Case is ignored, as MySQL's utf8mb4_unicode_ci collation ignores it in unique keys.
    """
    first_path: dict[str, str] = {}
    repeated = set()
    for entry in entries:
        value = getattr(entry, attribute)
        if value is None:
            continue
        if value.lower() in first_path:
            problems.add(f"{entry.path}.{attribute}",
                         f'"{value}" is already used by {first_path[value.lower()]}')
            repeated.add(value)
        else:
            first_path[value.lower()] = entry.path
    return repeated


def _check_code_case(entries: list, existing_codes, kind: str, problems: _Problems) -> None:
    """A code must be spelt as in the database: the database matches codes ignoring case."""
    spelling = {code.lower(): code for code in existing_codes}
    for entry in entries:
        stored = spelling.get(entry.code.lower()) if entry.code else None
        if stored is not None and stored != entry.code:
            problems.add(f"{entry.path}.code", f'"{entry.code}" differs only in case from the '
                                               f'existing {kind} "{stored}"; write "{stored}"')


def _existing_rows(series: list[SeriesEntry], courses: list[CourseEntry],
                   plans: list[PlanEntry]) -> dict[str, dict]:
    """The rows the file refers to, by code: every series and plan, and the courses named."""
    course_codes = {course.code for course in courses if course.code}
    course_codes.update(code for plan in plans for _, code in plan.course_codes)
    chapter_codes = {chapter.code for course in courses for chapter in course.chapters
                     if chapter.code}

    existing_courses = {course.code: course for course in db.session.scalars(
        sa.select(Course).where(Course.code.in_(course_codes))
        .options(selectinload(Course.chapters)))}
    chapter_owners = dict(db.session.execute(
        sa.select(Chapter.code, Course.code).join(Course, Chapter.course_id == Course.id)
        .where(Chapter.code.in_(chapter_codes))).all())
    return {
        "series": {row.code: row for row in db.session.scalars(sa.select(TitleSeries))},
        "courses": existing_courses,
        "chapter_owners": chapter_owners,
        "plans": {row.code: row for row in db.session.scalars(
            sa.select(Plan).options(selectinload(Plan.plan_courses)
                                    .selectinload(PlanCourse.course),
                                    selectinload(Plan.title_series)))},
    }


def _check_series_names(series: list[SeriesEntry], existing: dict[str, TitleSeries],
                        problems: _Problems) -> None:
    owner_of_name = {row.name: row.code for row in existing.values()}
    for entry in series:
        owner = owner_of_name.get(entry.name)
        if entry.name and entry.code and owner not in (None, entry.code):
            problems.add(f"{entry.path}.name", f'"{entry.name}" already belongs to title '
                                               f'series "{owner}"')


def _check_chapters_against_database(courses: list[CourseEntry], existing: dict[str, dict],
                                     repeated: set[str], problems: _Problems) -> None:
    """A chapter keeps its course for life, and a studied chapter is never removed."""
    for course in courses:
        for chapter in course.chapters:
            owner = existing["chapter_owners"].get(chapter.code)
            if course.code and chapter.code not in repeated and owner not in (None, course.code):
                problems.add(f"{chapter.path}.code",
                             f'chapter "{chapter.code}" belongs to course "{owner}"; a chapter '
                             f'cannot move to another course, give it a new code')

    removed_by_course = {}
    for course in courses:
        row = existing["courses"].get(course.code)
        if row is None:
            continue
        kept = {chapter.code for chapter in course.chapters}
        removed = [chapter for chapter in row.chapters if chapter.code not in kept]
        if removed:
            removed_by_course[course.path] = removed

    studied = _studied_chapter_ids([chapter.id for removed in removed_by_course.values()
                                    for chapter in removed])
    for path, removed in removed_by_course.items():
        for chapter in removed:
            if chapter.id in studied:
                problems.add(f"{path}.chapters",
                             f'chapter "{chapter.code}" ({chapter.title}) is missing from the '
                             f'file, but trainees have studied it; keep it in the file '
                             f'(its title and video may change)')


def _check_plan_references(plans: list[PlanEntry], series: list[SeriesEntry],
                           courses: list[CourseEntry], existing: dict[str, dict],
                           problems: _Problems) -> None:
    """Series and courses exist, in the file or the database; the courses offer enough hours."""
    series_codes = {entry.code for entry in series} | set(existing["series"])
    hours_of_course: dict[str, int | None] = {
        code: row.credit_hours for code, row in existing["courses"].items()}
    hours_of_course.update({course.code: course.credit_hours for course in courses
                            if course.code})

    for plan in plans:
        if plan.series_code and plan.series_code not in series_codes:
            problems.add(f"{plan.path}.title_series",
                         f'unknown title series code "{plan.series_code}"')

        seen: set[str] = set()
        offered_hours: int | None = 0
        for path, code in plan.course_codes:
            if code in seen:
                problems.add(path, f'course "{code}" is listed twice')
                continue
            seen.add(code)
            if code not in hours_of_course:
                problems.add(path, f'unknown course code "{code}"')
                offered_hours = None
            elif offered_hours is not None and hours_of_course[code] is not None:
                offered_hours += hours_of_course[code]
            else:
                offered_hours = None

        if (offered_hours is not None and plan.required_hours is not None
                and plan.course_codes and offered_hours < plan.required_hours):
            problems.add(f"{plan.path}.courses",
                         f"the courses offer {offered_hours} credit hours, fewer than the "
                         f"{plan.required_hours} the plan requires")


def _check_plan_uniqueness(plans: list[PlanEntry], existing: dict[str, Plan],
                           problems: _Problems) -> None:
    """One 公需 plan a year; one 专业 plan per title series and year."""
    holder: dict[tuple, str] = {}
    for row in existing.values():
        series_code = row.title_series.code if row.title_series else None
        holder[(row.category, row.plan_year, series_code)] = f'plan "{row.code}"'
    for plan in plans:
        if plan.code in existing:
            old = existing[plan.code]
            old_series = old.title_series.code if old.title_series else None
            holder.pop((old.category, old.plan_year, old_series), None)

    for plan in plans:
        if plan.category is None or plan.plan_year is None or plan.code is None:
            continue
        key = (plan.category, plan.plan_year, plan.series_code)
        other = holder.get(key)
        if other is not None:
            series_text = f" of title series {plan.series_code}" if plan.series_code else ""
            problems.add(plan.path, f"{other} is already the {plan.category} plan{series_text} "
                                    f"for {plan.plan_year}")
        holder.setdefault(key, f'{plan.path} ("{plan.code}")')


def _check_removed_plan_courses(plans: list[PlanEntry], existing: dict[str, Plan],
                                problems: _Problems) -> None:
    """A course that trainees of a plan have studied stays in that plan."""
    for plan in plans:
        row = existing.get(plan.code)
        if row is None:
            continue
        kept = {code for _, code in plan.course_codes}
        removed = {link.course_id: link.course for link in row.plan_courses
                   if link.course.code not in kept}
        for course_id in sorted(_courses_studied_in_plan(row.id, list(removed))):
            course = removed[course_id]
            problems.add(f"{plan.path}.courses",
                         f'course "{course.code}" ({course.title}) is missing from the plan, '
                         f"but trainees of the plan have studied it; keep it in the list")


def _studied_chapter_ids(chapter_ids: list[int]) -> set[int]:
    if not chapter_ids:
        return set()
    in_progress = sa.select(ChapterProgress.chapter_id).where(
        ChapterProgress.chapter_id.in_(chapter_ids))
    in_sessions = sa.select(StudySession.chapter_id).where(
        StudySession.chapter_id.in_(chapter_ids))
    return set(db.session.scalars(sa.union(in_progress, in_sessions)))


def _courses_studied_in_plan(plan_id: int, course_ids: list[int]) -> set[int]:
    if not course_ids:
        return set()
    completed = (sa.select(CourseCompletion.course_id)
                 .join(Enrollment, Enrollment.id == CourseCompletion.enrollment_id)
                 .where(Enrollment.plan_id == plan_id,
                        CourseCompletion.course_id.in_(course_ids)))
    started = (sa.select(Chapter.course_id)
               .join(ChapterProgress, ChapterProgress.chapter_id == Chapter.id)
               .join(Enrollment, Enrollment.id == ChapterProgress.enrollment_id)
               .where(Enrollment.plan_id == plan_id, Chapter.course_id.in_(course_ids)))
    return set(db.session.scalars(sa.union(completed, started)))


# --- writing ------------------------------------------------------------------------------

def _assign(row: object, values: dict[str, object]) -> bool:
    """Set the attributes that differ; True when any did."""
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed


def _write_series(catalog: CheckedCatalog, report: LoadReport) -> dict[str, TitleSeries]:
    series_by_code = dict(catalog.existing_series)
    for index, entry in enumerate(catalog.series):
        row = series_by_code.get(entry.code)
        created = row is None
        if created:
            row = series_by_code[entry.code] = TitleSeries(code=entry.code)
        changed = _assign(row, {"name": entry.name,
                                "sort_order": _sort_order(entry.sort_order, index)})
        db.session.add(row)
        report.title_series.count(created, changed)
    db.session.flush()
    return series_by_code


def _write_courses(catalog: CheckedCatalog, report: LoadReport) -> dict[str, Course]:
    courses_by_code = dict(catalog.existing_courses)
    for entry in catalog.courses:
        row = courses_by_code.get(entry.code)
        created = row is None
        if created:
            row = courses_by_code[entry.code] = Course(code=entry.code)
        changed = _assign(row, {"title": entry.title, "teacher": entry.teacher,
                                "description": entry.description,
                                "credit_hours": entry.credit_hours})
        db.session.add(row)
        report.courses.count(created, changed)
        _write_chapters(row, entry.chapters, report)
    return courses_by_code


def _write_chapters(course: Course, entries: tuple[ChapterEntry, ...],
                    report: LoadReport) -> None:
    """Make the course's chapters those of the file, in the file's order."""
    wanted = {entry.code for entry in entries}
    for chapter in [chapter for chapter in course.chapters if chapter.code not in wanted]:
        course.chapters.remove(chapter)  # delete-orphan: the row is deleted
        report.chapters.removed += 1
    db.session.flush()

    # (course_id, position) is unique and MySQL checks it row by row, so chapters that
    # change places first move out of the way, beyond every final position.
    existing = {chapter.code: chapter for chapter in course.chapters}
    original_position = {code: chapter.position for code, chapter in existing.items()}
    final_position = {entry.code: index for index, entry in enumerate(entries, start=1)}
    if any(original_position[code] != final_position[code] for code in existing):
        clear_of_all = max([len(entries), *original_position.values()]) + 1
        for offset, chapter in enumerate(existing.values()):
            chapter.position = clear_of_all + offset
        db.session.flush()

    for entry in entries:
        chapter = existing.get(entry.code)
        created = chapter is None
        if created:
            chapter = Chapter(code=entry.code)
            course.chapters.append(chapter)
        changed = _assign(chapter, {"title": entry.title,
                                    "duration_seconds": entry.duration_seconds,
                                    "media_url": entry.media_url})
        if chapter.position != final_position[entry.code]:
            chapter.position = final_position[entry.code]
        moved = not created and original_position[entry.code] != final_position[entry.code]
        report.chapters.count(created, changed or moved)
    db.session.flush()


def _write_plans(catalog: CheckedCatalog, series_by_code: dict[str, TitleSeries],
                 courses_by_code: dict[str, Course], report: LoadReport) -> None:
    for index, entry in enumerate(catalog.plans):
        row = catalog.existing_plans.get(entry.code)
        created = row is None
        if created:
            row = Plan(code=entry.code)
        series = series_by_code[entry.series_code] if entry.series_code else None
        changed = _assign(row, {
            "category": entry.category, "plan_year": entry.plan_year,
            "title_series": series, "name": entry.name, "description": entry.description,
            "required_hours": entry.required_hours, "price_fen": entry.price_fen,
            "status": entry.status, "sort_order": _sort_order(entry.sort_order, index)})
        links_changed = _write_plan_courses(
            row, [courses_by_code[code] for _, code in entry.course_codes])
        db.session.add(row)
        report.plans.count(created, changed or links_changed)
    db.session.flush()


def _write_plan_courses(plan: Plan, courses: list[Course]) -> bool:
    """Make the plan offer exactly these courses, in this order; True when anything changed."""
    changed = False
    wanted = {course.code: position for position, course in enumerate(courses, start=1)}
    for link in list(plan.plan_courses):
        if link.course.code not in wanted:
            plan.plan_courses.remove(link)  # delete-orphan: the link is deleted
            changed = True

    linked = {link.course.code: link for link in plan.plan_courses}
    for course in courses:
        link = linked.get(course.code)
        if link is None:
            plan.plan_courses.append(PlanCourse(course=course, position=wanted[course.code]))
            changed = True
        elif link.position != wanted[course.code]:
            link.position = wanted[course.code]
            changed = True
    return changed


def _sort_order(given: int | None, index: int) -> int:
    """An explicit sort order, or else the entry's place in the file."""
    return given if given is not None else index
