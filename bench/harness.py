"""What the in-process benchmarks share: a null Bot API session, a small deployment, scripted residents and a
driver that feeds their updates through the real Telegram intake and aiogram client the way polling does.

The driver plays getUpdates: whatever residents sent since the last batch (at most 100 updates) is handed to
``UpdateIntake.take``, which records the batch in one database hop and runs each update in per-chat order,
exactly as ``gridbot run`` does with a real Bot API server. Only the network is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiogram import Bot, Dispatcher, Router
from aiogram.client.session.base import BaseSession
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import CallbackQuery, Message, Update
from pydantic import SecretStr
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from bench.bulletin import build_organisation
from bot.config import Settings
from bot.engines.aiogram_engine import AiogramClient
from bot.engines.telegram import CHANNEL, TelegramChannel
from bot.engines.telegram_intake import UpdateIntake, feed_update
from bot.runtime import Runtime
from bot.service import Service, freeze_startup_objects, prepare_database
from storage.models import Building, Person, Role, StaffRole

TOKEN = "123456:BENCH-token"
BOT_ID = 123456
BATCH = 100  # getUpdates hands out at most 100 updates a call
NOW = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
FIRST_RESIDENT = 10_000_000
FIRST_WORKER = 20_000_000
MESSAGE_METHODS = {"sendMessage", "editMessageText", "sendPhoto", "sendDocument"}


# --- the network replaced ------------------------------------------------------------------------------------


@dataclass
class SentCall:
    at: float
    method: str
    chat_id: int | None
    request: TelegramMethod[Any]


class NullSession(BaseSession):
    """Answers every Bot API call at once, as a server with zero latency would, and notes what was sent.

    The request is still serialised and the answer still parsed by aiogram, so the framework's own cost of a
    call stays in the measurement; only the socket is gone.
    """

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        # Only each chat's latest inline keyboard is kept (scripted residents press buttons from it): a log of
        # every call would grow the process the memory benchmark measures.
        self.keyboards: dict[int, tuple[int, list[str]]] = {}
        self.listeners: list[Callable[[SentCall], None]] = []
        self._message_ids = itertools.count(1)

    async def close(self) -> None:
        return None

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        name = method.__api_method__
        # Serialised field by field as aiogram's aiohttp session builds its form.
        fields: dict[str, Any] = {}
        for key, value in method.model_dump(warnings=False).items():
            prepared = self.prepare_value(value, bot=bot, files={})
            if prepared:
                fields[key] = prepared
        chat_id = fields.get("chat_id")
        call = SentCall(time.perf_counter(), name, int(chat_id) if chat_id is not None else None, method)
        self.calls += 1
        for listener in self.listeners:
            listener(call)
        if name in MESSAGE_METHODS:
            message_id = int(fields.get("message_id") or next(self._message_ids))
            markup = getattr(method, "reply_markup", None)
            rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
            if call.chat_id is not None and rows:
                buttons = [b["callback_data"] for row in rows for b in row if b.get("callback_data")]
                self.keyboards[call.chat_id] = (message_id, buttons)
            result: Any = {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": {"id": int(chat_id or 0), "type": "private"},
                "text": fields.get("text") or "",
            }
        else:
            result = True
        content = json.dumps({"ok": True, "result": result})
        response = self.check_response(bot, method, 200, content)
        return response.result  # type: ignore[return-value]

    async def stream_content(
        self, url: str, headers: dict[str, Any] | None = None, timeout: int = 30, chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        yield b""


# --- updates as Telegram would send them -----------------------------------------------------------------------


_update_ids = itertools.count(1)


def number_updates_from(first: int) -> None:
    """Start this process's update ids at ``first``: processes sharing one inbox must not reuse each other's."""
    global _update_ids
    _update_ids = itertools.count(first)


def _user(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": f"R{user_id}", "language_code": "zh-hans"}


def text_update(user_id: int, text: str) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": next(_update_ids), "date": int(time.time()),
        "chat": {"id": user_id, "type": "private", "first_name": f"R{user_id}"}, "from": _user(user_id), "text": text,
    }
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return {"update_id": next(_update_ids), "message": message}


def button_update(user_id: int, data: str, message_id: int) -> dict[str, Any]:
    update_id = next(_update_ids)
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"cb{update_id}", "from": _user(user_id), "chat_instance": str(user_id), "data": data,
            "message": {
                "message_id": message_id, "date": int(time.time()),
                "chat": {"id": user_id, "type": "private", "first_name": f"R{user_id}"},
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "gridbot"}, "text": "...",
            },
        },
    }


# --- the deployment ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deployment:
    service: Service
    residents: list[int]  # Telegram user ids, each living in a building of their own


# Sends a second the benchmarks' bots may make: far above anything they reach, where the highest a deployment may
# set (1,000, Telegram's paid broadcasts) is about what gridbot sends in the filing conversation here.
NULL_NETWORK_SEND_RATE = 1_000_000.0


def bench_settings(database_url: str, **overrides: Any) -> Settings:
    settings = Settings(
        token=SecretStr(TOKEN), api_url="http://127.0.0.1:9", database_url=database_url,
        _env_file=None, **({"daily_request_limit": 1000, "throttle_messages": 0} | overrides),  # type: ignore[call-arg]
    )
    # The null network has no flood limit: every send still takes its slot from the pacer (on PostgreSQL from
    # the shared row), at a rate no run comes near, so the pacer's cost is measured and not its ceiling
    # (bench.pacing measures the pacing). ``model_copy`` leaves the value unchecked against the settings' bound.
    return settings.model_copy(update={"send_rate": overrides.get("send_rate", NULL_NETWORK_SEND_RATE)})


def seed_people(session: Session, residents: int) -> list[int]:
    """The organisation of ``bench.bulletin``, a worker on every grid and ``residents`` residents, each in a
    building of their own so no filing meets a neighbour's duplicate; returns the residents' user ids."""
    if session.scalar(select(Building.id).limit(1)) is None:
        build_organisation(session)
    buildings = list(session.execute(select(Building.id, Building.grid_id).order_by(Building.id)))
    assert residents <= len(buildings), "one building per resident"
    grids = sorted({grid_id for _building, grid_id in buildings})
    created = NOW
    worker_rows = [
        {"channel": CHANNEL, "external_id": str(FIRST_WORKER + index), "chat_id": str(FIRST_WORKER + index),
         "display_name": f"网格员{index}", "locale": "zh_CN", "state_data": {}, "created_at": created,
         "unreachable": False}
        for index in range(len(grids))
    ]
    session.execute(insert(Person), worker_rows)
    worker_ids = {
        external_id: person_id
        for external_id, person_id in session.execute(
            select(Person.external_id, Person.id).where(Person.external_id.in_([r["external_id"] for r in worker_rows]))
        )
    }
    session.execute(insert(StaffRole), [
        {"person_id": worker_ids[str(FIRST_WORKER + index)], "role": Role.WORKER, "unit_id": grid}
        for index, grid in enumerate(grids)
    ])
    user_ids = [FIRST_RESIDENT + index for index in range(residents)]
    session.execute(insert(Person), [
        {"channel": CHANNEL, "external_id": str(user_id), "chat_id": str(user_id), "display_name": f"R{user_id}",
         "locale": "zh_CN", "state_data": {}, "created_at": created, "unreachable": False,
         "building_id": building_id}
        for user_id, (building_id, _grid) in zip(user_ids, buildings, strict=False)
    ])
    return user_ids


@contextlib.asynccontextmanager
async def deployment(database_url: str, residents: int) -> AsyncIterator[Deployment]:
    service = Service.from_settings(bench_settings(database_url))
    try:
        await prepare_database(service.database)
        user_ids = await service.database.run(lambda session: seed_people(session, residents))
        yield Deployment(service, user_ids)
    finally:
        await service.database.dispose()


def sqlite_url(directory: Path, name: str) -> str:
    return f"sqlite+aiosqlite:///{directory / name}"


@contextlib.asynccontextmanager
async def postgres_url(server_url: str) -> AsyncIterator[str]:
    from tests.postgres import scratch_postgres_database

    async with scratch_postgres_database(server_url) as url:
        yield url


# --- the bots under test ---------------------------------------------------------------------------------------


@dataclass
class BotUnderTest:
    """Something that takes a batch of raw updates the way the polling loop does."""

    take: Callable[[list[tuple[int, dict[str, Any]]]], Awaitable[None]]
    drain: Callable[[], Awaitable[None]]
    session: NullSession
    on_done: list[Callable[[dict[str, Any]], None]] = field(default_factory=list)


def gridbot_under_test(service: Service) -> BotUnderTest:
    """The real aiogram engine, runtime, core and outbox; the polling loop's ``take`` with the network null."""
    session = NullSession()
    bot = Bot(TOKEN, session=session)
    runtime: Runtime = service.runtime({CHANNEL: TelegramChannel(AiogramClient(bot))}, "gridbot")
    under_test = BotUnderTest(take=lambda batch: asyncio.sleep(0), drain=runtime.drain, session=session)

    async def feed(payload: dict[str, Any]) -> None:
        await feed_update(runtime, payload)
        for done in under_test.on_done:
            done(payload)

    intake = UpdateIntake(runtime, feed)
    under_test.take = intake.take
    freeze_startup_objects()  # as ``gridbot run`` does before serving
    return under_test


