"""The desk's exports, its import of historical requests, and finding a building or place for the list.

Routes (added to the desk by ``add_routes``):

- ``GET /requests/export?format=xlsx|csv&personal=1&…``: the list with the same filters as ``/requests``, every
  page of it, as a download; written to a temporary file in the database's thread and streamed from it, so a
  district's hundred thousand rows never sit in memory; more than ``EXPORT_LIMIT`` rows are refused with a
  message asking for narrower filters
- ``GET /import``: the upload form (district staff); ``POST /import`` (multipart: ``csrf``, ``file``): every row
  checked as ``gridbot requests import`` checks it, then either the problems with their line numbers or how many
  rows would be imported, with a button; ``POST /import/confirm`` (``csrf``, ``upload``) imports them, audited
- ``GET /spots?q=``: JSON suggestions of buildings and places of the viewer's area for the list's place box

Who may export, import and find what is decided in the core (``bot.core.request_export``,
``bot.core.desk_requests``); these handlers only translate between HTTP and it.
"""

from __future__ import annotations

import asyncio
import queue
import re
import secrets
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import BodyPartReader, web
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core import desk_requests, request_export
from bot.core.areas import admin_areas
from bot.core.desk_access import DeskRefused, csrf_matches
from bot.core.desk_requests import Filters, FoundSpot, SpotKind
from bot.core.organisation import FileFormatError, RowProblem
from bot.core.privacy import may_see_personal_data
from bot.core.request_export import ExportBatch, ImportRefused, UnreadableImport
from bot.core.units import DISTRICT, LEVEL_MODEL, Unit
from bot.desk import app as desk_app
from bot.desk.pages import Viewer, _csrf, _e, document, filter_query, message_page
from bot.i18n import N_, Translator
from storage.models import Person

# A district's list at x60 is about a hundred thousand requests; more than this asks for narrower filters.
EXPORT_LIMIT = 200_000
COPY_CHUNK = 64 * 1024
# Rows read in one unit of work, and batches read but not yet written.
EXPORT_BATCH = 2_000
SPOOL_BATCHES = 4
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
UPLOAD_SUFFIXES = (".xlsx", ".csv")
# An uploaded file waits this long for its confirmation.
PENDING_LIFETIME = timedelta(minutes=30)
FORMATS = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
           "csv": "text/csv; charset=utf-8"}
TOO_MANY = N_("More than {limit} requests match these filters. Narrow them (dates, area, status) and export again.")
UPLOAD_TOO_LARGE = N_("The file is larger than {size} MB. Split it into smaller files.")
UPLOAD_NOT_A_TABLE = N_("Choose an XLSX or CSV file with the columns of an export.")
UPLOAD_GONE = N_("This upload is no longer waiting (imported, replaced by a newer one, or older than 30 minutes). "
                 "Upload the file again.")


def add_routes(app: web.Application) -> None:
    app[PENDING_KEY] = PendingImports()
    app.router.add_get("/requests/export", export)
    app.router.add_get("/import", import_page)
    app.router.add_post("/import", upload)
    app.router.add_post("/import/confirm", confirm_import)
    app.router.add_get("/spots", spots)
    app.on_cleanup.append(_forget_uploads)


# --- the list's extras: downloads and finding a building -----------------------------------------------------


def _query_string(query: dict[str, str]) -> str:
    return urlencode({name: value for name, value in query.items() if value})


def list_extras(session: Session, viewer: Viewer, filters: Filters, dates: tuple[str, str]) -> str:
    """What the list shows below its filters: the download form and, for a place typed in, the buildings and
    places of the viewer's area it may mean."""
    return _spot_choices(session, viewer, filters, dates) + _download_form(viewer, filters, dates)


