"""Messages to staff added before they ever wrote to the bot (Telegram cannot reach them yet) are held, then
delivered after one line saying how many arrived, the first time they write."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.app import PendingDelivery, not_opened_yet, write_outbox
from bot.core.messages import SendText
from bot.core.outbox import due_deliveries
from bot.core.staff import add_staff
from storage.database import Database
from storage.models import OutboxMessage, OutboxStatus, Person, Role
from tests.harness import CoreChat
from tests.org_fixture import NOW, make_small_org

WORKER_ID = 7001


def _statuses(session: Session) -> list[OutboxStatus]:
    return list(session.scalars(select(OutboxMessage.status).order_by(OutboxMessage.id)))


async def test_messages_to_staff_who_never_wrote_wait_for_their_first_message(
    database: Database, chat: CoreChat
) -> None:
    def add_worker_and_write_to_them(session: Session) -> list[PendingDelivery]:
        make_small_org(session)
        worker = add_staff(session, str(WORKER_ID), Role.WORKER, "DG-JS-01", "王网格", NOW).person
        cards = write_outbox(session, [(worker, SendText("card 1")), (worker, SendText("card 2"))], NOW)
        digest = write_outbox(session, [(worker, SendText("digest"))], NOW, not_before=lambda _person: NOW)
        return cards + digest

    assert await database.run(add_worker_and_write_to_them) == []
    assert await database.run(_statuses) == [OutboxStatus.HELD] * 3
    assert await database.run(lambda session: due_deliveries(session, NOW)) == []
    assert await database.run(not_opened_yet) == {str(WORKER_ID)}

    worker = chat.person(WORKER_ID, "王网格")
    await chat.text(worker, "/start")

    assert worker.texts()[-4:] == ["您不在时收到了3条消息：", "card 1", "card 2", "digest"]
    assert OutboxStatus.HELD not in await database.run(_statuses)
    assert await database.run(not_opened_yet) == set()

    shown = len(worker.texts())
    await chat.text(worker, "/start")
    assert "您不在时收到了3条消息：" not in worker.texts()[shown:]


async def test_someone_who_has_written_gets_messages_at_once(database: Database, chat: CoreChat) -> None:
    def write_to_resident(session: Session) -> list[PendingDelivery]:
        resident = session.scalars(select(Person).where(Person.external_id == "8001")).one()
        return write_outbox(session, [(resident, SendText("news"))], NOW)

    resident = chat.person(8001)
    await chat.text(resident, "/start")
    assert len(await database.run(write_to_resident)) == 1
    assert "您不在时收到了" not in "".join(resident.texts())
