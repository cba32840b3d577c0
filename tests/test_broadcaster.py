"""The broadcast worker against a scripted channel: retries, 429 pauses, blocked people, cancel, resume."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Awaitable, Callable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.broadcaster import BroadcastWorker
from bot.core.broadcasts import cancel_broadcast
from bot.core.context import CoreConfig
from bot.core.messages import Action, Delivery, EditText, SendText
from bot.core.outbox import OutboxSender
from storage.database import Database
from storage.models import Broadcast, BroadcastRecipient, BroadcastStatus, Person, RecipientStatus
from tests.broadcast_setup import ADMIN_ID, NOTICE, Deployment, make_deployment, queue_broadcast
from tests.org_fixture import NOW


class ScriptedChannel:
    """Answers each chat from a script (then succeeds), recording every call and when it was made."""

    name = "telegram"

    def __init__(self) -> None:
        self.script: dict[str, list[Delivery]] = defaultdict(list)
        self.calls: list[tuple[float, str, Action]] = []
        self.answers: list[tuple[float, str, Delivery]] = []
        self.on_call: Callable[[int], Awaitable[None]] | None = None
        self._message_ids = iter(range(1, 10**9))

    async def perform(self, chat_id: str, action: Action) -> Delivery:
        self.calls.append((time.monotonic(), chat_id, action))
        if self.on_call is not None:
            await self.on_call(len(self.calls))
        planned = self.script[chat_id]
        delivery = planned.pop(0) if planned else Delivery(ok=True, message_id=next(self._message_ids))
        self.answers.append((time.monotonic(), chat_id, delivery))
        return delivery

    def delivered_notices(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for (_at, chat, action), (_done, _chat, delivery) in zip(self.calls, self.answers, strict=True):
            if action == SendText(NOTICE) and delivery.ok:
                counts[chat] += 1
        return counts


def make_worker(database: Database, channel: ScriptedChannel, rate: float = 1000, **options: float) -> BroadcastWorker:
    outbox = OutboxSender(database, {"telegram": channel}, rate=rate)
    return BroadcastWorker(database, outbox, CoreConfig(), retry_delay=0.001, **options)  # type: ignore[arg-type]


async def statuses(database: Database) -> dict[RecipientStatus, int]:
    def count(session: Session) -> dict[RecipientStatus, int]:
        result: dict[RecipientStatus, int] = defaultdict(int)
        for status in session.scalars(select(BroadcastRecipient.status)):
            result[status] += 1
        return dict(result)

    return await database.run(count)


async def setup(database: Database, residents: int) -> tuple[Deployment, int]:
    deployment = await make_deployment(database, residents)
    return deployment, await queue_broadcast(database, deployment)


async def test_transient_errors_are_retried_and_blocked_people_counted(database: Database) -> None:
    deployment, _id = await setup(database, 10)
    first, second, third = (str(user_id) for user_id in deployment.resident_ids[:3])
    channel = ScriptedChannel()
    channel.script[first] = [Delivery(ok=False, error="502"), Delivery(ok=False, error="timeout")]
    channel.script[second] = [Delivery(ok=False, blocked=True, error="403")]
    channel.script[third] = [Delivery(ok=False, permanent=True, error="chat not found")]
    worker = make_worker(database, channel)
    assert await worker.deliver_next()
    assert await statuses(database) == {RecipientStatus.SENT: 8, RecipientStatus.BLOCKED: 1, RecipientStatus.FAILED: 1}
    delivered = channel.delivered_notices()
    assert delivered[first] == 1 and second not in delivered and third not in delivered
    broadcast = await database.run(lambda s: s.scalars(select(Broadcast)).one())
    counts = (broadcast.sent, broadcast.blocked, broadcast.failed)
    assert broadcast.status is BroadcastStatus.FINISHED and counts == (8, 1, 1)
    assert broadcast.finished_at is not None
    unreachable = await database.run(lambda s: s.scalars(select(Person.external_id).where(Person.unreachable)).all())
    assert unreachable == [second]
    # The progress message the worker sent turns into the summary; no second copy follows.
    to_author = [action for _at, chat, action in channel.calls if chat == str(ADMIN_ID)]
    summaries = [a for a in to_author if isinstance(a, SendText | EditText) and "is done" in a.text]
    assert len(summaries) == 1 and isinstance(summaries[0], EditText) and "Blocked the bot: 1" in summaries[0].text


async def test_retry_after_pauses_every_send(database: Database) -> None:
    deployment, _id = await setup(database, 40)
    limited = str(deployment.resident_ids[5])
    channel = ScriptedChannel()
    channel.script[limited] = [Delivery(ok=False, retry_after=0.3, error="429")]
    worker = make_worker(database, channel)
    await worker.deliver_next()
    (refused_at,) = [at for at, chat, delivery in channel.answers if delivery.retry_after]
    later_calls = [at for at, _chat, _action in channel.calls if at > refused_at]
    assert later_calls and min(later_calls) >= refused_at + 0.29
    assert channel.delivered_notices()[limited] == 1
    assert worker.stats.retry_after_answers == 1
    assert (await statuses(database)) == {RecipientStatus.SENT: 40}


async def test_cancel_is_honoured_between_batches(database: Database) -> None:
    _deployment, broadcast_id = await setup(database, 50)
    channel = ScriptedChannel()

    async def cancel_at_seventh_call(number: int) -> None:
        if number == 7:  # the 1st call posts the progress message; this is the 6th recipient
            def cancel(session: Session) -> None:
                admin = session.scalars(select(Person).where(Person.external_id == str(ADMIN_ID))).one()
                cancel_broadcast(session, admin, broadcast_id, NOW)

            await database.run(cancel)

    channel.on_call = cancel_at_seventh_call
    # One sender, so the order of calls is fixed: with several, the batches they take at once before the
    # cancel commits would all still go, and the bound below would depend on the database's timing.
    worker = make_worker(database, channel, batch_size=5, senders=1)
    await worker.deliver_next()
    # The worker reads the status while a batch is out, so at most the batch after the cancel still goes.
    sent = (await statuses(database))[RecipientStatus.SENT]
    assert sent in (10, 15)
    broadcast = await database.run(lambda s: s.get_one(Broadcast, broadcast_id))
    assert broadcast.status is BroadcastStatus.CANCELLED and broadcast.finished_at is not None
    assert broadcast.sent == sent
    texts = [a.text for _at, _chat, a in channel.calls if isinstance(a, (SendText, EditText))]
    assert any(f"was cancelled; {50 - sent} people did not get it" in text for text in texts)
    assert not await worker.deliver_next()  # nothing left to do


async def test_resumes_with_recipients_not_yet_sent(database: Database) -> None:
    deployment, broadcast_id = await setup(database, 30)

    def sent_before_restart(session: Session) -> None:
        first_ids = list(session.scalars(select(BroadcastRecipient.id).order_by(BroadcastRecipient.id).limit(12)))
        session.execute(
            update(BroadcastRecipient).where(BroadcastRecipient.id.in_(first_ids)).values(status=RecipientStatus.SENT)
        )
        session.execute(update(Broadcast).values(sent=12))

    await database.run(sent_before_restart)
    channel = ScriptedChannel()
    await make_worker(database, channel).deliver_next()
    delivered = channel.delivered_notices()
    assert sorted(delivered) == sorted(str(user_id) for user_id in deployment.resident_ids[12:])
    broadcast = await database.run(lambda s: s.get_one(Broadcast, broadcast_id))
    assert broadcast.sent == 30


async def test_progress_message_is_edited_while_sending(database: Database) -> None:
    await setup(database, 60)
    channel = ScriptedChannel()
    worker = make_worker(database, channel, rate=200, batch_size=10, progress_interval=0.05)
    await worker.deliver_next()
    edits = [a for _at, chat, a in channel.calls if chat == str(ADMIN_ID) and isinstance(a, EditText)]
    assert worker.stats.progress_edits >= 2
    assert any("Remaining:" in edit.text for edit in edits)
