"""The playground: the Bot API simulator, the real bot against it and a web page to chat as several people.

Everything runs in one process and needs neither a Telegram token nor a network: the bot polls the simulator
over local HTTP exactly as it would poll Telegram, and the page drives the simulator's users.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from aiohttp import web
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.core.clock import Clock, OffsetClock, system_clock
from bot.core.outbox import OutboxSender
from bot.core.router import callback
from bot.core.scheduler import SchedulerConfig
from bot.i18n import negotiate_locale
from bot.playground.isolation import NotAPlaygroundDatabase, claim, deployment_in, shown_url
from bot.playground.personas import (
    LANGUAGE_CODES,
    PERSONAS,
    Persona,
    UnknownPersona,
    location_presets,
    prepare_organisation,
)
from bot.playground.resume import last_update_id, save_clock_offset, saved_clock_offset
from bot.playground.views import Fanout, chat_json, event_json
from bot.playground.web import MAX_KEPT_FILE_BYTES, make_app
from bot.runtime import Runtime
from bot.scheduler import run_due_jobs, scheduler_config
from bot.service import Service, prepare_database, run_until_stopped
from bot.simulator import BotApiSimulator, SimUser
from storage.models import Person

log = logging.getLogger(__name__)

# Any token of Telegram's shape will do: the simulator is the only server that ever sees it.
PLAYGROUND_TOKEN = "100001:playground-local-simulator"
BOT_USERNAME = "gridbot_playground_bot"
LOCAL_HOST = "127.0.0.1"
STARTUP_TIMEOUT = 20.0
REPLY_TIMEOUT = 10.0
STOP_TIMEOUT = 15.0

Serve = Callable[[Service, asyncio.Event], Coroutine[Any, Any, None]]


class PortUnavailable(Exception):
    """The page's port is taken or not allowed; the message says which."""


