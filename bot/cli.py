"""The ``gridbot`` command: run the bot and administer a deployment.

Settings come from ``GRIDBOT_*`` environment variables and ``.env``; command-line flags override them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bot.config import Settings
from bot.core.clock import system_clock
from bot.service import Service, prepare_database, run_until_stopped
from storage.database import Database
from storage.migrate import upgrade

Command = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]

NO_TOKEN_HELP = """\
gridbot needs a Telegram bot token to talk to Telegram.

  1. In Telegram, talk to @BotFather, send /newbot and follow the steps; it gives you a token.
  2. Run again with the token, for example:
       GRIDBOT_TOKEN=123456:ABC-DEF gridbot run
     or put GRIDBOT_TOKEN=... in a file named .env in this folder.

Load your organisation first with `gridbot org import FILE.csv` (or `gridbot demo` for a sample one).
"""


def settings_from(args: argparse.Namespace) -> Settings:
    """Environment and ``.env`` first, then whatever flags were given on the command line."""
    overrides = {
        name: value
        for name in ("token", "api_url", "database_url", "engine", "webhook_url", "webhook_secret", "webhook_listen")
        if (value := getattr(args, name, None)) is not None
    }
    return Settings(**overrides)


# --- commands -------------------------------------------------------------------------------------------


async def run_bot(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.token_value:
        print(NO_TOKEN_HELP)
        return 2
    service = Service.from_settings(settings)
    await prepare_database(service.database)
    if settings.engine == "ptb":
        from bot.engines.ptb_engine import serve
    else:
        from bot.engines.aiogram_engine import serve
    try:
        await run_until_stopped(partial(serve, service))
    finally:
        await service.database.dispose()
    return 0


async def db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    database = Database(settings.database_url)
    try:
        await upgrade(database)
        print(f"database {database.url.render_as_string(hide_password=True)} is up to date")
    finally:
        await database.dispose()
    return 0


async def with_database(settings: Settings, work: Callable[[Database], Coroutine[Any, Any, int]]) -> int:
    """Run ``work`` on an upgraded database, disposing of it afterwards."""
    database = Database(settings.database_url)
    try:
        await prepare_database(database)
        return await work(database)
    finally:
        await database.dispose()


async def org_import(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core.organisation import FileFormatError, apply_rows, read_org_file, validate_rows

    path = Path(args.file)
    try:
        rows = read_org_file(path)
    except (OSError, FileFormatError) as error:
        print(f"cannot read {path}: {error}", file=sys.stderr)
        return 1
    problems = validate_rows(rows)
    if problems:
        for problem in problems:
            print(f"{path}:{problem.line}: {problem.message}", file=sys.stderr)
        print(f"{len(problems)} problem(s); nothing was imported.", file=sys.stderr)
        return 1

    async def work(database: Database) -> int:
        summary = await database.run(partial(apply_rows, rows=rows))
        print(f"imported {len(rows)} building row(s): {summary}")
        return 0

    return await with_database(settings, work)


async def staff_add(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core.staff import StaffError, add_staff
    from storage.models import Role

    async def work(database: Database) -> int:
        try:
            await database.run(
                lambda session: add_staff(
                    session, args.telegram_id, Role(args.role), args.unit, args.name, system_clock()
                )
            )
        except StaffError as error:
            print(error, file=sys.stderr)
            return 1
        unit = f" of {args.unit}" if args.unit else ""
        print(f"{args.telegram_id} is now {args.role} staff{unit}")
        return 0

    return await with_database(settings, work)


async def staff_list(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core.staff import list_staff

    async def work(database: Database) -> int:
        lines = await database.run(list_staff)
        for line in lines:
            print(line)
        if not lines:
            print("no staff yet; add some with `gridbot staff add`")
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
            print(f"{category.code:<24} {category.due_days:>3} days  {names}{state}")
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


def i18n(args: argparse.Namespace) -> int:
    from bot.catalogs import main as catalogs_main

    return catalogs_main([args.action])


# --- parser ---------------------------------------------------------------------------------------------


def add_connection_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", help="overrides GRIDBOT_DATABASE_URL")


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
    run.set_defaults(handler=run_bot)

    db = commands.add_parser("db", help="database schema").add_subparsers(dest="action", required=True)
    db_up = db.add_parser("upgrade", help="create or upgrade the schema")
    add_connection_flags(db_up)
    db_up.set_defaults(handler=db_upgrade)

    org = commands.add_parser("org", help="organisation data").add_subparsers(dest="action", required=True)
    org_in = org.add_parser("import", help="load streets, communities, grids and buildings from CSV or XLSX")
    org_in.add_argument("file")
    add_connection_flags(org_in)
    org_in.set_defaults(handler=org_import)

    staff = commands.add_parser("staff", help="grid workers and admins").add_subparsers(dest="action", required=True)
    add = staff.add_parser("add", help="make a Telegram user staff of a unit")
    add.add_argument("--telegram-id", required=True)
    add.add_argument("--role", required=True, choices=["worker", "community", "street", "district"])
    add.add_argument("--unit", help="grid, community or street code (none for district)")
    add.add_argument("--name")
    add_connection_flags(add)
    add.set_defaults(handler=staff_add)
    listing = staff.add_parser("list", help="list staff")
    add_connection_flags(listing)
    listing.set_defaults(handler=staff_list)

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
