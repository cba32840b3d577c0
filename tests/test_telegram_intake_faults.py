"""Telegram intake under attack and faults: secrets in logs, unsigned webhooks, poison updates, a locked database."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bot.cli import inbox_dead, main
from bot.core.app import Core, store_updates
from bot.core.claims import stale_unhandled_updates
from bot.core.clock import FrozenClock
from bot.core.context import CoreConfig
from bot.core.messages import Action, Delivery, SendText
from bot.core.outbox import OutboxSender
from bot.engines.telegram import CHANNEL
from bot.engines.telegram_intake import SECRET_HEADER, SWEEP_MIN_AGE, UpdateIntake, feed_update
from bot.logs import SecretRedactor, protect_logs
from bot.runtime import Runtime
from bot.simulator import BotApiSimulator
from handlers import build_router
from storage.database import Database
from storage.models import InboxUpdate
from tests.e2e import TOKEN, eventually, running_bot
from tests.org_fixture import make_small_org
from tests.reliability import free_port

SECRET = "webhook-S3cret_value"
BUSY_EN = "The service is busy right now"
BUSY_ZH = "服务繁忙，请稍后再试。"
COULD_NOT_HANDLE = "Sorry, this message could not be handled."


def text_update(update_id: int, user_id: int = 4001, first_name: Any = "Ann") -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id, "date": 0, "chat": {"id": user_id, "type": "private"},
            "from": {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "en"},
            "text": "/help",
        },
    }


class RecordingChannel:
    name = CHANNEL

    def __init__(self) -> None:
        self.sent: list[tuple[str, Action]] = []

    async def perform(self, chat_id: str, action: Action) -> Delivery:
        self.sent.append((chat_id, action))
        return Delivery(ok=True, message_id=len(self.sent))


def intake_over(database: Database, clock: FrozenClock, feed: Any = None) -> tuple[UpdateIntake, RecordingChannel]:
    channel = RecordingChannel()
    core = Core(database, build_router(), CoreConfig(bot_username="gridbot_test"), clock)
    runtime = Runtime(core, OutboxSender(database, {CHANNEL: channel}, clock=clock))
    return UpdateIntake(runtime, feed or partial(feed_update, runtime)), channel


async def inbox_row(database: Database, update_id: int) -> InboxUpdate | None:
    row: InboxUpdate | None = await database.run(lambda s: s.get(InboxUpdate, (CHANNEL, update_id)))
    return row


# --- secrets never reach a log line ---------------------------------------------------------------------


class Everything(logging.Handler):
    """Keeps every record as the formatted line an operator's log would show."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.name, self.format(record)))


@contextlib.contextmanager
def logging_everything() -> Any:
    root = logging.getLogger()
    handler = Everything()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.NOTSET)