def echo_under_test() -> BotUnderTest:
    """A bare aiogram bot that answers every message and button press with one message: the yardstick."""
    session = NullSession()
    bot = Bot(TOKEN, session=session)
    dispatcher = Dispatcher()
    router = Router()

    @router.message()
    async def echo(message: Message) -> None:
        await bot.send_message(message.chat.id, message.text or "?")

    @router.callback_query()
    async def echo_button(query: CallbackQuery) -> None:
        await bot.send_message(query.from_user.id, query.data or "?")

    dispatcher.include_router(router)
    tasks: set[asyncio.Task[None]] = set()
    under_test = BotUnderTest(take=lambda batch: asyncio.sleep(0), drain=lambda: asyncio.sleep(0), session=session)

    async def feed(payload: dict[str, Any]) -> None:
        update = Update.model_validate(payload, context={"bot": bot})
        await dispatcher.feed_update(bot, update)
        for done in under_test.on_done:
            done(payload)

    async def take(batch: list[tuple[int, dict[str, Any]]]) -> None:
        for _update_id, payload in batch:
            task = asyncio.create_task(feed(payload))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    async def drain() -> None:
        while tasks:
            await asyncio.gather(*list(tasks))

    under_test.take = take
    under_test.drain = drain
    return under_test


# --- residents and the polling loop ---------------------------------------------------------------------------


