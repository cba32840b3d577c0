"""A person's data rights through the core: the notice once, /mydata, erasure with a confirmation, and the
retention job that prunes handled updates and sent messages."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from bot.cli import main
from bot.core import requests as core
from bot.core.bulletin import Month, compute_bulletin
from bot.core.messages import Incoming, SendDocument, parse_command
from bot.core.privacy import (
    ERASED_CHANNEL,
    ERASED_TEXT,
    ErasureRefused,
    erase_person,
    prune_inbox_batch,
    prune_outbox_batch,
)
from bot.core.scheduler import JobKind, SchedulerConfig
from bot.core.units import DISTRICT
from bot.scheduler import run_due_jobs
from storage.database import Database
from storage.models import (
    Base,
    InboxUpdate,
    OutboxMessage,
    OutboxStatus,
    Person,
    Rating,
    Request,
    RequestEvent,
    RequestPhoto,
    RequestStatus,
    RequestSupporter,
    Role,
    StaffRole,
)
from tests.harness import CoreChat, FakePerson
from tests.test_lifecycle_core import bind, data_of, file_request, last_with_button, make_org_with_staff, staff_writes

NOTICE_ZH = "隐私说明"
NOTICE_EN = "Privacy notice"


def notices(person: FakePerson, marker: str = NOTICE_ZH) -> int:
    return sum(marker in message.text for message in person.messages)


async def person_row(database: Database, user_id: int) -> Person | None:
    query = select(Person).where(Person.channel == "telegram", Person.external_id == str(user_id))
    return await database.run(lambda s: s.scalars(query).first())


async def export_of(chat: CoreChat, person: FakePerson) -> dict[str, Any]:
    """Send /mydata and return the exported file's JSON (the chat shows only its name)."""
    command = parse_command("/mydata")
    assert command is not None
    deliveries = await chat.core.handle(Incoming("telegram", 10_000 + len(person.messages), person.sender, command))
    await chat.deliver_all(deliveries)
    documents = [d.action for d in deliveries if isinstance(d.action, SendDocument)]
    assert len(documents) == 1 and documents[0].file_name.endswith(".json")
    exported: dict[str, Any] = json.loads(documents[0].content.decode("utf-8"))
    return exported


# --- the notice -------------------------------------------------------------------------------------------


async def test_notice_is_shown_once_at_first_contact_and_again_with_privacy(
    database: Database, chat: CoreChat
) -> None:
    await make_org_with_staff(database)
    li = chat.person(1001, "李居民", "zh-hans")
    await chat.text(li, "/start")
    assert NOTICE_ZH in li.messages[0].text and "30天" in li.messages[0].text and "/deletemydata" in li.messages[0].text
    assert "欢迎" in li.messages[1].text  # the greeting follows
    await chat.text(li, "/help")
    await bind(chat, li)
    assert notices(li) == 1
    assert (await person_row(database, 1001)).privacy_notice_at == chat.clock.now  # type: ignore[union-attr]

    await chat.text(li, "/privacy")
    assert notices(li) == 2 and NOTICE_ZH in li.last.text


async def test_notice_comes_first_whatever_the_first_message_is(database: Database, chat: CoreChat) -> None:
    await make_org_with_staff(database)
    ann = chat.person(1002, "Ann", "en")
    await chat.text(ann, "hello?")
    assert NOTICE_EN in ann.messages[0].text and "30 days" in ann.messages[0].text
    assert len(ann.messages) >= 2
    wang = chat.person(2001, "Wang Worker", "en")  # staff are people too
    await chat.text(wang, "/privacy")
    assert notices(wang, NOTICE_EN) == 1
    await chat.text(wang, "/tasks")
    assert notices(wang, NOTICE_EN) == 1


# --- /mydata ------------------------------------------------------------------------------------------------


