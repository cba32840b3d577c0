"""Keeping the cards of a request current costs one query however many cards people hold."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from storage.database import Database
from storage.models import OutboxMessage, OutboxStatus
from tests.harness import CoreChat
from tests.test_lifecycle_core import bind, data_of, file_request, make_org_with_staff


def deliver_cards(session: Session) -> None:
    """What the outbox does on delivery, for the harness that sends nothing: every card gets a message id."""
    session.execute(update(OutboxMessage).where(OutboxMessage.request_id.is_not(None)).values(
        status=OutboxStatus.SENT, message_id=OutboxMessage.id + 10_000))


def quiet_edits(session: Session) -> list[dict[str, Any]]:
    actions = session.scalars(select(OutboxMessage.action).order_by(OutboxMessage.id))
    return [action for action in actions if action["type"] == "EditText" and action.get("quiet")]


async def test_one_query_finds_every_card_to_edit_after_a_change(database: Database, chat: CoreChat) -> None:
    await make_org_with_staff(database)
    ann, wang = chat.person(1002, "Ann", "en"), chat.person(2001, "Wang Worker", "en")
    await bind(chat, ann)
    await file_request(chat, ann)
    for _ in range(5):  # Wang opens the request again and again: six cards in all
        await chat.text(wang, "/tasks R-000001")
    await database.run(deliver_cards)

    statements: list[str] = []
    engine = database.sync_engine or database.async_engine.sync_engine

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        await chat.press(wang, data_of(wang.last, "rq:acc:"))
    finally:
        event.remove(engine, "before_cursor_execute", seen)

    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT") and "FROM outbox" in s]) == 1
    edits = await database.run(quiet_edits)
    assert len(edits) == 6
    assert all("being handled" in edit["text"] and "rq:acc:" not in str(edit["keyboard"]) for edit in edits)
