"""Importing departments (``department_code,department_name,street_code``): the functional departments a street
(or, with ``street_code`` empty, the district) hands requests to (分流).

``gridbot org import`` reads a file whose header names ``department_code`` here. A street a row names must be
imported already. Rows are upserted by code; messages are for the administrator and are in English.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.organisation import (
    MAX_NAME,
    LevelCounts,
    RowProblem,
    code_problem,
    control_character_problem,
    header_fits,
    read_table,
)
from bot.core.place_import import ImportProblems
from storage.models import Department, Street

DEPARTMENT_COLUMNS = ("department_code", "department_name")
DEPARTMENT_OPTIONAL_COLUMNS = ("street_code",)


@dataclass(frozen=True)
class DepartmentRow:
    line: int
    department_code: str
    department_name: str
    street_code: str = ""


def is_department_file(path: Path) -> bool:
    """Whether the file's header names department columns."""
    return header_fits(path, DEPARTMENT_COLUMNS, DEPARTMENT_OPTIONAL_COLUMNS)


def read_department_file(path: Path) -> list[DepartmentRow]:
    return [DepartmentRow(line=line, **values)
            for line, values in read_table(path, DEPARTMENT_COLUMNS, DEPARTMENT_OPTIONAL_COLUMNS)]


def validate_department_rows(rows: Sequence[DepartmentRow]) -> list[RowProblem]:
    """Problems with the rows on their own (the streets they name are checked on import)."""
    if not rows:
        return [RowProblem(1, "the file lists no departments")]
    problems: list[RowProblem] = []
    first_line: dict[str, int] = {}
    for row in rows:
        messages = [
            code_problem("department_code", row.department_code),
            code_problem("street_code", row.street_code) if row.street_code else None,
            control_character_problem("department_name", row.department_name),
            "department_name is missing" if not row.department_name else None,
            f"department_name is longer than {MAX_NAME} characters" if len(row.department_name) > MAX_NAME else None,
        ]
        seen = first_line.setdefault(row.department_code, row.line)
        if seen != row.line:
            messages.append(f"department_code {row.department_code} is listed already on line {seen}")
        problems += [RowProblem(row.line, message) for message in messages if message]
    return problems


def apply_department_rows(session: Session, rows: Sequence[DepartmentRow]) -> LevelCounts:
    """Create or update every department by code; raises ``ImportProblems`` for a row's unknown street."""
    problems = validate_department_rows(rows)
    wanted = {row.street_code for row in rows if row.street_code}
    streets = {street.code: street.id for street in session.scalars(select(Street).where(Street.code.in_(wanted)))}
    problems += [RowProblem(row.line, f"street_code {row.street_code} names no street; import the street first")
                 for row in rows if row.street_code and row.street_code not in streets]
    if problems:
        raise ImportProblems(sorted(problems, key=lambda problem: problem.line))
    existing = {department.code: department for department in session.scalars(
        select(Department).where(Department.code.in_([row.department_code for row in rows])))}
    counts = LevelCounts()
    for row in rows:
        street_id = streets[row.street_code] if row.street_code else None
        department = existing.get(row.department_code)
        if department is None:
            session.add(Department(code=row.department_code, name=row.department_name, street_id=street_id,
                                   active=True))
            counts.created += 1
        elif (department.name, department.street_id, department.active) != (row.department_name, street_id, True):
            department.name, department.street_id, department.active = row.department_name, street_id, True
            counts.updated += 1
    session.flush()
    return counts
