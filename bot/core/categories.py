"""Request categories: the defaults drawn from Wancheng's grid work, and the admin's own list from a file.

Category names are data (one per locale), not program text. Seeding only adds what is missing, so an
administrator's edits survive upgrades.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.organisation import FileFormatError, RowProblem, code_problem, read_table
from storage.models import Category

DEFAULT_DUE_DAYS = 7  # "the resident gets a result within a week" (一周之内反馈结果)
MAX_DUE_DAYS = 365
SORT_STEP = 10  # gaps leave room to slot a category in by hand
CATEGORY_COLUMNS = ("code", "name_zh_CN", "name_en", "due_days", "active")
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


def list_categories(session: Session) -> list[Category]:
    """Every category, active or not, in display order (for the administrator)."""
    return list(session.scalars(select(Category).order_by(Category.sort_order, Category.id)))


def read_category_file(path: Path) -> list[CategoryRow]:
    """The rows of a category file ``code,name_zh_CN,name_en,due_days,active`` (CSV or XLSX).

    ``name_en``, ``due_days`` (7) and ``active`` (yes) may be left blank. Raises ``FileFormatError``.
    """
    return [
        CategoryRow(
            line=line,
            code=values["code"],
            name_zh_CN=values["name_zh_CN"],
            name_en=values["name_en"],
            due_days=values["due_days"],
            active=values["active"],
        )
        for line, values in read_table(path, CATEGORY_COLUMNS[:2], CATEGORY_COLUMNS[2:])
    ]


def _row_problems(row: CategoryRow) -> list[str]:
    problems = [code_problem("code", row.code)]
    if not row.name_zh_CN:
        problems.append("name_zh_CN is missing")
    if row.due_days and not (row.due_days.isdigit() and 1 <= int(row.due_days) <= MAX_DUE_DAYS):
        problems.append(f"due_days {row.due_days!r} must be a whole number of days from 1 to {MAX_DUE_DAYS}")
    if row.active.lower() not in TRUE_WORDS | FALSE_WORDS:
        problems.append(f"active {row.active!r} must be yes or no")
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


def _row_values(row: CategoryRow, names: dict[str, str]) -> dict[str, object]:
    merged = dict(names)  # locales the file has no column for are kept
    merged["zh_CN"] = row.name_zh_CN
    if row.name_en:
        merged["en"] = row.name_en
    return {
        "names": merged,
        "due_days": int(row.due_days) if row.due_days else DEFAULT_DUE_DAYS,
        "active": row.active.lower() in TRUE_WORDS,
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
        if category is None:
            category = Category(code=row.code, **_row_values(row, {}))
            session.add(category)
            summary.created += 1
        else:
            values = _row_values(row, category.names)
            changed = [name for name, value in values.items() if getattr(category, name) != value]
            for name in changed:
                setattr(category, name, values[name])
            summary.updated += bool(changed)
        listed.append(category)
    session.flush()
    _reorder(session, listed)
    return summary