async def two_neighbours_with_requests(chat: CoreChat) -> tuple[FakePerson, FakePerson]:
    """Li and Mei in the same building, each with a request, each supporting the other's."""
    await make_org_with_staff(chat.database)
    chat.person(2001, "Wang Worker", "en")
    li, mei = chat.person(1001, "李居民", "zh-hans"), chat.person(1077, "梅邻居", "zh-hans")
    await bind(chat, li)
    await bind(chat, mei)
    await file_request(chat, li, description="LI-WORDS 楼道堆满纸箱", photos=("photo-li",))
    await file_request(chat, mei, description="MEI-WORDS 飞线充电", photos=("photo-mei",), category=2)

    def join_each_other(session: Session) -> None:
        people = {p.external_id: p for p in session.scalars(select(Person))}
        core.join_request(session, people["1077"], 1, chat.clock.now)
        core.join_request(session, people["1001"], 2, chat.clock.now)

    await chat.database.run(join_each_other)
    return li, mei


async def test_mydata_shows_a_summary_and_exports_own_data_and_nothing_of_a_neighbour(
    database: Database, chat: CoreChat
) -> None:
    li, _mei = await two_neighbours_with_requests(chat)
    exported = await export_of(chat, li)
    summary = li.find("我们保存的您的数据")
    assert "李居民" in summary.text and "建设路12号院1号楼" in summary.text and "已提交诉求1件" in summary.text
    assert "附议（我也遇到）的诉求1件" in summary.text
    assert summary.button("删除我的数据").startswith("pv:ask")

    assert exported["person"]["name"] == "李居民" and exported["person"]["chat_id"] == "1001"
    assert exported["person"]["building"]["code"] == "DG-JS-01-B1"
    [own] = exported["requests"]
    assert own["code"] == "R-000001" and "LI-WORDS" in own["description"]
    assert own["photos"] == [{"file_id": "photo-li", "sent_by": "you"}]
    assert {"what": "joined", "by": "another resident"}.items() <= own["events"][-1].items()
    assert exported["supported_requests"] == [
        {"code": "R-000002", "category": "飞线充电", "status": "new", "joined_at": exported["exported_at"]}
    ]
    whole = json.dumps(exported, ensure_ascii=False)
    for neighbour in ("MEI-WORDS", "photo-mei", "梅邻居", "1077"):
        assert neighbour not in whole


# --- erasure ------------------------------------------------------------------------------------------------


async def resolved_and_rated(chat: CoreChat, li: FakePerson, wang: FakePerson) -> None:
    """Li's request 1 resolved by the worker, confirmed fixed, 4 stars and a comment."""
    await chat.press(wang, data_of(last_with_button(wang, "rq:acc:1"), "rq:acc:1"))
    await staff_writes(chat, wang, "rq:res:1", "Cleared the stairwell")
    verdict = last_with_button(li, "my:ok:1:fixed")
    await chat.press(li, data_of(verdict, "my:ok:1:fixed"), verdict)
    await chat.press(li, data_of(verdict, "my:star:1:4"), verdict)
    await chat.text(li, "LI-COMMENT 很及时")


async def ask_to_delete(chat: CoreChat, person: FakePerson) -> str:
    await chat.text(person, "/deletemydata")
    return data_of(person.last, "pv:yes:")


