"""The wording every side shares: what handlers and background jobs say about a request, in the reader's language.

Status names, who holds a request, refusals, the timeline, the staff card with its buttons, the resident's
view, the one-line summaries of /tasks and the digest, the verdict question, and the notices that tell staff
and residents of a change. Handlers (``handlers/``) and the scheduler (``bot.scheduler``) both render through
here, so a message reads the same whoever sends it. Callback data built here is handled by
``handlers.tasks`` (``STAFF_PREFIX``) and ``handlers.my_requests`` (``RESIDENT_PREFIX``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from sqlalchemy.orm import Session, object_session

from bot.core import requests as core
from bot.core import team_chats
from bot.core.context import Context
from bot.core.messages import (
    MAX_TEXT,
    Button,
    ButtonPress,
    EditText,
    InlineKeyboard,
    SendPhoto,
    SendText,
    clip,
    inline,
)
from bot.core.requests import Outcome, RequestRefused, Transition, View
from bot.core.router import callback
from bot.core.units import DISTRICT, Unit, holder_name
from bot.core.workdays import calendar_of
from bot.i18n import N_, Translator
from storage.models import EventKind, Level, Person, Request, RequestStatus

STAFF_PREFIX = "rq"
RESIDENT_PREFIX = "my"
CAPTION_LIMIT = 1024

STATUS_LABELS = {
    RequestStatus.NEW: N_("waiting to be accepted"),
    RequestStatus.ACCEPTED: N_("being handled"),
    RequestStatus.RESOLVED: N_("resolved, waiting for your answer"),
    RequestStatus.CLOSED: N_("closed"),
    RequestStatus.WITHDRAWN: N_("withdrawn"),
}
EVENT_LABELS = {
    EventKind.FILED: N_("filed, sent to {unit}"),
    EventKind.ACCEPTED: N_("accepted"),
    EventKind.NOTE: N_("note"),
    EventKind.ESCALATED: N_("reported up to {unit}"),
    EventKind.RETURNED: N_("returned to {unit}"),
    EventKind.REASSIGNED: N_("handed over to {unit}"),
    EventKind.RESOLVED: N_("resolved"),
    EventKind.REOPENED: N_("not fixed, reopened at {unit}"),
    EventKind.CONFIRMED: N_("confirmed by the resident"),
    EventKind.WITHDRAWN: N_("withdrawn"),
    EventKind.CHASED: N_("chased by the resident"),
    EventKind.REMINDED: N_("reminder sent"),
    EventKind.CLOSED: N_("closed"),
    EventKind.JOINED: N_("a neighbour joined (me too)"),
    EventKind.HELP_ASKED: N_("volunteers asked to help"),
    EventKind.HELPED: N_("a volunteer came to help"),
    EventKind.MEETING_DECIDED: N_("the three-party meeting decided"),
    EventKind.MEETING_DONE: N_("the three-party meeting's decision was carried out"),
    EventKind.DISPATCHED: N_("handed to the department {unit}"),
    EventKind.DEPARTMENT_DONE: N_("done by the department, back with {unit}"),
    EventKind.HANDED_BACK: N_("given back by the department to {unit}"),
}
# Events whose actor is not named on the timeline: the text says who (the volunteer's check-in name) or
# what (the meeting's decision and its owner).
UNNAMED_ACTOR_EVENTS = (EventKind.HELPED, EventKind.MEETING_DECIDED, EventKind.MEETING_DONE)
OUTCOME_LABELS = {
    Outcome.FIXED: N_("✅ Fixed"),
    Outcome.PARTLY: N_("🟡 Partly fixed"),
    Outcome.NOT_FIXED: N_("❌ Not fixed"),
}
# Staff notes are working notes between staff; the resident's timeline leaves them out.
STAFF_ONLY_EVENTS = (EventKind.NOTE,)
# The staff card's buttons: label and the code after ``STAFF_PREFIX``.
STAFF_BUTTONS = {
    Transition.ACCEPT: (N_("✅ Accept"), "acc"),
    Transition.RESOLVE: (N_("✔️ Resolve"), "res"),
    Transition.ESCALATE: (N_("⬆️ Escalate"), "esc"),
    Transition.RETURN: (N_("⬇️ Return"), "ret"),
    Transition.NOTE: (N_("📝 Note"), "note"),
    Transition.REASSIGN: (N_("➡️ Reassign"), "mv"),
    Transition.DISPATCH: (N_("🏢 To a department"), "dsp"),
    Transition.DEPARTMENT_DONE: (N_("✔️ Done"), "dd"),
    Transition.HAND_BACK: (N_("↩️ Give back"), "hb"),
}
RESIDENT_BUTTONS = {
    Transition.WITHDRAW: (N_("↩️ Withdraw"), "wd"),
    Transition.CHASE: (N_("⏰ Chase"), "chase"),
}


# --- pieces -------------------------------------------------------------------------------------------------


def refusal_text(t: Translator, error: RequestRefused) -> str:
    params = {
        name: t.date(value) if isinstance(value, datetime) else value for name, value in error.params.items()
    }
    return t._(error.reason).format(**params)


def refuse(ctx: Context, error: RequestRefused) -> None:
    """Tell the person why nothing changed: as an alert for a button press, as a message otherwise."""
    text = refusal_text(ctx.t, error)
    if isinstance(ctx.event, ButtonPress):
        ctx.answer(text, alert=True)
    else:
        ctx.reply(text)


def unit_text(ctx: Context, t: Translator, level: Level | None, unit_id: int | None) -> str:
    return holder_name(ctx.session, t, Unit(level, unit_id or 0) if level is not None else DISTRICT)


def holder_text(ctx: Context, t: Translator, request: Request) -> str:
    """Who holds the request: the person who accepted it, or the holding unit."""
    unit = unit_text(ctx, t, request.level, request.unit_id)
    if request.assignee is not None and request.status is RequestStatus.ACCEPTED:
        return t._("{person} ({unit})").format(person=request.assignee.display_name, unit=unit)
    return unit


def status_text(t: Translator, request: Request) -> str:
    return t._(STATUS_LABELS[request.status])


def due_text(t: Translator, request: Request) -> str:
    """The due date, with the working days it allows when the deployment counts working days:
    "2026年12月8日（5个工作日）"."""
    date_text = t.date(request.due_at)
    session = object_session(request)
    if session is None or calendar_of(session).working_time.round_the_clock:
        return date_text
    days = request.category.due_days
    return t.n_("{date} ({days} working day)", "{date} ({days} working days)", days).format(date=date_text, days=days)


def days_text(t: Translator, session: Session, days: int) -> str:
    """A span of days as the deployment counts deadlines: "5 个工作日", or "5 天" round the clock."""
    if calendar_of(session).working_time.round_the_clock:
        return t.n_("{days} day", "{days} days", days).format(days=days)
    return t.n_("{days} working day", "{days} working days", days).format(days=days)


def where_line(t: Translator, request: Request) -> str:
    """The card's line of where the problem is: a building, a place, or a location in a grid."""
    if request.building is not None:
        return t._("Building: {building}, {address}").format(
            building=request.building.name, address=request.building.address)
    if request.place is not None:
        return t._("Place: {place}, {address}").format(place=request.place.name, address=request.place.address)
    return t._("Grid: {grid} (by the location sent)").format(grid=request.grid.name)


