"""Request categories: the defaults drawn from Wancheng's grid work, the admin's own list from a file, and
district staff changing them in the chat (``/categories``).

Category names are data (one per locale, any locale: a file column ``name_<locale>`` or the chat adds one),
not program text. Seeding only adds what is missing, so an administrator's edits survive upgrades. Every change
made in the chat is checked here (district staff only) and written to the audit log.
"""

from __future__ import annotations

import enum
import itertools
import re
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import event, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from bot.core.audit import AuditAction, record_action
from bot.core.organisation import FileFormatError, RowProblem, code_problem, control_character_problem, read_table
from bot.core.roles import is_district_staff
from storage.models import Category, Person, category_name

DEFAULT_DUE_DAYS = 7  # "the resident gets a result within a week" (一周之内反馈结果)
MAX_DUE_DAYS = 365
SORT_STEP = 10  # gaps leave room to slot a category in by hand
DEFAULT_REMIND_AFTER_HOURS = 24
DEFAULT_ESCALATE_AFTER_HOURS = 48
MAX_HOURS = 720  # office hours: about four months of working days
MAX_NAME = 40  # a name is a button's label
CATEGORY_COLUMNS = (
    "code", "name_zh_CN", "name_en", "due_days", "active", "remind_after_hours", "escalate_after_hours",
)
# A locale code as the catalogues name them: zh_CN, en, ug, zh_TW.
LOCALE_PATTERN = re.compile(r"[a-z]{2,3}(_[A-Za-z]{2,4})?")
NAME_COLUMN = re.compile(r"name_[a-z]{2,3}(_[A-Za-z]{2,4})?")
TRUE_WORDS = frozenset({"", "1", "true", "yes", "y", "是"})
FALSE_WORDS = frozenset({"0", "false", "no", "n", "否"})


@dataclass(frozen=True)
class DefaultCategory:
    code: str
    zh_cn: str
    en: str
    due_days: int = DEFAULT_DUE_DAYS

    def names(self) -> dict[str, str]:
        return {"zh_CN": self.zh_cn, "en": self.en}


# The micro-requests the Wancheng report names; "other" stays last so nothing is left without a home.
DEFAULT_CATEGORIES = (
    DefaultCategory("illegal_construction", "违章建筑", "Illegal construction"),
    DefaultCategory("unlicensed_business", "占道经营/违规经营", "Road-occupying or unlicensed business"),
    DefaultCategory("dangling_wires", "飞线充电", "Dangling wires / private charging cables"),
    DefaultCategory("common_area_clutter", "楼道杂物堆积", "Clutter in common areas"),
    DefaultCategory("sanitation", "环境卫生", "Sanitation"),
    DefaultCategory("property_management", "物业服务", "Property management"),
    DefaultCategory("neighbour_dispute", "邻里纠纷", "Neighbour dispute"),
    DefaultCategory("employment_help", "就业创业", "Employment and business help"),
    DefaultCategory("other", "其他", "Other"),
)


# The categories the property company answers for: the three-party meeting's agenda lists their open requests
# (``GRIDBOT_MEETING_CATEGORIES`` replaces the list for an administrator's own categories).
PROPERTY_CATEGORY_CODES = ("property_management", "common_area_clutter", "dangling_wires", "sanitation")


@dataclass(frozen=True)
class CategoryRow:
    """One row of a category file, as written there."""

    line: int
    code: str
    name_zh_CN: str
    name_en: str
    due_days: str
    active: str
    remind_after_hours: str = ""
    escalate_after_hours: str = ""
    # Names in further locales, from ``name_<locale>`` columns.
    other_names: dict[str, str] = field(default_factory=dict)


@dataclass
class CategoryImportSummary:
    created: int = 0
    updated: int = 0

    def __str__(self) -> str:
        return f"categories: {self.created} created, {self.updated} updated"


