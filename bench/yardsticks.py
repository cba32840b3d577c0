"""gridbot against its yardsticks: the same filing conversations fed, in one process and in alternating turns,
to five bots, each run checked, with throughput and process CPU per update.

    python -m bench.yardsticks [--conversations 600] [--lanes 50] [--runs 3] [--quick]

The bots, each with the Bot API replaced by ``bench.harness.NullSession`` (requests still serialised by aiogram,
answers still parsed):

- **echo**: the bare aiogram echo bot of ``bench.harness``: one message back for every update.
- **the limit**: gridbot's per-update work written straight against ``sqlite3`` (stdlib) on a copy of gridbot's
  own database (its schema, indexes and seeded organisation), WAL and ``synchronous=NORMAL`` as gridbot sets
  them, one database thread. Each getUpdates batch is recorded by one multi-row ``INSERT INTO inbox ... ON
  CONFLICT DO NOTHING RETURNING``. Each update is parsed by aiogram's ``Update`` model and handled in one hop
  to the database thread: ``BEGIN``; the claim ``UPDATE inbox SET handled_at = ? WHERE ... AND handled_at IS
  NULL`` (an update claimed before is dropped); the ``SELECT`` of the person joined to building, grid,
  community, street and staff roles (gridbot's statement); the step's own statements (category: the duplicate
  search over open requests of the building and category; confirm: the daily limit's count, the grid's
  workers, ``INSERT`` of the request and of its ``filed`` event, the team chat's lookup); one ``UPDATE people``
  of the conversation state; one multi-row ``INSERT INTO outbox ... RETURNING id`` of the answers; ``COMMIT``.
  The answers are then sent through aiogram (the same Bot API calls gridbot makes: answerCallbackQuery, the
  edit closing the step, the next prompt with its buttons; at confirm the receipt, the menu commands and the
  worker's card) and recorded as sent by one ``UPDATE outbox`` ``executemany`` per group of deliveries.
  Categories and the working-day calendar are read once and kept in memory, as static configuration can be.
  This is what the statements of ``python -m bench.statements`` do, with no ORM and no framework around them.
- **idiomatic peer**: an aiogram bot as its documentation suggests: a middleware opens an ``AsyncSession``
  (aiosqlite) per update and loads the resident, the conversation lives in aiogram's ``MemoryStorage`` FSM,
  handlers send their answers straight away (the same Bot API calls) and the request is stored at confirm
  (a small ORM model set of its own, below). No inbox, no outbox.
- **durable peer**: the same plus an inbox row written with the update and an outbox row holding the answers,
  in the update's transaction; the answers are sent after the commit.
- **gridbot**: the real aiogram engine, runtime, core and outbox (``bench.harness.gridbot_under_test``).

The conversations are those of ``bench.conversation``: residents file one request each in seven steps, ``lanes``
of them at once, each step sent once the previous one was answered. gridbot's first turn is live and recorded;
the other bots are fed that recording. gridbot itself cannot be fed a recording (its Confirm button carries a
token of the draft, so an old summary cannot file a later draft): each of its turns runs the same scripted
residents live on a fresh copy of the same database, which yields the same updates apart from their ids and
that token (the limit and the peers check that Confirm carries one but cannot compare it with a draft of
their own). Every turn starts on a fresh database after a small warm-up and is checked: each conversation's
request exists (echo: every update was answered).

Both peers' SQLite gets the pragmas gridbot sets (WAL, ``synchronous=NORMAL``) and one pooled connection:
SQLite has one writer, and several connections with deferred transactions fail with "database is locked" under
50 concurrent residents instead of waiting. CPU is the whole process's (event loop and database threads,
``time.process_time``) over the measured run, divided by the updates handled.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import json
import secrets
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypedDict, TypeVar

from aiogram import BaseMiddleware, Bot, Dispatcher, F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    TelegramObject,
    Update,
)
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from bench.conversation import Script, in_lanes, replayed
from bench.harness import (
    FIRST_RESIDENT,
    FIRST_WORKER,
    TOKEN,
    BotUnderTest,
    Conversation,
    NullSession,
    Stats,
    bench_settings,
    deployment,
    echo_under_test,
    gridbot_under_test,
    run_scripted,
    sqlite_url,
)
from bot.service import Service, prepare_database
from storage.models import Request

BOTS = ("echo", "limit", "idiomatic", "durable", "gridbot")
LABELS = {
    "echo": "bare aiogram echo",
    "limit": "the limit: gridbot's statements as raw sqlite3, one hop per update",
    "idiomatic": "idiomatic peer: aiogram + AsyncSession per update, FSM in memory, no inbox/outbox",
    "durable": "durable peer: the same plus an inbox row and an outbox row per update",
    "gridbot": "gridbot",
}
# The targets: gridbot at least half of the limit and twice the idiomatic peer.
TARGET_OF_LIMIT = 0.5
TARGET_OF_IDIOMATIC = 2.0
WARMUP = 20


class Sizes(TypedDict, total=False):
    """The sizes of one run of ``measure``."""

    conversations: int
    lanes: int
    runs: int
    warmup: int


FULL = Sizes(conversations=600, lanes=50, runs=3)
QUICK = Sizes(conversations=40, lanes=10, runs=3, warmup=10)  # about 15 s
T = TypeVar("T")
Action = dict[str, Any]


# --- what every filing bot answers, step by step ---------------------------------------------------------------

# The same Bot API calls gridbot makes for each step (texts of about the same length); ``prompt`` is the message
# the step's buttons were on, closed by an edit as gridbot does.
CATEGORY_NAMES = ["违章建筑", "无证经营", "电线私拉", "楼道堆物", "环境卫生", "物业管理", "邻里纠纷", "就业帮扶",
                  "其他"]
MENU = [("new", "提交新诉求"), ("my", "我的诉求"), ("building", "选择我的楼栋"), ("lang", "切换语言"),
        ("privacy", "隐私说明"), ("mydata", "我的数据"), ("cancel", "取消当前操作"), ("help", "帮助")]
PRIVACY = ("🔒 隐私说明：我们保存您的姓名、聊天ID、所住楼栋，以及您提交的诉求（含照片和位置），"
           "以便负责您楼栋的网格员处理。")


def _send(chat_id: int, text: str, buttons: list[tuple[str, str]] | None = None) -> Action:
    return {"type": "send", "chat_id": chat_id, "text": text, "buttons": buttons}


def _close(chat_id: int, callback_id: str, prompt: int, text: str) -> list[Action]:
    return [{"type": "answer", "callback_id": callback_id},
            {"type": "edit", "chat_id": chat_id, "message_id": prompt, "text": f"✔ {text}"}]


def answers(step: str, chat_id: int, callback_id: str, prompt: int, data: dict[str, Any]) -> list[Action]:
    """The answers to one step of the filing conversation; ``data`` is the draft after the step."""
    if step == "new":
        categories = [(name, f"fl:cat:{index + 1}") for index, name in enumerate(CATEGORY_NAMES)]
        return [_send(chat_id, PRIVACY), _send(chat_id, "为1号楼提交新诉求。请问是哪类问题？", categories)]
    if step == "category":
        return [*_close(chat_id, callback_id, prompt, f"类别：{CATEGORY_NAMES[data['category_id'] - 1]}"),
                _send(chat_id, "请简要描述问题（不超过2000个字）。")]
    if step == "description":
        return [_send(chat_id, "可发送最多3张照片，或跳过。", [("跳过", "fl:photos")])]
    if step == "photos":
        return [*_close(chat_id, callback_id, prompt, "照片：0张"),
                _send(chat_id, "具体在哪里？可发送位置，使用楼栋位置，或跳过。",
                      [("📍 使用楼栋位置", "fl:loc:b"), ("跳过", "fl:loc:-")])]
    if step == "location":
        return [*_close(chat_id, callback_id, prompt, "位置：未提供"),
                _send(chat_id, "是否对办理人员隐藏您的姓名？", [("是", "fl:hide:1"), ("否", "fl:hide:0")])]
    if step == "hide":
        return [*_close(chat_id, callback_id, prompt, "隐藏姓名：否"),
                _send(chat_id, _summary(data), [("✅ 确认", f"fl:ok:{data['draft']}"), ("取消", "fl:cancel")])]
    raise ValueError(step)


def confirmed(chat_id: int, callback_id: str, prompt: int, data: dict[str, Any], request_id: int,
              workers: list[int]) -> list[Action]:
    code = f"R-{request_id:06d}"
    card = f"📥 新诉求{code}\n{code} · {CATEGORY_NAMES[data['category_id'] - 1]}\n{data['description']}\n楼栋：1号楼"
    return [
        {"type": "answer", "callback_id": callback_id},
        {"type": "edit", "chat_id": chat_id, "message_id": prompt, "text": _summary(data)},
        _send(chat_id, f"诉求已提交，编号{code}。现由网格员处理，7个工作日内会给您答复。"),
        {"type": "commands", "chat_id": chat_id},
        *(_send(worker, card, [("✅ 受理", f"rq:acc:{request_id}"), ("✔️ 办结", f"rq:res:{request_id}"),
                               ("⬆️ 上报", f"rq:esc:{request_id}")]) for worker in workers),
    ]


def _summary(data: dict[str, Any]) -> str:
    return (f"请核对您的诉求：\n地点：1号楼\n类别：{CATEGORY_NAMES[data['category_id'] - 1]}\n{data['description']}\n"
            "照片：0张\n位置：未提供\n隐藏姓名：否")


async def perform(bot: Bot, action: Action) -> int | None:
    """One answer through aiogram; the message id for the outbox, if the call makes a message."""
    kind = action["type"]
    if kind == "answer":
        await bot.answer_callback_query(action["callback_id"])
        return None
    if kind == "edit":
        await bot.edit_message_text(action["text"], chat_id=action["chat_id"], message_id=action["message_id"])
        return int(action["message_id"])
    if kind == "commands":
        await bot.set_my_commands([BotCommand(command=c, description=d) for c, d in MENU],
                                  scope=BotCommandScopeChat(chat_id=action["chat_id"]))
        return None
    rows = action["buttons"]
    markup = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text=t, callback_data=d) for t, d in rows]]
                                  ) if rows else None
    sent = await bot.send_message(action["chat_id"], action["text"], reply_markup=markup)
    return sent.message_id


@dataclass(frozen=True)
class Step:
    """What the filing bots need of an update: who, which step, and its argument."""

    update_id: int
    user_id: int
    step: str
    argument: str = ""
    callback_id: str = ""
    prompt: int = 0


BUTTON_STEPS = {"cat": "category", "photos": "photos", "loc": "location", "hide": "hide", "ok": "confirm"}
# The state a person must be in for each step, and the state it leaves them in.
STATE_BEFORE = {"category": "filing.category", "description": "filing.description", "photos": "filing.photos",
                "location": "filing.location", "hide": "filing.hide", "confirm": "filing.summary"}
STATE_AFTER = {"new": "filing.category", "category": "filing.description", "description": "filing.photos",
               "photos": "filing.location", "location": "filing.hide", "hide": "filing.summary", "confirm": None}


def step_of(update: Update) -> Step:
    if update.callback_query is not None:
        query = update.callback_query
        _prefix, action, *rest = (query.data or "").split(":")
        prompt = query.message.message_id if query.message is not None else 0
        return Step(update.update_id, query.from_user.id, BUTTON_STEPS[action], rest[0] if rest else "", query.id,
                    prompt)
    assert update.message is not None and update.message.from_user is not None
    text = update.message.text or ""
    return Step(update.update_id, update.message.from_user.id, "new" if text == "/new" else "description", text)


def next_draft(step: Step, draft: dict[str, Any]) -> dict[str, Any]:
    if step.step == "new":
        return {"draft": secrets.token_hex(4), "photos": []}
    if step.step == "category":
        return {**draft, "category_id": int(step.argument)}
    if step.step == "description":
        return {**draft, "description": step.argument}
    if step.step == "location":
        return {**draft, "latitude": None, "longitude": None}
    if step.step == "hide":
        return {**draft, "hide": step.argument == "1"}
    return draft


# --- the limit: gridbot's statements on sqlite3 -----------------------------------------------------------------

CLAIM = "UPDATE inbox SET handled_at = ? WHERE channel = ? AND update_id = ? AND handled_at IS NULL"
PERSON = (
    "SELECT people.id, people.channel, people.external_id, people.chat_id, people.display_name, people.locale, "
    "people.phone, people.building_id, people.unreachable, people.state, people.state_data, people.created_at, "
    "people.privacy_notice_at, people.awaiting_first_message, streets.id, streets.code, streets.name, "
    "communities.id, communities.code, communities.name, communities.street_id, grids.id, grids.code, grids.name, "
    "grids.community_id, grids.visit_target, grids.min_latitude, grids.max_latitude, "
    "grids.min_longitude, grids.max_longitude, buildings.id, buildings.code, buildings.name, buildings.address, "
    "buildings.latitude, buildings.longitude, buildings.grid_id, buildings.active, buildings.search_key, "
    "staff_roles.id, staff_roles.person_id, staff_roles.role, staff_roles.unit_id FROM people "
    "LEFT OUTER JOIN buildings ON buildings.id = people.building_id "
    "LEFT OUTER JOIN grids ON grids.id = buildings.grid_id "
    "LEFT OUTER JOIN communities ON communities.id = grids.community_id "
    "LEFT OUTER JOIN streets ON streets.id = communities.street_id "
    "LEFT OUTER JOIN staff_roles ON people.id = staff_roles.person_id "
    "WHERE people.channel = ? AND people.external_id = ?"
)
DUPLICATES = (
    "SELECT requests.id, requests.description, requests.status, requests.created_at, requests.supporters "
    "FROM requests WHERE requests.building_id = ? AND requests.category_id = ? AND requests.status IN (?, ?) "
    "AND requests.created_at >= ? ORDER BY requests.created_at DESC"
)
FILED_TODAY = "SELECT count(requests.id) FROM requests WHERE requests.resident_id = ? AND requests.created_at > ?"
GRID_WORKERS = (
    "SELECT people.id, people.chat_id FROM people JOIN staff_roles ON staff_roles.person_id = people.id "
    "WHERE staff_roles.role = ? AND staff_roles.unit_id = ? ORDER BY people.id"
)
INSERT_REQUEST = (
    "INSERT INTO requests (resident_id, building_id, place_id, grid_id, category_id, description, latitude, "
    "longitude, hide_identity, status, level, unit_id, assignee_id, created_at, due_at, supporters, remind_at, "
    "escalate_at, overdue_check_at, on_the_spot) VALUES (?, ?, NULL, ?, ?, ?, ?, ?, ?, 'NEW', 'GRID', ?, NULL, ?, "
    "?, 0, ?, ?, ?, 0) RETURNING id"
)
INSERT_EVENT = ("INSERT INTO request_events (request_id, at, actor_id, kind, text, level, unit_id, due_at) "
                "VALUES (?, ?, ?, 'FILED', '', 'GRID', ?, NULL)")
TEAM_CHAT = (
    "SELECT people.id, people.chat_id FROM people JOIN team_chats ON team_chats.chat_person_id = people.id "
    "WHERE team_chats.level = ? AND team_chats.unit_id = ? AND people.unreachable IS 0"
)
SET_STATE = ("UPDATE people SET state = ?, state_data = ?, privacy_notice_at = coalesce(privacy_notice_at, ?) "
             "WHERE id = ?")
OUTBOX_ROW = "(?, ?, 'PENDING', ?, ?, 0, ?, NULL, 1)"
SENT = ("UPDATE outbox SET status = 'SENT', attempts = outbox.attempts + 1, sent_at = ?, message_id = ?, "
        "claimed_until = NULL WHERE outbox.id = ?")
RECORD = ("INSERT INTO inbox (channel, update_id, payload, received_at, attempts) VALUES {rows} "
          "ON CONFLICT DO NOTHING RETURNING update_id")


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")  # as SQLAlchemy stores a naive UTC DATETIME on SQLite


class Limit:
    """gridbot's per-update statements on one ``sqlite3`` connection held by one database thread."""

    def __init__(self, path: Path) -> None:
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=5000"):
            self.connection.execute(f"PRAGMA {pragma}")
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="limit-db")
        # Static configuration, read once: categories' due days and the working-day calendar.
        self.due_days = dict(self.connection.execute("SELECT id, due_days FROM categories"))
        self.calendar = list(self.connection.execute("SELECT day, working FROM calendar_days"))

    async def hop(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.thread, work, self.connection)

    def close(self) -> None:
        self.thread.shutdown()
        self.connection.close()

    @staticmethod
    def record(batch: list[tuple[int, dict[str, Any]]]) -> Callable[[sqlite3.Connection], set[int]]:
        def work(connection: sqlite3.Connection) -> set[int]:
            now = _stamp(datetime.now(UTC))
            values: list[Any] = []
            for update_id, payload in batch:
                values += ["telegram", update_id, json.dumps(payload), now, 0]
            rows = ", ".join(["(?, ?, ?, ?, ?)"] * len(batch))
            connection.execute("BEGIN")
            fresh = {row[0] for row in connection.execute(RECORD.format(rows=rows), values)}
            connection.execute("COMMIT")
            return fresh

        return work

    def handle(self, step: Step) -> Callable[[sqlite3.Connection], list[tuple[int, Action]]]:
        """One update's transaction; the outbox ids and answers to send, none if it was handled before."""

        def work(connection: sqlite3.Connection) -> list[tuple[int, Action]]:
            now = datetime.now(UTC).replace(tzinfo=None)
            stamp = _stamp(now)
            connection.execute("BEGIN")
            try:
                if connection.execute(CLAIM, (stamp, "telegram", step.update_id)).rowcount != 1:
                    connection.execute("ROLLBACK")
                    return []
                rows = connection.execute(PERSON, ("telegram", str(step.user_id))).fetchall()
                person_id, state, state_data = rows[0][0], rows[0][9], json.loads(rows[0][10])
                building_id, grid_id, chat_id = rows[0][30], rows[0][21], int(rows[0][3])
                expected = STATE_BEFORE.get(step.step)
                assert expected is None or state == expected, f"{step.step} in state {state}"
                draft = next_draft(step, state_data)
                if step.step == "category":
                    connection.execute(DUPLICATES, (building_id, draft["category_id"], "NEW", "ACCEPTED",
                                                    _stamp(now - timedelta(days=30)))).fetchall()
                if step.step == "confirm":
                    actions = self._file(connection, person_id, building_id, grid_id, chat_id, step, draft, now)
                    draft = {}
                else:
                    actions = answers(step.step, chat_id, step.callback_id, step.prompt, draft)
                connection.execute(SET_STATE, (STATE_AFTER[step.step], json.dumps(draft), stamp, person_id))
                values: list[Any] = []
                for action in actions:
                    values += [person_id, json.dumps(action), stamp, stamp, None]
                ids = [row[0] for row in connection.execute(
                    "INSERT INTO outbox (person_id, action, status, created_at, not_before, attempts, request_id, "
                    f"claimed_until, priority) VALUES {', '.join([OUTBOX_ROW] * len(actions))} RETURNING id", values)]
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            return list(zip(ids, actions, strict=True))

        return work

    def _file(self, connection: sqlite3.Connection, person_id: int, building_id: int, grid_id: int, chat_id: int,
              step: Step, draft: dict[str, Any], now: datetime) -> list[Action]:
        assert step.argument, "a Confirm button carries its draft's token"
        stamp = _stamp(now)
        (today,) = connection.execute(FILED_TODAY, (person_id, _stamp(now - timedelta(days=1)))).fetchone()
        assert today < 1000, "the daily request limit"
        workers = connection.execute(GRID_WORKERS, ("WORKER", grid_id)).fetchall()
        due = _stamp(now + timedelta(days=self.due_days[draft["category_id"]]))
        (request_id,) = connection.execute(INSERT_REQUEST, (
            person_id, building_id, grid_id, draft["category_id"], draft["description"], None, None,
            bool(draft.get("hide")), grid_id, stamp, due, _stamp(now + timedelta(days=5)),
            _stamp(now + timedelta(days=2)), due)).fetchone()
        connection.execute(INSERT_EVENT, (request_id, stamp, person_id, grid_id))
        connection.execute(TEAM_CHAT, ("GRID", grid_id)).fetchall()
        return confirmed(chat_id, step.callback_id, step.prompt, draft, request_id, [int(w[1]) for w in workers])


