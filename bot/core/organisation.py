"""Importing the organisation (streets, communities, grids, buildings) from a CSV or XLSX file.

The command line reads a file, validates every row and imports nothing unless the whole file is clean:
``read_org_file`` -> ``validate_rows`` -> ``apply_rows``. Rows are upserted by code, so the same file can be
imported again after edits; buildings missing from a file are left as they are.

Messages here are for the administrator at the command line and are in English.
"""

from __future__ import annotations

import csv
import io
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import CODE_LENGTH, Building, Community, Grid, Street

ORG_COLUMNS = (
    "street_code",
    "street_name",
    "community_code",
    "community_name",
    "grid_code",
    "grid_name",
    "building_code",
    "building_name",
    "address",
)
ORG_OPTIONAL_COLUMNS = ("latitude", "longitude")

CODE_PATTERN = re.compile(r"[A-Za-z0-9_-]+")
# A building's QR code opens the bot with the payload "b_<code>"; Telegram allows 64 characters.
BUILDING_LINK_PREFIX = "b_"
MAX_BUILDING_CODE = 64 - len(BUILDING_LINK_PREFIX)
MAX_NAME = 200
MAX_ADDRESS = 400
XLSX_SUFFIXES = (".xlsx", ".xlsm")
# Lookups by code go to the database in slices, well under every backend's limit on bound parameters.
LOOKUP_SLICE = 500


class FileFormatError(ValueError):
    """The file cannot be read as a table with the expected header; nothing was imported."""


@dataclass(frozen=True)
class OrgRow:
    """One building row of an organisation file, as written there (coordinates are still text)."""

    line: int
    street_code: str
    street_name: str
    community_code: str
    community_name: str
    grid_code: str
    grid_name: str
    building_code: str
    building_name: str
    address: str = ""
    latitude: str = ""
    longitude: str = ""

    def coordinates(self) -> tuple[float, float] | None:
        """Latitude and longitude as numbers, or None when the row gives none; valid rows only."""
        if not self.latitude and not self.longitude:
            return None
        return float(self.latitude), float(self.longitude)


@dataclass(frozen=True)
class RowProblem:
    """Something wrong with one line of an import file."""

    line: int
    message: str
    # The message as a catalog id and the values it is formatted with, so a page can say it in its reader's
    # language (empty: said in English only).
    template: str = ""
    values: tuple[tuple[str, str], ...] = ()

    @staticmethod
    def said(line: int, template: str, **values: object) -> RowProblem:
        """A problem whose ``template`` (marked with ``N_``) is formatted with ``values``."""
        texts = {name: str(value) for name, value in values.items()}
        return RowProblem(line, template.format(**texts), template, tuple(texts.items()))

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class LevelCounts:
    created: int = 0
    updated: int = 0


@dataclass
class ImportSummary:
    """How many units of each level an import created and changed."""

    streets: LevelCounts = field(default_factory=LevelCounts)
    communities: LevelCounts = field(default_factory=LevelCounts)
    grids: LevelCounts = field(default_factory=LevelCounts)
    buildings: LevelCounts = field(default_factory=LevelCounts)

    def __str__(self) -> str:
        parts = []
        for level in fields(self):
            counts: LevelCounts = getattr(self, level.name)
            parts.append(f"{level.name}: {counts.created} created, {counts.updated} updated")
        return "; ".join(parts)


# --- reading files ----------------------------------------------------------------------------------------


TableRow = tuple[int, dict[str, str]]


def header_fits(path: Path, columns: Sequence[str], optional: Sequence[str] = ()) -> bool:
    """Whether ``path`` is a table whose header names ``columns`` and otherwise only ``optional`` ones: how an
    import tells an organisation file from a place, department or partner unit file."""
    try:
        read_table(path, columns, optional)
    except FileFormatError:
        return False
    return True


