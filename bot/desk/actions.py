"""What a desk form does to a request: the chat's own use case, then the same messages the chat would send.

Each action runs in one unit of work: the use case of ``bot.core.requests`` checks who acts and changes the
request, and the shared renderers of ``bot.wording`` write the cards, card edits and residents' news into the
outbox in the same transaction. The outbox loop of the bot's process delivers them, so the people concerned
hear of a move made on the desk exactly as of one made in the chat.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from bot.core import requests as core
from bot.core.app import write_outbox
from bot.core.context import Context, CoreConfig
from bot.core.messages import Unsupported
from bot.core.requests import RequestRefused, Transition
from bot.core.units import Unit
from bot.i18n import N_
from bot.wording import (
    DISPATCHED,
    HANDED_OVER,
    REPORTED_UP,
    REPORTED_UP_NEWS,
    RETURNED_DOWN,
    RETURNED_DOWN_NEWS,
    announce_move,
    ask_resident_verdict,
    refresh_cards,
    tell_resident,
)
from storage.models import Level, Person, Priority


class DeskAction(enum.StrEnum):
    ACCEPT = "accept"
    REASSIGN = "reassign"
    DISPATCH = "dispatch"
    ESCALATE = "escalate"
    RETURN = "return"
    NOTE = "note"
    RESOLVE = "resolve"


TRANSITION_OF = {
    DeskAction.ACCEPT: Transition.ACCEPT,
    DeskAction.REASSIGN: Transition.REASSIGN,
    DeskAction.DISPATCH: Transition.DISPATCH,
    DeskAction.ESCALATE: Transition.ESCALATE,
    DeskAction.RETURN: Transition.RETURN,
    DeskAction.NOTE: Transition.NOTE,
    DeskAction.RESOLVE: Transition.RESOLVE,
}
ACTION_OF = {transition: action for action, transition in TRANSITION_OF.items()}
# Said on the request's page after the action went through.
DONE = {
    DeskAction.ACCEPT: N_("You accepted {code}."),
    DeskAction.REASSIGN: N_("{code} was handed over to {holder}."),
    DeskAction.DISPATCH: N_("Done: {code} is now with {holder}."),
    DeskAction.ESCALATE: N_("Done: {code} is now with {holder}."),
    DeskAction.RETURN: N_("Done: {code} is now with {holder}."),
    DeskAction.NOTE: N_("Note added to {code}."),
    DeskAction.RESOLVE: N_("{code} is resolved. We asked the resident whether it is fixed."),
}


@dataclass(frozen=True)
class Form:
    """What the page sent: the text written, the unit chosen to hand it to, the department chosen."""

    text: str = ""
    target: Unit | None = None
    department_id: int | None = None


def parse_target(value: str) -> Unit | None:
    """``grid:12`` -> ``Unit(Level.GRID, 12)``; None for anything else."""
    level, _, unit_id = value.partition(":")
    if level not in {member.value for member in Level} or not unit_id.isdigit():
        return None
    return Unit(Level(level), int(unit_id))


def desk_context(session: Session, person: Person, now: datetime, config: CoreConfig) -> Context:
    """A context for the shared renderers: the staff member acts, but sent nothing the chat would answer."""
    return Context(session=session, person=person, event=Unsupported("desk"), now=now, config=config)


def perform(ctx: Context, action: DeskAction, request_id: int, form: Form) -> None:
    """Do ``action`` as ``ctx.person`` and write what the people concerned are told to the outbox."""
    ACTIONS[action](ctx, request_id, form)
    # Written for the outbox loop, which sends them at once: no update of this process waits to send them.
    write_outbox(ctx.session, ctx.outgoing, ctx.now, not_before=lambda _person: ctx.now, priority=Priority.NOTICE)


def _accept(ctx: Context, request_id: int, _form: Form) -> None:
    request = core.accept(ctx.session, ctx.person, request_id, ctx.now).request
    worker = ctx.person.display_name
    refresh_cards(ctx, request)
    tell_resident(ctx, request, lambda tr: tr._(
        "{code} was accepted by {worker}. You will hear back by {due}.").format(
        code=request.code, worker=worker, due=tr.date(request.due_at)))


def _reassign(ctx: Context, request_id: int, form: Form) -> None:
    if form.target is None:
        raise RequestRefused(N_("Please choose another unit for {code}."), code=core.get_request(
            ctx.session, request_id).code)
    change = core.reassign(ctx.session, ctx.person, request_id, form.target, ctx.now)
    announce_move(ctx, change, HANDED_OVER, "")


def _dispatch(ctx: Context, request_id: int, form: Form) -> None:
    change = core.dispatch(ctx.session, ctx.person, request_id, form.department_id or 0, form.text, ctx.now)
    announce_move(ctx, change, DISPATCHED, "", text=form.text.strip())


def _escalate(ctx: Context, request_id: int, form: Form) -> None:
    change = core.escalate(ctx.session, ctx.person, request_id, form.text, ctx.now)
    announce_move(ctx, change, REPORTED_UP, REPORTED_UP_NEWS, text=form.text.strip())


def _return_down(ctx: Context, request_id: int, form: Form) -> None:
    change = core.return_down(ctx.session, ctx.person, request_id, form.text, ctx.now)
    announce_move(ctx, change, RETURNED_DOWN, RETURNED_DOWN_NEWS, text=form.text.strip())


def _note(ctx: Context, request_id: int, form: Form) -> None:
    core.add_note(ctx.session, ctx.person, request_id, form.text, ctx.now)


def _resolve(ctx: Context, request_id: int, form: Form) -> None:
    request = core.resolve(ctx.session, ctx.person, request_id, form.text, ctx.now).request
    refresh_cards(ctx, request)
    ask_resident_verdict(ctx, request, form.text.strip(), None)


ACTIONS: dict[DeskAction, Callable[[Context, int, Form], None]] = {
    DeskAction.ACCEPT: _accept,
    DeskAction.REASSIGN: _reassign,
    DeskAction.DISPATCH: _dispatch,
    DeskAction.ESCALATE: _escalate,
    DeskAction.RETURN: _return_down,
    DeskAction.NOTE: _note,
    DeskAction.RESOLVE: _resolve,
}