class Deliveries:
    """Records sent answers in groups, as gridbot does: while one group is being written the next one gathers;
    each sender returns once its rows are written."""

    def __init__(self, limit: Limit) -> None:
        self.limit = limit
        self.gathering: list[tuple[str, int | None, int]] = []
        self.gathered: asyncio.Future[None] | None = None  # resolves once the gathering group is written
        self.writing = False

    async def sent(self, rows: list[tuple[str, int | None, int]]) -> None:
        if self.gathered is None:
            self.gathered = asyncio.get_running_loop().create_future()
        written = self.gathered
        self.gathering += rows
        if not self.writing:
            self.writing = True
            try:
                while self.gathering and self.gathered is not None:
                    group, future = self.gathering, self.gathered
                    self.gathering, self.gathered = [], None
                    await self.limit.hop(functools.partial(_mark_sent, group=group))
                    future.set_result(None)
            finally:
                self.writing = False
        await written


def _mark_sent(connection: sqlite3.Connection, group: list[tuple[str, int | None, int]]) -> None:
    connection.execute("BEGIN")
    connection.executemany(SENT, group)
    connection.execute("COMMIT")


def tasks_under_test(session: NullSession, handle: Callable[[dict[str, Any]], Awaitable[None]],
                     record: Callable[[list[tuple[int, dict[str, Any]]]], Awaitable[set[int]]] | None = None,
                     ) -> BotUnderTest:
    """A bot that handles each update of a batch in a task of its own (after ``record``, if given, says which
    are fresh). A failing update is still reported done, so the run ends, and ``drain`` raises its error."""
    tasks: set[asyncio.Task[None]] = set()
    errors: list[BaseException] = []
    under_test = BotUnderTest(take=lambda batch: asyncio.sleep(0), drain=lambda: asyncio.sleep(0), session=session)

    async def feed(payload: dict[str, Any]) -> None:
        try:
            await handle(payload)
        except Exception as error:
            errors.append(error)
        finally:
            for done in under_test.on_done:
                done(payload)

    async def take(batch: list[tuple[int, dict[str, Any]]]) -> None:
        fresh = await record(batch) if record is not None else {update_id for update_id, _payload in batch}
        for update_id, payload in batch:
            if update_id in fresh:
                task = asyncio.create_task(feed(payload))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

    async def drain() -> None:
        while tasks:
            await asyncio.gather(*list(tasks))
        if errors:
            raise errors[0]

    under_test.take, under_test.drain = take, drain
    return under_test