class Conversation:
    """One resident filing one request: ``/new``, category, description, skip photos, skip location, hide
    identity: no, confirm. Each step waits for the bot's answer and presses a button from it."""

    STEPS = 7

    def __init__(self, user_id: int, session: NullSession) -> None:
        self.user_id = user_id
        self.session = session

    def _last_keyboard(self) -> tuple[int, list[str]]:
        shown = self.session.keyboards.get(self.user_id)
        if shown is None:
            raise AssertionError(f"resident {self.user_id} was shown no buttons")
        return shown

    def _press(self, prefix: str) -> dict[str, Any]:
        message_id, buttons = self._last_keyboard()
        data = next((b for b in buttons if b.startswith(prefix)), None)
        assert data is not None, f"no button {prefix!r} among {buttons}"
        return button_update(self.user_id, data, message_id)

    def step(self, index: int) -> dict[str, Any]:
        if index == 0:
            return text_update(self.user_id, "/new")
        if index == 2:
            return text_update(self.user_id, f"楼道里堆了杂物 {self.user_id}")
        prefix = {1: "fl:cat:", 3: "fl:photos", 4: "fl:loc:-", 5: "fl:hide:0", 6: "fl:ok:"}[index]
        return self._press(prefix)


@dataclass
class Stats:
    steps: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.steps / self.seconds if self.seconds else 0.0


class Poller:
    """Plays the Bot API's getUpdates: hands everything sent since the last call to ``take`` in batches."""

    def __init__(self, under_test: BotUnderTest) -> None:
        self.under_test = under_test
        self.pending: list[tuple[int, dict[str, Any]]] = []
        self.waiting: dict[int, asyncio.Future[None]] = {}
        self._wake = asyncio.Event()
        self._stopped = False
        under_test.on_done.append(self._done)

    def _done(self, payload: dict[str, Any]) -> None:
        future = self.waiting.pop(payload["update_id"], None)
        if future is not None and not future.done():
            future.set_result(None)

    def send(self, payload: dict[str, Any]) -> asyncio.Future[None]:
        """Queue an update from a person; the future resolves once the bot has handled it."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting[payload["update_id"]] = future
        self.pending.append((payload["update_id"], payload))
        self._wake.set()
        return future

    async def run(self) -> None:
        while not self._stopped:
            await self._wake.wait()
            self._wake.clear()
            while self.pending:
                batch, self.pending = self.pending[:BATCH], self.pending[BATCH:]
                await self.under_test.take(batch)

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()


async def run_scripted(under_test: BotUnderTest, scripts: list[list[Callable[[], dict[str, Any]]]]) -> Stats:
    """Every script is one person sending its steps one after another, each once the previous one was handled;
    all scripts run at once. Returns steps, seconds and per-step latency (sent to handled)."""
    poller = Poller(under_test)
    polling = asyncio.create_task(poller.run())
    stats = Stats()

    async def person(script: list[Callable[[], dict[str, Any]]]) -> None:
        for make in script:
            payload = make()
            started = time.perf_counter()
            await poller.send(payload)
            stats.latencies.append(time.perf_counter() - started)
            stats.steps += 1

    started = time.perf_counter()
    try:
        await asyncio.gather(*(person(script) for script in scripts))
        stats.seconds = time.perf_counter() - started
        await under_test.drain()
    finally:
        poller.stop()
        await polling
    return stats


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]