def request_line(t: Translator, request: Request, now: datetime) -> str:
    """One line for a list of held requests (/tasks, the daily digest); overdue ones are marked."""
    marker = "⚠️ " if core.is_overdue(request, now) else ""
    return marker + t._("{code} · {category} · {building} · {status} · due {due}").format(
        code=request.code, category=request.category.name(t.locale), building=core.where_name(request),
        status=status_text(t, request), due=t.date(request.due_at))


def department_line(ctx: Context, t: Translator, request: Request, now: datetime) -> str:
    """One line of department work (/tasks of the street and district): which department, due back when."""
    due = request.department_due_at or request.due_at
    marker = "⚠️ " if now > due else ""
    return marker + t._("{code} · {category} · with {department} · due back {due}").format(
        code=request.code, category=request.category.name(t.locale), department=holder_text(ctx, t, request),
        due=t.date(due))


def open_button(t: Translator, request: Request) -> Button:
    return Button(t._("Open {code}").format(code=request.code), callback(STAFF_PREFIX, "open", request.id))


def verdict_keyboard(t: Translator, request: Request) -> InlineKeyboard:
    """One tap for fixed / partly fixed / not fixed."""
    return inline([Button(t._(OUTCOME_LABELS[outcome]), callback(RESIDENT_PREFIX, "ok", request.id, outcome.value))
                   for outcome in Outcome])


