"""A grid worker's rounds in the chat: /lead, /visit and /patrol; /unvisited, /patrols and /target for
community, street and district staff (rules in ``bot.core.rounds``).

A lead is entered like a resident's request (building of the grid, category, description with an optional
photo, an optional resident concerned) and settled in the step that files it: solved on the spot, taken on, or
reported up with a reason. What was entered so far is kept in the person's conversation state.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta

from bot.core import requests as requests_core
from bot.core import rounds as core
from bot.core.context import Context
from bot.core.messages import Button, ButtonPress, Command, Location, Photo, Text, clip, inline
from bot.core.prompts import edits_in_place
from bot.core.requests import RequestRefused
from bot.core.roles import is_admin, is_staff
from bot.core.router import RoleFilter, Router, button_args, callback
from bot.i18n import N_, Translator
from bot.rounds_wording import distance_text, patrol_summary_text
from bot.wording import announce_move, holder_text, refuse, tell
from handlers.menu import show_main_menu
from storage.models import Building, Person, Visit

workers = Router(role=RoleFilter(core.is_worker, N_("This is for grid workers.")))
admins = Router(role=RoleFilter(is_admin, N_("This is for community, street and district staff.")))
buttons = Router(role=RoleFilter(is_staff, N_("This is for grid workers and staff only.")))
router = Router()

PREFIX = "ro"
LEAD_BUILDING = "rounds.lead.building"
LEAD_CATEGORY = "rounds.lead.category"
LEAD_DESCRIPTION = "rounds.lead.description"
LEAD_RESIDENT = "rounds.lead.resident"
LEAD_OUTCOME = "rounds.lead.outcome"
LEAD_TEXT = "rounds.lead.text"
VISIT_BUILDING = "rounds.visit.building"
VISIT_ROOM = "rounds.visit.room"
VISIT_MET = "rounds.visit.met"
VISIT_NOTE = "rounds.visit.note"
SHOWN_BUILDINGS = 30
OUTCOME_LABELS = {
    core.LeadOutcome.SPOT: N_("✅ Solved on the spot"),
    core.LeadOutcome.TAKE: N_("🙋 I take it on"),
    core.LeadOutcome.UP: N_("⬆️ Report it up now"),
}


# --- choosing a building of the grid (a lead, a visit) ------------------------------------------------------------


def _ask_building(ctx: Context, state: str, intro: str) -> None:
    t = ctx.t
    buildings = core.grid_buildings(ctx.session, ctx.person, SHOWN_BUILDINGS)
    if not buildings:
        show_main_menu(ctx, t._("Your grid has no buildings yet."))
        return
    ctx.clear_state()
    ctx.set_state(state, draft=secrets.token_hex(4), photos=[])
    rows = [[Button(building.name, callback(PREFIX, "b", building.id))] for building in buildings]
    ctx.reply(t._("{intro}\nChoose the building, send its code, or share a location (📍).").format(intro=intro),
              inline(*rows))


def _building_from_event(ctx: Context) -> Building | None:
    event = ctx.event
    if isinstance(event, Location):
        return core.nearest_grid_building(ctx.session, ctx.person, event.latitude, event.longitude)
    if isinstance(event, Text):
        return core.building_by_code_in_grid(ctx.session, ctx.person, event.text)
    return None


def _chose_building(ctx: Context, building: Building) -> None:
    t = ctx.t
    if edits_in_place(ctx.person) and isinstance(ctx.event, ButtonPress):
        ctx.edit(t._("✔ {choice}").format(choice=building.name))
    ctx.set_state(ctx.person.state or "", building_id=building.id)
    if ctx.person.state == LEAD_BUILDING:
        _ask_category(ctx, building)
    else:
        _ask_optional(ctx, VISIT_ROOM, t._("Which room or household? Write it, or skip."))


def _ask_optional(ctx: Context, state: str, question: str) -> None:
    ctx.set_state(state)
    ctx.reply(question, inline([Button(ctx.t._("Skip"), callback(PREFIX, "skip"))]))


# --- /lead --------------------------------------------------------------------------------------------------------


@workers.command("lead")
def start_lead(ctx: Context) -> None:
    _ask_building(ctx, LEAD_BUILDING, ctx.t._("📌 New lead from your rounds."))


def _ask_category(ctx: Context, building: Building) -> None:
    t = ctx.t
    ctx.set_state(LEAD_CATEGORY)
    categories = requests_core.categories_for_filing(ctx.session)
    rows = [[Button(category.name(t.locale), callback(PREFIX, "c", category.id))] for category in categories]
    ctx.reply(t._("Lead for {building}. What is it about?").format(building=building.name), inline(*rows))


def _chose_category(ctx: Context, argument: str) -> None:
    category = next((c for c in requests_core.categories_for_filing(ctx.session) if str(c.id) == argument), None)
    if category is None:
        raise RequestRefused(N_("This category is no longer available. Please start again with /new."))
    ctx.edit(ctx.t._("✔ {choice}").format(choice=category.name(ctx.t.locale)))
    ctx.set_state(LEAD_DESCRIPTION, category_id=category.id)
    ctx.reply(ctx.t._("Describe what you found (a photo with a caption works too)."))


def _lead_description(ctx: Context) -> None:
    event = ctx.event
    photos = list(ctx.state_data.get("photos", []))
    if isinstance(event, Photo):
        photos = [*photos, event.file_id][: requests_core.MAX_PHOTOS]
        ctx.set_state(LEAD_DESCRIPTION, photos=photos)
        text = event.caption
        if not text.strip():
            ctx.reply(ctx.t._("Photo kept. Now describe what you found."))
            return
    elif isinstance(event, Text):
        text = event.text
    else:
        ctx.reply(ctx.t._("Please describe it in text; a photo with a caption works too."))
        return
    ctx.set_state(LEAD_DESCRIPTION, description=requests_core.check_description(text))
    _ask_optional(ctx, LEAD_RESIDENT, ctx.t._(
        "Is a resident concerned? Send their name or phone as registered, or skip."))


def _lead_resident(ctx: Context) -> None:
    if not isinstance(ctx.event, Text):
        ctx.reply(ctx.t._("Please write it as text, or /cancel."))
        return
    building = core.building_of_grid(ctx.session, ctx.person, int(ctx.state_data.get("building_id", 0)))
    resident = core.find_resident(ctx.session, building, ctx.event.text)
    ctx.set_state(LEAD_RESIDENT, resident_id=resident.id, resident_name=resident.display_name)
    _ask_outcome(ctx)


def _ask_outcome(ctx: Context) -> None:
    t, data = ctx.t, ctx.state_data
    ctx.set_state(LEAD_OUTCOME)
    token = data.get("draft", "")
    lines = [t._("Lead: {description}").format(description=data.get("description", ""))]
    if data.get("resident_name"):
        lines.append(t._("Resident concerned: {name}").format(name=data["resident_name"]))
    lines.append(t._("What do you do with it?"))
    rows = [[Button(t._(label), callback(PREFIX, "o", outcome.value, token))]
            for outcome, label in OUTCOME_LABELS.items()]
    ctx.reply(clip("\n".join(lines)), inline(*rows))


def _chose_outcome(ctx: Context, argument: str) -> None:
    outcome_code, _, token = argument.partition(":")
    if token != ctx.state_data.get("draft") or outcome_code not in set(core.LeadOutcome):
        ctx.reply(ctx.t._("This summary is out of date. Please check the latest one."))
        return
    outcome = core.LeadOutcome(outcome_code)
    ctx.edit(ctx.t._("✔ {choice}").format(choice=ctx.t._(OUTCOME_LABELS[outcome])))
    if outcome is core.LeadOutcome.TAKE:
        _file_lead(ctx, outcome, "", None)
        return
    ctx.set_state(LEAD_TEXT, outcome=outcome.value)
    if outcome is core.LeadOutcome.SPOT:
        ctx.reply(ctx.t._("What did you do? Write it, or send a photo with a caption."))
    else:
        ctx.reply(ctx.t._("Why does it need the level above? Write the reason."))


def _lead_text(ctx: Context) -> None:
    event = ctx.event
    outcome = core.LeadOutcome(ctx.state_data.get("outcome", core.LeadOutcome.UP.value))
    if isinstance(event, Photo) and outcome is core.LeadOutcome.SPOT:
        _file_lead(ctx, outcome, event.caption, event.file_id)
    elif isinstance(event, Text):
        _file_lead(ctx, outcome, event.text, None)
    else:
        ctx.reply(ctx.t._("Please write it as text, or /cancel."))


def _file_lead(ctx: Context, outcome: core.LeadOutcome, text: str, photo_id: str | None) -> None:
    data = ctx.state_data
    if outcome is not core.LeadOutcome.TAKE:
        text = core.check_lead_text(outcome, text)
    draft = core.LeadDraft(
        building_id=int(data.get("building_id", 0)), category_id=int(data.get("category_id", 0)),
        description=str(data.get("description", "")), photo_ids=tuple(data.get("photos", [])),
        resident_id=data.get("resident_id"),
    )
    change = core.file_lead(ctx.session, ctx.person, draft, outcome, text, ctx.now, photo_id)
    request = change.request
    if data.get("visit_id"):
        core.link_visit_lead(ctx.session, ctx.person, int(data["visit_id"]), request)
    core.add_finding(ctx.session, ctx.person, request)
    ctx.clear_state()
    _announce_lead(ctx, outcome, change, text)


def _announce_lead(ctx: Context, outcome: core.LeadOutcome, change: requests_core.Change, text: str) -> None:
    request, t = change.request, ctx.t
    if outcome is core.LeadOutcome.SPOT:
        show_main_menu(ctx, t._("Lead {code} is closed as solved on the spot. Thank you.").format(code=request.code))
        tell(ctx, change.residents, lambda tr: tr._(
            "{code}: the grid worker {worker} solved it on the spot: {note}").format(
            code=request.code, worker=ctx.person.display_name, note=text))
    elif outcome is core.LeadOutcome.TAKE:
        show_main_menu(ctx, t._("Lead {code} is yours: resolve it from /tasks, due by {due}.").format(
            code=request.code, due=t.date(request.due_at)))
        tell(ctx, change.residents, lambda tr: tr._(
            "{code} was accepted by {worker}. You will hear back by {due}.").format(
            code=request.code, worker=ctx.person.display_name, due=tr.date(request.due_at)))
    else:
        show_main_menu(ctx, t._("Lead {code} was reported up to {holder}.").format(
            code=request.code, holder=holder_text(ctx, t, request)))
        announce_move(ctx, change, N_("⬆️ {code} was reported up to you: {text}"),
                      N_("{code} was reported up to {holder}, who will handle it now."), text=text)


# --- /visit -------------------------------------------------------------------------------------------------------


def today_line(ctx: Context, t: Translator) -> str:
    done = core.visits_today(ctx.session, ctx.person, ctx.now, ctx.config.timezone)
    target = core.visit_target(ctx.session, ctx.person, ctx.config.visit_target)
    return t._("Visits today: {done} of {target}").format(done=done, target=target)


@workers.command("visit")
def start_visit(ctx: Context) -> None:
    _ask_building(ctx, VISIT_BUILDING, ctx.t._("🚶 New visit. {today}").format(today=today_line(ctx, ctx.t)))


def _visit_text(ctx: Context, state: str) -> None:
    if not isinstance(ctx.event, Text):
        ctx.reply(ctx.t._("Please write it as text, or press Skip."))
        return
    _visit_answer(ctx, state, ctx.event.text)


def _visit_answer(ctx: Context, state: str, text: str) -> None:
    t = ctx.t
    if state == VISIT_ROOM:
        ctx.set_state(VISIT_ROOM, room=core.short_text(text, core.MAX_ROOM))
        _ask_optional(ctx, VISIT_MET, t._("Whom did you meet? Write it, or skip."))
    elif state == VISIT_MET:
        ctx.set_state(VISIT_MET, met=core.short_text(text, core.MAX_MET))
        _ask_optional(ctx, VISIT_NOTE, t._("A short note on the visit (a photo with a caption works too), or skip."))
    else:
        _record_visit(ctx, text, None)


def _record_visit(ctx: Context, note: str, photo: str | None) -> None:
    t, data = ctx.t, ctx.state_data
    draft = core.VisitDraft(int(data.get("building_id", 0)), str(data.get("room", "")), str(data.get("met", "")),
                            note, photo)
    visit = core.record_visit(ctx.session, ctx.person, draft, ctx.now)
    ctx.clear_state()
    ctx.reply(t._("Visit to {building} recorded. {today}\nDid you find an issue?").format(
        building=visit.building.name, today=today_line(ctx, t)),
        inline([Button(t._("📌 File a lead from this visit"), callback(PREFIX, "vl", visit.id))]))


def _lead_from_visit(ctx: Context, argument: str) -> None:
    visit_id = int(argument) if argument.isdigit() else 0
    visit = ctx.session.get(Visit, visit_id)
    if visit is None or visit.worker_id != ctx.person.id:
        raise RequestRefused(N_("This button is no longer valid."))
    building = core.building_of_grid(ctx.session, ctx.person, visit.building_id)
    ctx.clear_state()
    ctx.set_state(LEAD_CATEGORY, draft=secrets.token_hex(4), photos=[], building_id=building.id, visit_id=visit.id)
    _ask_category(ctx, building)


# --- /patrol ------------------------------------------------------------------------------------------------------


@workers.command("patrol")
def patrol(ctx: Context) -> None:
    t = ctx.t
    current = core.open_patrol(ctx.session, ctx.person)
    if current is None:
        current = core.start_patrol(ctx.session, ctx.person, ctx.now)
        text = t._("🌙 Patrol started at {time}. Send your location (📍) at each checkpoint; file what you find "
                   "with /lead. End it with the button.").format(time=t.datetime(current.started_at))
    else:
        text = t._("🌙 Your patrol is under way since {time}: {points} points so far.").format(
            time=t.datetime(current.started_at), points=len(current.points))
    ctx.reply(text, inline([Button(t._("🏁 End the patrol"), callback(PREFIX, "pe"))]))


def patrol_point(ctx: Context) -> bool:
    """A location sent outside any step while the worker's patrol is under way: a checkpoint (False if not)."""
    if not isinstance(ctx.event, Location) or core.open_patrol(ctx.session, ctx.person) is None:
        return False
    patrol = core.add_point(ctx.session, ctx.person, ctx.event.latitude, ctx.event.longitude, ctx.now)
    ctx.reply(ctx.t._("📍 Checkpoint {count} recorded ({distance} so far).").format(
        count=len(patrol.points), distance=distance_text(ctx.t, patrol.distance_m)))
    return True