def seed_categories(session: Session) -> int:
    """Add the default categories that are missing (by code); never touches existing ones. Returns how
    many were added."""
    existing = set(session.scalars(select(Category.code)))
    added = 0
    for position, default in enumerate(DEFAULT_CATEGORIES, start=1):
        if default.code in existing:
            continue
        session.add(
            Category(
                code=default.code,
                names=default.names(),
                due_days=default.due_days,
                sort_order=position * SORT_STEP,
                active=True,
            )
        )
        added += 1
    session.flush()
    return added


def active_categories(session: Session) -> list[Category]:
    """The categories residents may file under, in the order they see them."""
    query = select(Category).where(Category.active.is_(True))
    return list(session.scalars(query.order_by(Category.sort_order, Category.id)))


# --- the filing steps' copy in memory -------------------------------------------------------------------------
#
# Categories change rarely (``/categories``, ``gridbot categories import``, seeding) and every filing step shows
# them. Each process keeps the active ones per database; whatever changes a category through a session of this
# process (any ORM write, found by the events below) drops the copy when it commits. A change made by another
# process (the command line, a second bot process) is seen within ``CATEGORY_CACHE_SECONDS``.

CATEGORY_CACHE_SECONDS = 30.0
_CHANGED = "gridbot.categories_changed"


@dataclass(frozen=True)
class CategoryChoice:
    """An active category as a filing step offers it: a snapshot, not bound to any session."""

    id: int
    code: str
    names: dict[str, str]

    def name(self, locale: str) -> str:
        return category_name(self.names, self.code, locale)


@dataclass(frozen=True)
class _Copy:
    loaded_at: float
    generation: int
    choices: tuple[CategoryChoice, ...]


_copies: weakref.WeakKeyDictionary[Engine | Connection, _Copy] = weakref.WeakKeyDictionary()
_generation = 0  # raised by every change: copies of an older generation are stale


def filing_choices(session: Session) -> list[CategoryChoice]:
    """``active_categories`` as the filing steps offer them, from this process's copy when it is fresh."""
    if session.info.get(_CHANGED):
        return _load(session)  # this transaction changed categories: the copy does not show it yet
    bind = session.get_bind()
    copy = _copies.get(bind)
    if copy is None or copy.generation != _generation or time.monotonic() - copy.loaded_at > CATEGORY_CACHE_SECONDS:
        generation = _generation
        choices = tuple(_load(session))
        if generation == _generation:  # not dropped while loading (PostgreSQL sessions run interleaved)
            _copies[bind] = _Copy(time.monotonic(), generation, choices)
        return list(choices)
    return list(copy.choices)


def _load(session: Session) -> list[CategoryChoice]:
    return [CategoryChoice(category.id, category.code, dict(category.names)) for category in active_categories(session)]


def _drop_copies() -> None:
    global _generation
    _generation += 1


@event.listens_for(Session, "after_flush")
def _note_flushed_change(session: Session, _flush: UOWTransaction) -> None:
    if any(isinstance(item, Category) for item in itertools.chain(session.new, session.dirty, session.deleted)):
        session.info[_CHANGED] = True


@event.listens_for(Session, "do_orm_execute")
def _note_bulk_change(state: ORMExecuteState) -> None:
    if not state.is_select and any(mapper.class_ is Category for mapper in state.all_mappers):
        state.session.info[_CHANGED] = True


@event.listens_for(Session, "after_commit")
def _drop_after_change(session: Session) -> None:
    if session.info.pop(_CHANGED, False):
        _drop_copies()


def list_categories(session: Session) -> list[Category]:
    """Every category, active or not, in display order (for the administrator)."""
    return list(session.scalars(select(Category).order_by(Category.sort_order, Category.id)))


