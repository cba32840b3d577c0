"""Importing places (``place_code,place_name,kind,grid_code,latitude,longitude,address``) and grid boundaries
(a GeoJSON FeatureCollection whose features name their grid in ``properties.grid_code``).

``gridbot org import`` reads a file whose header names ``place_code`` here, a ``.geojson`` file as boundaries,
and the second sheet of an organisation workbook as places. Every grid a row names must exist already or come
in the same import. Coordinates are WGS-84 (GPS, Telegram), not the GCJ-02 of Chinese maps. Rows are upserted
by code; messages are for the administrator at the command line and are in English.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from bot.core.geo import bounds, polygons_of
from bot.core.organisation import (
    MAX_ADDRESS,
    MAX_NAME,
    FileFormatError,
    LevelCounts,
    RowProblem,
    code_problem,
    control_character_problem,
    coordinate_problems,
    header_fits,
    read_table,
)
from bot.core.places import MAX_GRID_SPAN_DEGREES, PLACE_LINK_PREFIX
from storage.models import Grid, Place

PLACE_COLUMNS = ("place_code", "place_name", "grid_code")
PLACE_OPTIONAL_COLUMNS = ("kind", "latitude", "longitude", "address")
MAX_PLACE_CODE = 64 - len(PLACE_LINK_PREFIX)
MAX_KIND = 40
BOUNDARY_SUFFIXES = (".geojson",)
LOOKUP_SLICE = 500


class ImportProblems(FileFormatError):
    """Rows that cannot be imported; the transaction is rolled back and nothing is kept."""

    def __init__(self, problems: list[RowProblem]) -> None:
        super().__init__(f"{len(problems)} problem(s), first: {problems[0]}")
        self.problems = problems


@dataclass(frozen=True)
class PlaceRow:
    line: int
    place_code: str
    place_name: str
    grid_code: str
    kind: str = ""
    latitude: str = ""
    longitude: str = ""
    address: str = ""


def is_place_file(path: Path) -> bool:
    """Whether the file's header names place columns."""
    return header_fits(path, PLACE_COLUMNS, PLACE_OPTIONAL_COLUMNS)


def read_place_file(path: Path, sheet: int = 0) -> list[PlaceRow]:
    return [PlaceRow(line=line, **values)
            for line, values in read_table(path, PLACE_COLUMNS, PLACE_OPTIONAL_COLUMNS, sheet=sheet)]


def _row_problems(row: PlaceRow) -> list[str]:
    problems = [control_character_problem(column.name, getattr(row, column.name))
                for column in fields(row) if column.name != "line"]
    problems += [
        code_problem("place_code", row.place_code, MAX_PLACE_CODE),
        code_problem("grid_code", row.grid_code),
        "place_name is missing" if not row.place_name else None,
        f"place_name is longer than {MAX_NAME} characters" if len(row.place_name) > MAX_NAME else None,
        f"kind is longer than {MAX_KIND} characters" if len(row.kind) > MAX_KIND else None,
        f"address is longer than {MAX_ADDRESS} characters" if len(row.address) > MAX_ADDRESS else None,
    ]
    return [problem for problem in [*problems, *coordinate_problems(row.latitude, row.longitude)] if problem]


def validate_place_rows(rows: Sequence[PlaceRow]) -> list[RowProblem]:
    """Problems with the rows on their own (the grids they name are checked against the database on import)."""
    if not rows:
        return [RowProblem(1, "the file lists no places")]
    problems: list[RowProblem] = []
    first_line: dict[str, int] = {}
    for row in rows:
        problems += [RowProblem(row.line, message) for message in _row_problems(row)]
        seen = first_line.setdefault(row.place_code, row.line)
        if seen != row.line:
            problems.append(RowProblem(row.line, f"place_code {row.place_code} is listed already on line {seen}"))
    return sorted(problems, key=lambda problem: problem.line)


def grids_by_code(session: Session, codes: Iterable[str], with_boundaries: bool = False) -> dict[str, Grid]:
    wanted = sorted(set(codes))
    found: dict[str, Grid] = {}
    # A grid's boundary is left unread unless asked for (``storage.models.Grid``): loaded one grid at a time
    # it would cost a statement per grid of the import.
    query = select(Grid).options(undefer(Grid.boundary)) if with_boundaries else select(Grid)
    for start in range(0, len(wanted), LOOKUP_SLICE):
        chunk = wanted[start : start + LOOKUP_SLICE]
        found.update((grid.code, grid) for grid in session.scalars(query.where(Grid.code.in_(chunk))))
    return found


def _place_values(row: PlaceRow, grid_id: int) -> dict[str, Any]:
    values: dict[str, Any] = {"name": row.place_name, "kind": row.kind, "address": row.address,
                              "grid_id": grid_id, "active": True}
    if row.latitude and row.longitude:
        values["latitude"], values["longitude"] = float(row.latitude), float(row.longitude)
    return values