def _end_patrol(ctx: Context, _argument: str) -> None:
    summary = core.end_patrol(ctx.session, ctx.person, ctx.now)
    ctx.edit(ctx.t._("✔ {choice}").format(choice=ctx.t._("🏁 End the patrol")))
    show_main_menu(ctx, patrol_summary_text(ctx.t, summary))


# --- for community, street and district staff -----------------------------------------------------------------------


@admins.command("unvisited")
def unvisited(ctx: Context) -> None:
    t = ctx.t
    args = ctx.event.args.strip() if isinstance(ctx.event, Command) else ""
    days = int(args) if args.isdigit() and 0 < int(args) <= 366 else core.DEFAULT_UNVISITED_DAYS
    rows = core.unvisited_buildings(ctx.session, ctx.person, ctx.now, days)
    if not rows:
        ctx.reply(t._("Every building of your area was visited in the last {days} days.").format(days=days))
        return
    lines = [t._("Buildings not visited for {days} days:").format(days=days)]
    lines += [t._("{building} · last visit {date}").format(
        building=building.name, date=t.date(last) if last else t._("never")) for building, last in rows]
    ctx.reply(clip("\n".join(lines)))


@admins.command("patrols")
def tonights_patrols(ctx: Context) -> None:
    t = ctx.t
    patrols = core.patrols_since(ctx.session, ctx.person, ctx.now - timedelta(hours=24))
    if not patrols:
        ctx.reply(t._("No patrols in your area since yesterday."))
        return
    lines = [t._("Patrols in your area since yesterday:")]
    for patrol in patrols:
        worker = ctx.session.get(Person, patrol.worker_id)
        summary = core.patrol_summary(ctx.session, patrol)
        state = t._("under way") if patrol.ended_at is None else patrol_summary_text(t, summary)
        lines.append(f"• {worker.display_name if worker else '?'} · {t.datetime(patrol.started_at)} · {state}")
    ctx.reply(clip("\n".join(lines)))