def _download_form(viewer: Viewer, filters: Filters, dates: tuple[str, str]) -> str:
    t = viewer.t
    kept = {**filter_query(filters), "since": dates[0], "until": dates[1]}
    hidden = "".join(f'<input type="hidden" name="{_e(name)}" value="{_e(value)}">'
                     for name, value in kept.items() if value)
    personal = ""
    if may_see_personal_data(viewer.person):
        label = t._("With residents' names and phones (not of those who asked to stay hidden)")
        personal = f'<label class="check"><input type="checkbox" name="personal" value="1">{_e(label)}</label>'
    xlsx, csv = t._("Download XLSX"), t._("Download CSV")
    return (f'<form class="downloads" method="get" action="/requests/export">{hidden}{personal}'
            f'<button type="submit" name="format" value="xlsx">{_e(xlsx)}</button>'
            f'<button type="submit" name="format" value="csv">{_e(csv)}</button></form>')


def _spot_link(filters: Filters, dates: tuple[str, str], spot: FoundSpot | None) -> str:
    query = {**filter_query(filters), "since": dates[0], "until": dates[1], "spot": "", "place": ""}
    if spot is not None:
        query.update(spot=spot.value, place=spot.name)
    return f"/requests?{_query_string(query)}"


def _spot_label(t: Translator, spot: FoundSpot) -> str:
    kind = t._("building") if spot.kind is SpotKind.BUILDING else t._("place")
    address = f", {spot.address}" if spot.address else ""
    return f"{spot.name} ({kind} {spot.code}{address})"


def _spot_choices(session: Session, viewer: Viewer, filters: Filters, dates: tuple[str, str]) -> str:
    t = viewer.t
    chosen = _chosen_spot(session, viewer.person, filters)
    if chosen is not None:
        only, clear = t._("Only requests about {spot}.").format(spot=_spot_label(t, chosen)), t._("all places")
        return (f'<p class="spot" role="status">{_e(only)} '
                f'<a href="{_e(_spot_link(filters, dates, None))}">{_e(clear)}</a></p>')
    if not filters.place.strip():
        return ""
    found = desk_requests.find_spots(session, viewer.person, filters.place)
    if not found:
        return ""
    links = "".join(f'<li><a href="{_e(_spot_link(filters, dates, spot))}">{_e(_spot_label(t, spot))}</a></li>'
                    for spot in found)
    heading = t._("Buildings and places that match — choose one to see only its requests:")
    return f'<section class="spots"><p>{_e(heading)}</p><ul>{links}</ul></section>'


def _chosen_spot(session: Session, viewer: Person, filters: Filters) -> FoundSpot | None:
    if filters.building_id is not None:
        return desk_requests.spot_for_viewer(session, viewer, f"{SpotKind.BUILDING.value}:{filters.building_id}")
    if filters.place_id is not None:
        return desk_requests.spot_for_viewer(session, viewer, f"{SpotKind.PLACE.value}:{filters.place_id}")
    return None


async def spots(request: web.Request) -> web.StreamResponse:
    """Suggestions for the place box: buildings and places of the viewer's area, best first."""
    token = request.cookies.get(desk_app.COOKIE, "")
    text = request.query.get("q", "")[:desk_requests.MAX_SEARCH]

    def find(session: Session, person: Person, _viewer: Viewer) -> list[dict[str, str]]:
        return [{"value": spot.value, "kind": spot.kind.value, "code": spot.code, "name": spot.name,
                 "address": spot.address} for spot in desk_requests.find_spots(session, person, text)]

    found = await desk_app._as_signed_in(request, token, find) if token else None
    if found is None:
        return web.json_response({"error": "signed out"}, status=401)
    return web.json_response({"results": found}, headers={"Cache-Control": "no-store"})


# --- exports ------------------------------------------------------------------------------------------------


def _area_code(session: Session, person: Person, filters: Filters) -> str:
    """The area a file holds, for its name: the unit filtered to, else the viewer's (widest) area."""
    areas = admin_areas(person)
    area: Unit = filters.unit or (areas[0] if areas else DISTRICT)
    if area == DISTRICT:
        return "district"
    code = session.scalar(select(LEVEL_MODEL[area.level].code).where(LEVEL_MODEL[area.level].id == area.id))
    code = code or f"{area.level.value}-{area.id}"
    return re.sub(r"[^A-Za-z0-9_-]", "_", code)


