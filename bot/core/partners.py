"""Importing partner units (联建单位) from a CSV or XLSX file with the columns ``unit_code,unit_name,kind``.

``gridbot org import`` takes such a file as well as the organisation's: a file whose header names
``unit_code`` is read here. Rows are upserted by code; messages are for the administrator and in English.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.organisation import (
    MAX_NAME,
    FileFormatError,
    LevelCounts,
    RowProblem,
    code_problem,
    control_character_problem,
    header_fits,
    read_table,
)
from storage.models import PartnerUnit

PARTNER_COLUMNS = ("unit_code", "unit_name")
PARTNER_OPTIONAL_COLUMNS = ("kind",)
MAX_KIND = 60


@dataclass(frozen=True)
class PartnerRow:
    line: int
    unit_code: str
    unit_name: str
    kind: str = ""


def is_partner_file(path: Path) -> bool:
    """Whether the file's header names only partner unit columns (an organisation file names others)."""
    return header_fits(path, (), (*PARTNER_COLUMNS, *PARTNER_OPTIONAL_COLUMNS))


def read_partner_file(path: Path) -> list[PartnerRow]:
    return [PartnerRow(line=line, **values)
            for line, values in read_table(path, PARTNER_COLUMNS, PARTNER_OPTIONAL_COLUMNS)]


def validate_partner_rows(rows: Sequence[PartnerRow]) -> list[RowProblem]:
    if not rows:
        return [RowProblem(1, "the file lists no partner units")]
    problems: list[RowProblem] = []
    first_line: dict[str, int] = {}
    for row in rows:
        messages = [
            code_problem("unit_code", row.unit_code),
            control_character_problem("unit_name", row.unit_name),
            control_character_problem("kind", row.kind),
            "unit_name is missing" if not row.unit_name else None,
            f"unit_name is longer than {MAX_NAME} characters" if len(row.unit_name) > MAX_NAME else None,
            f"kind is longer than {MAX_KIND} characters" if len(row.kind) > MAX_KIND else None,
        ]
        seen = first_line.setdefault(row.unit_code, row.line)
        if seen != row.line:
            messages.append(f"unit_code {row.unit_code} is listed already on line {seen}")
        problems += [RowProblem(row.line, message) for message in messages if message]
    return problems


def apply_partner_rows(session: Session, rows: Sequence[PartnerRow]) -> LevelCounts:
    problems = validate_partner_rows(rows)
    if problems:
        raise FileFormatError(f"{len(problems)} problem(s), first: {problems[0]}")
    counts = LevelCounts()
    existing = {unit.code: unit for unit in session.scalars(select(PartnerUnit))}
    for row in rows:
        unit = existing.get(row.unit_code)
        if unit is None:
            session.add(PartnerUnit(code=row.unit_code, name=row.unit_name, kind=row.kind))
            counts.created += 1
        elif (unit.name, unit.kind) != (row.unit_name, row.kind):
            unit.name, unit.kind = row.unit_name, row.kind
            counts.updated += 1
    session.flush()
    return counts
