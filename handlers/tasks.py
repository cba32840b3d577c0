"""The staff side of a request: the card every holder receives, /tasks, and accepting, noting, resolving,
escalating, returning and reassigning.

Also the wording every side shares (status names, who holds a request, refusals, the timeline) and the
messages the resident receives when staff move their request; ``handlers.my_requests`` and
``handlers.filing`` use them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bot.core import requests as core
from bot.core.context import Context
from bot.core.messages import (
    Button,
    ButtonPress,
    Command,
    InlineKeyboard,
    Photo,
    SendPhoto,
    SendText,
    Text,
    clip,
    inline,
)
from bot.core.requests import Outcome, RequestRefused, Transition
from bot.core.router import Router, button_args, callback
from bot.core.units import DISTRICT, Unit, holder_name
from bot.i18n import N_, Translator
from handlers.callback_codes import LEVEL_BY_CODE, LEVEL_CODES
from handlers.menu import is_staff, show_main_menu
from storage.models import EventKind, Level, Person, Request, RequestStatus

router = Router()

PREFIX = "rq"
RESIDENT_PREFIX = "my"  # the resident's buttons, handled in handlers.my_requests
CAPTION_LIMIT = 1024

# --- wording shared by every side ---------------------------------------------------------------------------


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
}
OUTCOME_LABELS = {
    Outcome.FIXED: N_("✅ Fixed"),
    Outcome.PARTLY: N_("🟡 Partly fixed"),
    Outcome.NOT_FIXED: N_("❌ Not fixed"),
}
# Staff notes are working notes between staff; the resident's timeline leaves them out.
STAFF_ONLY_EVENTS = (EventKind.NOTE,)


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


def timeline_text(ctx: Context, t: Translator, request: Request, for_staff: bool) -> str:
    lines = [t._("Timeline of {code}:").format(code=request.code)]
    for event in core.timeline(ctx.session, request):
        if event.kind in STAFF_ONLY_EVENTS and not for_staff:
            continue
        label = t._(EVENT_LABELS[event.kind]).format(unit=unit_text(ctx, t, event.level, event.unit_id))
        actor = _actor_name(t, request, event.actor, for_staff)
        line = f"• {t.datetime(event.at)} — {label}"
        if actor:
            line += f" — {actor}"
        if event.text and event.kind not in (EventKind.CONFIRMED, EventKind.REOPENED):
            # The system's reasons ("no response", "overdue") are message ids, shown in the reader's language.
            text = t._(event.text) if event.actor is None else event.text
            line += f": {text}"
        lines.append(line)
    return clip("\n".join(lines))


def _actor_name(t: Translator, request: Request, actor: Person | None, for_staff: bool) -> str:
    if actor is None:
        return t._("system")
    is_resident = actor.id == request.resident_id
    if is_resident and for_staff and request.hide_identity:
        return t._("the resident")
    if is_resident and not for_staff:
        return t._("you")
    return actor.display_name


# --- telling the resident (and neighbours who joined) -------------------------------------------------------


def tell_resident(
    ctx: Context, request: Request, render: Callable[[Translator], str], with_supporters: bool = False
) -> None:
    """Send text rendered in each recipient's own language; supporters get the same news."""
    ctx.send(request.resident, SendText(clip(render(ctx.translator_for(request.resident)))))
    if with_supporters:
        tell_supporters(ctx, request, render)


def ask_resident_verdict(ctx: Context, request: Request, note: str, photo_id: str | None) -> None:
    """After a resolution: what was done, and one tap for fixed / partly fixed / not fixed."""
    resident = request.resident
    t = ctx.translator_for(resident)
    worker = request.assignee.display_name if request.assignee is not None else ""
    text = t._("{code} was resolved by {worker}: {note}\nIs it fixed?").format(
        code=request.code, worker=worker, note=note
    )
    keyboard = inline(
        [Button(t._(OUTCOME_LABELS[outcome]), callback(RESIDENT_PREFIX, "ok", request.id, outcome.value))
         for outcome in Outcome]
    )
    if photo_id:
        ctx.send(resident, SendPhoto(photo_id, clip(text, 1024), keyboard))
    else:
        ctx.send(resident, SendText(clip(text), keyboard))
    tell_supporters(
        ctx, request, lambda tr: tr._("{code}, which you joined, was resolved: {note}").format(
            code=request.code, note=note)
    )


def tell_supporters(ctx: Context, request: Request, render: Callable[[Translator], str]) -> None:
    for supporter in core.supporters_of(ctx.session, request):
        ctx.send(supporter, SendText(clip(render(ctx.translator_for(supporter)))))