def limit_under_test(path: Path) -> tuple[BotUnderTest, Limit]:
    session = NullSession()
    bot = Bot(TOKEN, session=session)
    limit = Limit(path)
    deliveries = Deliveries(limit)

    async def handle(payload: dict[str, Any]) -> None:
        step = step_of(Update.model_validate(payload, context={"bot": bot}))
        outbox = await limit.hop(limit.handle(step))
        sent_at = _stamp(datetime.now(UTC))
        await deliveries.sent([(sent_at, await perform(bot, action), outbox_id) for outbox_id, action in outbox])

    async def record(batch: list[tuple[int, dict[str, Any]]]) -> set[int]:
        return await limit.hop(Limit.record(batch))

    return tasks_under_test(session, handle, record), limit


def _limit_filed(connection: sqlite3.Connection) -> int:
    return int(connection.execute("SELECT count(DISTINCT resident_id) FROM requests").fetchone()[0])


# --- the peers: aiogram as its documentation suggests ---------------------------------------------------------


class PeerBase(DeclarativeBase):
    pass


class Resident(PeerBase):
    __tablename__ = "residents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    telegram_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    name: Mapped[str] = mapped_column(String(200))
    building: Mapped[str] = mapped_column(String(200))
    worker_chat_id: Mapped[int] = mapped_column(BigInteger)


