"""People: finding the sender of an update, their roles and the units they answer for."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, joinedload

from bot.core.messages import Sender
from bot.i18n import negotiate_locale
from storage.models import Person

# Built once (every update runs it). Roles in the same statement (their own SELECT otherwise): nearly every update
# asks who is staff.
_SENDER = (
    select(Person)
    .where(Person.channel == bindparam("sender_channel"), Person.external_id == bindparam("sender_external_id"))
    .options(joinedload(Person.roles))
)


def find_or_register_person(session: Session, sender: Sender, default_locale: str, now: datetime) -> Person:
    """The person behind ``sender``, created at first contact with a language from their chat client."""
    person = session.scalars(
        _SENDER, {"sender_channel": sender.channel, "sender_external_id": sender.external_id}
    ).unique().first()
    if person is None:
        person = Person(
            channel=sender.channel,
            external_id=sender.external_id,
            chat_id=sender.chat_id,
            display_name=sender.display_name[:200],
            locale=negotiate_locale(sender.language_code, default_locale),
            state_data={},
            created_at=now,
        )
        session.add(person)
        session.flush()
        return person
    if person.locale is None:
        # Staff added from the command line before they ever wrote: take their client's language now.
        person.locale = negotiate_locale(sender.language_code, default_locale)
    if not person.display_name and sender.display_name:
        person.display_name = sender.display_name[:200]
    if person.unreachable:
        # Writing to the bot undoes an earlier block. Assigned only when it changes: a person with no change of
        # their own pending has their conversation state written by one small UPDATE (``write_state``).
        person.unreachable = False
    return person