def notify_staff_text(ctx: Context, people: list[Person], request: Request, message: str, **params: object) -> None:
    """A short notice to staff, each in their language, with a button to open the request."""
    for person in people:
        t = ctx.translator_for(person)
        keyboard = inline([Button(t._("Open {code}").format(code=request.code),
                                  callback(PREFIX, "open", request.id))])
        ctx.send(person, SendText(clip(t._(message).format(code=request.code, **params)), keyboard))


# --- the staff card -------------------------------------------------------------------------------------------

BUTTONS = {
    Transition.ACCEPT: (N_("✅ Accept"), "acc"),
    Transition.RESOLVE: (N_("✔️ Resolve"), "res"),
    Transition.ESCALATE: (N_("⬆️ Escalate"), "esc"),
    Transition.RETURN: (N_("⬇️ Return"), "ret"),
    Transition.NOTE: (N_("📝 Note"), "note"),
    Transition.REASSIGN: (N_("➡️ Reassign"), "mv"),
}
ACTION_OF_CODE = {code: transition for transition, (_label, code) in BUTTONS.items()}
# What staff are asked to write after pressing a button that needs a text.
TEXT_PROMPTS = {
    Transition.NOTE: N_("Write the note for {code}, or /cancel."),
    Transition.RESOLVE: N_("What was done for {code}? Write it, or send a photo with a caption. /cancel to stop."),
    Transition.ESCALATE: N_("Why does {code} need the level above? Write the reason, or /cancel."),
    Transition.RETURN: N_("What should the level below do with {code}? Write the instruction, or /cancel."),
}


def card_text(ctx: Context, t: Translator, request: Request, headline: str = "") -> str:
    building = request.building
    lines = [headline] if headline else []
    lines += [
        t._("{code} · {category}").format(code=request.code, category=request.category.name(t.locale)),
        request.description,
        t._("Building: {building}, {address}").format(building=building.name, address=building.address),
    ]
    if request.latitude is not None and request.longitude is not None:
        lines.append(t._("Location: {latitude:.5f}, {longitude:.5f}").format(
            latitude=request.latitude, longitude=request.longitude))
    lines.append(_resident_line(t, request))
    lines.append(t._("Status: {status} · with {holder}").format(
        status=status_text(t, request), holder=holder_text(ctx, t, request)))
    due = t._("Due by: {due}").format(due=t.date(request.due_at))
    lines.append(due + (" ⚠️ " + t._("overdue") if core.is_overdue(request, ctx.now) else ""))
    if request.supporters:
        lines.append(t.n_("{count} neighbour reported the same", "{count} neighbours reported the same",
                          request.supporters).format(count=request.supporters))
    return "\n".join(lines)


def _resident_line(t: Translator, request: Request) -> str:
    if request.hide_identity:
        return t._("Resident: asked to stay anonymous")
    resident = request.resident
    return t._("Resident: {name}, phone: {phone}").format(
        name=resident.display_name, phone=resident.phone or t._("not given"))


def card_keyboard(t: Translator, request: Request) -> InlineKeyboard:
    buttons = [
        Button(t._(BUTTONS[transition][0]), callback(PREFIX, BUTTONS[transition][1], request.id))
        for transition in core.available_transitions(request)
    ]
    buttons.append(Button(t._("🕓 Timeline"), callback(PREFIX, "tl", request.id)))
    return inline(buttons[:3], buttons[3:])


def send_cards(ctx: Context, people: list[Person], request: Request, headline: str = "", **params: object) -> None:
    """The request card for each of ``people`` in their language, with the resident's photos."""
    photos = [photo.file_id for photo in request.photos if not photo.from_handler]
    for person in people:
        t = ctx.translator_for(person)
        title = t._(headline).format(code=request.code, **params) if headline else ""
        text, keyboard = clip(card_text(ctx, t, request, title)), card_keyboard(t, request)
        if photos and len(text) <= CAPTION_LIMIT:
            ctx.send(person, SendPhoto(photos[0], text, keyboard))
            for photo in photos[1:]:
                ctx.send(person, SendPhoto(photo))
            continue
        for photo in photos:
            ctx.send(person, SendPhoto(photo))
        ctx.send(person, SendText(text, keyboard))


# --- /tasks ---------------------------------------------------------------------------------------------------


