"""A request list as a spreadsheet (XLSX or CSV), and an import of historical requests from the same columns.

The export writes one row per request of an area, optionally narrowed to some statuses and a filing period,
under headers in the reader's language. It reads column tuples, never ``Request`` objects, and writes XLSX in
openpyxl's write-only mode, so a hundred thousand rows stay small in memory. CSV is UTF-8 with a byte order
mark, which Excel in mainland China needs to read it as UTF-8. The resident's name and phone are written only
when the caller asks for them (``privacy.may_see_personal_data`` says who may), and never for a resident who
asked to stay anonymous.

The import reads the same columns, its headers in any language with a catalog. It takes history from a system
used before the bot: each row becomes a closed (or withdrawn) request with its dates, its filing and
resolution on the timeline and its rating, held by its grid, with no timers and no resident to tell, so
nothing is ever sent about it. Every row is checked first; if any is wrong, nothing is imported and each
problem is listed with its line number, like ``gridbot org import``. A row matching a request already there
(same grid, filing time and description) is such a problem, so a file imported twice is refused. Names and
phones are not imported: the requests belong to one placeholder person who is never reachable.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

from sqlalchemy import Select, insert, select
from sqlalchemy.orm import Session, aliased

from bot.core.audit import AuditAction, record_action
from bot.core.desk_access import NOT_FOR_YOU, DeskRefused, may_use_desk
from bot.core.desk_figures import require_area
from bot.core.desk_requests import Filters, list_conditions
from bot.core.organisation import LOOKUP_SLICE, FileFormatError, RowProblem, read_rows
from bot.core.privacy import may_see_personal_data
from bot.core.roles import is_district_staff
from bot.core.units import DISTRICT, Unit, holder_name, ids_within
from bot.i18n import N_, Translator, available_locales, translator
from storage.models import (
    Building,
    Category,
    Community,
    EventKind,
    Grid,
    Level,
    Person,
    Place,
    Rating,
    Request,
    RequestEvent,
    RequestStatus,
    Street,
)

# (key, header): the key is how the import knows a column whatever language its header is in.
COLUMNS = (
    ("code", N_("Code")),
    ("filed_at", N_("Filed at")),
    ("category", N_("Category")),
    ("status", N_("Status")),
    ("holder", N_("Held by")),
    ("street", N_("Street")),
    ("community", N_("Community")),
    ("grid", N_("Grid")),
    ("grid_code", N_("Grid code")),
    ("place", N_("Building or place")),
    ("place_code", N_("Building or place code")),
    ("description", N_("Description")),
    ("resolved_at", N_("Resolved at")),
    ("due_at", N_("Due")),
    ("on_time", N_("On time")),
    ("rating", N_("Rating")),
)
PERSONAL_COLUMNS = (("resident", N_("Resident")), ("phone", N_("Phone")))
REQUIRED_TO_IMPORT = ("filed_at", "category", "status", "grid_code", "description")
STATUS_NAMES = {
    RequestStatus.NEW: N_("new"),
    RequestStatus.ACCEPTED: N_("accepted"),
    RequestStatus.RESOLVED: N_("resolved"),
    RequestStatus.CLOSED: N_("closed"),
    RequestStatus.WITHDRAWN: N_("withdrawn"),
}
# History is done with: a resolved request of the old system has nobody left to confirm it, so it is closed.
IMPORTED_AS = {RequestStatus.RESOLVED: RequestStatus.CLOSED, RequestStatus.CLOSED: RequestStatus.CLOSED,
               RequestStatus.WITHDRAWN: RequestStatus.WITHDRAWN}
TIME_FORMAT = "%Y-%m-%d %H:%M"
STREAM_BATCH = 2_000
IMPORT_BATCH = 1_000
# The person imported requests belong to: no engine serves this channel, so nothing is sent to it.
IMPORT_CHANNEL = "import"
IMPORT_PERSON = "history"
MAX_DESCRIPTION = 4_000
IMPORT_NOT_FOR_YOU = N_("Only the district center's staff import historical requests.")


# --- export ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestFilter:
    """Which requests a list holds: those of an area's grids, of some statuses, filed in [since, until)."""

    area: Unit = DISTRICT
    statuses: tuple[RequestStatus, ...] = ()
    since: datetime | None = None
    until: datetime | None = None