def read_category_file(path: Path) -> list[CategoryRow]:
    """The rows of a category file ``code,name_zh_CN[,name_en,due_days,active,remind_after_hours,
    escalate_after_hours,name_<locale>...]`` (CSV or XLSX).

    Everything but ``code`` and ``name_zh_CN`` may be left out or blank: no English name, 7 working days, active,
    24 and 48 office hours. Raises ``FileFormatError``.
    """
    rows = []
    for line, values in read_table(path, CATEGORY_COLUMNS[:2], CATEGORY_COLUMNS[2:], NAME_COLUMN):
        other = {
            column.removeprefix("name_"): value for column, value in values.items()
            if column not in CATEGORY_COLUMNS and value
        }
        rows.append(CategoryRow(
            line=line, code=values["code"], name_zh_CN=values["name_zh_CN"], name_en=values["name_en"],
            due_days=values["due_days"], active=values["active"], remind_after_hours=values["remind_after_hours"],
            escalate_after_hours=values["escalate_after_hours"], other_names=other,
        ))
    return rows


def _hours(text: str, default: int) -> int:
    return int(text) if text else default


def _hours_problems(row: CategoryRow) -> list[str]:
    problems = []
    for column, text in (("remind_after_hours", row.remind_after_hours),
                         ("escalate_after_hours", row.escalate_after_hours)):
        if text and not (text.isdigit() and 1 <= int(text) <= MAX_HOURS):
            problems.append(f"{column} {text!r} must be a whole number of hours from 1 to {MAX_HOURS}")
    if not problems and row.remind_after_hours and row.escalate_after_hours:
        problems.extend(_order_problem(int(row.remind_after_hours), int(row.escalate_after_hours)))
    return problems


def _order_problem(remind: int, escalate: int) -> list[str]:
    if remind < escalate:
        return []
    return [f"remind_after_hours ({remind}) must be less than escalate_after_hours ({escalate})"]


def _row_problems(row: CategoryRow) -> list[str]:
    problems = [code_problem("code", row.code)]
    if not row.name_zh_CN:
        problems.append("name_zh_CN is missing")
    if row.due_days and not (row.due_days.isdigit() and 1 <= int(row.due_days) <= MAX_DUE_DAYS):
        problems.append(f"due_days {row.due_days!r} must be a whole number of days from 1 to {MAX_DUE_DAYS}")
    if row.active.lower() not in TRUE_WORDS | FALSE_WORDS:
        problems.append(f"active {row.active!r} must be yes or no")
    problems.extend(_hours_problems(row))
    for locale, name in {"zh_CN": row.name_zh_CN, "en": row.name_en, **row.other_names}.items():
        problem = name_problem(name) if name else None
        problems.append(problem and f"name_{locale}: {problem}")
    return [problem for problem in problems if problem]


def validate_category_rows(rows: Sequence[CategoryRow]) -> list[RowProblem]:
    """Every problem in a category file, ordered by line; empty means it can be imported."""
    problems = [RowProblem(row.line, message) for row in rows for message in _row_problems(row)]
    first_line: dict[str, int] = {}
    for row in rows:
        line = first_line.setdefault(row.code, row.line)
        if row.code and line != row.line:
            problems.append(RowProblem(row.line, f"category {row.code} is already listed on line {line}"))
    return sorted(problems, key=lambda problem: problem.line)


def _row_values(row: CategoryRow, category: Category | None) -> dict[str, object]:
    merged = dict(category.names if category else {})  # locales the file has no column for are kept
    merged.update(row.other_names)
    merged["zh_CN"] = row.name_zh_CN
    if row.name_en:
        merged["en"] = row.name_en
    # Blank hours keep what the category has (perhaps set in the chat); a new category gets the defaults.
    remind = category.remind_after_hours if category else DEFAULT_REMIND_AFTER_HOURS
    escalate = category.escalate_after_hours if category else DEFAULT_ESCALATE_AFTER_HOURS
    return {
        "names": merged,
        "due_days": int(row.due_days) if row.due_days else DEFAULT_DUE_DAYS,
        "active": row.active.lower() in TRUE_WORDS,
        "remind_after_hours": _hours(row.remind_after_hours, remind),
        "escalate_after_hours": _hours(row.escalate_after_hours, escalate),
    }