def event_label(ctx: Context, t: Translator, level: Level | None, unit_id: int | None, kind: EventKind) -> str:
    return t._(EVENT_LABELS[kind]).format(unit=unit_text(ctx, t, level, unit_id))


def timeline_text(ctx: Context, t: Translator, request: Request, for_staff: bool, reader: Person | None = None) -> str:
    lines = [t._("Timeline of {code}:").format(code=request.code)]
    for event in core.timeline(ctx.session, request):
        if event.kind in STAFF_ONLY_EVENTS and not for_staff:
            continue
        label = event_label(ctx, t, event.level, event.unit_id, event.kind)
        actor = "" if event.kind in UNNAMED_ACTOR_EVENTS else _actor_name(
            t, request, event.actor, reader or ctx.person, for_staff)
        line = f"• {t.datetime(event.at)} — {label}"
        if actor:
            line += f" — {actor}"
        if event.text and event.kind not in (EventKind.CONFIRMED, EventKind.REOPENED):
            # The system's reasons ("no response", "overdue") are message ids, shown in the reader's language;
            # a closure's text is always such a reason, whoever closed it ("solved on the spot").
            text = t._(event.text) if event.actor is None or event.kind is EventKind.CLOSED else event.text
            line = t._("{entry}: {text}").format(entry=line, text=text)
        lines.append(line)
    return clip("\n".join(lines))


def _actor_name(t: Translator, request: Request, actor: Person | None, reader: Person, for_staff: bool) -> str:
    """Who did it, as ``reader`` may know: staff see names (unless the filer hid theirs); residents see staff
    by name, themselves as "you", and other residents only as the resident or a neighbour."""
    if actor is None:
        return t._("system")
    is_filer = actor.id == request.resident_id
    if for_staff:
        return t._("the resident") if is_filer and request.hide_identity else actor.display_name
    if actor.id == reader.id:
        return t._("you")
    if is_filer:
        return t._("the resident")
    return actor.display_name if actor.roles else t._("a neighbour")


# --- the resident's view ------------------------------------------------------------------------------------


def resident_view(ctx: Context, request: Request, reader: Person | None = None) -> tuple[str, InlineKeyboard | None]:
    """The request as the filer and neighbours who joined see it, with what the core offers the reader (the
    sender unless given).

    Only the filer reads their own words; a neighbour who joined sees the category and the progress."""
    reader = reader or ctx.person
    t = ctx.translator_for(reader)
    own = reader.id == request.resident_id
    description = request.description if own else t._("You joined this request (me too).")
    head = t._("{code} · {category}\n{description}\nStatus: {status}\nWith: {holder}\nDue by: {due}").format(
        code=request.code, category=request.category.name(t.locale), description=description,
        status=status_text(t, request), holder=holder_text(ctx, t, request), due=due_text(t, request),
    )
    buttons = [
        Button(t._(RESIDENT_BUTTONS[action][0]), callback(RESIDENT_PREFIX, RESIDENT_BUTTONS[action][1], request.id))
        for action in core.resident_actions(request, reader, ctx.now)
    ]
    text = head + "\n\n" + timeline_text(ctx, t, request, for_staff=False, reader=reader)
    return clip(text), inline(buttons) if buttons else None


def show_resident_view(ctx: Context, request: Request) -> None:
    """The resident's view as a reply, kept up to date as the request changes."""
    text, keyboard = resident_view(ctx, request)
    ctx.send(ctx.person, SendText(text, keyboard, shows_request=request.id))


# --- the staff card -----------------------------------------------------------------------------------------


