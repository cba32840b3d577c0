"""The scheduler's messages are sent by the outbox loop alone, which claims each row before sending it.

The scheduler writes its rows unclaimed (some wait for the end of the quiet hours) and only wakes the outbox
loop; if it sent them itself as well, another process's loop could claim and send the same rows.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core import requests as core
from bot.core.clock import FrozenClock
from bot.core.messages import Action, Delivery
from bot.core.outbox import OutboxSender, due_deliveries
from bot.core.scheduler import SchedulerConfig
from bot.scheduler import Scheduler
from storage.database import Database
from storage.models import OutboxMessage, OutboxStatus, Person, Role
from tests.org_fixture import NOW, make_small_org, staff


class RecordingChannel:
    name = "telegram"

    def __init__(self) -> None:
        self.sent: list[tuple[str, Action]] = []

    async def perform(self, chat_id: str, action: Action) -> Delivery:
        self.sent.append((chat_id, action))
        return Delivery(ok=True, message_id=len(self.sent))


def file_one(session: Session) -> None:
    org = make_small_org(session)
    staff(session, 2001, "Wang Worker", Role.WORKER, org.grid, "en")
    resident = Person(channel="telegram", external_id="1001", chat_id="1001", display_name="Li", locale="zh_CN",
                      state_data={}, created_at=NOW, building_id=org.building)
    session.add(resident)
    session.flush()
    core.file_request(session, resident, core.Draft(1, "楼道里堆满了纸箱"), NOW)


async def test_scheduler_leaves_sending_to_the_claiming_outbox_loop(database: Database) -> None:
    await database.run(file_one)
    # A day later nobody has accepted the request: the worker is reminded.
    clock = FrozenClock(NOW + timedelta(hours=25))
    channel = RecordingChannel()
    outbox = OutboxSender(database, {"telegram": channel}, clock=clock)
    report = await Scheduler(database, SchedulerConfig(), clock).run_due(outbox)

    assert report.messages >= 1
    assert channel.sent == [], "the scheduler sent rows itself"
    rows = await database.run(lambda s: s.scalars(select(OutboxMessage)).all())
    assert rows and all(row.status is OutboxStatus.PENDING and row.claimed_until is None for row in rows)

    # Two processes' outbox loops look at once: the first claims the rows, the second finds none left.
    first = await database.run(partial(due_deliveries, now=clock()))
    second = await database.run(partial(due_deliveries, now=clock()))
    assert {item.outbox_id for item in first} == {row.id for row in rows}
    assert second == []