def _reorder(session: Session, listed: Sequence[Category]) -> None:
    # The file's order comes first; categories it does not mention follow in their old order.
    listed_ids = {category.id for category in listed}
    rest = [category for category in list_categories(session) if category.id not in listed_ids]
    for position, category in enumerate([*listed, *rest], start=1):
        category.sort_order = position * SORT_STEP


def import_categories(session: Session, rows: Sequence[CategoryRow]) -> CategoryImportSummary:
    """Create or update the categories in ``rows`` by code and put them first, in the file's order.

    Categories missing from the file are kept (deactivate one with ``active`` = no instead of deleting it:
    requests refer to it). Raises ``FileFormatError`` if the rows have problems (run ``validate_category_rows``).
    """
    problems = validate_category_rows(rows)
    if problems:
        raise FileFormatError(f"{len(problems)} problem(s), first: {problems[0]}")
    existing = {category.code: category for category in session.scalars(select(Category))}
    summary = CategoryImportSummary()
    listed = []
    for row in rows:
        category = existing.get(row.code)
        values = _row_values(row, category)
        # One hour column given, the other kept from the category (or the default): the pair must still hold.
        order = _order_problem(int(str(values["remind_after_hours"])), int(str(values["escalate_after_hours"])))
        if order:
            raise FileFormatError(str(RowProblem(row.line, order[0])))
        if category is None:
            category = Category(code=row.code, **values)
            session.add(category)
            summary.created += 1
        else:
            changed = [name for name, value in values.items() if getattr(category, name) != value]
            for name in changed:
                setattr(category, name, values[name])
            summary.updated += bool(changed)
        listed.append(category)
    session.flush()
    _reorder(session, listed)
    return summary


# --- district staff changing categories in the chat -----------------------------------------------------


class Setting(enum.StrEnum):
    """A number of a category that district staff set in the chat."""

    DUE_DAYS = "due_days"
    REMIND_HOURS = "remind_after_hours"
    ESCALATE_HOURS = "escalate_after_hours"


SETTING_LIMITS = {Setting.DUE_DAYS: MAX_DUE_DAYS, Setting.REMIND_HOURS: MAX_HOURS, Setting.ESCALATE_HOURS: MAX_HOURS}


class CategoryProblem(enum.StrEnum):
    NOT_ALLOWED = "not_allowed"
    UNKNOWN = "unknown"
    OUT_OF_RANGE = "out_of_range"
    REMIND_NOT_BEFORE_ESCALATE = "remind_not_before_escalate"
    BAD_NAME = "bad_name"
    BAD_LOCALE = "bad_locale"
    BAD_CODE = "bad_code"
    CODE_TAKEN = "code_taken"
    LAST_ACTIVE = "last_active"