@dataclass(frozen=True)
class Started:
    """The first batch of an export and what the file is called."""

    batch: ExportBatch
    file_name: str
    title: str
    too_many: str  # the page that says the list is too long, in the reader's language


class _Spool:
    """Batches of rows handed from the event loop to the thread writing the file, a few at a time (so memory
    stays flat when the database is faster than the writer); None ends them."""

    def __init__(self) -> None:
        self._queue: queue.Queue[list[list[Any]] | None] = queue.Queue(maxsize=SPOOL_BATCHES)

    async def put(self, rows: list[list[Any]] | None, writer: asyncio.Future[int]) -> None:
        while not writer.done():
            try:
                await asyncio.to_thread(self._queue.put, rows, True, 1.0)
                return
            except queue.Full:
                continue

    def rows(self) -> Iterator[list[Any]]:
        while (rows := self._queue.get()) is not None:
            yield from rows


def _write_export(path: Path, kind: str, title: str, header: Sequence[str], rows: Iterator[list[Any]]) -> int:
    with path.open("wb") as out:
        if kind == "xlsx":
            return request_export.write_xlsx(out, title, header, rows)
        return request_export.write_csv(out, header, rows)


async def export(request: web.Request) -> web.StreamResponse:
    """The list with the page's filters as a file. The rows are read in batches, each in its own short unit of
    work (the session checked again), and written by another thread to a temporary file, which is then
    streamed: the database's thread is never held for the whole file, and memory stays flat."""
    desk = desk_app.desk_of(request)
    token = request.cookies.get(desk_app.COOKIE, "")
    query = dict(request.query)
    kind, personal = query.get("format", ""), query.get("personal") == "1"
    if kind not in FORMATS:
        raise web.HTTPNotFound()

    def batch_after(after: int) -> Callable[[Session, Person, Viewer], ExportBatch | tuple[str, int]]:
        def read(session: Session, person: Person, viewer: Viewer) -> ExportBatch | tuple[str, int]:
            t = viewer.t
            try:
                filters = desk_app.filters_from(query, t)
                return request_export.desk_export(session, person, filters, desk.clock(), t, personal, after,
                                                  EXPORT_BATCH)
            except DeskRefused as error:
                return message_page(t, t._("Requests"), t._(error.reason), viewer), 403
        return desk_app.filtered_page(N_("Requests"), read)

    def start(session: Session, person: Person, viewer: Viewer) -> Started | tuple[str, int]:
        first = batch_after(0)(session, person, viewer)
        if not isinstance(first, ExportBatch):
            return first
        t, now = viewer.t, desk.clock()
        filters = desk_app.filters_from(query, t)
        day = now.astimezone(t.tz).date().isoformat()
        limit = t._(TOO_MANY).format(limit=t.number(EXPORT_LIMIT))
        return Started(first, f"requests-{_area_code(session, person, filters)}-{day}.{kind}", t._("Requests"),
                       message_page(t, t._("Requests"), limit, viewer))

    started = await desk_app._as_signed_in(request, token, start) if token else None
    if started is None:
        return desk_app._ended(desk)
    if not isinstance(started, Started):
        return desk_app._html(*started)
    with tempfile.NamedTemporaryFile(prefix="desk-export-", suffix=f".{kind}", delete=False) as spooled:
        path = Path(spooled.name)
    try:
        outcome = await _write_batches(request, token, path, kind, started, batch_after)
        if outcome is not None:
            return outcome
        return await _send_file(request, path, started.file_name, FORMATS[kind])
    finally:
        path.unlink(missing_ok=True)


BatchReader = Callable[[int], Callable[[Session, Person, Viewer], ExportBatch | tuple[str, int]]]