def headers(t: Translator, include_personal: bool) -> list[str]:
    return [t._(title) for _key, title in (*COLUMNS, *(PERSONAL_COLUMNS if include_personal else ()))]


def _listing(selection: RequestFilter) -> Select[Any]:
    street, community = aliased(Street), aliased(Community)
    columns: list[Any] = [
        Request.id, Request.created_at, Request.category_id, Request.status, Request.level, Request.unit_id,
        street.name, community.name, Grid.name, Grid.code, Building.name, Building.code, Place.name, Place.code,
        Request.description, Request.resolved_at, Request.due_at, Rating.stars, Request.hide_identity,
        Person.display_name, Person.phone,
    ]
    query = (
        select(*columns)
        .join(Grid, Grid.id == Request.grid_id)
        .join(community, community.id == Grid.community_id)
        .join(street, street.id == community.street_id)
        .join(Person, Person.id == Request.resident_id)
        .outerjoin(Building, Building.id == Request.building_id)
        .outerjoin(Place, Place.id == Request.place_id)
        .outerjoin(Rating, Rating.request_id == Request.id)
        .order_by(Request.id)
    )
    if selection.area != DISTRICT:
        grids = ids_within(Level.GRID, selection.area)
        if grids is None:
            raise ValueError(f"a {selection.area.level.value} holds no grids")
        query = query.where(Request.grid_id.in_(grids))
    if selection.statuses:
        query = query.where(Request.status.in_(selection.statuses))
    if selection.since is not None:
        query = query.where(Request.created_at >= selection.since)
    if selection.until is not None:
        query = query.where(Request.created_at < selection.until)
    return query


def _local(moment: datetime | None, zone: ZoneInfo) -> datetime | None:
    """A moment as the local wall-clock time a spreadsheet shows (spreadsheets keep no time zone)."""
    return None if moment is None else moment.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)


def export_rows(
    session: Session, selection: RequestFilter, t: Translator, include_personal: bool
) -> Iterator[list[Any]]:
    """The rows of the list, in the order of ``headers``; times are local, without a zone."""
    return _rows_of(session, _listing(selection), t, include_personal)


def _rows_of(session: Session, listing: Select[Any], t: Translator, include_personal: bool,
             ids: list[int] | None = None) -> Iterator[list[Any]]:
    """The rows of ``listing``; the requests' ids are appended to ``ids`` as they come, when given."""
    zone = t.tz
    categories = {category.id: category.name(t.locale) for category in session.scalars(select(Category))}
    holders: dict[tuple[Level, int], str] = {}
    for row in session.execute(listing.execution_options(yield_per=STREAM_BATCH)):
        (request_id, created, category_id, status, level, unit_id, street, community, grid, grid_code, building,
         building_code, place, place_code, description, resolved, due, stars, hidden, name, phone) = row
        if ids is not None:
            ids.append(request_id)
        holder = holders.get((level, unit_id))
        if holder is None:
            holder = holders[(level, unit_id)] = holder_name(session, t, Unit(level, unit_id))
        on_time = None if resolved is None else (t._("yes") if resolved <= due else t._("no"))
        values = [
            f"R-{request_id:06d}", _local(created, zone), categories.get(category_id, ""),
            t._(STATUS_NAMES[status]), holder, street, community, grid, grid_code, building or place or "",
            building_code or place_code or "", description, _local(resolved, zone), _local(due, zone), on_time,
            stars,
        ]
        if include_personal:
            values += ["", ""] if hidden else [name, phone or ""]
        yield values