def read_table(
    path: Path,
    columns: Sequence[str],
    optional: Sequence[str] = (),
    open_columns: re.Pattern[str] | None = None,
    sheet: int = 0,
) -> list[TableRow]:
    """The data rows of a CSV file or of an XLSX workbook's ``sheet`` (from 0) as (line number, {column: trimmed
    text}), blank rows skipped.

    The first row that is not blank is the header; column names match case-insensitively and may come in any order.
    Further columns whose header matches ``open_columns`` (a category file's ``name_<locale>``) are kept under
    their header as written. Raises ``FileFormatError`` when the file cannot be read or the header is wrong.
    """
    filled_rows = ((line, cells) for line, cells in read_rows(path, sheet) if any(cells))
    header_line, header = next(filled_rows, (0, []))
    if not header_line:
        raise FileFormatError(f"{path} is empty; expected a header row: {','.join(columns)}")
    positions = _column_positions(header_line, header, columns, optional, open_columns)
    table: list[TableRow] = []
    for line, cells in filled_rows:
        values = {name: cells[index] if index < len(cells) else "" for name, index in positions.items()}
        for name in optional:
            values.setdefault(name, "")
        table.append((line, values))
    return table


def read_rows(path: Path, sheet: int = 0) -> Iterator[tuple[int, list[str]]]:
    """Every row of a CSV file or of an XLSX workbook's ``sheet`` as (line number, trimmed cells), blank rows
    included; raises ``FileFormatError`` when the file cannot be read."""
    return _xlsx_rows(path, sheet) if path.suffix.lower() in XLSX_SUFFIXES else _csv_rows(path)


def _column_positions(
    header_line: int, header: list[str], columns: Sequence[str], optional: Sequence[str],
    open_columns: re.Pattern[str] | None = None,
) -> dict[str, int]:
    known = {name.lower(): name for name in (*columns, *optional)}
    positions: dict[str, int] = {}
    for index, title in enumerate(header):
        key = title.strip().lower()
        if not key:
            continue
        if key not in known and open_columns is not None and open_columns.fullmatch(title.strip()):
            known[key] = title.strip()
        if key not in known:
            raise FileFormatError(
                f"line {header_line}: unknown column {title!r}; expected {','.join((*columns, *optional))}"
            )
        if known[key] in positions:
            raise FileFormatError(f"line {header_line}: column {title!r} appears twice")
        positions[known[key]] = index
    missing = [name for name in columns if name not in positions]
    if missing:
        raise FileFormatError(f"line {header_line}: missing column(s) {', '.join(missing)}")
    return positions


def _decode(data: bytes) -> str:
    # Excel in mainland China saves CSV as GB18030 (GBK); everything else we expect is UTF-8, with or
    # without a byte order mark. GB18030 accepts far more byte strings than UTF-8, so it is tried last.
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as not_utf8:
        try:
            return data.decode("gb18030")
        except UnicodeDecodeError as not_gb18030:
            raise FileFormatError(
                f"line {_line_of(data, not_utf8.start)}: the file is neither UTF-8 nor GB18030 (GB18030 fails on"
                f" line {_line_of(data, not_gb18030.start)}); save it as \"CSV UTF-8\" or as XLSX"
            ) from None


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise FileFormatError(f"cannot read {path}: {error.strerror or error}") from error
    text = _decode(data)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        while True:
            # A quoted cell may span lines: a row is numbered by the line it starts on.
            line = reader.line_num + 1
            cells = next(reader, None)
            if cells is None:
                return
            yield line, [cell.strip() for cell in cells]
    except csv.Error as error:
        raise FileFormatError(f"line {reader.line_num}: {error}") from error


def _open_workbook(path: Path) -> Any:
    from openpyxl import load_workbook  # only XLSX imports need it

    try:
        return load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many kinds (zip, XML, key) for a damaged file
        raise FileFormatError(f"cannot read {path} as an XLSX workbook: {error}") from error


def sheet_count(path: Path) -> int:
    """How many sheets an XLSX workbook has; a CSV file is one sheet."""
    if path.suffix.lower() not in XLSX_SUFFIXES:
        return 1
    workbook = _open_workbook(path)
    try:
        return len(workbook.worksheets)
    finally:
        workbook.close()


def _xlsx_rows(path: Path, sheet_index: int = 0) -> Iterator[tuple[int, list[str]]]:
    workbook = _open_workbook(path)
    try:
        sheet = workbook.worksheets[sheet_index]
        for line, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield line, [_cell_text(value) for value in values]
    finally:
        workbook.close()


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    # Excel stores every number as a float: a code typed as 12 must read "12", not "12.0".
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def read_org_file(path: Path) -> list[OrgRow]:
    """The building rows of an organisation file (CSV in UTF-8 or GB18030, or XLSX), with line numbers."""
    return [OrgRow(line=line, **values) for line, values in read_table(path, ORG_COLUMNS, ORG_OPTIONAL_COLUMNS)]