@admins.command("target")
def set_target(ctx: Context) -> None:
    t = ctx.t
    parts = (ctx.event.args if isinstance(ctx.event, Command) else "").split()
    if len(parts) != 2 or not parts[1].isdigit():
        ctx.reply(t._("Send /target GRID-CODE VISITS, e.g. /target DG-JS-01 8."))
        return
    try:
        grid = core.set_visit_target(ctx.session, ctx.person, parts[0], int(parts[1]))
    except RequestRefused as error:
        refuse(ctx, error)
        return
    ctx.reply(t._("{grid}: {target} visits per worker per day.").format(grid=grid.name, target=grid.visit_target))


# --- routing --------------------------------------------------------------------------------------------------------


BUTTON_STEPS: dict[str, tuple[frozenset[str], Callable[[Context, str], None]]] = {
    "c": (frozenset({LEAD_CATEGORY}), _chose_category),
    "o": (frozenset({LEAD_OUTCOME}), _chose_outcome),
    "skip": (frozenset({LEAD_RESIDENT, VISIT_ROOM, VISIT_MET, VISIT_NOTE}), lambda ctx, _a: _skip(ctx)),
}
ANY_TIME: dict[str, Callable[[Context, str], None]] = {"vl": _lead_from_visit, "pe": _end_patrol}