def export_for(
    session: Session, person: Person, selection: RequestFilter, t: Translator, personal: bool
) -> tuple[list[str], Iterator[list[Any]]]:
    """The headers and rows of the list for ``person``: only an admin of the area (raises ``DeskRefused``), and
    residents' names and phones only when asked for and ``may_see_personal_data`` allows them."""
    require_area(session, person, selection.area)
    include = personal and may_see_personal_data(person)
    return headers(t, include), export_rows(session, selection, t, include)


@dataclass(frozen=True)
class ExportBatch:
    """Some rows of the desk's export, and the id to continue after (None: that was the last)."""

    header: list[str]
    rows: list[list[Any]]
    after: int | None


def desk_export(
    session: Session, person: Person, filters: Filters, now: datetime, t: Translator, personal: bool,
    after: int = 0, size: int = STREAM_BATCH,
) -> ExportBatch:
    """``size`` rows of the desk's list with ``filters`` (every page of it, by id) after request ``after``, for
    ``person``: only someone who may use the desk (raises ``DeskRefused``), only the requests of their area
    (``desk_requests``), and residents' names and phones only when asked for and ``may_see_personal_data``
    allows them. In batches, so a caller writes the file outside the database's unit of work. A download with
    residents' names and phones is audited with its filters, once, with its first batch."""
    if not may_use_desk(person):
        raise DeskRefused(NOT_FOR_YOU)
    conditions = list_conditions(session, person, replace(filters, after=None), now)
    include = personal and may_see_personal_data(person)
    if include and after == 0:
        record_action(session, person, AuditAction.PERSONAL_DATA_EXPORTED, now, filters=_described(filters))
    listing = _listing(RequestFilter()).where(*conditions, Request.id > after).limit(size)
    ids: list[int] = []
    rows = list(_rows_of(session, listing, t, include, ids))
    return ExportBatch(headers(t, include), rows, ids[-1] if len(ids) == size else None)


def _described(filters: Filters) -> dict[str, str]:
    """The filters that narrow the list, as text, for the audit log."""
    return {name: str(value) for name, value in vars(filters).items() if value not in (None, False, "")}


def write_xlsx(out: BinaryIO, title: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """The rows as one sheet of a workbook, written as they come; returns how many."""
    from openpyxl import Workbook  # only XLSX exports need it

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title[:31])
    sheet.append(list(header))
    count = 0
    for row in rows:
        sheet.append(list(row))
        count += 1
    workbook.save(out)
    return count


def write_csv(out: BinaryIO, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """The rows as CSV in UTF-8 with a byte order mark; times as ``YYYY-MM-DD HH:MM``; returns how many."""
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="")
    writer = csv.writer(text)
    writer.writerow(header)
    count = 0
    for row in rows:
        writer.writerow([value.strftime(TIME_FORMAT) if isinstance(value, datetime) else
                         "" if value is None else value for value in row])
        count += 1
    text.flush()
    text.detach()
    return count


# --- import ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoricalRequest:
    """One valid row of an import file, resolved to the ids it refers to."""

    line: int
    created_at: datetime
    category_id: int
    status: RequestStatus
    grid_id: int
    building_id: int | None
    place_id: int | None
    description: str
    resolved_at: datetime | None
    due_at: datetime
    stars: int | None