def card_text(ctx: Context, t: Translator, request: Request, headline: str = "") -> str:
    lines = [headline] if headline else []
    lines += [
        t._("{code} · {category}").format(code=request.code, category=request.category.name(t.locale)),
        request.description,
        where_line(t, request),
    ]
    if request.latitude is not None and request.longitude is not None:
        lines.append(t._("Location: {latitude:.5f}, {longitude:.5f}").format(
            latitude=request.latitude, longitude=request.longitude))
    lines.append(_resident_line(t, request))
    lines.append(t._("Status: {status} · with {holder}").format(
        status=status_text(t, request), holder=holder_text(ctx, t, request)))
    due = t._("Due by: {due}").format(due=due_text(t, request))
    lines.append(due + (" ⚠️ " + t._("overdue") if core.is_overdue(request, ctx.now) else ""))
    if request.supporters:
        same = (t.n_("{count} more person reported the same", "{count} more people reported the same",
                     request.supporters) if request.place_id is not None
                else t.n_("{count} neighbour reported the same", "{count} neighbours reported the same",
                          request.supporters))
        lines.append(same.format(count=request.supporters))
    return "\n".join(lines)


def _resident_line(t: Translator, request: Request) -> str:
    if request.hide_identity:
        return t._("Resident: asked to stay anonymous")
    return t._("Resident: {name}").format(name=request.resident.display_name)


def card_keyboard(t: Translator, request: Request, reader: Person | None = None) -> InlineKeyboard:
    """The card's buttons: what ``reader`` may do now (what staff of the holding unit could, when not given)."""
    moves = core.available_transitions(request) if reader is None else core.staff_actions(request, reader)
    buttons = [
        Button(t._(STAFF_BUTTONS[transition][0]), callback(STAFF_PREFIX, STAFF_BUTTONS[transition][1], request.id))
        for transition in moves
    ]
    if reader is not None and core.may_ask_volunteers(reader, request):
        buttons.append(Button(t._("🙋 Ask volunteers"), callback(STAFF_PREFIX, "help", request.id)))
    buttons.append(Button(t._("🕓 Timeline"), callback(STAFF_PREFIX, "tl", request.id)))
    return inline(buttons[:3], buttons[3:])


def send_cards(ctx: Context, people: Iterable[Person], request: Request, headline: str = "", **params: object) -> None:
    """The request card for each of ``people`` in their language, with the resident's photos."""
    _send_cards(ctx, people, request, headline, params, group=False)


def _send_cards(ctx: Context, people: Iterable[Person], request: Request, headline: str,
                params: dict[str, object], group: bool) -> None:
    """Cards for team chats (``group``) carry the buttons of the holding unit's staff, whoever of them
    presses."""
    photos = [photo.file_id for photo in request.photos if not photo.from_handler]
    for person in people:
        t = ctx.translator_for(person)
        title = t._(headline).format(code=request.code, **params) if headline else ""
        keyboard = card_keyboard(t, request, None if group else person)
        text = clip(card_text(ctx, t, request, title))
        if photos and len(text) <= CAPTION_LIMIT:
            ctx.send(person, SendPhoto(photos[0], text, keyboard, shows_request=request.id))
            for photo in photos[1:]:
                ctx.send(person, SendPhoto(photo))
            continue
        for photo in photos:
            ctx.send(person, SendPhoto(photo))
        ctx.send(person, SendText(text, keyboard, shows_request=request.id))


def post_to_team_chat(ctx: Context, request: Request, headline: str = "", **params: object) -> None:
    """The card in the group of the unit now holding the request, if it has one (``bot.core.team_chats``)."""
    _send_cards(ctx, team_chats.chats_of_holder(ctx.session, request), request, headline, params, group=True)


def card_reader(ctx: Context) -> Person | None:
    """Whose buttons a card edited in answer to a press shows: the presser's, or in a team chat those of the
    holding unit's staff (whoever of them presses next)."""
    return None if ctx.group is not None else ctx.person


def refresh_cards(ctx: Context, request: Request) -> None:
    """Edit every message people hold that shows the request to how it stands now, each with the buttons of
    what its reader may still do; staff whose units no longer cover it are told so instead. A message this
    update already edits (the one whose button was pressed) is left to the handler."""
    edited = {(person.id, action.message_id) for person, action in ctx.outgoing if isinstance(action, EditText)}
    for shown in core.messages_showing(ctx.session, request):
        person = shown.person
        if (person.id, shown.message_id) in edited:
            continue
        t = ctx.translator_for(person)
        chat_unit = team_chats.unit_of_chat(ctx.session, person)
        view = core.view_of(ctx.session, person, request) if chat_unit is None else None
        keyboard: InlineKeyboard | None = None
        if chat_unit is not None and chat_unit == (request.level, request.unit_id):
            text, keyboard = card_text(ctx, t, request), card_keyboard(t, request)
        elif view is View.STAFF:
            text, keyboard = card_text(ctx, t, request), card_keyboard(t, request, person)
        elif view is View.RESIDENT:
            text, keyboard = resident_view(ctx, request, person)
        else:
            text = t._("{code} is no longer with your unit.").format(code=request.code)
        limit = CAPTION_LIMIT if shown.media else MAX_TEXT
        ctx.send(person, EditText(shown.message_id, clip(text, limit), keyboard, media=shown.media, quiet=True))