async def _write_batches(request: web.Request, token: str, path: Path, kind: str, started: Started,
                         batch_after: BatchReader) -> web.StreamResponse | None:
    """Every batch into ``path``; None when written, else the page to answer with (session ended, too many)."""
    desk = desk_app.desk_of(request)
    spool = _Spool()
    writer = asyncio.ensure_future(asyncio.to_thread(_write_export, path, kind, started.title,
                                                     started.batch.header, spool.rows()))
    batch: ExportBatch | tuple[str, int] | None = started.batch
    count = 0
    try:
        while isinstance(batch, ExportBatch):
            await spool.put(batch.rows, writer)
            count += len(batch.rows)
            if batch.after is None or count > EXPORT_LIMIT:
                break
            batch = await desk_app._as_signed_in(request, token, batch_after(batch.after))
    finally:
        await spool.put(None, writer)
        await writer
    if batch is None:
        return desk_app._ended(desk)
    if not isinstance(batch, ExportBatch):
        return desk_app._html(*batch)
    if count > EXPORT_LIMIT:
        return desk_app._html(started.too_many, 413)
    return None


async def _send_file(request: web.Request, path: Path, file_name: str, content_type: str) -> web.StreamResponse:
    response = web.StreamResponse(headers={
        "Content-Type": content_type, "Cache-Control": "no-store",
        "Content-Disposition": f'attachment; filename="{file_name}"', "Content-Length": str(path.stat().st_size)})
    await response.prepare(request)
    with path.open("rb") as source:
        while chunk := await asyncio.to_thread(source.read, COPY_CHUNK):
            await response.write(chunk)
    await response.write_eof()
    return response


# --- the import of history ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PendingImport:
    """A checked upload waiting for its confirmation."""

    person_id: int
    path: Path
    file_name: str
    rows: int
    expires_at: datetime


class PendingImports:
    """Uploads checked and waiting to be confirmed, by a random token; one per person, forgotten after
    ``PENDING_LIFETIME``. Kept by the desk's process: a restart only means uploading again."""

    def __init__(self) -> None:
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._waiting: dict[str, PendingImport] = {}

    def folder(self) -> Path:
        if self._folder is None:
            self._folder = tempfile.TemporaryDirectory(prefix="desk-imports-")
        return Path(self._folder.name)

    def new_path(self, suffix: str) -> Path:
        return self.folder() / f"{secrets.token_hex(16)}{suffix}"

    def keep(self, pending: PendingImport, now: datetime) -> str:
        """Keep a checked upload; the person's earlier one and every expired one are forgotten."""
        for token, waiting in list(self._waiting.items()):
            if waiting.person_id == pending.person_id or now >= waiting.expires_at:
                self.drop(token)
        token = secrets.token_urlsafe(24)
        self._waiting[token] = pending
        return token

    def find(self, token: str, person_id: int, now: datetime) -> PendingImport | None:
        pending = self._waiting.get(token)
        if pending is None or pending.person_id != person_id:
            return None
        if now >= pending.expires_at:
            self.drop(token)
            return None
        return pending

    def drop(self, token: str) -> None:
        pending = self._waiting.pop(token, None)
        if pending is not None:
            pending.path.unlink(missing_ok=True)

    def close(self) -> None:
        self._waiting.clear()
        if self._folder is not None:
            self._folder.cleanup()


PENDING_KEY: web.AppKey[PendingImports] = web.AppKey("pending_imports")


async def _forget_uploads(app: web.Application) -> None:
    app[PENDING_KEY].close()