async def test_deletion_after_confirmation_anonymises_requests_kept_for_the_bulletin(
    database: Database, chat: CoreChat
) -> None:
    li, mei = await two_neighbours_with_requests(chat)
    await resolved_and_rated(chat, li, chat.people["2001"])
    month, area = Month(2026, 11), DISTRICT
    before = await database.run(lambda s: compute_bulletin(s, area, month, "Asia/Shanghai").totals)
    old = await person_row(database, 1001)
    assert old is not None and before.counts.received == 2 and before.counts.ratings == 1

    await chat.text(li, "/mydata")
    await chat.press(li, data_of(li.find("我们保存的您的数据"), "pv:ask"))
    warning = li.last
    assert "无法撤销" in warning.text and "1件诉求" in warning.text
    await chat.press(li, warning.button("确认永久删除"), warning)
    assert "已删除" in warning.text and warning.buttons() == []  # the warning is replaced, its buttons gone

    def load(session: Session) -> dict[str, Any]:
        request = session.get(Request, 1)
        assert request is not None
        tombstone = session.get(Person, request.resident_id)
        assert tombstone is not None
        return {
            "request": (request.status, request.description, request.latitude, request.longitude,
                        request.hide_identity, request.building.code, request.category.code),
            "tombstone": (tombstone.channel, tombstone.display_name, tombstone.chat_id, tombstone.building_id,
                          tombstone.id),
            "photos": [p.file_id for p in session.scalars(select(RequestPhoto).where(RequestPhoto.request_id == 1))],
            "rating": tuple(session.execute(select(Rating.outcome, Rating.stars, Rating.comment)).one()),
            "texts": list(session.scalars(select(RequestEvent.text).where(RequestEvent.actor_id == tombstone.id))),
            "supports": list(session.scalars(select(RequestSupporter.request_id)
                                             .where(RequestSupporter.person_id == tombstone.id))),
            "supporters_of_2": session.get(Request, 2).supporters,  # type: ignore[union-attr]
            "outbox": session.scalar(select(func.count()).select_from(OutboxMessage)
                                     .where(OutboxMessage.person_id == tombstone.id)),
        }

    after = await database.run(load)
    assert after["request"] == (RequestStatus.CLOSED, ERASED_TEXT, None, None, True, "DG-JS-01-B1", "clutter")
    assert after["tombstone"] == (ERASED_CHANNEL, "", "", None, old.id)
    assert after["photos"] == [] and after["rating"] == ("fixed", 4, None)
    assert all(text == "" for text in after["texts"]) and after["texts"]
    assert after["supports"] == [] and after["supporters_of_2"] == 0 and after["outbox"] == 0
    figures = await database.run(lambda s: compute_bulletin(s, area, month, "Asia/Shanghai").totals)
    assert figures == before

    # The chat starts afresh: a new person, the notice again, asked for the building.
    fresh = await person_row(database, 1001)
    assert fresh is not None and fresh.id != old.id and fresh.display_name == "" and fresh.building_id is None
    shown = notices(li)
    await chat.text(li, "/start")
    assert notices(li) == shown + 1
    assert any(data.startswith("bind:s:") for message in li.messages[-3:] for _label, data in message.buttons())
    # The neighbour's data is untouched.
    await chat.text(mei, "/my")
    assert "R-000002" in mei.last.text


async def test_staff_still_handle_an_open_request_whose_filer_deleted_their_data(
    database: Database, chat: CoreChat
) -> None:
    li, _mei = await two_neighbours_with_requests(chat)
    wang = chat.people["2001"]
    await chat.press(li, await ask_to_delete(chat, li))
    await chat.press(wang, "rq:open:1", wang.last)
    card = wang.last
    assert "R-000001" in card.text and "anonymous" in card.text and ERASED_TEXT in card.text
    assert "LI-WORDS" not in card.text and "李居民" not in card.text
    await chat.press(wang, card.button("Accept"), card)
    assert (await database.run(lambda s: s.get(Request, 1).status)) is RequestStatus.ACCEPTED  # type: ignore[union-attr]


async def test_a_forged_stale_or_second_confirmation_deletes_nothing(database: Database, chat: CoreChat) -> None:
    li, mei = await two_neighbours_with_requests(chat)
    confirm = await ask_to_delete(chat, li)

    await chat.press(mei, confirm, mei.last)  # Mei forges Li's button
    assert "失效" in mei.answers[-1].text and mei.answers[-1].alert
    await chat.press(li, confirm.rsplit(":", 1)[0] + ":0123456789abcdef")  # a guessed token
    assert "失效" in li.answers[-1].text
    chat.clock.advance(minutes=16)
    await chat.press(li, confirm)  # too late
    assert "失效" in li.answers[-1].text
    for user_id in (1001, 1077):
        row = await person_row(database, user_id)
        assert row is not None and row.display_name and row.building_id is not None
    assert (await database.run(lambda s: s.get(Request, 1).description)).startswith("LI-WORDS")  # type: ignore[union-attr]

    confirm = await ask_to_delete(chat, li)
    warning = li.last
    await chat.press(li, confirm, warning)
    await chat.press(li, confirm, warning)  # a double press reaches a fresh person with nothing to confirm
    assert "失效" in li.answers[-1].text
    tombstones = await database.run(
        lambda s: s.scalar(select(func.count()).select_from(Person).where(Person.channel == ERASED_CHANNEL))
    )
    assert tombstones == 1