# --- telling people of a change -----------------------------------------------------------------------------


def tell(ctx: Context, people: Iterable[Person], render: Callable[[Translator], str]) -> None:
    """Send text rendered in each recipient's own language."""
    for person in people:
        ctx.send(person, SendText(clip(render(ctx.translator_for(person)))))


def tell_resident(ctx: Context, request: Request, render: Callable[[Translator], str]) -> None:
    tell(ctx, [request.resident], render)


def tell_supporters(ctx: Context, request: Request, render: Callable[[Translator], str]) -> None:
    tell(ctx, core.supporters_of(ctx.session, request), render)


# The card's headline for a request's new holders after each move staff make (in the chat or on the desk), and
# what the residents the core names are told of it.
HANDED_OVER = N_("➡️ {code} was handed over to your unit.")
REPORTED_UP = N_("⬆️ {code} was reported up to you: {text}")
REPORTED_UP_NEWS = N_("{code} was reported up to {holder}, who will handle it now.")
RETURNED_DOWN = N_("⬇️ {code} was returned to you: {text}")
RETURNED_DOWN_NEWS = N_("{code} was returned to {holder} with instructions.")
DISPATCHED = N_("🏢 {code} was handed to your department: {text}")


def announce_move(ctx: Context, change: core.Change, card_headline: str, resident_news: str, **params: object) -> None:
    """A request moved: its new holders get the card under ``card_headline``, the residents the core named are
    told ``resident_news`` (both message ids filled with the code, ``holder``, ``due`` and ``params``)."""
    request = change.request
    refresh_cards(ctx, request)
    send_cards(ctx, change.notify, request, card_headline, **params)
    post_to_team_chat(ctx, request, card_headline, **params)
    tell(ctx, change.residents, lambda tr: tr._(resident_news).format(
        code=request.code, holder=holder_text(ctx, tr, request), due=due_text(tr, request), **params))


def ask_resident_verdict(ctx: Context, request: Request, note: str, photo_id: str | None) -> None:
    """After a resolution: what was done, and one tap for fixed / partly fixed / not fixed."""
    resident = request.resident
    t = ctx.translator_for(resident)
    worker = request.assignee.display_name if request.assignee is not None else ""
    text = t._("{code} was resolved by {worker}: {note}\nIs it fixed?").format(
        code=request.code, worker=worker, note=note
    )
    keyboard = verdict_keyboard(t, request)
    if photo_id:
        ctx.send(resident, SendPhoto(photo_id, clip(text, CAPTION_LIMIT), keyboard))
    else:
        ctx.send(resident, SendText(clip(text), keyboard))
    tell_supporters(
        ctx, request, lambda tr: tr._("{code}, which you joined, was resolved: {note}").format(
            code=request.code, note=note)
    )


def notify_staff_text(ctx: Context, people: Iterable[Person], request: Request, message: str,
                      **params: object) -> None:
    """A short notice to staff, each in their language, with a button to open the request."""
    for person in people:
        t = ctx.translator_for(person)
        ctx.send(person, SendText(clip(t._(message).format(code=request.code, **params)),
                                  inline([open_button(t, request)])))


# --- volunteers asked to help with a request ----------------------------------------------------------------

HELP_PREFIX = "vl:hp"


def help_callback(request: Request) -> str:
    return f"{HELP_PREFIX}:{request.id}"


def help_request_text(ctx: Context, t: Translator, request: Request, worker: str, need: str) -> str:
    """What a volunteer is asked: the category and the building, never the resident or their words."""
    return t._("🙋 {worker} asks volunteers to help with {code} ({category}) at {building}: {need}").format(
        worker=worker, code=request.code, category=request.category.name(t.locale), building=core.where_name(request),
        need=need)