class FiledRequest(PeerBase):
    __tablename__ = "filed_requests"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    category: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text)
    hide_identity: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class InboxRow(PeerBase):
    __tablename__ = "inbox"
    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(DateTime)


class OutboxRow(PeerBase):
    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    update_id: Mapped[int] = mapped_column(BigInteger)
    actions: Mapped[list[Action]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Filing(StatesGroup):
    category = State()
    description = State()
    photos = State()
    location = State()
    hide = State()
    summary = State()


class Answers:
    """Where a peer's handlers put their answers: sent at once (idiomatic) or kept for the outbox (durable)."""

    def __init__(self, bot: Bot, durable: bool) -> None:
        self.bot, self.durable = bot, durable
        self.kept: list[Action] = []

    async def __call__(self, actions: list[Action]) -> None:
        if self.durable:
            self.kept += actions
            return
        for action in actions:
            await perform(self.bot, action)


class SessionMiddleware(BaseMiddleware):
    """An ``AsyncSession`` per update with the resident loaded, committed after the handler; the durable peer
    also writes the update to its inbox and the answers to its outbox in that transaction."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], bot: Bot, durable: bool) -> None:
        self.sessions, self.bot, self.durable = sessions, bot, durable

    async def __call__(self, handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
                       update: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(update, Update)
        user = data["event_from_user"]
        answer = Answers(self.bot, self.durable)
        async with self.sessions() as session:
            now = datetime.now(UTC).replace(tzinfo=None)
            if self.durable:
                session.add(InboxRow(update_id=update.update_id, received_at=now,
                                     payload=update.model_dump(mode="json", exclude_none=True)))
            data["session"], data["answer"] = session, answer
            data["resident"] = await session.scalar(select(Resident).where(Resident.telegram_id == user.id))
            result = await handler(update, data)
            if self.durable:
                session.add(OutboxRow(update_id=update.update_id, actions=answer.kept, created_at=now))
            await session.commit()
        for action in answer.kept:
            await perform(self.bot, action)
        return result


def peer_router() -> Router:
    router = Router()

    async def step(query: CallbackQuery, state: FSMContext, answer: Answers, name: str, after: State) -> None:
        draft = next_draft(Step(0, query.from_user.id, name, (query.data or "").split(":")[-1]), await state.get_data())
        await state.set_data(draft)
        await state.set_state(after)
        prompt = query.message.message_id if query.message is not None else 0
        await answer(answers(name, query.from_user.id, query.id, prompt, draft))

    @router.message(Command("new"))
    async def new(message: Message, state: FSMContext, answer: Answers) -> None:
        draft = next_draft(Step(0, message.chat.id, "new"), {})
        await state.set_state(Filing.category)
        await state.set_data(draft)
        await answer(answers("new", message.chat.id, "", 0, draft))

    @router.callback_query(Filing.category, F.data.startswith("fl:cat:"))
    async def category(query: CallbackQuery, state: FSMContext, answer: Answers) -> None:
        await step(query, state, answer, "category", Filing.description)

    @router.message(Filing.description)
    async def description(message: Message, state: FSMContext, answer: Answers) -> None:
        draft = next_draft(Step(0, message.chat.id, "description", message.text or ""), await state.get_data())
        await state.set_data(draft)
        await state.set_state(Filing.photos)
        await answer(answers("description", message.chat.id, "", 0, draft))

    @router.callback_query(Filing.photos, F.data == "fl:photos")
    async def photos(query: CallbackQuery, state: FSMContext, answer: Answers) -> None:
        await step(query, state, answer, "photos", Filing.location)

    @router.callback_query(Filing.location, F.data.startswith("fl:loc:"))
    async def location(query: CallbackQuery, state: FSMContext, answer: Answers) -> None:
        await step(query, state, answer, "location", Filing.hide)

    @router.callback_query(Filing.hide, F.data.startswith("fl:hide:"))
    async def hide(query: CallbackQuery, state: FSMContext, answer: Answers) -> None:
        await step(query, state, answer, "hide", Filing.summary)

    @router.callback_query(Filing.summary, F.data.startswith("fl:ok:"))
    async def confirm(query: CallbackQuery, state: FSMContext, answer: Answers, session: AsyncSession,
                      resident: Resident) -> None:
        assert (query.data or "").removeprefix("fl:ok:"), "a Confirm button carries its draft's token"
        draft = await state.get_data()
        request = FiledRequest(resident_id=resident.id, category=draft["category_id"],
                               description=draft["description"], hide_identity=bool(draft.get("hide")),
                               created_at=datetime.now(UTC).replace(tzinfo=None))
        session.add(request)
        await session.flush()  # the receipt names the request's number
        await state.clear()
        prompt = query.message.message_id if query.message is not None else 0
        await answer(confirmed(query.from_user.id, query.id, prompt, draft, request.id, [resident.worker_chat_id]))

    return router


@contextlib.asynccontextmanager
async def peer_under_test(path: Path, residents: list[int], durable: bool,
                          ) -> AsyncIterator[tuple[BotUnderTest, AsyncEngine]]:
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}", pool_size=1, max_overflow=0)
    event.listen(engine.sync_engine, "connect", _peer_pragmas)
    async with engine.begin() as connection:
        await connection.run_sync(PeerBase.metadata.create_all)
        await connection.execute(insert(Resident), [
            {"telegram_id": user_id, "name": f"R{user_id}", "building": "1号楼", "worker_chat_id": FIRST_WORKER}
            for user_id in residents
        ])
    session = NullSession()
    bot = Bot(TOKEN, session=session)
    dispatcher = Dispatcher(storage=MemoryStorage())
    dispatcher.update.outer_middleware(SessionMiddleware(async_sessionmaker(engine, expire_on_commit=False), bot,
                                                         durable))
    dispatcher.include_router(peer_router())

    async def handle(payload: dict[str, Any]) -> None:
        await dispatcher.feed_update(bot, Update.model_validate(payload, context={"bot": bot}))

    try:
        yield tasks_under_test(session, handle), engine
    finally:
        await engine.dispose()


def _peer_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


async def _peer_filed(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return await connection.scalar(select(func.count(func.distinct(FiledRequest.resident_id)))) or 0


# --- turns ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    bot: str
    run: int
    rate: float  # updates handled per second
    cpu_ms: float  # process CPU per update


@dataclass
class Recording:
    warmup: list[list[dict[str, Any]]]
    measured: list[list[dict[str, Any]]]

    def scripts(self, warmup: bool) -> list[Script]:
        return [replayed(lane) for lane in (self.warmup if warmup else self.measured) if lane]


@dataclass
class YardsticksResult:
    conversations: int
    lanes: int
    runs: int
    turns: list[Turn] = field(default_factory=list)

    def median_rate(self, bot: str) -> float:
        return statistics.median(t.rate for t in self.turns if t.bot == bot)

    def median_cpu(self, bot: str) -> float:
        return statistics.median(t.cpu_ms for t in self.turns if t.bot == bot)

    def ratio(self, bot: str, of: str) -> float:
        return self.median_rate(bot) / self.median_rate(of)

    def cpu_ratio(self, bot: str, of: str) -> float:
        """``bot``'s throughput over ``of``'s as their CPU per update predicts it."""
        return self.median_cpu(of) / self.median_cpu(bot)


async def _measured(under_test: BotUnderTest, scripts: list[Script]) -> tuple[Stats, float]:
    gc.collect()
    started = time.process_time()
    stats = await run_scripted(under_test, scripts)
    return stats, (time.process_time() - started) * 1000 / max(stats.steps, 1)


class Yardsticks:
    def __init__(self, directory: Path, conversations: int, lanes: int, warmup: int) -> None:
        self.directory, self.conversations, self.lanes, self.warmup = directory, conversations, lanes, warmup
        self.template = directory / "template.db"
        self.residents = [FIRST_RESIDENT + index for index in range(warmup + conversations)]
        self.recording: Recording | None = None
        self.copies = 0

    async def build_template(self) -> None:
        async with deployment(sqlite_url(self.directory, self.template.name), len(self.residents)) as deployed:
            assert deployed.residents == self.residents
        with contextlib.closing(sqlite3.connect(self.template)) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def fresh_copy(self) -> Path:
        self.copies += 1
        path = self.directory / f"turn{self.copies}.db"
        shutil.copyfile(self.template, path)
        return path

    async def turn(self, bot: str, run: int) -> Turn:
        stats, cpu_ms = await getattr(self, f"_{bot}")()
        return Turn(bot, run, stats.rate, cpu_ms)

    async def _gridbot(self) -> tuple[Stats, float]:
        service = Service.from_settings(bench_settings(sqlite_url(self.directory, self.fresh_copy().name)))
        try:
            await prepare_database(service.database)
            under_test = gridbot_under_test(service)
            people = [Conversation(user_id, under_test.session) for user_id in self.residents]
            warm: list[list[dict[str, Any]]] = [[] for _ in range(self.lanes)]
            await run_scripted(under_test, in_lanes(people[: self.warmup], min(self.lanes, self.warmup), warm))
            record: list[list[dict[str, Any]]] = [[] for _ in range(self.lanes)]
            result = await _measured(under_test, in_lanes(people[self.warmup:], self.lanes, record))
            filed = await service.database.run(_gridbot_filed)
        finally:
            await service.database.dispose()
        # A bot that quickly answers "sorry, something went wrong" would make a worthless benchmark.
        assert filed == len(self.residents), f"gridbot: {filed} requests filed by {len(self.residents)} residents"
        if self.recording is None:
            self.recording = Recording(warm, record)
        return result

    def _replayed(self) -> Recording:
        assert self.recording is not None, "gridbot's first turn records the updates the others are fed"
        return self.recording

    async def _echo(self) -> tuple[Stats, float]:
        under_test = echo_under_test()
        await run_scripted(under_test, self._replayed().scripts(warmup=True))
        before = under_test.session.calls
        stats, cpu_ms = await _measured(under_test, self._replayed().scripts(warmup=False))
        assert under_test.session.calls - before == stats.steps, "echo: an update went unanswered"
        return stats, cpu_ms

    async def _limit(self) -> tuple[Stats, float]:
        under_test, limit = limit_under_test(self.fresh_copy())
        try:
            await run_scripted(under_test, self._replayed().scripts(warmup=True))
            result = await _measured(under_test, self._replayed().scripts(warmup=False))
            filed = await limit.hop(_limit_filed)
        finally:
            limit.close()
        assert filed == len(self.residents), f"the limit: {filed} requests filed by {len(self.residents)} residents"
        return result

    async def _idiomatic(self) -> tuple[Stats, float]:
        return await self._peer(durable=False)

    async def _durable(self) -> tuple[Stats, float]:
        return await self._peer(durable=True)

    async def _peer(self, durable: bool) -> tuple[Stats, float]:
        self.copies += 1
        path = self.directory / f"peer{self.copies}.db"
        async with peer_under_test(path, self.residents, durable) as (under_test, engine):
            await run_scripted(under_test, self._replayed().scripts(warmup=True))
            result = await _measured(under_test, self._replayed().scripts(warmup=False))
            filed = await _peer_filed(engine)
        name = "durable" if durable else "idiomatic"
        assert filed == len(self.residents), f"{name} peer: {filed} requests filed by {len(self.residents)} residents"
        return result


def _gridbot_filed(session: Session) -> int:
    return session.scalar(select(func.count(func.distinct(Request.resident_id)))) or 0


def turn_order(run: int) -> tuple[str, ...]:
    """gridbot first in the first run (its turn records what the others are fed), then alternating."""
    return tuple(reversed(BOTS)) if run % 2 == 0 else BOTS


async def measure(conversations: int, lanes: int, runs: int, warmup: int = WARMUP,
                  progress: Callable[[str], None] | None = None) -> YardsticksResult:
    result = YardsticksResult(conversations, lanes, runs)
    with tempfile.TemporaryDirectory(prefix="gridbot-yardsticks-") as directory:
        yardsticks = Yardsticks(Path(directory), conversations, lanes, warmup)
        await yardsticks.build_template()
        for run in range(runs):
            for bot in turn_order(run):
                turn = await yardsticks.turn(bot, run)
                result.turns.append(turn)
                if progress is not None:
                    progress(f"run {run + 1} {bot:<10} {turn.rate:>8,.0f} updates/s {turn.cpu_ms:>6.2f} CPU ms/update")
    return result


def describe(result: YardsticksResult) -> str:
    lines = [
        f"{result.conversations} conversations x {Conversation.STEPS} steps, {result.lanes} residents at once, "
        f"{result.runs} interleaved runs; medians",
        f"{'bot':<10} {'updates/s':>10} {'CPU ms/update':>14}   runs (updates/s)",
    ]
    for bot in BOTS:
        runs = ", ".join(f"{t.rate:,.0f}" for t in result.turns if t.bot == bot)
        lines.append(f"{bot:<10} {result.median_rate(bot):>10,.0f} {result.median_cpu(bot):>14.2f}   {runs}")
    lines += [
        f"gridbot / limit     {result.ratio('gridbot', 'limit'):.3f} (target >= {TARGET_OF_LIMIT})",
        f"gridbot / idiomatic {result.ratio('gridbot', 'idiomatic'):.3f} (target >= {TARGET_OF_IDIOMATIC})",
        f"gridbot / durable   {result.ratio('gridbot', 'durable'):.3f}",
        f"limit / echo        {result.ratio('limit', 'echo'):.3f}",
        # Throughput on a busy machine swings with the neighbours; CPU per update hardly does, and on two cores
        # with the GIL shared by the event loop and the database thread it bounds throughput (1 / CPU).
        "by CPU per update (the other's CPU / gridbot's): "
        f"limit {result.cpu_ratio('gridbot', 'limit'):.3f}, idiomatic {result.cpu_ratio('gridbot', 'idiomatic'):.3f}, "
        f"durable {result.cpu_ratio('gridbot', 'durable'):.3f}",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=600)
    parser.add_argument("--lanes", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a small run for CI (under 30 s)")
    args = parser.parse_args()
    sizes = QUICK if args.quick else Sizes(conversations=args.conversations, lanes=args.lanes, runs=args.runs)
    result = asyncio.run(measure(**sizes, progress=lambda line: print(line, flush=True)))
    print(describe(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