async def test_keeping_my_data_deletes_nothing(database: Database, chat: CoreChat) -> None:
    li, _mei = await two_neighbours_with_requests(chat)
    confirm = await ask_to_delete(chat, li)
    warning = li.last
    await chat.press(li, warning.button("保留我的数据"), warning)
    assert "未删除" in warning.text
    await chat.press(li, confirm, warning)
    assert "失效" in li.answers[-1].text
    row = await person_row(database, 1001)
    assert row is not None and row.display_name == "李居民"


async def test_staff_cannot_delete_themselves(database: Database, chat: CoreChat) -> None:
    await make_org_with_staff(database)
    wang = chat.person(2001, "Wang Worker", "en")
    await chat.text(wang, "/deletemydata")
    assert "administrator" in wang.last.text and wang.last.buttons() == []
    await chat.press(wang, "pv:yes:0123456789abcdef", wang.last)
    assert "no longer valid" in wang.answers[-1].text

    def erase_staff(session: Session) -> None:
        worker = session.scalars(select(Person).where(Person.external_id == "2001")).one()
        with pytest.raises(ErasureRefused):
            erase_person(session, worker, chat.clock.now)

    await database.run(erase_staff)
    row = await person_row(database, 2001)
    assert row is not None and row.display_name == "Wang Worker" and row.roles


async def test_a_resident_made_staff_while_confirming_is_refused(database: Database, chat: CoreChat) -> None:
    org = await make_org_with_staff(database)
    ann = chat.person(1002, "Ann", "en")
    await bind(chat, ann)
    confirm = await ask_to_delete(chat, ann)
    await database.run(lambda s: s.add(StaffRole(person_id=s.scalars(select(Person.id).where(
        Person.external_id == "1002")).one(), role=Role.WORKER, unit_id=org.grid)))
    await chat.press(ann, confirm)
    assert "administrator" in ann.answers[-1].text
    row = await person_row(database, 1002)
    assert row is not None and row.display_name == "Ann"


# --- retention ----------------------------------------------------------------------------------------------

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
OLD, RECENT = NOW - timedelta(days=31), NOW - timedelta(days=29)


def seed_rows(session: Session) -> None:
    person = Person(channel="telegram", external_id="1", chat_id="1", display_name="x", state_data={},
                    created_at=OLD)
    session.add(person)
    session.flush()
    inbox = [
        ("old-handled", 1, OLD, OLD), ("recent-handled", 2, RECENT, RECENT), ("old-unhandled", 3, OLD, None),
    ]
    session.add_all(InboxUpdate(channel="telegram", update_id=update_id, payload={"what": what},
                                received_at=received, handled_at=handled)
                    for what, update_id, received, handled in inbox)
    outbox = [
        (OutboxStatus.SENT, OLD), (OutboxStatus.FAILED, OLD), (OutboxStatus.PENDING, OLD), (OutboxStatus.SENT, RECENT),
        (OutboxStatus.HELD, OLD), (OutboxStatus.HELD, RECENT),
    ]
    session.add_all(OutboxMessage(person_id=person.id, action={"status": status.value}, status=status,
                                  created_at=at, not_before=at, sent_at=at if status is OutboxStatus.SENT else None)
                    for status, at in outbox)