# --- validation -------------------------------------------------------------------------------------------


def code_problem(column: str, code: str, max_length: int = CODE_LENGTH) -> str | None:
    """Why ``code`` is not a valid unit code, or None when it is."""
    if not code:
        return f"{column} is missing"
    if len(code) > max_length or not CODE_PATTERN.fullmatch(code):
        return f"{column} {code!r} is malformed: use 1-{max_length} characters of A-Z a-z 0-9 _ -"
    return None


def control_character_problem(column: str, value: str) -> str | None:
    """Why ``value`` cannot be stored: a NUL or other control character (PostgreSQL refuses NUL outright)."""
    found = next((char for char in value if unicodedata.category(char) == "Cc"), None)
    if found is None:
        return None
    return f"{column} contains the control character U+{ord(found):04X}; remove it"


def _field_problems(row: OrgRow) -> list[str]:
    problems = [
        control_character_problem(column.name, getattr(row, column.name))
        for column in fields(row)
        if column.name != "line"
    ]
    problems += [
        code_problem("street_code", row.street_code),
        code_problem("community_code", row.community_code),
        code_problem("grid_code", row.grid_code),
        code_problem("building_code", row.building_code, MAX_BUILDING_CODE),
    ]
    for column in ("street_name", "community_name", "grid_name", "building_name"):
        value = getattr(row, column)
        if not value:
            problems.append(f"{column} is missing")
        elif len(value) > MAX_NAME:
            problems.append(f"{column} is longer than {MAX_NAME} characters")
    if len(row.address) > MAX_ADDRESS:
        problems.append(f"address is longer than {MAX_ADDRESS} characters")
    problems.extend(coordinate_problems(row.latitude, row.longitude))
    return [problem for problem in problems if problem]


def coordinate_problems(latitude: str, longitude: str) -> list[str]:
    """What is wrong with a row's optional latitude and longitude columns (both or neither, in range)."""
    if not latitude and not longitude:
        return []
    if not latitude or not longitude:
        return ["give both latitude and longitude, or neither"]
    problems = []
    for column, text, limit in (("latitude", latitude, 90.0), ("longitude", longitude, 180.0)):
        try:
            value = float(text)
        except ValueError:
            problems.append(f"{column} {text!r} is not a number")
            continue
        if not math.isfinite(value) or not -limit <= value <= limit:
            problems.append(f"{column} {text} is outside -{limit:g}..{limit:g}")
    return problems


@dataclass
class _FirstSeen:
    """The first row that named a code: later rows must agree with it."""

    line: int
    name: str
    parent: str
    details: tuple[str, str, str] = ("", "", "")


def _consistency_problems(rows: Iterable[OrgRow]) -> list[RowProblem]:
    seen: dict[str, dict[str, _FirstSeen]] = {"street": {}, "community": {}, "grid": {}, "building": {}}
    problems: list[RowProblem] = []
    for row in rows:
        levels = (
            ("street", row.street_code, row.street_name, "", ""),
            ("community", row.community_code, row.community_name, "street", row.street_code),
            ("grid", row.grid_code, row.grid_name, "community", row.community_code),
            ("building", row.building_code, row.building_name, "grid", row.grid_code),
        )
        for level, code, name, parent_level, parent in levels:
            first = seen[level].setdefault(code, _FirstSeen(row.line, name, parent))
            if first.line == row.line or not code:
                continue
            problems.extend(
                RowProblem(row.line, message)
                for message in _disagreements(level, code, name, parent_level, parent, first)
            )
        problems.extend(_building_detail_problems(row, seen["building"].get(row.building_code)))
    return problems


def _disagreements(level: str, code: str, name: str, parent_level: str, parent: str, first: _FirstSeen) -> list[str]:
    messages = []
    if name and first.name and name != first.name:
        messages.append(f"{level} {code} is named {name!r} here but {first.name!r} on line {first.line}")
    if parent and first.parent and parent != first.parent:
        messages.append(
            f"{level} {code} is in {parent_level} {parent} here but in {parent_level} {first.parent}"
            f" on line {first.line}"
        )
    return messages