@router.command("tasks")
def list_tasks(ctx: Context) -> None:
    t = ctx.t
    if not is_staff(ctx.person):
        show_main_menu(ctx, t._("This is for grid workers and staff only."))
        return
    args = ctx.event.args if isinstance(ctx.event, Command) else ""
    if args:
        _open_by_code(ctx, args)
        return
    held = core.held_requests(ctx.session, ctx.person)
    if not held:
        show_main_menu(ctx, t._("Nothing is waiting for your unit. Well done."))
        return
    lines = [t._("Requests your unit holds, the most urgent first:")]
    for request in held:
        marker = "⚠️ " if core.is_overdue(request, ctx.now) else ""
        lines.append(marker + t._("{code} · {category} · {building} · {status} · due {due}").format(
            code=request.code, category=request.category.name(t.locale), building=request.building.name,
            status=status_text(t, request), due=t.date(request.due_at)))
    buttons = [[Button(request.code, callback(PREFIX, "open", request.id))] for request in held]
    ctx.reply(clip("\n".join(lines)), inline(*buttons))


def _open_by_code(ctx: Context, text: str) -> None:
    request_id = core.parse_code(text)
    if request_id is None:
        ctx.reply(ctx.t._("“{text}” is not a request code like R-000123.").format(text=text[:40]))
        return
    try:
        _open(ctx, request_id)
    except RequestRefused as error:
        refuse(ctx, error)


def _viewable(ctx: Context, request_id: int) -> Request:
    request = core.get_request(ctx.session, request_id)
    if not core.may_view(ctx.session, ctx.person, request):
        raise RequestRefused(N_("There is no request {code}."), code=request.code)
    return request


def _open(ctx: Context, request_id: int) -> None:
    request = _viewable(ctx, request_id)
    ctx.answer()
    send_cards(ctx, [ctx.person], request)


def _show_timeline(ctx: Context, request_id: int) -> None:
    request = _viewable(ctx, request_id)
    ctx.answer()
    ctx.reply(timeline_text(ctx, ctx.t, request, for_staff=True))


# --- the card's buttons ---------------------------------------------------------------------------------------


@router.button(PREFIX)
def on_button(ctx: Context) -> None:
    args = button_args(ctx)
    code, request_id = (args[0], int(args[1])) if len(args) > 1 and args[1].isdigit() else ("", 0)
    try:
        if code == "open":
            _open(ctx, request_id)
        elif code == "tl":
            _show_timeline(ctx, request_id)
        elif code == "acc":
            _accept(ctx, request_id)
        elif code == "mv":
            _offer_reassign_targets(ctx, request_id)
        elif code == "to" and len(args) == 4 and args[2] in LEVEL_BY_CODE and args[3].isdigit():
            _reassign(ctx, request_id, (LEVEL_BY_CODE[args[2]], int(args[3])))
        elif code in ACTION_OF_CODE:
            _ask_for_text(ctx, request_id, ACTION_OF_CODE[code])
        else:
            ctx.answer(ctx.t._("This button is no longer valid."), alert=True)
    except RequestRefused as error:
        refuse(ctx, error)


def _accept(ctx: Context, request_id: int) -> None:
    request = core.accept(ctx.session, ctx.person, request_id, ctx.now).request
    t = ctx.t
    ctx.answer(t._("You accepted {code}.").format(code=request.code))
    send_cards(ctx, [ctx.person], request, N_("You accepted {code}. Resolve it, or escalate it if needed."))
    worker = ctx.person.display_name
    tell_resident(ctx, request, lambda tr: tr._(
        "{code} was accepted by {worker}. You will hear back by {due}.").format(
        code=request.code, worker=worker, due=tr.date(request.due_at)))


def _ask_for_text(ctx: Context, request_id: int, transition: Transition) -> None:
    request = core.ensure_staff_can(ctx.session, ctx.person, request_id, transition)
    ctx.answer()
    ctx.clear_state()
    ctx.set_state(f"task.{transition.value}:{request.id}")
    ctx.reply(ctx.t._(TEXT_PROMPTS[transition]).format(code=request.code))


def _offer_reassign_targets(ctx: Context, request_id: int) -> None:
    request = core.ensure_staff_can(ctx.session, ctx.person, request_id, Transition.REASSIGN)
    targets = core.reassign_targets(ctx.session, request)
    ctx.answer()
    if not targets:
        ctx.reply(ctx.t._("There is no other unit with staff to hand {code} to.").format(code=request.code))
        return
    buttons = [[Button(name, callback(PREFIX, "to", request.id, LEVEL_CODES[level], unit_id))]
               for (level, unit_id), name in targets]
    ctx.reply(ctx.t._("Hand {code} over to:").format(code=request.code), inline(*buttons))


