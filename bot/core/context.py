"""What a handler works with while it handles one update: the session, the sender, and what to send."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, event, inspect, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified, set_committed_value

from bot.core.meetings import MeetingDefaults
from bot.core.messages import (
    MAX_CAPTION,
    MAX_TEXT,
    Action,
    AnswerButton,
    ButtonPress,
    EditText,
    Event,
    InlineKeyboard,
    Keyboard,
    SendDocument,
    SendPhoto,
    SendText,
    clip,
)
from bot.i18n import Translator, translator
from storage.models import Person, table_of


@dataclass(frozen=True)
class CoreConfig:
    """Deployment facts the core needs; built from ``bot.config.Settings``."""

    timezone: str = "Asia/Shanghai"
    default_locale: str = "zh_CN"
    bot_username: str = "gridbot"
    daily_request_limit: int = 10
    # Requests one Open311 partner key may file in 24 hours.
    open311_daily_limit: int = 500
    # Days handled updates and sent messages are kept (the privacy notice tells people).
    retention_days: int = 30
    # Visits each grid worker is to make per day, where the grid sets no target of its own.
    visit_target: int = 8
    meetings: MeetingDefaults = field(default_factory=MeetingDefaults)
    # The desk's public base URL (``GRIDBOT_DESK_URL``) for its sign-in links; None when no desk is served.
    desk_url: str | None = None


@dataclass
class Context:
    session: Session
    person: Person
    event: Event
    now: datetime
    config: CoreConfig
    # (recipient, action) pairs; written to the outbox when the handler returns.
    outgoing: list[tuple[Person, Action]] = field(default_factory=list)
    # The team chat the person wrote or pressed in (``bot.core.team_chats``): answers and edits go there.
    group: Person | None = None

    @property
    def here(self) -> Person:
        """The chat the update came from: the group, or the person's own chat."""
        return self.group if self.group is not None else self.person

    @property
    def t(self) -> Translator:
        """The sender's translator."""
        return self.translator_for(self.person)

    def translator_for(self, person: Person) -> Translator:
        return translator(person.locale or self.config.default_locale, self.config.timezone)

    # --- answering the sender ---------------------------------------------------------------------------

    def reply(self, text: str, keyboard: Keyboard | None = None) -> None:
        self.send(self.here, SendText(clip(text), keyboard))

    def reply_privately(self, text: str, keyboard: Keyboard | None = None) -> None:
        """Answer in the person's own chat, even when they pressed a button in a group (a prompt to write
        something: what they write in a group is not read)."""
        self.send(self.person, SendText(clip(text), keyboard))

    def reply_photo(self, file_id: str, caption: str = "", keyboard: Keyboard | None = None) -> None:
        self.send(self.person, SendPhoto(file_id, clip(caption, 1024), keyboard))

    def reply_document(self, file_name: str, content: bytes, caption: str = "") -> None:
        self.send(self.person, SendDocument(file_name, content.hex(), clip(caption, 1024)))

    def answer(self, text: str = "", alert: bool = False) -> None:
        """Answer the button press being handled (a no-op for other events)."""
        if isinstance(self.event, ButtonPress):
            self.send(self.here, AnswerButton(self.event.callback_id, clip(text, 200), alert))

    def edit(self, text: str, keyboard: InlineKeyboard | None = None) -> None:
        """Replace the message whose button was pressed (its caption, if it shows a photo); falls back to a new
        message."""
        if isinstance(self.event, ButtonPress) and self.event.message_id is not None:
            media = self.event.on_media
            self.send(self.here, EditText(self.event.message_id, clip(text, MAX_CAPTION if media else MAX_TEXT),
                                            keyboard, media=media))
        else:
            self.reply(text, keyboard)

    # --- messages to other people -----------------------------------------------------------------------

    def send(self, recipient: Person, action: Action) -> None:
        self.outgoing.append((recipient, action))

    # --- conversation state -----------------------------------------------------------------------------

    def set_state(self, state: str, **data: Any) -> None:
        """Enter a conversation step; ``data`` is merged into what the person entered so far."""
        self._keep_state(state, {**(self.person.state_data or {}), **data})

    def clear_state(self) -> None:
        self._keep_state(None, {})

    def _keep_state(self, state: str | None, data: dict[str, Any]) -> None:
        # A step sets the state several times, with queries in between: marked as changed, the person would be
        # written by the autoflush before each query. Kept unflushed instead, it is written once, by
        # ``write_state`` (the core, after the handler) or at the latest when the transaction commits.
        set_committed_value(self.person, "state", state)
        set_committed_value(self.person, "state_data", data)
        self.session.info.setdefault(_UNWRITTEN_STATE, set()).add(self.person)

    @property
    def state_data(self) -> dict[str, Any]:
        return dict(self.person.state_data or {})


_UNWRITTEN_STATE = "gridbot.unwritten_state"


_PEOPLE = table_of(Person)
# No ``values()``: the SET clause is the parameters' columns, state and state_data.
_WRITE_STATE = update(_PEOPLE).where(_PEOPLE.c.id == bindparam("state_of_person"))


def write_state(session: Session) -> None:
    """Write the conversation states set in this session, one statement per person."""
    for person in session.info.pop(_UNWRITTEN_STATE, ()):
        # A person rolled back (expired) or taken out of the session has nothing of this session's to write.
        if person not in session or "state" not in person.__dict__ or "state_data" not in person.__dict__:
            continue
        written = inspect(person)
        if written.modified or written.pending:
            # Other changes to the person are pending (or the person itself): marked as changed, the state goes
            # into the same statement.
            flag_modified(person, "state")
            flag_modified(person, "state_data")
        else:
            # Nothing else to write (nearly every update): a fixed UPDATE on the session's connection, which
            # costs a fraction of a unit-of-work flush. The person already holds these values as committed.
            session.connection().execute(
                _WRITE_STATE,
                {"state_of_person": person.id, "state": person.state, "state_data": person.state_data},
            )


@event.listens_for(Session, "before_commit")
def _write_state_before_commit(session: Session) -> None:
    write_state(session)