class Playground:
    """Start with ``start()``, which returns the page's URL; ``stop()`` ends everything it started.
    ``real_time`` is the clock the playground's own clock runs on before it is moved (tests start it on a
    chosen day)."""

    def __init__(
        self, settings: Settings, host: str = LOCAL_HOST, port: int | None = None, real_time: Clock = system_clock
    ) -> None:
        self.settings = settings
        self.host = host
        self.port = settings.playground_port if port is None else port
        self.clock = OffsetClock(real_time)
        self.sim = BotApiSimulator(
            PLAYGROUND_TOKEN, bot_username=BOT_USERNAME, bot_first_name="GridBot", max_file_bytes=MAX_KEPT_FILE_BYTES,
            clock=self.clock,
        )
        # Every API call must carry this token, which only the page served by this process knows: another
        # site open in the same browser cannot act on the playground.
        self.api_token = secrets.token_urlsafe(32)
        self.allowed_hosts: frozenset[str] = frozenset()
        self.fanout = Fanout()
        self.notes: list[str] = []
        self.url = ""
        self._service: Service | None = None
        self._stop = asyncio.Event()
        self._bot_task: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self._outbox: OutboxSender | None = None
        self._by_user_id = {persona.user_id: persona for persona in PERSONAS}

    @property
    def service(self) -> Service:
        if self._service is None:
            raise RuntimeError("the playground has not been started")
        return self._service

    # --- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> str:
        """Start everything; raises ``NotAPlaygroundDatabase`` (having changed nothing) for a deployment's
        database and ``PortUnavailable`` when the page's port is taken."""
        held = await deployment_in(self.settings.database_url)
        if held is not None:
            raise NotAPlaygroundDatabase(
                f"the database {shown_url(self.settings.database_url)} holds a deployment ({held}); the playground"
                " runs only on a database of its own (GRIDBOT_PLAYGROUND_DATABASE_URL, by default playground.db)"
            )
        api_url = await self.sim.start(LOCAL_HOST, 0)
        bot_settings = self.settings.model_copy(
            update={"token": SecretStr(PLAYGROUND_TOKEN), "api_url": api_url, "webhook_url": None}
        )
        self._service = Service.from_settings(bot_settings, clock=self.clock)
        self.service.runtime_listeners.append(self._keep_outbox)
        await prepare_database(self.service.database)
        await self.service.database.run(partial(claim, now=self.clock()))
        await self._resume()
        prepare = partial(prepare_organisation, now=self.clock(), timezone=self.settings.timezone)
        self.notes = await self.service.database.run(prepare)
        # The page first: a port already taken is the likeliest failure, and should come before the bot starts.
        await self._start_web()
        self.sim.subscribe(self._on_sim_event)
        self._bot_task = asyncio.create_task(_engine_serve(bot_settings.engine)(self.service, self._stop))
        await self._greet_personas()
        return self.url

    def _keep_outbox(self, runtime: Runtime) -> None:
        self._outbox = runtime.outbox

    async def _resume(self) -> None:
        """Carry on from an earlier run on this database: its updates are recorded as handled, so new ones must
        be numbered above them, and its requests and jobs happened at simulated times the clock must not undo."""
        database = self.service.database
        self.sim.continue_update_ids_after(await database.run(last_update_id))
        saved = await database.run(partial(saved_clock_offset, real_now=self.clock.base()))
        self.clock.offset = max(self.clock.offset, saved)

    async def _start_web(self) -> None:
        runner = web.AppRunner(make_app(self), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError as error:
            await runner.cleanup()
            raise PortUnavailable(f"cannot serve the page on {self.host}:{self.port}: {error.strerror}") from error
        self._runner = runner
        port = int(runner.addresses[0][1])
        # Only these Host headers are answered: a DNS name rebound to 127.0.0.1 arrives with its own.
        self.allowed_hosts = frozenset(f"{host}:{port}" for host in {"127.0.0.1", "localhost", "[::1]", self.host})
        self.url = f"http://{self.host}:{port}"

    async def stop(self) -> None:
        self._stop.set()
        self.fanout.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._bot_task is not None:
            try:
                await asyncio.wait_for(self._bot_task, STOP_TIMEOUT)
            except TimeoutError:
                log.warning("the bot did not stop within %.0f s", STOP_TIMEOUT)
            except Exception:
                log.exception("the bot failed")
        await self.sim.stop()
        if self._service is not None:
            await self._service.database.dispose()

    async def _greet_personas(self) -> None:
        """Staff open their chat (the bot can only write to people who wrote first); resident 1 scans the
        QR code on their building; the volunteer looks at their service. Waits for the bot's replies so a
        broken bot shows up here, not later."""
        greeted = []
        for persona in PERSONAS:
            text = persona.greeting
            if text:
                user = self.user(persona)
                await user.send_text(text)
                greeted.append(user)
        await self._wait_for_replies(greeted)

    async def _wait_for_replies(self, users: list[SimUser]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STARTUP_TIMEOUT
        while not all(user.messages for user in users):
            if self._bot_task is not None and self._bot_task.done():
                self._bot_task.result()  # raises what stopped the bot
                raise RuntimeError("the bot stopped while the playground was starting")
            if loop.time() > deadline:
                log.warning("the bot has not answered every persona within %.0f s", STARTUP_TIMEOUT)
                return
            await asyncio.sleep(0.05)

    # --- what the page reads ---------------------------------------------------------------------------

    def persona(self, key: str) -> Persona:
        for persona in PERSONAS:
            if persona.key == key:
                return persona
        raise UnknownPersona(key)

    def user(self, persona: Persona) -> SimUser:
        return self.sim.user(persona.user_id, persona.name, language_code=persona.language_code)

    async def state(self) -> dict[str, Any]:
        languages = await self._languages()
        return {
            "bot": BOT_USERNAME,
            "clock": self.clock_json(),
            "notes": self.notes,
            "presets": [vars(preset) for preset in location_presets()],
            "personas": [
                {
                    "key": p.key, "id": p.user_id, "name": p.name, "title": {"zh": p.title_zh, "en": p.title_en},
                    "staff": p.is_staff, "building_code": p.building_code, "language": languages[p.key],
                    **chat_json(self.user(p)),
                }
                for p in PERSONAS
            ],
        }

    async def _languages(self) -> dict[str, str]:
        """Each persona's language as the bot knows it, or as their client reports it before they wrote."""
        known = await self.service.database.run(_known_locales)
        result = {}
        for persona in PERSONAS:
            locale = known.get(str(persona.user_id)) or negotiate_locale(persona.language_code, "en")
            result[persona.key] = locale.split("_", 1)[0]
        return result

    def clock_json(self) -> dict[str, Any]:
        return {
            "now": self.clock().isoformat(),
            "offset_seconds": self.clock.offset.total_seconds(),
            "timezone": self.settings.timezone,
        }

    # --- what the page does ----------------------------------------------------------------------------

    async def set_language(self, persona: Persona, language: str) -> None:
        """Switch the way a person would: /lang, then the language's button."""
        locale = negotiate_locale(LANGUAGE_CODES[language], self.settings.default_locale)
        user = self.user(persona)
        user.language_code = LANGUAGE_CODES[language]
        data = callback("lang", locale)
        await user.send_text("/lang")
        choice = await user.wait_for(lambda m: any(d == data for _t, d in m.buttons()), REPLY_TIMEOUT)
        await user.press(choice, data)
        await user.wait_for_answer(REPLY_TIMEOUT)
        self.fanout.publish({"type": "language", "persona": persona.key, "language": language})

    async def move_clock(self, days: int) -> None:
        moved_from = self.clock()
        self.clock.offset += timedelta(days=days)
        await self.service.database.run(partial(save_clock_offset, offset=self.clock.offset))
        try:
            await self._run_what_fell_due(moved_from)
        finally:
            # The clock has moved even if what fell due failed; every open page must show it.
            self.fanout.publish({"type": "clock", **self.clock_json()})

    async def _run_what_fell_due(self, moved_from: datetime) -> None:
        """Run the jobs at every moment the move passed, as a bot running all along would have: +1 week brings
        each day's digest and Monday's weekly status, not only what is due at the new time. Then the outbox
        sends it at once rather than at its next look."""
        config = scheduler_config(self.settings)
        now = self.clock()
        for moment in [*periodic_moments(moved_from, now, config), now]:
            await run_due_jobs(self.service.database, moment, config)
        if self._outbox is not None:
            self._outbox.wake()

    async def _on_sim_event(self, event: dict[str, Any]) -> None:
        persona = self._by_user_id.get(int(event.get("chat_id") or 0))
        if persona is None:
            return
        shown = event_json(self.user(persona), event)
        if shown is not None:
            self.fanout.publish({**shown, "persona": persona.key})


def periodic_moments(start: datetime, end: datetime, config: SchedulerConfig) -> list[datetime]:
    """The instants in (start, end] at which a periodic job may start: the digest time of each local day
    (the weekly status and the monthly bulletin start at the digest time of their day too)."""
    zone = config.zone
    day, last = start.astimezone(zone).date(), end.astimezone(zone).date()
    moments = []
    while day <= last:
        moment = datetime.combine(day, config.digest_time, tzinfo=zone).astimezone(UTC)
        if start < moment <= end:
            moments.append(moment)
        day += timedelta(days=1)
    return moments


def _known_locales(session: Session) -> dict[str, str | None]:
    ids = [str(persona.user_id) for persona in PERSONAS]
    query = select(Person.external_id, Person.locale).where(Person.channel == "telegram", Person.external_id.in_(ids))
    return {external_id: locale for external_id, locale in session.execute(query)}


def _engine_serve(engine: str) -> Serve:
    if engine == "ptb":
        from bot.engines import ptb_engine

        return ptb_engine.serve
    from bot.engines import aiogram_engine

    return aiogram_engine.serve


async def run_playground(settings: Settings) -> int:
    """``gridbot playground``: run until Ctrl-C."""
    playground = Playground(settings)
    try:
        try:
            url = await playground.start()
        except PortUnavailable as error:
            print(f"{error}; choose another port with --port")
            return 1
        except NotAPlaygroundDatabase as error:
            print(f"gridbot playground: {error}", file=sys.stderr)
            return 2
        print(f"gridbot playground: open {url} in your browser (Ctrl-C stops it)")
        for note in playground.notes:
            print(f"  note: {note}")
        await run_until_stopped(_wait_until_set)
    finally:
        await playground.stop()
    return 0


async def _wait_until_set(stop: asyncio.Event) -> None:
    await stop.wait()
