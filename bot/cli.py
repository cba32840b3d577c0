"""The ``gridbot`` command: run the bot and administer a deployment.

Settings come from ``GRIDBOT_*`` environment variables and ``.env``; command-line flags override them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.core.clock import system_clock
from bot.service import Service, prepare_database, run_until_stopped
from storage.database import Database
from storage.migrate import upgrade
from storage.models import Level, RequestStatus

if TYPE_CHECKING:
    from bot.core.organisation import LevelCounts, OrgRow, RowProblem
    from bot.core.place_import import PlaceRow

Command = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]
# A row of an imported file of units.
_Row = TypeVar("_Row")

# ``gridbot posters --street CODE`` and so on: codes are unique only within a level.
POSTER_LEVELS = ("street", "community", "grid", "building", "place")

PLAYGROUND_NOTE = """\
No Telegram token is configured, so gridbot starts its playground: the bot talks to a simulated Telegram
inside this process, with a demo organisation loaded, and a web page lets you chat with it as residents and staff.
The playground keeps its data in its own database (GRIDBOT_PLAYGROUND_DATABASE_URL, by default playground.db).

To run on real Telegram, import your own organisation, talk to @BotFather, send /newbot, and run with its token:
    .venv/bin/gridbot org import FILE.csv
    GRIDBOT_TOKEN=123456:ABC-DEF .venv/bin/gridbot run     (or put GRIDBOT_TOKEN=... in a file named .env here)
"""

DEPLOYMENT_WITHOUT_TOKEN = """\
gridbot run: no Telegram token (GRIDBOT_TOKEN) and no WeChat account are configured, but the database
{database} holds a deployment ({held}). Not starting: the playground would change it.
Set GRIDBOT_TOKEN (or the GRIDBOT_WECHAT_* settings) to run this deployment, or run `gridbot playground` to
try the bot on a database of its own."""


def settings_from(args: argparse.Namespace) -> Settings:
    """Environment and ``.env`` first, then whatever flags were given on the command line."""
    overrides = {
        name: value
        for name in (
            "token", "api_url", "database_url", "engine", "webhook_url", "webhook_secret", "webhook_listen",
            "playground_port",
        )
        if (value := getattr(args, name, None)) is not None
    }
    return Settings(**overrides)


# --- commands -------------------------------------------------------------------------------------------


async def run_bot(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.token_value and not settings.wechat_enabled:
        from bot.playground.isolation import deployment_in, shown_url

        held = await deployment_in(settings.database_url)
        if held is not None:
            shown = shown_url(settings.database_url)
            print(DEPLOYMENT_WITHOUT_TOKEN.format(database=shown, held=held), file=sys.stderr)
            return 2
        print(PLAYGROUND_NOTE)
        return await run_playground(settings.playground_database_url, settings)
    service = Service.from_settings(settings)
    await prepare_database(service.database)
    try:
        work = channels_to_serve(service)
        await run_until_stopped(with_desk(service, work) if settings.desk_listen else work)
    finally:
        await service.database.dispose()
    return 0


def channels_to_serve(service: Service) -> Callable[[asyncio.Event], Coroutine[Any, Any, None]]:
    """Telegram (with the configured engine), WeChat, or both in one process sharing one runtime."""
    settings = service.settings
    if settings.token_value:
        # Only the engine in use is imported: each library takes from a quarter of a second to seconds.
        engine: Callable[..., Coroutine[Any, Any, None]]
        if settings.engine == "ptb":
            from bot.engines.ptb_engine import serve as engine
        else:
            from bot.engines.aiogram_engine import serve as engine
        telegram = partial(engine, service)
        if not settings.wechat_enabled:
            return telegram
        from bot.engines import wechat

        return wechat.alongside(service, telegram)
    from bot.engines.wechat import serve as serve_wechat

    return partial(serve_wechat, service)


def with_desk(service: Service, work: Callable[[asyncio.Event], Coroutine[Any, Any, None]]
              ) -> Callable[[asyncio.Event], Coroutine[Any, Any, None]]:
    """``work`` with the desk served beside it in the same process (``GRIDBOT_DESK_LISTEN``)."""
    from bot.desk.app import desk_config, photo_sources, serve

    async def run(stop: asyncio.Event) -> None:
        config = desk_config(service.settings, service.core_config(""))
        photos = photo_sources(service.settings)
        desk = asyncio.create_task(serve(service.database, config, stop, service.clock, photos))
        try:
            await work(stop)
        finally:
            stop.set()
            await desk

    return run


async def desk(args: argparse.Namespace, settings: Settings) -> int:
    """Only the desk; the bot's processes deliver what its actions write to the outbox."""
    from bot.desk.app import desk_config, photo_sources, serve

    service = Service.from_settings(settings)
    await prepare_database(service.database)
    config = desk_config(settings, service.core_config(""))
    print(f"The desk listens on {config.listen}; its sign-in links start with {config.public_url}")
    try:
        await run_until_stopped(partial(serve, service.database, config, clock=service.clock,
                                        photos=photo_sources(settings)))
    finally:
        await service.database.dispose()
    return 0


async def playground(args: argparse.Namespace, settings: Settings) -> int:
    # Only a --database-url given to this command counts: GRIDBOT_DATABASE_URL names the deployment's database.
    return await run_playground(args.database_url or settings.playground_database_url, settings)


