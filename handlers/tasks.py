"""The staff side of a request: /tasks, and accepting, noting, resolving, escalating, returning and
reassigning from the card (rendered by ``bot.wording``).

/tasks and the texts that follow a button are for staff (the router's role filter). The card's buttons are
routed for anyone, since a forged one must get the core's precise refusal: the core checks who acts, and for
"open" and "timeline" decides whether the presser sees the staff view, the resident view or nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.core import requests as core
from bot.core.app import write_outbox
from bot.core.context import Context
from bot.core.messages import Action, Button, Command, InlineKeyboard, Photo, SendPhoto, SendText, Text, clip, inline
from bot.core.requests import RequestRefused, Transition, View
from bot.core.roles import is_staff
from bot.core.router import RoleFilter, Router, button_args, callback
from bot.i18n import N_
from bot.wording import (
    CAPTION_LIMIT,
    DISPATCHED,
    HANDED_OVER,
    REPORTED_UP,
    REPORTED_UP_NEWS,
    RETURNED_DOWN,
    RETURNED_DOWN_NEWS,
    STAFF_BUTTONS,
    STAFF_PREFIX,
    announce_move,
    ask_resident_verdict,
    card_keyboard,
    card_reader,
    card_text,
    days_text,
    department_line,
    help_callback,
    help_request_text,
    holder_text,
    post_to_team_chat,
    refresh_cards,
    refuse,
    request_line,
    send_cards,
    show_resident_view,
    tell_resident,
    timeline_text,
)
from handlers.callback_codes import LEVEL_BY_CODE, LEVEL_CODES
from handlers.menu import show_main_menu
from storage.models import Level, Person, Priority, Request

router = Router(role=RoleFilter(is_staff, N_("This is for grid workers and staff only.")))
card_buttons = Router()

PREFIX = STAFF_PREFIX
ACTION_OF_CODE = {code: transition for transition, (_label, code) in STAFF_BUTTONS.items()}
ACTION_OF_CODE["help"] = Transition.ASK_HELP
# What staff are asked to write after pressing a button that needs a text.
TEXT_PROMPTS = {
    Transition.NOTE: N_("Write the note for {code}, or /cancel."),
    Transition.RESOLVE: N_("What was done for {code}? Write it, or send a photo with a caption. /cancel to stop."),
    Transition.ESCALATE: N_("Why does {code} need the level above? Write the reason, or /cancel."),
    Transition.RETURN: N_("What should the level below do with {code}? Write the instruction, or /cancel."),
    Transition.ASK_HELP: N_("What should volunteers help with for {code}? Write it (no personal details of the "
                            "resident), or /cancel."),
    Transition.DEPARTMENT_DONE: N_(
        "What did your department do for {code}? Write it, or send a photo with a caption. /cancel to stop."),
    Transition.HAND_BACK: N_("Why does your department give {code} back? Write the reason, or /cancel."),
}
# Transitions whose text may come with a photo of the work done.
WITH_PHOTO = frozenset({Transition.RESOLVE, Transition.DEPARTMENT_DONE})
# The deadlines a dispatcher can give a department with one press, in working days, beside the category's.
DEPARTMENT_DAY_CHOICES = (2, 5, 10)


# --- /tasks ---------------------------------------------------------------------------------------------------


@router.command("tasks")
def list_tasks(ctx: Context) -> None:
    t = ctx.t
    args = ctx.event.args if isinstance(ctx.event, Command) else ""
    if args:
        _open_by_code(ctx, args)
        return
    held = core.held_requests(ctx.session, ctx.person)
    with_departments = core.department_work(ctx.session, ctx.person)
    if not held and not with_departments:
        show_main_menu(ctx, t._("Nothing is waiting for your unit. Well done."))
        return
    lines = [t._("Requests your unit holds, the most urgent first:")] if held else []
    lines += [request_line(t, request, ctx.now) for request in held]
    if with_departments:
        lines.append(t._("With departments:"))
        lines += [department_line(ctx, t, request, ctx.now) for request in with_departments]
    buttons = [[Button(request.code, callback(PREFIX, "open", request.id))] for request in [*held, *with_departments]]
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


def _viewed(ctx: Context, request_id: int) -> tuple[Request, View]:
    request = core.get_request(ctx.session, request_id)
    view = core.view_of(ctx.session, ctx.person, request)
    if view is None:
        raise RequestRefused(N_("There is no request {code}."), code=request.code)
    return request, view


def _open(ctx: Context, request_id: int) -> None:
    request, view = _viewed(ctx, request_id)
    ctx.answer()
    if view is View.STAFF:
        send_cards(ctx, [ctx.person], request)
    else:
        show_resident_view(ctx, request)


def _show_timeline(ctx: Context, request_id: int) -> None:
    request, view = _viewed(ctx, request_id)
    ctx.answer()
    ctx.reply_privately(timeline_text(ctx, ctx.t, request, for_staff=view is View.STAFF))


def _request_id(ctx: Context) -> int:
    args = button_args(ctx)
    return int(args[1]) if len(args) > 1 and args[1].isdigit() else 0


@card_buttons.button(f"{PREFIX}:open")
def on_open(ctx: Context) -> None:
    try:
        _open(ctx, _request_id(ctx))
    except RequestRefused as error:
        refuse(ctx, error)


@card_buttons.button(f"{PREFIX}:tl")
def on_timeline(ctx: Context) -> None:
    try:
        _show_timeline(ctx, _request_id(ctx))
    except RequestRefused as error:
        refuse(ctx, error)


# --- the card's buttons ---------------------------------------------------------------------------------------


@card_buttons.button(PREFIX)
def on_button(ctx: Context) -> None:
    args = button_args(ctx)
    code, request_id = (args[0], int(args[1])) if len(args) > 1 and args[1].isdigit() else ("", 0)
    try:
        if code == "acc":
            _accept(ctx, request_id)
        elif code == "mv":
            _offer_reassign_targets(ctx, request_id)
        elif code == "dsp":
            _offer_departments(ctx, request_id)
        elif code == "dto" and len(args) == 3 and args[2].isdigit():
            _ask_for_instruction(ctx, request_id, int(args[2]))
        elif code == "ddl" and len(args) == 3 and args[2].isdigit():
            _give_department_days(ctx, request_id, int(args[2]))
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
    t, worker = ctx.t, ctx.person.display_name
    ctx.answer(t._("You accepted {code}.").format(code=request.code))
    # The card pressed becomes the accepted card; the copies colleagues hold lose their Accept.
    if ctx.group is not None:
        headline = t._("{worker} accepted {code}.").format(worker=worker, code=request.code)
    else:
        headline = t._("You accepted {code}. Resolve it, or escalate it if needed.").format(code=request.code)
    ctx.edit(card_text(ctx, t, request, headline), card_keyboard(t, request, card_reader(ctx)))
    refresh_cards(ctx, request)
    tell_resident(ctx, request, lambda tr: tr._(
        "{code} was accepted by {worker}. You will hear back by {due}.").format(
        code=request.code, worker=worker, due=tr.date(request.due_at)))


def _ask_for_text(ctx: Context, request_id: int, transition: Transition) -> None:
    request = core.ensure_staff_can(ctx.session, ctx.person, request_id, transition)
    ctx.answer()
    ctx.clear_state()
    ctx.set_state(f"task.{transition.value}:{request.id}")
    ctx.reply_privately(ctx.t._(TEXT_PROMPTS[transition]).format(code=request.code))


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


def _offer_departments(ctx: Context, request_id: int) -> None:
    request = core.ensure_staff_can(ctx.session, ctx.person, request_id, Transition.DISPATCH)
    targets = core.dispatch_targets(ctx.session, request)
    ctx.answer()
    if not targets:
        ctx.reply(ctx.t._("There is no department with staff to hand {code} to.").format(code=request.code))
        return
    buttons = [[Button(name, callback(PREFIX, "dto", request.id, department_id))] for department_id, name in targets]
    ctx.reply(ctx.t._("Hand {code} to which department?").format(code=request.code), inline(*buttons))


def _ask_for_instruction(ctx: Context, request_id: int, department_id: int) -> None:
    request = core.ensure_staff_can(ctx.session, ctx.person, request_id, Transition.DISPATCH)
    names = dict(core.dispatch_targets(ctx.session, request))
    if department_id not in names:
        raise RequestRefused(N_("Please choose another department for {code}."), code=request.code)
    ctx.answer()
    ctx.clear_state()
    ctx.set_state(f"task.{Transition.DISPATCH.value}:{request.id}", department_id=department_id)
    ctx.reply(*_instruction_prompt(ctx, request, names[department_id], None))


def _give_department_days(ctx: Context, request_id: int, days: int) -> None:
    """The dispatcher chose another deadline while writing the instruction: the prompt shows it."""
    request = core.ensure_staff_can(ctx.session, ctx.person, request_id, Transition.DISPATCH)
    department_id = ctx.state_data.get("department_id")
    names = dict(core.dispatch_targets(ctx.session, request))
    if _step_target(ctx) != (Transition.DISPATCH, request.id) or department_id not in names:
        ctx.answer(ctx.t._("This button is no longer valid."), alert=True)
        return
    core.department_days(request, days)  # refuses a number of days no button offers
    ctx.set_state(ctx.person.state or "", working_days=days)
    ctx.answer()
    ctx.edit(*_instruction_prompt(ctx, request, names[department_id], days))


def _instruction_prompt(
    ctx: Context, request: Request, department: str, working_days: int | None
) -> tuple[str, InlineKeyboard]:
    """What to ask the dispatcher, with the deadline and buttons to give the department another one."""
    t = ctx.t
    days = core.department_days(request, working_days)
    due = core.department_due(ctx.session, request, ctx.now, days)
    text = t._("What should {department} do with {code}? Write the instruction; it is due back by {due} ({days}). "
               "Another deadline: press a button below. /cancel to stop.").format(
        department=department, code=request.code, due=t.date(due), days=days_text(t, ctx.session, days))
    choices = sorted({*DEPARTMENT_DAY_CHOICES, days})
    buttons = [Button(("✓ " if choice == days else "") + days_text(t, ctx.session, choice),
                      callback(PREFIX, "ddl", request.id, choice)) for choice in choices]
    return text, inline(buttons[:3], buttons[3:])


def _reassign(ctx: Context, request_id: int, target: tuple[Level, int]) -> None:
    change = core.reassign(ctx.session, ctx.person, request_id, target, ctx.now)
    request, t = change.request, ctx.t
    ctx.answer()
    ctx.edit(t._("{code} was handed over to {holder}.").format(code=request.code, holder=holder_text(ctx, t, request)))
    refresh_cards(ctx, request)
    send_cards(ctx, change.notify, request, HANDED_OVER)
    post_to_team_chat(ctx, request, HANDED_OVER)


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
    if isinstance(ctx.event, Photo) and transition in WITH_PHOTO:
        _resolution_photo(ctx, transition, request_id, ctx.event)
    elif isinstance(ctx.event, Text):
        _apply_text(ctx, transition, request_id, ctx.event.text, ctx.state_data.get("photo_id"))
    else:
        ctx.reply(ctx.t._("Please write it as text, or /cancel."))


def _resolution_photo(ctx: Context, transition: Transition, request_id: int, photo: Photo) -> None:
    if photo.caption.strip():
        _apply_text(ctx, transition, request_id, photo.caption, photo.file_id)
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
    # Confirming a department's work: its photo goes to the resident unless the dispatcher sends their own.
    shown_photo = photo_id or core.department_photo(ctx.session, core.get_request(ctx.session, request_id))
    request = core.resolve(ctx.session, ctx.person, request_id, text, ctx.now, photo_id).request
    refresh_cards(ctx, request)
    ctx.reply(ctx.t._("{code} is resolved. We asked the resident whether it is fixed.").format(code=request.code))
    ask_resident_verdict(ctx, request, text.strip(), shown_photo)


def _escalate(ctx: Context, request_id: int, text: str, _photo_id: str | None) -> None:
    change = core.escalate(ctx.session, ctx.person, request_id, text, ctx.now)
    _announce_move(ctx, change, text.strip(), REPORTED_UP, REPORTED_UP_NEWS)


def _return_down(ctx: Context, request_id: int, text: str, _photo_id: str | None) -> None:
    change = core.return_down(ctx.session, ctx.person, request_id, text, ctx.now)
    _announce_move(ctx, change, text.strip(), RETURNED_DOWN, RETURNED_DOWN_NEWS)


def _dispatch(ctx: Context, request_id: int, text: str, _photo_id: str | None) -> None:
    department_id, days = ctx.state_data.get("department_id"), ctx.state_data.get("working_days")
    change = core.dispatch(ctx.session, ctx.person, request_id, department_id if isinstance(department_id, int)
                           else 0, text, ctx.now, days if isinstance(days, int) else None)
    _announce_move(ctx, change, text.strip(), DISPATCHED, "")


def _department_done(ctx: Context, request_id: int, text: str, photo_id: str | None) -> None:
    change = core.department_done(ctx.session, ctx.person, request_id, text, ctx.now, photo_id)
    department = ctx.person.display_name
    _announce_move(ctx, change, text.strip(), N_(
        "✔️ {code} is done by the department ({worker}): {text}\nPlease confirm the result to the resident with "
        "Resolve."), "", worker=department)
    if photo_id:
        for person in change.notify:
            ctx.send(person, SendPhoto(photo_id, clip(ctx.translator_for(person)._(
                "The department's photo of {code}").format(code=change.request.code), CAPTION_LIMIT)))


def _hand_back(ctx: Context, request_id: int, text: str, _photo_id: str | None) -> None:
    change = core.hand_back(ctx.session, ctx.person, request_id, text, ctx.now)
    _announce_move(ctx, change, text.strip(), N_("↩️ The department gave {code} back: {text}"), "")


def _announce_move(ctx: Context, change: core.Change, text: str, card_headline: str, resident_news: str,
                   **params: object) -> None:
    request, t = change.request, ctx.t
    ctx.reply(t._("Done: {code} is now with {holder}.").format(code=request.code, holder=holder_text(ctx, t, request)))
    announce_move(ctx, change, card_headline, resident_news, text=text, **params)


def _ask_help(ctx: Context, request_id: int, text: str, _photo_id: str | None) -> None:
    asked = core.ask_volunteers(ctx.session, ctx.person, request_id, text, ctx.now)
    request, t = asked.request, ctx.t
    worker = ctx.person.display_name
    # Written for the outbox loop, which sends them at the send rate behind everyone's answers.
    notices: list[tuple[Person, Action]] = []
    for volunteer in asked.volunteers:
        vt = ctx.translator_for(volunteer.person)
        notices.append((volunteer.person, SendText(clip(help_request_text(ctx, vt, request, worker, asked.need)),
                                                   inline([Button(vt._("🙋 I will help"), help_callback(request))]))))
    write_outbox(ctx.session, notices, ctx.now, not_before=lambda _person: ctx.now, priority=Priority.BROADCAST)
    refresh_cards(ctx, request)
    ctx.reply(t.n_("{code}: {count} volunteer was asked to help.", "{code}: {count} volunteers were asked to help.",
                   len(asked.volunteers)).format(code=request.code, count=t.number(len(asked.volunteers))))


StepAction = Callable[[Context, int, str, "str | None"], None]
STEP_ACTIONS: dict[Transition, StepAction] = {
    Transition.NOTE: _note,
    Transition.RESOLVE: _resolve,
    Transition.ESCALATE: _escalate,
    Transition.RETURN: _return_down,
    Transition.ASK_HELP: _ask_help,
    Transition.DISPATCH: _dispatch,
    Transition.DEPARTMENT_DONE: _department_done,
    Transition.HAND_BACK: _hand_back,
}


router.include(card_buttons)