async def test_no_log_line_shows_the_token_or_the_webhook_secret(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    port = free_port()
    hook = f"http://127.0.0.1:{port}/telegram"
    with logging_everything() as everything:
        async with running_bot(
            simulator, url, database_url, engine, webhook_url=hook, webhook_secret=SECRET,
            webhook_listen=f"127.0.0.1:{port}",
        ):
            assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING, "quiet by default"
            # An operator turns the HTTP client up to debug: its URLs carry the token, the filter still hides it.
            logging.getLogger("httpx").setLevel(logging.DEBUG)
            logging.getLogger("httpcore").setLevel(logging.DEBUG)
            await eventually(partial(webhook_registered, simulator))
            cy = simulator.user(4101, "Cy", language_code="en")
            await cy.send_text("/help")
            await cy.wait_for_text("/new")
            async with aiohttp.ClientSession() as http, http.post(hook, json=text_update(1)) as response:
                assert response.status == 401
    lines = everything.lines
    assert lines, "the bot logged something"
    leaks = [line for _name, line in lines if TOKEN in line or SECRET in line or "TEST-token" in line]
    assert not leaks, leaks[:5]
    names = {name for name, _line in lines}
    assert "aiohttp.access" in names, "the webhook server's access log was captured"
    if engine == "ptb":
        assert "httpx" in names, "the HTTP client's request lines were captured"
        assert any("bot<redacted>/sendMessage" in line for name, line in lines if name == "httpx")


async def webhook_registered(simulator: BotApiSimulator) -> bool:
    return bool(simulator.webhook.get("url"))


def test_redaction_hides_wechat_secrets_and_access_tokens() -> None:
    from bot.config import Settings

    settings = Settings(
        wechat_token="wx-sign-token", wechat_app_id="wx123", wechat_app_secret="app-secret-0123456789",
        wechat_aes_key="A" * 43, database_url="postgresql+asyncpg://gridbot:db-Pass-77@db.internal/gridbot",
        _env_file=None,  # type: ignore[call-arg]
    )
    handler = Everything()
    logger = logging.getLogger("tests.redaction")
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        protect_logs(settings)
        assert any(isinstance(f, SecretRedactor) for f in handler.filters)
        logger.warning("GET /cgi-bin/message/custom/send?access_token=%s&x=1", "ACCESS-42")
        logger.warning("secret %s, key %s, token %s", "app-secret-0123456789", "A" * 43, "wx-sign-token")
        logger.warning("connecting with db-Pass-77")
        try:
            raise RuntimeError("POST https://api.telegram.org/bot999999:ABCdef_ghi-jkl/getMe failed")
        except RuntimeError:
            logger.exception("request failed")
    finally:
        root.removeHandler(handler)
    written = "\n".join(line for _name, line in handler.lines)
    hidden = ("ACCESS-42", "app-secret-0123456789", "A" * 43, "wx-sign-token", "999999:ABCdef_ghi-jkl", "db-Pass-77")
    for secret in hidden:
        assert secret not in written
    assert written.count("<redacted>") >= 6


# --- a webhook must be signed ---------------------------------------------------------------------------


def test_run_refuses_webhook_mode_without_a_secret(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    started: list[str] = []

    async def serve(*_args: Any) -> None:
        started.append("telegram")

    monkeypatch.chdir(tmp_path)
    for name in ("GRIDBOT_WEBHOOK_SECRET", "GRIDBOT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GRIDBOT_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/run.db")
    monkeypatch.setattr("bot.engines.aiogram_engine.serve", serve)
    monkeypatch.setattr("bot.engines.ptb_engine.serve", serve)

    code = main(["run", "--token", TOKEN, "--webhook-url", "https://bot.example.org/telegram"])

    assert code != 0
    assert started == [], "nothing was started or registered"
    err = capsys.readouterr().err
    assert "GRIDBOT_WEBHOOK_SECRET" in err
    assert "GRIDBOT_WEBHOOK_SECRET=" in err, "a random value is suggested"
    assert TOKEN not in err

    bad_secret = "has spaces and ünïcode"
    code = main(["run", "--token", TOKEN, "--webhook-url", "https://bot.example.org/telegram",
                 "--webhook-secret", bad_secret])
    assert code != 0 and started == []
    err = capsys.readouterr().err
    assert "1-256 characters" in err and bad_secret not in err


@contextlib.asynccontextmanager
async def webhook_client(intake: UpdateIntake) -> AsyncIterator[TestClient[Any, Any]]:
    client = TestClient(TestServer(intake.webhook_app("/hook", SECRET)))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def test_webhook_refuses_unsigned_updates(database: Database, clock: FrozenClock) -> None:
    intake, _channel = intake_over(database, clock)
    with pytest.raises(ValueError):
        intake.webhook_app("/hook", "")
    async with webhook_client(intake) as client:
        for headers in ({}, {SECRET_HEADER: "wrong"}, {SECRET_HEADER: SECRET[:-1]}):
            response = await client.post("/hook", json=text_update(1), headers=headers)
            assert response.status == 401
        assert await inbox_row(database, 1) is None
        response = await client.post("/hook", json=text_update(1), headers={SECRET_HEADER: SECRET})
        assert response.status == 200
    await intake.runtime.drain()
    row = await inbox_row(database, 1)
    assert row is not None and row.handled_at is not None


@pytest.mark.parametrize("update_id", [1.9, "x", "7", 10**30, -1, True, None, [1]])
async def test_webhook_answers_400_to_an_update_id_that_is_no_telegram_id(
    database: Database, clock: FrozenClock, update_id: Any
) -> None:
    intake, _channel = intake_over(database, clock)
    async with webhook_client(intake) as client:
        body = {**text_update(1), "update_id": update_id}
        response = await client.post("/hook", json=body, headers={SECRET_HEADER: SECRET})
        assert response.status == 400
        response = await client.post("/hook", data=b"{not json", headers={SECRET_HEADER: SECRET})
        assert response.status == 400
    rows = await database.run(lambda s: s.scalars(select(InboxUpdate)).all())
    assert rows == [], "nothing was recorded, in particular not a truncated id"


# --- poison updates -------------------------------------------------------------------------------------


async def test_update_no_engine_can_parse_is_answered_once_and_dead(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str, capsys: pytest.CaptureFixture[str]
) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url, engine) as bot:
        await bot.service.database.run(make_small_org)
        dot = simulator.user(4201, "Dot", language_code="en")
        dot.started = True  # has talked to the bot before, so the bot may write to them
        poison = text_update(0, user_id=4201, first_name=7)["message"]  # a name that is a number
        poison["text"] = "my private words"
        update = simulator._enqueue_update("message", poison)
        assert update is not None
        await dot.wait_for_text(COULD_NOT_HANDLE)

        row = await eventually(partial(dead_row, bot.service.database, update["update_id"]))
        assert row.attempts == 1 and row.handled_at is not None
        assert "NotAnUpdate" in (row.error or "")

        await dot.send_text("/help")
        await dot.wait_for_text("/new")  # the bot goes on
        later = bot.service.clock() + SWEEP_MIN_AGE * 10
        stale = await bot.service.database.run(
            partial(stale_unhandled_updates, channel=CHANNEL, received_before=later)
        )
        assert stale == [], "a dead update is never swept up again"
        assert sum(COULD_NOT_HANDLE in (m.text or "") for m in dot.messages) == 1

        capsys.readouterr()
        assert await inbox_dead(argparse.Namespace(limit=10), bot.service.settings) == 0
        listing = capsys.readouterr().out
        assert f"telegram  {update['update_id']}" in listing
        assert "NotAnUpdate" in listing
        assert "my private words" not in listing


async def dead_row(database: Database, update_id: int) -> InboxUpdate | None:
    row = await inbox_row(database, update_id)
    return row if row is not None and row.dead_at is not None else None


async def test_update_that_keeps_failing_dies_after_three_attempts(database: Database, clock: FrozenClock) -> None:
    attempts: list[int] = []

    async def failing_feed(payload: dict[str, Any]) -> None:
        attempts.append(payload["update_id"])
        raise RuntimeError("boom")

    intake, channel = intake_over(database, clock, failing_feed)
    await database.run(partial(store_updates, channel=CHANNEL, updates=[(5, text_update(5))], now=clock()))
    for attempt in range(1, 5):
        clock.advance(seconds=SWEEP_MIN_AGE.total_seconds() + 1)
        await intake.sweep_unhandled()
        await intake.runtime.drain()
        row = await inbox_row(database, 5)
        assert row is not None
        assert row.attempts == min(attempt, 3)
        assert (row.dead_at is not None) == (attempt >= 3)
    assert attempts == [5, 5, 5], "never tried a fourth time"
    assert row.error == "RuntimeError: boom"
    assert channel.sent == [("4001", SendText(COULD_NOT_HANDLE))], "answered once, when it died"


async def test_update_from_nobody_is_done_with(database: Database, clock: FrozenClock) -> None:
    intake, channel = intake_over(database, clock)
    post = {"update_id": 9, "message": {**text_update(9)["message"], "chat": {"id": -100, "type": "group"}}}
    await intake.take([(9, post)])
    await intake.runtime.drain()
    row = await inbox_row(database, 9)
    assert row is not None and row.handled_at is not None and row.dead_at is None
    assert channel.sent == []


# --- the database is locked -----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def database_locked(database_url: str) -> AsyncIterator[None]:
    """Another connection holds the database so that nobody can write (an EXCLUSIVE lock on the SQLite file)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        holder = sqlite3.connect(str(url.database), isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("LOCK TABLE inbox IN EXCLUSIVE MODE"))
            yield
            await connection.rollback()
    finally:
        await engine.dispose()


async def test_locked_database_gets_a_busy_answer_and_the_update_waits(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url, engine) as bot:
        await bot.service.database.run(make_small_org)
        ann = simulator.user(4301, "Ann", language_code="en")
        li = simulator.user(4302, "李", language_code="zh-hans")
        await ann.send_text("/start")
        choice = await ann.wait_for_text("Choose your street")
        street = next(data for _label, data in choice.buttons() if data)

        async with database_locked(database_url):
            await ann.press(choice, street)
            await li.send_text("/help")
            started = asyncio.get_running_loop().time()
            answer = await ann.wait_for_answer(timeout=5)
            await ann.wait_for_text(BUSY_EN, timeout=5)
            await li.wait_for_text(BUSY_ZH, timeout=5)
            assert asyncio.get_running_loop().time() - started < 5
            assert answer.text is None
            await asyncio.sleep(4)  # long enough for the updates to be fetched again
            assert len(simulator.pending_updates) == 2, "neither update was confirmed to Telegram"
        await ann.wait_for_text("Choose your community", timeout=15)
        await li.wait_for_text("/new", timeout=15)
        assert sum(BUSY_EN in (m.text or "") for m in ann.messages) == 1, "told once, though fetched again"
        assert sum(BUSY_ZH in (m.text or "") for m in li.messages) == 1