def _building_detail_problems(row: OrgRow, first: _FirstSeen | None) -> list[RowProblem]:
    details = (row.address, row.latitude, row.longitude)
    if first is None or not row.building_code:
        return []
    if first.line == row.line:
        first.details = details
        return []
    if details != first.details:
        return [
            RowProblem(
                row.line,
                f"building {row.building_code} is listed again with a different address or coordinates"
                f" than on line {first.line}",
            )
        ]
    return []


def validate_rows(rows: Sequence[OrgRow]) -> list[RowProblem]:
    """Every problem in ``rows``, ordered by line; an empty list means the file can be imported.

    A building already in the database under another grid is not a problem: importing moves it.
    """
    if not rows:
        return [RowProblem(1, "the file lists no buildings")]
    problems = [RowProblem(row.line, message) for row in rows for message in _field_problems(row)]
    problems.extend(_consistency_problems(rows))
    return sorted(problems, key=lambda problem: problem.line)


# --- applying ---------------------------------------------------------------------------------------------

Unit = TypeVar("Unit", Street, Community, Grid, Building)


def _existing_by_code(session: Session, model: type[Unit], codes: Iterable[str]) -> dict[str, Unit]:
    wanted = sorted(set(codes))
    found: dict[str, Unit] = {}
    for start in range(0, len(wanted), LOOKUP_SLICE):
        chunk = wanted[start : start + LOOKUP_SLICE]
        found.update((unit.code, unit) for unit in session.scalars(select(model).where(model.code.in_(chunk))))
    return found


def _assign(unit: object, values: dict[str, Any]) -> bool:
    """Set the attributes that differ; True when anything changed."""
    changed = False
    for name, value in values.items():
        if getattr(unit, name) != value:
            setattr(unit, name, value)
            changed = True
    return changed


def _upsert(
    session: Session,
    model: type[Unit],
    values_by_code: dict[str, dict[str, Any]],
    counts: LevelCounts,
) -> dict[str, Unit]:
    units = _existing_by_code(session, model, values_by_code)
    for code, values in values_by_code.items():
        unit = units.get(code)
        if unit is None:
            unit = model(code=code, **values)
            session.add(unit)
            units[code] = unit
            counts.created += 1
        elif _assign(unit, values):
            counts.updated += 1
    # Children refer to their parents by id, so the new ids are needed before the next level.
    session.flush()
    return units


def _first_rows_by(rows: Sequence[OrgRow], column: str) -> dict[str, OrgRow]:
    first: dict[str, OrgRow] = {}
    for row in rows:
        first.setdefault(getattr(row, column), row)
    return first


def _building_values(row: OrgRow, grid_id: int) -> dict[str, Any]:
    values: dict[str, Any] = {"name": row.building_name, "address": row.address, "grid_id": grid_id}
    values["active"] = True  # listing a building again brings it back into service
    coordinates = row.coordinates()
    # Rows without coordinates keep what the database knows, so a file without the columns loses nothing.
    if coordinates is not None:
        values["latitude"], values["longitude"] = coordinates
    return values


def apply_rows(session: Session, rows: Sequence[OrgRow]) -> ImportSummary:
    """Create or update every street, community, grid and building in ``rows``, matched by code.

    Names, addresses, coordinates and parents are brought in line with the file; buildings absent from it
    are left alone. Raises ``FileFormatError`` if the rows have problems (run ``validate_rows`` first).
    """
    problems = validate_rows(rows)
    if problems:
        raise FileFormatError(f"{len(problems)} problem(s), first: {problems[0]}")
    summary = ImportSummary()
    streets = _upsert(
        session,
        Street,
        {code: {"name": row.street_name} for code, row in _first_rows_by(rows, "street_code").items()},
        summary.streets,
    )
    communities = _upsert(
        session,
        Community,
        {
            code: {"name": row.community_name, "street_id": streets[row.street_code].id}
            for code, row in _first_rows_by(rows, "community_code").items()
        },
        summary.communities,
    )
    grids = _upsert(
        session,
        Grid,
        {
            code: {"name": row.grid_name, "community_id": communities[row.community_code].id}
            for code, row in _first_rows_by(rows, "grid_code").items()
        },
        summary.grids,
    )
    _upsert(
        session,
        Building,
        {
            code: _building_values(row, grids[row.grid_code].id)
            for code, row in _first_rows_by(rows, "building_code").items()
        },
        summary.buildings,
    )
    return summary