def _skip(ctx: Context) -> None:
    ctx.edit(ctx.t._("✔ {choice}").format(choice=ctx.t._("Skip")))
    state = ctx.person.state or ""
    if state == LEAD_RESIDENT:
        _ask_outcome(ctx)
    else:
        _visit_answer(ctx, state, "")


@buttons.button(PREFIX)
def on_button(ctx: Context) -> None:
    args = button_args(ctx)
    action, argument = (args[0], ":".join(args[1:])) if args else ("", "")
    try:
        if action == "b" and ctx.person.state in (LEAD_BUILDING, VISIT_BUILDING):
            ctx.answer()
            _chose_building(ctx, core.building_of_grid(ctx.session, ctx.person,
                                                       int(argument) if argument.isdigit() else 0))
        elif action in ANY_TIME:
            ctx.answer()
            ANY_TIME[action](ctx, argument)
        elif action in BUTTON_STEPS and ctx.person.state in BUTTON_STEPS[action][0]:
            ctx.answer()
            BUTTON_STEPS[action][1](ctx, argument)
        else:
            ctx.answer(ctx.t._("This step is over."), alert=True)
    except RequestRefused as error:
        refuse(ctx, error)


@buttons.step("rounds")
def rounds_step(ctx: Context) -> None:
    state = ctx.person.state or ""
    try:
        if state in (LEAD_BUILDING, VISIT_BUILDING):
            building = _building_from_event(ctx)
            if building is None:
                ctx.reply(ctx.t._("Please choose the building with the buttons above, or /cancel."))
                return
            _chose_building(ctx, building)
        elif state == LEAD_DESCRIPTION:
            _lead_description(ctx)
        elif state == LEAD_RESIDENT:
            _lead_resident(ctx)
        elif state == LEAD_TEXT:
            _lead_text(ctx)
        elif state == VISIT_NOTE and isinstance(ctx.event, Photo):
            _record_visit(ctx, ctx.event.caption, ctx.event.file_id)
        elif state in (VISIT_ROOM, VISIT_MET, VISIT_NOTE):
            _visit_text(ctx, state)
        else:
            ctx.reply(ctx.t._("Please use the buttons above, or /cancel."))
    except RequestRefused as error:
        refuse(ctx, error)


router.include(workers)
router.include(admins)
router.include(buttons)