def _import_form(viewer: Viewer, problems: str = "") -> str:
    t = viewer.t
    title = t._("Import historical requests")
    explained = t._("An XLSX or CSV file with the columns of an export (headers in Chinese or English): closed or "
                    "withdrawn requests of the system used before. Every row is checked first; if one is wrong, "
                    "nothing is imported. You will see how many rows will be imported before anything is "
                    "written.")
    limit = t._("At most {size} MB.").format(size=t.number(MAX_UPLOAD_BYTES // (1024 * 1024)))
    choose, check = t._("File"), t._("Check the file")
    body = (f'<h2>{_e(title)}</h2>{problems}<section class="import"><p>{_e(explained)}</p><p>{_e(limit)}</p>'
            f'<form method="post" action="/import" enctype="multipart/form-data">{_csrf(viewer)}'
            f'<label>{_e(choose)}<input type="file" name="file" accept=".xlsx,.csv" required></label>'
            f'<button type="submit" class="primary">{_e(check)}</button></form></section>')
    return document(t, title, body, viewer)


def _problem_list(t: Translator, problems: Sequence[RowProblem] | str) -> str:
    heading = t._("Nothing was imported. Correct these rows and upload the file again:")
    if isinstance(problems, str):
        items = f"<li>{_e(problems)}</li>"
    else:
        line = t._("line {line}: {problem}")
        items = "".join(f'<li>{_e(line.format(line=problem.line, problem=request_export.problem_text(t, problem)))}'
                        '</li>' for problem in problems)
    return f'<section class="refused" role="alert"><p>{_e(heading)}</p><ol class="problems">{items}</ol></section>'


async def import_page(request: web.Request) -> web.StreamResponse:

    def render(session: Session, person: Person, viewer: Viewer) -> tuple[str, int]:
        try:
            request_export.require_importer(person)
        except DeskRefused as error:
            t = viewer.t
            return message_page(t, t._("Import historical requests"), t._(error.reason), viewer), 403
        return _import_form(viewer), 200

    return await desk_app._signed_in_page(request, render)


@dataclass(frozen=True)
class Uploaded:
    csrf: str
    path: Path | None
    file_name: str
    too_large: bool


async def _read_upload(request: web.Request, pending: PendingImports) -> Uploaded | None:
    """The form's CSRF token and file, the file saved as it arrives; reading stops past ``MAX_UPLOAD_BYTES``.
    None for a body that is not a multipart form of fields."""
    csrf, path, file_name = "", None, ""
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise ValueError("a nested multipart body")
            if part.name == "csrf":
                csrf = (await part.read_chunk(256)).decode(errors="replace")
            elif part.name == "file" and path is None:
                file_name = part.filename or ""
                suffix = Path(file_name).suffix.lower()
                if suffix not in UPLOAD_SUFFIXES:
                    continue
                path = pending.new_path(suffix)
                if not await _saved(part, path):
                    path.unlink()
                    return Uploaded(csrf, None, file_name, too_large=True)
    except (AssertionError, ValueError, KeyError):
        if path is not None:
            path.unlink(missing_ok=True)
        return None
    return Uploaded(csrf, path, file_name, too_large=False)


async def _saved(part: BodyPartReader, path: Path) -> bool:
    """The part written to ``path``; False (and reading stopped) once it passes ``MAX_UPLOAD_BYTES``."""
    size = 0
    with path.open("wb") as out:
        while chunk := await part.read_chunk(COPY_CHUNK):
            size += len(chunk)
            if size > MAX_UPLOAD_BYTES:
                return False
            out.write(chunk)
    return True


def _checked_rows(session: Session, t: Translator, path: Path, timezone: str,
                  now: datetime) -> int | Sequence[RowProblem] | str:
    """How many rows the file would import, its problems, or why it cannot be read (the CLI's checks)."""
    try:
        rows = request_export.read_import_file(path)
    except UnreadableImport as error:
        return error.text(t)
    except (OSError, FileFormatError):
        return t._(UPLOAD_NOT_A_TABLE)
    valid, problems = request_export.validate_import(session, rows, timezone, now)
    return problems or len(valid)


async def upload(request: web.Request) -> web.StreamResponse:
    """Check an uploaded file: its problems, or how many rows it holds with a button to import them."""
    desk = desk_app.desk_of(request)
    pending = request.app[PENDING_KEY]
    token = request.cookies.get(desk_app.COOKIE, "")
    if (request.content_length or 0) > MAX_UPLOAD_BYTES + COPY_CHUNK:
        uploaded: Uploaded | None = Uploaded("", None, "", too_large=True)
        csrf_ok = True  # refused for its size before reading it; nothing is done with it
    else:
        uploaded = await _read_upload(request, pending)
        csrf_ok = uploaded is not None and bool(token) and csrf_matches(token, uploaded.csrf)
    if not csrf_ok or uploaded is None:
        if uploaded is not None and uploaded.path is not None:
            uploaded.path.unlink(missing_ok=True)
        t = desk.translator_for(None)
        return desk_app._html(message_page(t, t._("Not allowed"), t._(desk_app.FORM_EXPIRED)), 403)
    received = uploaded

    def check(session: Session, person: Person, viewer: Viewer) -> tuple[str, int]:
        t, now = viewer.t, desk.clock()
        try:
            request_export.require_importer(person)
        except DeskRefused as error:
            return message_page(t, t._("Import historical requests"), t._(error.reason), viewer), 403
        if received.too_large:
            text = t._(UPLOAD_TOO_LARGE).format(size=t.number(MAX_UPLOAD_BYTES // (1024 * 1024)))
            return _import_form(viewer, _problem_list(t, text)), 413
        if received.path is None:
            return _import_form(viewer, _problem_list(t, t._(UPLOAD_NOT_A_TABLE))), 400
        checked = _checked_rows(session, t, received.path, desk.config.core.timezone, now)
        if not isinstance(checked, int):
            received.path.unlink(missing_ok=True)
            return _import_form(viewer, _problem_list(t, checked)), 400
        upload_token = pending.keep(PendingImport(person.id, received.path, received.file_name, checked,
                                                  now + PENDING_LIFETIME), now)
        return _confirmation(viewer, received.file_name, checked, upload_token), 200

    rendered = await desk_app._as_signed_in(request, token, check)
    if rendered is None:
        if received.path is not None:
            received.path.unlink(missing_ok=True)
        return desk_app._ended(desk)
    return desk_app._html(*rendered)


def _confirmation(viewer: Viewer, file_name: str, count: int, upload_token: str) -> str:
    t = viewer.t
    title = t._("Import historical requests")
    will = t.n_("{count} historical request from {file} will be imported. Nothing has been written yet.",
                "{count} historical requests from {file} will be imported. Nothing has been written yet.",
                count).format(count=t.number(count), file=file_name)
    confirm, cancel = t._("Import them"), t._("Cancel")
    body = (f'<h2>{_e(title)}</h2><section class="import"><p role="status">{_e(will)}</p>'
            f'<form method="post" action="/import/confirm">{_csrf(viewer)}'
            f'<input type="hidden" name="upload" value="{_e(upload_token)}">'
            f'<button type="submit" class="primary">{_e(confirm)}</button></form>'
            f'<p><a href="/import">{_e(cancel)}</a></p></section>')
    return document(t, title, body, viewer)


async def confirm_import(request: web.Request) -> web.StreamResponse:
    """Import a checked upload: every row or none (the rows are checked again), audited."""
    desk = desk_app.desk_of(request)
    pending = request.app[PENDING_KEY]
    token = await desk_app._checked_form_token(request)
    if isinstance(token, web.Response):
        return token
    upload_token = str((await request.post()).get("upload", ""))

    def run(session: Session, person: Person, viewer: Viewer) -> tuple[str, int]:
        t, now = viewer.t, desk.clock()
        title = t._("Import historical requests")
        waiting = pending.find(upload_token, person.id, now)
        if waiting is None:
            return message_page(t, title, t._(UPLOAD_GONE), viewer), 409
        try:
            rows = request_export.read_import_file(waiting.path)
            with session.begin_nested():
                count = request_export.import_for(session, person, rows, desk.config.core.timezone, now,
                                                  waiting.file_name)
        except DeskRefused as error:
            return message_page(t, title, t._(error.reason), viewer), 403
        except ImportRefused as refused:
            pending.drop(upload_token)
            return _import_form(viewer, _problem_list(t, refused.problems)), 409
        except (OSError, FileFormatError):
            pending.drop(upload_token)
            return _import_form(viewer, _problem_list(t, t._(UPLOAD_NOT_A_TABLE))), 400
        pending.drop(upload_token)
        done = t.n_("{count} historical request imported.", "{count} historical requests imported.",
                    count).format(count=t.number(count))
        return message_page(t, title, done, viewer), 200

    rendered = await desk_app._as_signed_in(request, token, run)
    return desk_app._html(*rendered) if rendered is not None else desk_app._ended(desk)