async def remaining(database: Database) -> tuple[set[int], list[tuple[OutboxStatus, datetime]]]:
    def load(session: Session) -> tuple[set[int], list[tuple[OutboxStatus, datetime]]]:
        inbox = set(session.scalars(select(InboxUpdate.update_id)))
        outbox = session.execute(select(OutboxMessage.status, OutboxMessage.created_at).order_by(OutboxMessage.id))
        return inbox, [(status, at) for status, at in outbox]

    return await database.run(load)


async def test_retention_prunes_old_handled_updates_and_sent_messages_and_keeps_the_rest(
    database: Database,
) -> None:
    await database.run(seed_rows)
    config = SchedulerConfig(retention_days=30)
    report = await run_due_jobs(database, NOW, config)
    assert report.done[JobKind.RETENTION] == 4  # one update, three messages
    inbox, outbox = await remaining(database)
    assert inbox == {2, 3}  # recent, and the one never handled
    assert outbox == [(OutboxStatus.PENDING, OLD), (OutboxStatus.SENT, RECENT), (OutboxStatus.HELD, RECENT)]

    # Once a day: later the same day nothing runs, the next day the recent rows have aged.
    assert (await run_due_jobs(database, NOW + timedelta(hours=3), config)).done[JobKind.RETENTION] == 0
    await run_due_jobs(database, NOW + timedelta(days=1, hours=1), config)
    inbox, outbox = await remaining(database)
    assert inbox == {3} and outbox == [(OutboxStatus.PENDING, OLD)]


async def test_retention_follows_the_setting(database: Database) -> None:
    await database.run(seed_rows)
    await run_due_jobs(database, NOW, SchedulerConfig(retention_days=60))
    inbox, outbox = await remaining(database)
    assert inbox == {1, 2, 3} and len(outbox) == 6


async def test_pruning_goes_in_batches(database: Database) -> None:
    def many(session: Session) -> None:
        session.add_all(InboxUpdate(channel="wechat", update_id=n, payload={}, received_at=OLD, handled_at=OLD)
                        for n in range(7))

    await database.run(many)
    cutoff = NOW - timedelta(days=30)
    batches = [await database.run(lambda s: prune_inbox_batch(s, cutoff, limit=3)) for _ in range(4)]
    assert batches == [3, 3, 1, 0]


async def test_pruning_reads_along_an_index(tmp_path: Path) -> None:
    # SQLite's planner is deterministic on empty tables: the plan shows each index, and no table scan.
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/plan.db")
    try:
        async with database.async_engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
        statements: list[tuple[str, Any]] = []

        def plans(session: Session) -> list[str]:
            connection = session.connection()

            def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
                statements.append((statement, parameters))

            event.listen(connection, "before_cursor_execute", record)
            prune_inbox_batch(session, NOW)
            prune_outbox_batch(session, NOW)
            event.remove(connection, "before_cursor_execute", record)
            return [
                " | ".join(str(row[-1]) for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params))
                for sql, params in statements
            ]

        inbox_plan, outbox_plan = await database.run(plans)
    finally:
        await database.dispose()
    assert "USING INDEX ix_inbox_handled_at" in inbox_plan and "SCAN" not in inbox_plan, inbox_plan
    assert "INDEX ix_outbox_pending" in outbox_plan and "SCAN" not in outbox_plan, outbox_plan


def test_gridbot_jobs_run_prunes_with_the_configured_retention(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GRIDBOT_DATABASE_URL", database_url)
    monkeypatch.setenv("GRIDBOT_RETENTION_DAYS", "30")
    monkeypatch.delenv("GRIDBOT_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    assert main(["db", "upgrade"]) == 0

    async def seed() -> None:
        database = Database(database_url)
        try:
            await database.run(seed_rows)
        finally:
            await database.dispose()

    asyncio.run(seed())
    assert main(["jobs", "due", "--at", NOW.isoformat()]) == 0
    assert "retention" in capsys.readouterr().out
    assert main(["jobs", "run", "--at", NOW.isoformat()]) == 0
    assert "retention 4" in capsys.readouterr().out
    assert main(["jobs", "run", "--at", NOW.isoformat()]) == 0
    assert "retention" not in capsys.readouterr().out