def apply_place_rows(session: Session, rows: Sequence[PlaceRow]) -> LevelCounts:
    """Create or update every place in ``rows`` by code; raises ``ImportProblems`` for a row's unknown grid."""
    problems = validate_place_rows(rows)
    grids = grids_by_code(session, (row.grid_code for row in rows))
    problems += [RowProblem(row.line, f"grid_code {row.grid_code} names no grid; import the grid first")
                 for row in rows if row.grid_code and row.grid_code not in grids]
    if problems:
        raise ImportProblems(sorted(problems, key=lambda problem: problem.line))
    existing = {place.code: place for place in session.scalars(
        select(Place).where(Place.code.in_([row.place_code for row in rows])))}
    counts = LevelCounts()
    for row in rows:
        values = _place_values(row, grids[row.grid_code].id)
        place = existing.get(row.place_code)
        if place is None:
            session.add(Place(code=row.place_code, **values))
            counts.created += 1
        elif any(getattr(place, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(place, name, value)
            counts.updated += 1
    session.flush()
    return counts


# --- grid boundaries ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Boundary:
    line: int  # the feature's number in the collection, from 1
    grid_code: str
    geometry: dict[str, Any]


def is_boundary_file(path: Path) -> bool:
    return path.suffix.lower() in BOUNDARY_SUFFIXES


def read_boundary_file(path: Path) -> list[Boundary]:
    """The features of a GeoJSON FeatureCollection as boundaries of the grids they name."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FileFormatError(f"cannot read {path} as GeoJSON: {error}") from error
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise FileFormatError(f"{path} is not a GeoJSON FeatureCollection")
    boundaries = []
    for number, feature in enumerate(data.get("features") or [], start=1):
        properties = feature.get("properties") if isinstance(feature, dict) else None
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        code = str((properties or {}).get("grid_code") or "")
        boundaries.append(Boundary(number, code, geometry if isinstance(geometry, dict) else {}))
    return boundaries


def _ring_problem(ring: Any) -> str | None:
    if not isinstance(ring, list) or len(ring) < 4:
        return "a ring needs at least four [longitude, latitude] points"
    for point in ring:
        if (not isinstance(point, list) or len(point) < 2
                or not all(isinstance(value, int | float) and math.isfinite(value) for value in point[:2])):
            return f"{point!r} is not a [longitude, latitude] point"
        if not (-180 <= point[0] <= 180 and -90 <= point[1] <= 90):
            return f"{point!r} is outside the world: GeoJSON gives [longitude, latitude]"
    if ring[0][:2] != ring[-1][:2]:
        return "a ring must end where it starts"
    return None


def _geometry_problem(geometry: dict[str, Any]) -> str | None:
    try:
        polygons = polygons_of(geometry)
    except (ValueError, KeyError) as error:
        return str(error) if isinstance(error, ValueError) else "the geometry has no coordinates"
    if not polygons or not all(isinstance(rings, list) and rings for rings in polygons):
        return "the geometry has no rings"
    problem = next((found for rings in polygons for ring in rings if (found := _ring_problem(ring))), None)
    if problem:
        return problem
    south, north, west, east = bounds(geometry)
    if north - south > MAX_GRID_SPAN_DEGREES or east - west > MAX_GRID_SPAN_DEGREES:
        return f"the boundary spans more than {MAX_GRID_SPAN_DEGREES}° (about 2 km); is it a grid's?"
    return None


def apply_boundaries(session: Session, boundaries: Sequence[Boundary]) -> LevelCounts:
    """Set each named grid's boundary and the box around it; raises ``ImportProblems`` for a bad feature."""
    if not boundaries:
        raise ImportProblems([RowProblem(1, "the collection has no features")])
    grids = grids_by_code(session, (boundary.grid_code for boundary in boundaries), with_boundaries=True)
    problems = []
    for boundary in boundaries:
        message = (code_problem("grid_code", boundary.grid_code)
                   or (None if boundary.grid_code in grids else f"grid_code {boundary.grid_code} names no grid")
                   or _geometry_problem(boundary.geometry))
        if message:
            problems.append(RowProblem(boundary.line, f"feature {boundary.line}: {message}"))
    if problems:
        raise ImportProblems(problems)
    counts = LevelCounts()
    for boundary in boundaries:
        grid = grids[boundary.grid_code]
        if grid.boundary != boundary.geometry:
            grid.boundary = boundary.geometry
            grid.min_latitude, grid.max_latitude, grid.min_longitude, grid.max_longitude = bounds(boundary.geometry)
            counts.updated += 1
    session.flush()
    return counts
