"""Finished conversation steps: taking the buttons off a prompt once the person has answered it.

A step answered with a button edits the pressed message. A step answered by sending something (a photo, a
location) has no pressed message, so the prompt is found among the messages last sent to the person, by the
platform message id the outbox recorded.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.messages import EditText, InlineKeyboard, SendText, action_from_json
from storage.models import OutboxMessage, Person

# A WeChat "edit" arrives as a new message: closing a step there would only repeat it.
CHANNELS_WITHOUT_EDITS = frozenset({"wechat"})
# The prompt being answered is among the last few messages sent; older ones were closed when answered.
RECENT_MESSAGES = 5


def edits_in_place(person: Person) -> bool:
    return person.channel not in CHANNELS_WITHOUT_EDITS


def close_last_prompt(session: Session, person: Person, prefix: str) -> EditText | None:
    """The edit that takes the buttons off the latest message sent to ``person`` with ``prefix`` buttons, or
    None when there is none (or the channel cannot edit)."""
    if not edits_in_place(person):
        return None
    rows = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.person_id == person.id, OutboxMessage.message_id.is_not(None))
        .order_by(OutboxMessage.id.desc())
        .limit(RECENT_MESSAGES)
    )
    for row in rows:
        action = action_from_json(row.action)
        if isinstance(action, SendText) and _has_buttons(action.keyboard, prefix) and row.message_id is not None:
            return EditText(row.message_id, action.text)
    return None


def _has_buttons(keyboard: object, prefix: str) -> bool:
    return isinstance(keyboard, InlineKeyboard) and any(
        button.data.startswith(f"{prefix}:") for row in keyboard.rows for button in row
    )