async def run_playground(database_url: str, settings: Settings) -> int:
    from bot import playground as local_playground

    return await local_playground.run_playground(settings.model_copy(update={"database_url": database_url}))


async def db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    database = settings.database()
    try:
        await upgrade(database)
        print(f"database {database.url.render_as_string(hide_password=True)} is up to date")
    finally:
        await database.dispose()
    return 0


async def with_database(settings: Settings, work: Callable[[Database], Coroutine[Any, Any, int]]) -> int:
    """Run ``work`` on an upgraded database, disposing of it afterwards."""
    database = settings.database()
    try:
        await prepare_database(database)
        return await work(database)
    finally:
        await database.dispose()


async def org_import(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core.department_import import is_department_file
    from bot.core.organisation import FileFormatError, read_org_file, sheet_count, validate_rows
    from bot.core.partners import is_partner_file
    from bot.core.place_import import is_boundary_file, is_place_file, read_place_file, validate_place_rows

    path = Path(args.file)
    if path.is_file() and is_boundary_file(path):
        return await boundary_import(path, settings)
    if path.is_file() and is_partner_file(path):
        return await partner_import(path, settings)
    if path.is_file() and is_place_file(path):
        return await place_import(path, settings)
    if path.is_file() and is_department_file(path):
        return await department_import(path, settings)
    try:
        rows = read_org_file(path)
        # A workbook's second sheet lists the places of its grids.
        places: list[PlaceRow] = read_place_file(path, sheet=1) if sheet_count(path) > 1 else []
    except (OSError, FileFormatError) as error:
        print(f"cannot read {path}: {error}", file=sys.stderr)
        return 1
    problems = validate_rows(rows) + (validate_place_rows(places) if places else [])
    if problems:
        return _report_problems(path, problems)
    return await with_database(settings, partial(_import_org, path=path, rows=rows, places=places))


def _report_problems(path: Path, problems: Sequence[RowProblem]) -> int:
    for problem in problems:
        print(f"{path}:{problem.line}: {problem.message}", file=sys.stderr)
    print(f"{len(problems)} problem(s); nothing was imported.", file=sys.stderr)
    return 1


async def _import_org(database: Database, path: Path, rows: Sequence[OrgRow], places: Sequence[PlaceRow]) -> int:
    from bot.core.organisation import apply_rows
    from bot.core.place_import import ImportProblems, apply_place_rows

    def apply(session: Session) -> str:
        summary = str(apply_rows(session, rows))
        if places:
            counts = apply_place_rows(session, places)
            summary += f"; places: {counts.created} created, {counts.updated} updated"
        return summary

    try:
        summary = await database.run(apply)
    except ImportProblems as error:
        return _report_problems(path, error.problems)
    print(f"imported {len(rows)} building row(s): {summary}")
    return 0


async def _import_unit_rows(
    path: Path, settings: Settings, noun: str, read: Callable[[Path], Sequence[_Row]],
    validate: Callable[[Sequence[_Row]], list[RowProblem]], apply: Callable[[Session, Sequence[_Row]], LevelCounts],
) -> int:
    """Read, check and import a file of one kind of unit (places, departments, partner units): a row that is
    wrong, in the file or against the database, imports nothing and is listed with its line."""
    from bot.core.organisation import FileFormatError
    from bot.core.place_import import ImportProblems

    try:
        rows = read(path)
    except (OSError, FileFormatError) as error:
        print(f"cannot read {path}: {error}", file=sys.stderr)
        return 1
    problems = validate(rows)
    if problems:
        return _report_problems(path, problems)

    async def work(database: Database) -> int:
        try:
            counts = await database.run(lambda session: apply(session, rows))
        except ImportProblems as error:
            return _report_problems(path, error.problems)
        print(f"imported {len(rows)} {noun} row(s): {counts.created} created, {counts.updated} updated")
        return 0

    return await with_database(settings, work)


async def place_import(path: Path, settings: Settings) -> int:
    from bot.core.place_import import apply_place_rows, read_place_file, validate_place_rows

    return await _import_unit_rows(path, settings, "place", read_place_file, validate_place_rows, apply_place_rows)


async def department_import(path: Path, settings: Settings) -> int:
    from bot.core.department_import import apply_department_rows, read_department_file, validate_department_rows

    return await _import_unit_rows(path, settings, "department", read_department_file, validate_department_rows,
                                   apply_department_rows)


async def boundary_import(path: Path, settings: Settings) -> int:
    from bot.core.organisation import FileFormatError
    from bot.core.place_import import ImportProblems, apply_boundaries, read_boundary_file

    try:
        boundaries = read_boundary_file(path)
    except FileFormatError as error:
        print(f"cannot read {path}: {error}", file=sys.stderr)
        return 1

    async def work(database: Database) -> int:
        try:
            counts = await database.run(partial(apply_boundaries, boundaries=boundaries))
        except ImportProblems as error:
            return _report_problems(path, error.problems)
        print(f"imported {len(boundaries)} grid boundar{'y' if len(boundaries) == 1 else 'ies'}:"
              f" {counts.updated} changed")
        return 0

    return await with_database(settings, work)


async def partner_import(path: Path, settings: Settings) -> int:
    from bot.core.partners import apply_partner_rows, read_partner_file, validate_partner_rows

    return await _import_unit_rows(path, settings, "partner unit", read_partner_file, validate_partner_rows,
                                   apply_partner_rows)


async def staff_add(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core.staff import TELEGRAM, WECHAT, StaffError, add_staff
    from storage.models import Role

    channel, external_id = (WECHAT, args.wechat_openid) if args.wechat_openid else (TELEGRAM, args.telegram_id)

    async def work(database: Database) -> int:
        try:
            await database.run(
                lambda session: add_staff(
                    session, external_id, Role(args.role), args.unit, args.name, system_clock(), channel
                )
            )
        except StaffError as error:
            print(error, file=sys.stderr)
            return 1
        unit = f" of {args.unit}" if args.unit else ""
        print(f"{external_id} ({channel}) is now {args.role} staff{unit}")
        return 0

    return await with_database(settings, work)


async def staff_list(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core.app import not_opened_yet
    from bot.core.staff import list_staff

    async def work(database: Database) -> int:
        lines = await database.run(list_staff)
        waiting = await database.run(not_opened_yet)
        for line in lines:
            # Fixed-width columns first; names, whose width varies with the script, last.
            shown = (f"{line.role.value:<10} {line.unit_code:<14} {line.telegram_id} ({line.channel})"
                     f"  {line.person_name or '-'}  /  {line.unit_name}")
            print(f"{shown}  (has not opened the bot yet)" if line.telegram_id in waiting else shown)
        if not lines:
            print("no staff yet; add some with `gridbot staff add`")
        return 0

    return await with_database(settings, work)


async def staff_followers(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core.staff import recent_followers

    async def work(database: Database) -> int:
        followers = await database.run(partial(recent_followers, limit=args.limit))
        zone = ZoneInfo(settings.timezone)
        for follower in followers:
            moment = follower.first_contact.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
            staff = "  (staff)" if follower.is_staff else ""
            print(f"{moment}  {follower.openid}  {follower.locale or '-'}{staff}")
        if not followers:
            print("no WeChat follower has written to the bot yet")
        return 0

    return await with_database(settings, work)


async def load_demo(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core.demo import load_demo as load

    async def work(database: Database) -> int:
        summary = await database.run(load)
        print(f"demo organisation loaded: {summary}")
        return 0

    return await with_database(settings, work)


async def categories_list(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core.categories import list_categories

    async def work(database: Database) -> int:
        for category in await database.run(list_categories):
            names = " / ".join(str(name) for name in category.names.values())
            state = "" if category.active else "  (inactive)"
            hours = f"{category.remind_after_hours}/{category.escalate_after_hours} h"
            print(f"{category.code:<24} {category.due_days:>3} days {hours:>9}  {names}{state}")
        return 0

    return await with_database(settings, work)


async def calendar_import(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core.organisation import FileFormatError
    from bot.core.workdays import import_calendar, read_calendar_file, year_report

    try:
        rows = read_calendar_file(Path(args.file))
    except (OSError, FileFormatError) as error:
        print(f"cannot read {args.file}: {error}", file=sys.stderr)
        return 1

    async def work(database: Database) -> int:
        years = await database.run(partial(import_calendar, rows=rows))
        print(f"calendar imported: {len(rows)} days of {', '.join(map(str, years)) or 'no year'}")
        for year in years:
            lines = await database.run(partial(year_report, year=year))
            print(lines[0])
        return 0

    return await with_database(settings, work)


async def calendar_show(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core.workdays import year_report

    async def work(database: Database) -> int:
        print("\n".join(await database.run(partial(year_report, year=args.year))))
        return 0

    return await with_database(settings, work)


async def categories_import(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core.categories import import_categories, read_category_file
    from bot.core.organisation import FileFormatError

    try:
        rows = read_category_file(Path(args.file))
    except (OSError, FileFormatError) as error:
        print(f"cannot read {args.file}: {error}", file=sys.stderr)
        return 1

    async def work(database: Database) -> int:
        try:
            summary = await database.run(partial(import_categories, rows=rows))
        except FileFormatError as error:
            print(error, file=sys.stderr)
            return 1
        print(f"categories imported: {summary}")
        return 0

    return await with_database(settings, work)


async def campaign_import(args: argparse.Namespace, settings: Settings) -> int:
    """Add the buildings listed in a CSV (a ``building`` column of codes, or codes in the first column) to a
    focused campaign's targets."""
    from bot.core.campaigns import Added, add_targets_unchecked, codes_from_csv
    from bot.core.requests import RequestRefused
    from storage.models import Campaign

    try:
        codes = codes_from_csv(Path(args.file).read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError) as error:
        print(f"cannot read {args.file}: {error}", file=sys.stderr)
        return 1

    def add(session: Session) -> Added | None:
        campaign = session.get(Campaign, args.campaign)
        return add_targets_unchecked(session, campaign, codes) if campaign is not None else None

    async def work(database: Database) -> int:
        try:
            added = await database.run(add)
        except RequestRefused as error:
            print(error.reason.format(**error.params), file=sys.stderr)
            return 1
        if added is None:
            print(f"there is no campaign {args.campaign}", file=sys.stderr)
            return 1
        print(f"targets added: {added.added}")
        if added.refused:
            print(f"unknown or outside the campaign's area: {', '.join(added.refused)}", file=sys.stderr)
        return 0

    return await with_database(settings, work)


async def bulletin_report(args: argparse.Namespace, settings: Settings) -> int:
    """Write the monthly bulletin as XLSX (and a PNG chart beside it) and print its summary."""
    from bot.core.bulletin import BadMonth, Bulletin, Month, area_by_code, compute_bulletin
    from bot.core.bulletin_render import bulletin_documents
    from bot.i18n import translator

    try:
        month = Month.parse(args.month) if args.month else Month.previous(system_clock(), settings.timezone)
    except BadMonth:
        print(f"month {args.month!r} is not written YYYY-MM (for example 2026-10)", file=sys.stderr)
        return 2
    out = Path(args.out)
    t = translator(args.locale or settings.default_locale, settings.timezone)

    def compute(session: Session) -> Bulletin:
        area = area_by_code(session, street_code=args.street, community_code=args.community)
        return compute_bulletin(session, area, month, settings.timezone)

    async def work(database: Database) -> int:
        try:
            bulletin = await database.run(compute)
        except LookupError as error:
            print(error.args[0], file=sys.stderr)
            return 1
        documents = bulletin_documents(t, bulletin)
        out.write_bytes(documents.workbook.content)
        chart = out.with_suffix(".png")
        chart.write_bytes(documents.chart.content)
        print(documents.summary)
        print(f"\nwrote {out} and {chart}")
        return 0

    return await with_database(settings, work)


def _local_instant(text: str | None, timezone: str) -> datetime | None:
    """``YYYY-MM-DD`` (or a full ISO-8601 time) as an instant, local time if no offset is given."""
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(timezone))


async def requests_export(args: argparse.Namespace, settings: Settings) -> int:
    """Write an area's requests (by status and filing period) as XLSX or CSV."""
    from bot.core.request_export import RequestFilter, export_rows, headers, write_csv, write_xlsx
    from bot.core.units import DISTRICT
    from bot.i18n import translator
    from bot.posters import AmbiguousCode, find_unit

    try:
        since, until = (_local_instant(value, settings.timezone) for value in (args.since, args.until))
    except ValueError:
        print("--since and --until are dates written YYYY-MM-DD", file=sys.stderr)
        return 2
    t = translator(args.locale or settings.default_locale, settings.timezone)
    out = Path(args.out)

    def export(session: Session) -> int | str:
        try:
            area = DISTRICT if args.area == "district" else find_unit(session, args.area)
        except AmbiguousCode as error:
            return f"the code {error.code} names a {' and a '.join(error.levels)}; codes are unique within a level"
        if area is None or area.level not in (Level.DISTRICT, Level.STREET, Level.COMMUNITY, Level.GRID):
            return f"no street, community or grid has the code {args.area}"
        selection = RequestFilter(area, tuple(RequestStatus(status) for status in args.status), since, until)
        rows = export_rows(session, selection, t, args.with_personal_data)
        header = headers(t, args.with_personal_data)
        with out.open("wb") as stream:
            if args.format == "csv":
                return write_csv(stream, header, rows)
            return write_xlsx(stream, t._("Requests"), header, rows)

    async def work(database: Database) -> int:
        written = await database.run(export)
        if isinstance(written, str):
            print(written, file=sys.stderr)
            return 1
        print(f"wrote {written} request(s) to {out}")
        return 0

    return await with_database(settings, work)


async def requests_import(args: argparse.Namespace, settings: Settings) -> int:
    """Import historical requests (closed or withdrawn) from an export's columns: every row or none."""
    from bot.core.organisation import FileFormatError
    from bot.core.request_export import ImportRefused, import_history, read_import_file

    path = Path(args.file)
    try:
        rows = read_import_file(path)
    except (OSError, FileFormatError) as error:
        print(f"cannot read {path}: {error}", file=sys.stderr)
        return 1

    def progress(done: int, total: int) -> None:
        print(f"\r{done}/{total} rows", end="" if done < total else "\n", file=sys.stderr, flush=True)

    async def work(database: Database) -> int:
        now = system_clock()
        try:
            count = await database.run(lambda session: import_history(session, rows, settings.timezone, now,
                                                                       progress))
        except ImportRefused as error:
            return _report_problems(path, error.problems)
        print(f"imported {count} historical request(s) from {path}")
        return 0

    return await with_database(settings, work)


async def broadcast_list(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core.broadcasts import audience_for_cli, recent_broadcasts
    from bot.i18n import translator

    t = translator(settings.default_locale, settings.timezone)

    def lines(session: Session) -> list[str]:
        return [
            f"#{b.id:<5} {b.created_at:%Y-%m-%d %H:%M} {b.status.value:<9} "
            f"sent {b.sent}/{b.total} failed {b.failed} blocked {b.blocked}  "
            f"{audience_for_cli(session, b, t)}: {b.text[:40]!r}"
            for b in recent_broadcasts(session, args.limit)
        ]

    async def work(database: Database) -> int:
        found = await database.run(lines)
        print("\n".join(found) if found else "no broadcasts yet")
        return 0

    return await with_database(settings, work)


async def broadcast_show(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core.broadcasts import audience_for_cli, recipient_counts
    from bot.i18n import translator
    from storage.models import Broadcast

    t = translator(settings.default_locale, settings.timezone)

    def describe(session: Session) -> list[str] | None:
        b = session.get(Broadcast, args.id)
        if b is None:
            return None
        finished = f"{b.finished_at:%Y-%m-%d %H:%M:%S}" if b.finished_at else "-"
        counts = ", ".join(f"{status} {count}" for status, count in sorted(recipient_counts(session, b.id).items()))
        return [
            f"broadcast #{b.id} by {b.author.display_name or '?'} ({b.author.external_id})",
            f"audience:  {audience_for_cli(session, b, t)}",
            f"status:    {b.status.value}",
            f"created:   {b.created_at:%Y-%m-%d %H:%M:%S}   finished: {finished}",
            f"counts:    total {b.total}, sent {b.sent}, failed {b.failed}, blocked {b.blocked}",
            f"recipients by status: {counts or 'none'}",
            f"photo:     {b.photo or '-'}",
            "text:",
            b.text,
        ]

    async def work(database: Database) -> int:
        found = await database.run(describe)
        if found is None:
            print(f"no broadcast #{args.id}", file=sys.stderr)
            return 1
        print("\n".join(found))
        return 0

    return await with_database(settings, work)


async def audit_show(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core.audit import format_entry, recent_actions

    async def work(database: Database) -> int:
        found = await database.run(lambda session: [format_entry(e) for e in recent_actions(session, args.limit)])
        print("\n".join(found) if found else "the audit log is empty")
        return 0

    return await with_database(settings, work)


async def inbox_dead(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core.inbox import dead_updates

    async def work(database: Database) -> int:
        dead = await database.run(partial(dead_updates, limit=args.limit))
        zone = ZoneInfo(settings.timezone)
        for update in dead:
            moment = update.dead_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
            print(f"{moment}  {update.channel}  {update.update_id}  after {update.attempts} attempt(s): {update.error}")
        if not dead:
            print("no dead updates")
        return 0

    return await with_database(settings, work)


async def poster_wechat_codes(settings: Settings, database: Database, pages: list[Any]) -> dict[str, str]:
    """The WeChat QR codes of the poster pages, made through the account's QR-code API."""
    from bot.engines.wechat import make_api
    from bot.posters import wechat_codes

    api = make_api(settings, database)
    try:
        return await wechat_codes(api, pages)
    finally:
        await api.close()


async def bot_username_from_api(settings: Settings) -> str | None:
    """The bot's username as the Bot API reports it (getMe)."""
    from bot.engines.aiogram_engine import make_bot

    token = settings.token_value
    if not token:
        return None
    bot = make_bot(token, settings.api_url)
    try:
        me = await bot.get_me()
    finally:
        await bot.session.close()
    return me.username


async def posters(args: argparse.Namespace, settings: Settings) -> int:
    from bot.engines.wechat_api import WeChatApiError
    from bot.posters import AmbiguousCode, PosterBuilding, PosterChannels, buildings_in, find_unit, render_posters

    given = [(Level(level), getattr(args, level)) for level in POSTER_LEVELS if getattr(args, level)]
    scope, code = given[0] if given else (None, str(args.unit))
    with_wechat = settings.wechat_enabled and args.only != "telegram"
    # Without a token the Bot API cannot be asked, and a WeChat-only district has none.
    username = None if args.only == "wechat" else args.username or await bot_username_from_api(settings)
    if not username and not with_wechat:
        print("cannot tell the bot's username: give --username or configure GRIDBOT_TOKEN"
              " (or configure WeChat for WeChat codes)", file=sys.stderr)
        return 2

    def load(session: Session) -> list[PosterBuilding] | None:
        unit = find_unit(session, code, scope)
        return None if unit is None else buildings_in(session, unit)

    async def work(database: Database) -> int:
        try:
            buildings = await database.run(load)
        except AmbiguousCode as error:
            options = " or ".join(f"--{level} {code}" for level in error.levels)
            print(f"{code} is the code of a {' and a '.join(error.levels)}; say which with {options}", file=sys.stderr)
            return 2
        if buildings is None:
            level = "street, community, grid, building or place" if scope is None else scope.name.lower()
            print(f"no {level} has the code {code!r}", file=sys.stderr)
            return 1
        if not buildings:
            print(f"{code} has no active buildings or places", file=sys.stderr)
            return 1
        try:
            urls = await poster_wechat_codes(settings, database, buildings) if with_wechat else None
        except (WeChatApiError, OSError, TimeoutError) as error:
            print(f"WeChat did not make the QR codes: {error}", file=sys.stderr)
            return 1
        Path(args.out).write_bytes(render_posters(buildings, PosterChannels(username or None, urls)))
        print(f"wrote {len(buildings)} poster page(s) to {args.out}")
        return 0

    return await with_database(settings, work)


def moment_from(text: str | None, timezone: str) -> datetime:
    """``--at`` as an aware instant: ISO-8601, read in the deployment's time zone when it names none."""
    if not text:
        return system_clock()
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=ZoneInfo(timezone))


async def jobs(args: argparse.Namespace, settings: Settings) -> int:
    """``jobs due`` lists what the scheduler would do at ``--at``; ``jobs run`` does it (once).

    Without ``--at`` a run is the operator's "catch up now".
    """
    from bot.core.scheduler import due_jobs
    from bot.scheduler import run_due_jobs, scheduler_config

    try:
        now = moment_from(args.at, settings.timezone)
    except ValueError:
        print(f"--at {args.at!r} is not an ISO-8601 date and time (for example 2026-11-26T09:00)", file=sys.stderr)
        return 2
    config = scheduler_config(settings)

    async def work(database: Database) -> int:
        if args.action == "due":
            found = await database.run(partial(due_jobs, now=now, config=config))
            print("\n".join(str(job) for job in found) if found else f"nothing is due at {now.isoformat()}")
            return 0
        # Due as of --at, sendable from the real now: a run "as of tomorrow" is not held until tomorrow.
        report = await run_due_jobs(database, now, config, send_from=system_clock())
        print(f"at {now.isoformat()}: {report}")
        if report.messages:
            print(f"{len(report.deliveries)} of them may go now, the rest after residents' quiet hours; "
                  "the outbox of the running bot sends them (start `gridbot run` if none is running)")
        return 0

    return await with_database(settings, work)


async def scheduler_only(args: argparse.Namespace, settings: Settings) -> int:
    """Only the scheduler's loop: what it writes waits in the outbox for the workers (``GRIDBOT_SCHEDULER=off``)."""
    from bot.scheduler import Scheduler, run_scheduler

    service = Service.from_settings(settings)
    await prepare_database(service.database)
    try:
        scheduler = Scheduler.from_settings(settings, service.database)
        await run_until_stopped(partial(run_scheduler, scheduler, None))
    finally:
        await service.database.dispose()
    return 0


async def apikey(args: argparse.Namespace, settings: Settings) -> int:
    """``apikey add`` issues a partner's Open311 key and prints it once; ``list`` and ``revoke`` follow."""
    from bot.core.api_keys import ApiKeyError, issue_key, list_keys, revoke_key

    def listing(session: Session) -> list[str]:
        return [f"{key.name:<30} issued {key.created_at:%Y-%m-%d %H:%M}  "
                + (f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active")
                for key in list_keys(session)]

    async def work(database: Database) -> int:
        if args.action == "list":
            lines = await database.run(listing)
            print("\n".join(lines) if lines else "no keys yet; issue one with `gridbot apikey add --name PARTNER`")
            return 0
        try:
            if args.action == "revoke":
                await database.run(partial(revoke_key, name=args.name, now=system_clock()))
                print(f"the key of {args.name} is revoked")
                return 0
            issued = await database.run(partial(issue_key, name=args.name, now=system_clock()))
        except ApiKeyError as error:
            print(error, file=sys.stderr)
            return 1
        print(f"Open311 api_key for {issued.name} (shown only now; only its hash is kept):\n{issued.key}")
        return 0

    return await with_database(settings, work)


async def open311(args: argparse.Namespace, settings: Settings) -> int:
    """Serve Open311 GeoReport v2 on its own at ``/open311/v2/``; the running bot sends the cards it writes."""
    from aiohttp import web

    from bot.desk.open311 import PREFIX, standalone_app
    from bot.logs import QueryFreeAccessLogger

    host, _, port = args.listen.rpartition(":")
    if not port.isdigit():
        print(f"--listen {args.listen!r} is not host:port", file=sys.stderr)
        return 2
    service = Service.from_settings(settings)
    await prepare_database(service.database)
    runner = web.AppRunner(standalone_app(service.database, service.clock, service.core_config("")),
                           access_log_class=QueryFreeAccessLogger)
    await runner.setup()
    try:
        await web.TCPSite(runner, host or "127.0.0.1", int(port)).start()
        logging.getLogger(__name__).info("serving Open311 at http://%s:%s%s/", host or "127.0.0.1", port, PREFIX)
        await run_until_stopped(_until_stopped)
    finally:
        await runner.cleanup()
        await service.database.dispose()
    return 0


async def _until_stopped(stop: asyncio.Event) -> None:
    await stop.wait()


def i18n(args: argparse.Namespace) -> int:
    from bot.catalogs import main as catalogs_main

    return catalogs_main([args.action])


# --- parser ---------------------------------------------------------------------------------------------


def add_connection_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", help="overrides GRIDBOT_DATABASE_URL")


def add_port_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port", dest="playground_port", type=int, help="port of the playground page (GRIDBOT_PLAYGROUND_PORT)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gridbot", description="Residents' micro-requests through grid governance.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the bot")
    add_connection_flags(run)
    run.add_argument("--token", help="overrides GRIDBOT_TOKEN")
    run.add_argument("--api-url", help="Bot API base URL (GRIDBOT_API_URL)")
    run.add_argument("--engine", choices=["aiogram", "ptb"], help="GRIDBOT_ENGINE")
    run.add_argument("--webhook-url", help="public URL; when set the bot runs by webhook")
    run.add_argument("--webhook-secret", help="GRIDBOT_WEBHOOK_SECRET")
    run.add_argument("--webhook-listen", help="host:port of the local webhook server")
    add_port_flag(run)
    run.set_defaults(handler=run_bot)

    desk_command = commands.add_parser(
        "desk", help="serve the desk, the district center's web view (GRIDBOT_DESK_LISTEN, GRIDBOT_DESK_URL)")
    add_connection_flags(desk_command)
    desk_command.set_defaults(handler=desk)

    play = commands.add_parser("playground", help="the bot against a simulated Telegram, with a web page to try it")
    add_connection_flags(play)
    add_port_flag(play)
    play.set_defaults(handler=playground)

    db = commands.add_parser("db", help="database schema").add_subparsers(dest="action", required=True)
    db_up = db.add_parser("upgrade", help="create or upgrade the schema")
    add_connection_flags(db_up)
    db_up.set_defaults(handler=db_upgrade)

    org = commands.add_parser("org", help="organisation data").add_subparsers(dest="action", required=True)
    org_in = org.add_parser(
        "import",
        help="load streets, communities, grids and buildings (an XLSX workbook's second sheet: places), places"
        " (place_code,place_name,kind,grid_code,latitude,longitude,address) or partner units"
        " (unit_code,unit_name,kind) from CSV or XLSX, or grid boundaries from .geojson; coordinates in WGS-84",
    )
    org_in.add_argument("file")
    add_connection_flags(org_in)
    org_in.set_defaults(handler=org_import)

    staff = commands.add_parser("staff", help="grid workers and admins").add_subparsers(dest="action", required=True)
    add = staff.add_parser("add", help="make a Telegram user or a WeChat follower staff of a unit")
    who = add.add_mutually_exclusive_group(required=True)
    who.add_argument("--telegram-id", help="the person's numeric Telegram user id")
    who.add_argument("--wechat-openid", help="the follower's OpenID in the Official Account (WeChat)")
    add.add_argument("--role", required=True, choices=["worker", "community", "street", "district", "department"])
    add.add_argument("--unit", help="grid, community, street or department code (none for district)")
    add.add_argument("--name")
    add_connection_flags(add)
    add.set_defaults(handler=staff_add)
    listing = staff.add_parser("list", help="list staff")
    add_connection_flags(listing)
    listing.set_defaults(handler=staff_list)
    followers = staff.add_parser(
        "followers", help="WeChat followers who wrote to the bot, newest first: their OpenIDs for staff add"
    )
    followers.add_argument("--limit", type=int, default=20)
    add_connection_flags(followers)
    followers.set_defaults(handler=staff_followers)

    demo = commands.add_parser("demo", help="load a sample organisation to try the bot with")
    add_connection_flags(demo)
    demo.set_defaults(handler=load_demo)

    categories = commands.add_parser("categories", help="request categories").add_subparsers(
        dest="action", required=True
    )
    cat_list = categories.add_parser("list", help="list active categories")
    add_connection_flags(cat_list)
    cat_list.set_defaults(handler=categories_list)
    cat_in = categories.add_parser("import", help="add or change categories from CSV")
    cat_in.add_argument("file")
    add_connection_flags(cat_in)
    cat_in.set_defaults(handler=categories_import)

    calendar = commands.add_parser("calendar", help="working days: official holidays, 调休, the district's file")
    calendar_actions = calendar.add_subparsers(dest="action", required=True)
    cal_in = calendar_actions.add_parser(
        "import", help="set working days and days off from CSV/XLSX (date,working[,note]); replaces its years")
    cal_in.add_argument("file")
    add_connection_flags(cal_in)
    cal_in.set_defaults(handler=calendar_import)
    cal_show = calendar_actions.add_parser("show", help="a year's days off and make-up working days")
    cal_show.add_argument("year", type=int)
    add_connection_flags(cal_show)
    cal_show.set_defaults(handler=calendar_show)
    campaign = commands.add_parser("campaign", help="focused campaigns").add_subparsers(dest="action", required=True)
    camp_in = campaign.add_parser("import", help="add target buildings to a campaign from a CSV of building codes")
    camp_in.add_argument("campaign", type=int, help="the campaign's number, as /campaign shows it")
    camp_in.add_argument("file")
    add_connection_flags(camp_in)
    camp_in.set_defaults(handler=campaign_import)

    report = commands.add_parser("report", help="write the monthly bulletin as a spreadsheet and a chart")
    report.add_argument("--month", help="YYYY-MM; the previous month when left out")
    report.add_argument("--out", required=True, help="the XLSX file to write; the PNG chart goes beside it")
    report_area = report.add_mutually_exclusive_group()
    report_area.add_argument("--street", help="a street code (default: the whole district)")
    report_area.add_argument("--community", help="a community code")
    report.add_argument("--locale", help="language of the headers and labels (default: GRIDBOT_DEFAULT_LOCALE)")
    add_connection_flags(report)
    report.set_defaults(handler=bulletin_report)

    request_lists = commands.add_parser("requests", help="request lists: export, import of history").add_subparsers(
        dest="action", required=True
    )
    export = request_lists.add_parser("export", help="write an area's requests as XLSX or CSV")
    export.add_argument("--area", required=True, help="a street, community or grid code, or 'district'")
    export.add_argument("--status", action="append", default=[], choices=[status.value for status in RequestStatus],
                        help="only requests in this status (repeat for several)")
    export.add_argument("--since", help="filed on or after this date, YYYY-MM-DD (local time)")
    export.add_argument("--until", help="filed before this date, YYYY-MM-DD (local time)")
    export.add_argument("--format", choices=["xlsx", "csv"], default="xlsx")
    export.add_argument("-o", "--out", required=True, help="the file to write")
    export.add_argument("--locale", help="language of the headers and values (default: GRIDBOT_DEFAULT_LOCALE)")
    export.add_argument("--with-personal-data", action="store_true",
                        help="include residents' names and phones (never those who asked to stay anonymous)")
    add_connection_flags(export)
    export.set_defaults(handler=requests_export)
    history = request_lists.add_parser("import", help="import closed or withdrawn requests of an earlier system")
    history.add_argument("file", help="XLSX or CSV with an export's columns")
    add_connection_flags(history)
    history.set_defaults(handler=requests_import)

    broadcasts = commands.add_parser("broadcast", help="notices sent by admins").add_subparsers(
        dest="action", required=True
    )
    bc_list = broadcasts.add_parser("list", help="recent broadcasts, newest first")
    bc_list.add_argument("--limit", type=int, default=50)
    add_connection_flags(bc_list)
    bc_list.set_defaults(handler=broadcast_list)
    bc_show = broadcasts.add_parser("show", help="one broadcast with its counts")
    bc_show.add_argument("id", type=int)
    add_connection_flags(bc_show)
    bc_show.set_defaults(handler=broadcast_show)

    audit = commands.add_parser("audit", help="print what admins did (broadcasts, invites, staff changes)")
    audit.add_argument("--limit", type=int, default=100)
    add_connection_flags(audit)
    audit.set_defaults(handler=audit_show)

    poster = commands.add_parser("posters", help="a printable PDF of building and place QR codes, one A4 page each")
    poster_unit = poster.add_mutually_exclusive_group(required=True)
    poster_unit.add_argument("--unit", help="a code of any level (refused when several levels share it)")
    for level in POSTER_LEVELS:
        poster_unit.add_argument(f"--{level}", help=f"a {level} code")
    poster.add_argument("--out", required=True, help="the PDF file to write")
    poster.add_argument("--username", help="the bot's username (default: asked from the Bot API)")
    poster.add_argument(
        "--only", choices=["telegram", "wechat"],
        help="one channel's codes only (default: Telegram's, and WeChat's beside them when WeChat is configured)",
    )
    poster.add_argument("--token", help="overrides GRIDBOT_TOKEN")
    poster.add_argument("--api-url", help="Bot API base URL (GRIDBOT_API_URL)")
    add_connection_flags(poster)
    poster.set_defaults(handler=posters)

    scheduled = commands.add_parser("jobs", help="the scheduler: reminders, escalation, digests, bulletins")
    scheduled.add_argument("action", choices=["due", "run"], help="list what is due, or run it")
    scheduled.add_argument("--at", help="ISO-8601 instant to act as of (default: now; local time if no offset)")
    add_connection_flags(scheduled)
    scheduled.set_defaults(handler=jobs)

    scheduler = commands.add_parser(
        "scheduler", help="run only the scheduler's loop, for workers started with GRIDBOT_SCHEDULER=off"
    )
    add_connection_flags(scheduler)
    scheduler.set_defaults(handler=scheduler_only)

    inbox = commands.add_parser("inbox", help="updates taken in").add_subparsers(dest="action", required=True)
    dead = inbox.add_parser("dead", help="updates given up on after failing, newest first (no payloads)")
    dead.add_argument("--limit", type=int, default=50)
    add_connection_flags(dead)
    dead.set_defaults(handler=inbox_dead)

    keys = commands.add_parser("apikey", help="partner apps' keys for Open311").add_subparsers(
        dest="action", required=True)
    key_add = keys.add_parser("add", help="issue a partner's key (printed once; only its hash is kept)")
    key_add.add_argument("--name", required=True, help="the partner, as staff see it on the requests it files")
    key_list = keys.add_parser("list", help="every key issued, active or revoked (never the keys themselves)")
    key_revoke = keys.add_parser("revoke", help="refuse a partner's key from now on")
    key_revoke.add_argument("--name", required=True)
    for parser_of_keys in (key_add, key_list, key_revoke):
        add_connection_flags(parser_of_keys)
        parser_of_keys.set_defaults(handler=apikey)

    serve311 = commands.add_parser("open311", help="serve Open311 GeoReport v2 for partner apps at /open311/v2/")
    serve311.add_argument("--listen", default="127.0.0.1:8083", help="host:port (default 127.0.0.1:8083)")
    add_connection_flags(serve311)
    serve311.set_defaults(handler=open311)

    translations = commands.add_parser("i18n", help="translation catalogs")
    translations.add_argument("action", choices=["update", "check"])
    translations.set_defaults(sync_handler=i18n)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if getattr(args, "sync_handler", None) is not None:
        code: int = args.sync_handler(args)
        return code
    try:
        settings = settings_from(args)
    except ValidationError as error:
        print(f"invalid settings: {error}", file=sys.stderr)
        return 2
    handler: Command = args.handler
    return asyncio.run(handler(args, settings))


if __name__ == "__main__":
    sys.exit(main())