def _reassign(ctx: Context, request_id: int, target: tuple[Level, int]) -> None:
    change = core.reassign(ctx.session, ctx.person, request_id, target, ctx.now)
    request, t = change.request, ctx.t
    ctx.answer()
    ctx.edit(t._("{code} was handed over to {holder}.").format(code=request.code, holder=holder_text(ctx, t, request)))
    send_cards(ctx, change.notify, request, N_("➡️ {code} was handed over to your unit."))


# --- texts that follow a button: note, resolution, escalation, return ----------------------------------------


def _step_target(ctx: Context) -> tuple[Transition, int] | None:
    action, _, request_id = (ctx.person.state or "").removeprefix("task.").partition(":")
    if action not in set(Transition) or not request_id.isdigit():
        return None
    return Transition(action), int(request_id)


@router.step("task")
def text_step(ctx: Context) -> None:
    target = _step_target(ctx)
    if target is None:
        ctx.clear_state()
        show_main_menu(ctx, ctx.t._("Sorry, I lost track. Please press the button on the request again."))
        return
    transition, request_id = target
    try:
        core.ensure_staff_can(ctx.session, ctx.person, request_id, transition)
    except RequestRefused as error:
        ctx.clear_state()
        refuse(ctx, error)
        return
    if isinstance(ctx.event, Photo) and transition is Transition.RESOLVE:
        _resolution_photo(ctx, request_id, ctx.event)
    elif isinstance(ctx.event, Text):
        _apply_text(ctx, transition, request_id, ctx.event.text, ctx.state_data.get("photo_id"))
    else:
        ctx.reply(ctx.t._("Please write it as text, or /cancel."))


def _resolution_photo(ctx: Context, request_id: int, photo: Photo) -> None:
    if photo.caption.strip():
        _apply_text(ctx, Transition.RESOLVE, request_id, photo.caption, photo.file_id)
        return
    ctx.set_state(ctx.person.state or "", photo_id=photo.file_id)
    ctx.reply(ctx.t._("Photo received. Now write in a few words what was done."))


def _apply_text(ctx: Context, transition: Transition, request_id: int, text: str, photo_id: str | None) -> None:
    try:
        STEP_ACTIONS[transition](ctx, request_id, text, photo_id)
    except RequestRefused as error:
        refuse(ctx, error)  # the text was not acceptable: the step stays, so they can write it again
        return
    ctx.clear_state()


def _note(ctx: Context, request_id: int, text: str, _photo_id: str | None) -> None:
    request = core.add_note(ctx.session, ctx.person, request_id, text, ctx.now).request
    ctx.reply(ctx.t._("Note added to {code}.").format(code=request.code))


def _resolve(ctx: Context, request_id: int, text: str, photo_id: str | None) -> None:
    request = core.resolve(ctx.session, ctx.person, request_id, text, ctx.now, photo_id).request
    ctx.reply(ctx.t._("{code} is resolved. We asked the resident whether it is fixed.").format(code=request.code))
    ask_resident_verdict(ctx, request, text.strip(), photo_id)


def _escalate(ctx: Context, request_id: int, text: str, _photo_id: str | None) -> None:
    change = core.escalate(ctx.session, ctx.person, request_id, text, ctx.now)
    _announce_move(ctx, change, text.strip(), N_("⬆️ {code} was reported up to you: {text}"),
                   N_("{code} was reported up to {holder}, who will handle it now."))


def _return_down(ctx: Context, request_id: int, text: str, _photo_id: str | None) -> None:
    change = core.return_down(ctx.session, ctx.person, request_id, text, ctx.now)
    _announce_move(ctx, change, text.strip(), N_("⬇️ {code} was returned to you: {text}"),
                   N_("{code} was returned to {holder} with instructions."))


def _announce_move(ctx: Context, change: core.Change, text: str, card_headline: str, resident_news: str) -> None:
    request, t = change.request, ctx.t
    ctx.reply(t._("Done: {code} is now with {holder}.").format(code=request.code, holder=holder_text(ctx, t, request)))
    send_cards(ctx, change.notify, request, card_headline, text=text)
    tell_resident(ctx, request, lambda tr: tr._(resident_news).format(
        code=request.code, holder=holder_text(ctx, tr, request)))


StepAction = Callable[[Context, int, str, "str | None"], None]
STEP_ACTIONS: dict[Transition, StepAction] = {
    Transition.NOTE: _note,
    Transition.RESOLVE: _resolve,
    Transition.ESCALATE: _escalate,
    Transition.RETURN: _return_down,
}