class ImportRefused(ValueError):
    """The file has problems; nothing was imported."""

    def __init__(self, problems: list[RowProblem]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


class UnreadableImport(FileFormatError):
    """An import file whose header cannot be used; says why in any language (``text``)."""

    def __init__(self, template: str, **values: object) -> None:
        self.template = template
        self.values = {name: str(value) for name, value in values.items()}
        super().__init__(template.format(**self.values))

    def text(self, t: Translator) -> str:
        return t._(self.template).format(**self.values)


def _titles_to_keys() -> dict[str, str]:
    """Every header a column may have: its key and its title in each language, lower-cased."""
    known: dict[str, str] = {}
    for locale in available_locales():
        t = translator(locale)
        for key, title in (*COLUMNS, *PERSONAL_COLUMNS):
            known[t._(title).strip().lower()] = key
            known[title.lower()] = known[key] = key
    return known


def read_import_file(path: Path) -> list[tuple[int, dict[str, str]]]:
    """The data rows as (line, {column key: text}); raises ``FileFormatError`` for a file or header it cannot
    read."""
    rows = ((line, cells) for line, cells in read_rows(path) if any(cells))
    header_line, header = next(rows, (0, []))
    if not header_line:
        raise UnreadableImport(N_("the file is empty; expected a header row"))
    known, positions = _titles_to_keys(), {}
    for index, title in enumerate(header):
        key = known.get(title.strip().lower())
        if title.strip() and key is None:
            raise UnreadableImport(N_("line {line}: unknown column {title!r}"), line=header_line, title=title)
        if key is not None:
            positions[key] = index
    missing = [key for key in REQUIRED_TO_IMPORT if key not in positions]
    if missing:
        raise UnreadableImport(N_("line {line}: missing column(s) {columns}"), line=header_line,
                               columns=", ".join(missing))
    return [(line, {key: cells[index] if index < len(cells) else "" for key, index in positions.items()})
            for line, cells in rows]


class _Lookups:
    """What the rows' names and codes refer to, read once for the whole file."""

    def __init__(self, session: Session) -> None:
        self.categories: dict[str, int] = {}
        for category in session.scalars(select(Category)):
            for name in (category.code, *category.names.values()):
                self.categories[str(name).strip().lower()] = category.id
        self.due_days = {category.id: category.due_days for category in session.scalars(select(Category))}
        self.grids = {code: grid_id for code, grid_id in session.execute(select(Grid.code, Grid.id))}
        self.statuses: dict[str, RequestStatus] = {}
        for locale in available_locales():
            t = translator(locale)
            for status, name in STATUS_NAMES.items():
                self.statuses[t._(name).lower()] = self.statuses[status.value] = status

    def building_or_place(self, session: Session, code: str) -> tuple[int | None, int | None, int | None]:
        """(building id, place id, its grid id) for a building or place code, all None when neither has it."""
        building = session.execute(select(Building.id, Building.grid_id).where(Building.code == code)).first()
        if building is not None:
            return building[0], None, building[1]
        place = session.execute(select(Place.id, Place.grid_id).where(Place.code == code)).first()
        return (None, place[0], place[1]) if place is not None else (None, None, None)


def _moment(text: str, zone: ZoneInfo) -> datetime:
    """A local time as written in a spreadsheet (``2026-10-02 08:00``, seconds allowed) as an aware moment."""
    moment = datetime.fromisoformat(text.strip().replace("/", "-"))
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


def _check_row(session: Session, line: int, row: dict[str, str], lookups: _Lookups, zone: ZoneInfo,
               now: datetime) -> HistoricalRequest | list[RowProblem]:
    problems: list[RowProblem] = []

    def say(template: str, **values: object) -> None:
        problems.append(RowProblem.said(line, template, **values))

    def moment(key: str, required: bool) -> datetime | None:
        text = row.get(key, "").strip()
        if not text:
            if required:
                say(N_("{column} is empty"), column=key)
            return None
        try:
            return _moment(text, zone)
        except ValueError:
            say(N_("{column} {text!r} is not a time written YYYY-MM-DD HH:MM"), column=key, text=text)
            return None

    created, resolved, due = moment("filed_at", True), moment("resolved_at", False), moment("due_at", False)
    category_id = lookups.categories.get(row["category"].strip().lower())
    if category_id is None:
        say(N_("unknown category {name!r}"), name=row["category"])
    status = lookups.statuses.get(row["status"].strip().lower())
    if status not in IMPORTED_AS:
        say(N_("status {name!r} is not history: only resolved, closed or withdrawn requests are imported"),
            name=row["status"])
    grid_id = lookups.grids.get(row["grid_code"].strip())
    if grid_id is None:
        say(N_("unknown grid code {code!r}"), code=row["grid_code"])
    building_id = place_id = None
    if code := row.get("place_code", "").strip():
        building_id, place_id, its_grid = lookups.building_or_place(session, code)
        if its_grid is None:
            say(N_("unknown building or place code {code!r}"), code=code)
        elif grid_id is not None and its_grid != grid_id:
            say(N_("building or place {code!r} is not in grid {grid!r}"), code=code, grid=row["grid_code"])
    description = row["description"].strip()
    # Empty is allowed: a request filed with photos alone has no text.
    if len(description) > MAX_DESCRIPTION:
        say(N_("the description is longer than {limit} characters"), limit=MAX_DESCRIPTION)
    stars: int | None = None
    if rating := row.get("rating", "").strip():
        stars = int(rating) if rating.isdigit() and 1 <= int(rating) <= 5 else None
        if stars is None:
            say(N_("rating {rating!r} is not 1 to 5 stars"), rating=rating)
    if created is not None and created > now:
        say(N_("{column} is in the future"), column="filed_at")
    if status in IMPORTED_AS and status is not RequestStatus.WITHDRAWN:
        if resolved is None:
            say(N_("a resolved or closed request needs {column}"), column="resolved_at")
        elif created is not None and resolved < created:
            say(N_("{column} is before {other}"), column="resolved_at", other="filed_at")
    if problems or created is None or category_id is None or grid_id is None or status is None:
        return problems
    if status is RequestStatus.WITHDRAWN:
        resolved, stars = None, None
    return HistoricalRequest(
        line, created, category_id, IMPORTED_AS[status], grid_id, building_id, place_id, description, resolved,
        due or created + timedelta(days=lookups.due_days[category_id]), stars,
    )


def validate_import(
    session: Session, rows: Sequence[tuple[int, dict[str, str]]], timezone: str, now: datetime
) -> tuple[list[HistoricalRequest], list[RowProblem]]:
    """Every row checked: the valid ones resolved to ids, and every problem with its line number."""
    lookups, zone = _Lookups(session), ZoneInfo(timezone)
    valid: list[HistoricalRequest] = []
    problems: list[RowProblem] = []
    for line, row in rows:
        checked = _check_row(session, line, row, lookups, zone, now)
        if isinstance(checked, HistoricalRequest):
            valid.append(checked)
        else:
            problems += checked
    problems += [RowProblem.said(row.line, N_("this request is in the database already (same grid, filing time and"
                                              " description): was the file imported before?"))
                 for row in _already_there(session, valid)]
    return valid, sorted(problems, key=lambda problem: problem.line)


def _already_there(session: Session, rows: Sequence[HistoricalRequest]) -> list[HistoricalRequest]:
    """The rows a request of the database matches, so importing a file twice does not double the history;
    looked up by filing time (an index) in slices."""
    found: list[HistoricalRequest] = []
    for start in range(0, len(rows), LOOKUP_SLICE):
        part = rows[start:start + LOOKUP_SLICE]
        existing = {(grid_id, created, description) for grid_id, created, description in session.execute(
            select(Request.grid_id, Request.created_at, Request.description)
            .where(Request.created_at.in_({row.created_at for row in part}))
        )}
        found += [row for row in part if (row.grid_id, row.created_at, row.description) in existing]
    return found


def problem_text(t: Translator, problem: RowProblem) -> str:
    """A problem of an import file in the reader's language, its columns named by their headers."""
    if not problem.template:
        return problem.message
    titles = {key: t._(title) for key, title in (*COLUMNS, *PERSONAL_COLUMNS)}
    values = {name: titles.get(value, value) if name in ("column", "other") else value
              for name, value in problem.values}
    return t._(problem.template).format(**values)


def _placeholder_person(session: Session, now: datetime) -> Person:
    person = session.scalars(
        select(Person).where(Person.channel == IMPORT_CHANNEL, Person.external_id == IMPORT_PERSON)
    ).first()
    if person is None:
        person = Person(channel=IMPORT_CHANNEL, external_id=IMPORT_PERSON, chat_id=IMPORT_PERSON, display_name="",
                        state_data={}, unreachable=True, created_at=now)
        session.add(person)
        session.flush()
    return person


def _request_values(row: HistoricalRequest, resident_id: int) -> dict[str, Any]:
    return {
        "resident_id": resident_id, "building_id": row.building_id, "place_id": row.place_id,
        "grid_id": row.grid_id, "category_id": row.category_id, "description": row.description,
        "hide_identity": False, "status": row.status, "level": Level.GRID, "unit_id": row.grid_id,
        "created_at": row.created_at, "due_at": row.due_at, "accepted_at": row.resolved_at,
        "resolved_at": row.resolved_at, "resolved_level": Level.GRID if row.resolved_at else None,
        "closed_at": row.resolved_at if row.status is RequestStatus.CLOSED else None, "supporters": 0,
        # The copy of the rating's stars inserted below: a plain insert of ratings does not set it.
        "rating_stars": row.stars,
    }


def _insert_batch(session: Session, batch: Sequence[HistoricalRequest], resident_id: int) -> None:
    """One batch as plain inserts, no ORM objects: a file of a hundred thousand rows stays small in memory."""
    ids = session.scalars(
        insert(Request).returning(Request.id, sort_by_parameter_order=True),
        [_request_values(row, resident_id) for row in batch],
    ).all()
    events: list[dict[str, Any]] = []
    ratings: list[dict[str, Any]] = []
    for request_id, row in zip(ids, batch, strict=True):
        events.append({"request_id": request_id, "at": row.created_at, "kind": EventKind.FILED, "text": ""})
        ended = (row.resolved_at, EventKind.RESOLVED) if row.resolved_at else (row.created_at, EventKind.WITHDRAWN)
        events.append({"request_id": request_id, "at": ended[0], "kind": ended[1], "text": ""})
        if row.stars is not None:
            ratings.append({"request_id": request_id, "outcome": "fixed" if row.stars > 2 else "partly",
                            "stars": row.stars, "at": row.resolved_at})
    session.execute(insert(RequestEvent), events)
    if ratings:
        session.execute(insert(Rating), ratings)


def may_import_history(person: Person) -> bool:
    """Only the district center adds history: it is the whole district's record, not one unit's."""
    return is_district_staff(person)


def require_importer(person: Person) -> None:
    if not may_import_history(person):
        raise DeskRefused(IMPORT_NOT_FOR_YOU)


def import_for(
    session: Session, person: Person, rows: Sequence[tuple[int, dict[str, str]]], timezone: str, now: datetime,
    file_name: str,
) -> int:
    """``import_history`` for someone at the desk: district staff only (raises ``DeskRefused``), audited."""
    require_importer(person)
    count = import_history(session, rows, timezone, now)
    record_action(session, person, AuditAction.REQUESTS_IMPORTED, now, rows=count, file=file_name[:200])
    return count


def import_history(
    session: Session, rows: Sequence[tuple[int, dict[str, str]]], timezone: str, now: datetime,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Import every row or none: raises ``ImportRefused`` listing each problem; returns how many were added.
    ``progress(done, total)`` is called after each batch."""
    valid, problems = validate_import(session, rows, timezone, now)
    if problems:
        raise ImportRefused(problems)
    resident_id = _placeholder_person(session, now).id
    for start in range(0, len(valid), IMPORT_BATCH):
        batch = valid[start:start + IMPORT_BATCH]
        _insert_batch(session, batch, resident_id)
        if progress is not None:
            progress(start + len(batch), len(valid))
    return len(valid)