class CategoryChangeRefused(Exception):
    def __init__(self, problem: CategoryProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


def may_manage_categories(person: Person) -> bool:
    """Categories are the district's: their deadlines are the district's promise to every resident."""
    return is_district_staff(person)


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a category's name, or None."""
    if not name.strip():
        return "the name is empty"
    if len(name) > MAX_NAME:
        return f"the name is longer than {MAX_NAME} characters"
    return control_character_problem("the name", name)


def _category(session: Session, actor: Person, category_id: int) -> Category:
    if not may_manage_categories(actor):
        raise CategoryChangeRefused(CategoryProblem.NOT_ALLOWED)
    category = session.get(Category, category_id)
    if category is None:
        raise CategoryChangeRefused(CategoryProblem.UNKNOWN)
    return category


def _audit(session: Session, actor: Person, category: Category, now: datetime, what: str, old: object,
           new: object) -> None:
    record_action(session, actor, AuditAction.CATEGORY_CHANGED, now, category=category.code, change=what,
                  old=old, new=new)


def set_number(session: Session, actor: Person, category_id: int, setting: Setting, value: int,
               now: datetime) -> Category:
    """Set a category's due working days or its reminder / escalation office hours."""
    category = _category(session, actor, category_id)
    if not 1 <= value <= SETTING_LIMITS[setting]:
        raise CategoryChangeRefused(CategoryProblem.OUT_OF_RANGE)
    remind, escalate = category.remind_after_hours, category.escalate_after_hours
    if setting is Setting.REMIND_HOURS:
        remind = value
    elif setting is Setting.ESCALATE_HOURS:
        escalate = value
    if remind >= escalate:
        raise CategoryChangeRefused(CategoryProblem.REMIND_NOT_BEFORE_ESCALATE)
    old = getattr(category, setting.value)
    setattr(category, setting.value, value)
    _audit(session, actor, category, now, setting.value, old, value)
    session.flush()
    return category


def set_name(session: Session, actor: Person, category_id: int, locale: str, name: str,
             now: datetime) -> Category:
    """Name a category in one locale, a new one included (a third language needs no code, only its name)."""
    category = _category(session, actor, category_id)
    if not LOCALE_PATTERN.fullmatch(locale):
        raise CategoryChangeRefused(CategoryProblem.BAD_LOCALE)
    name = name.strip()
    if name_problem(name):
        raise CategoryChangeRefused(CategoryProblem.BAD_NAME)
    old = category.names.get(locale)
    category.names = {**category.names, locale: name}  # a new dict, so the JSON column is written
    _audit(session, actor, category, now, f"name_{locale}", old, name)
    session.flush()
    return category


def toggle_active(session: Session, actor: Person, category_id: int, now: datetime) -> Category:
    """Offer a category for filing again, or stop offering it (its requests keep it); one stays active."""
    category = _category(session, actor, category_id)
    if category.active:
        others = session.scalars(select(Category.id).where(Category.active.is_(True), Category.id != category.id))
        if others.first() is None:
            raise CategoryChangeRefused(CategoryProblem.LAST_ACTIVE)
    category.active = not category.active
    _audit(session, actor, category, now, "active", not category.active, category.active)
    session.flush()
    return category


def move(session: Session, actor: Person, category_id: int, step: int, now: datetime) -> Category:
    """Move a category one place up (``step`` -1) or down (+1) in the order residents see."""
    category = _category(session, actor, category_id)
    ordered = list_categories(session)
    index = ordered.index(category)
    target = min(max(index + (1 if step > 0 else -1), 0), len(ordered) - 1)
    if target != index:
        ordered.insert(target, ordered.pop(index))
        for position, each in enumerate(ordered, start=1):
            each.sort_order = position * SORT_STEP
        _audit(session, actor, category, now, "order", index + 1, target + 1)
        session.flush()
    return category


def add_category(session: Session, actor: Person, code: str, name_zh_cn: str, now: datetime) -> Category:
    """A new active category, last in the order, with the default deadline and timers."""
    if not may_manage_categories(actor):
        raise CategoryChangeRefused(CategoryProblem.NOT_ALLOWED)
    if code_problem("code", code):
        raise CategoryChangeRefused(CategoryProblem.BAD_CODE)
    name = name_zh_cn.strip()
    if name_problem(name):
        raise CategoryChangeRefused(CategoryProblem.BAD_NAME)
    if session.scalar(select(Category.id).where(Category.code == code)) is not None:
        raise CategoryChangeRefused(CategoryProblem.CODE_TAKEN)
    last = max((category.sort_order for category in list_categories(session)), default=0)
    category = Category(
        code=code, names={"zh_CN": name}, due_days=DEFAULT_DUE_DAYS, remind_after_hours=DEFAULT_REMIND_AFTER_HOURS,
        escalate_after_hours=DEFAULT_ESCALATE_AFTER_HOURS, sort_order=last + SORT_STEP, active=True,
    )
    session.add(category)
    session.flush()
    record_action(session, actor, AuditAction.CATEGORY_CREATED, now, category=code, name=name)
    return category
