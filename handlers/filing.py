"""Filing a request: where (the resident's building, or somewhere else: a location, a place found by name or
by its QR code), category, a look at similar open requests ("me too"), description, photos, location,
anonymity, and a summary to confirm.

What the resident entered so far lives in the person's conversation state, so a half-filed request survives
a restart of the bot.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from bot.core import places
from bot.core import requests as core
from bot.core.categories import filing_choices
from bot.core.context import Context
from bot.core.messages import Button, Location, Photo, Text, clip, inline
from bot.core.prompts import close_last_prompt, edits_in_place
from bot.core.requests import Draft, RequestRefused
from bot.core.router import Router, button_args, callback
from bot.i18n import N_
from bot.wording import due_text, holder_text, notify_staff_text, post_to_team_chat, refuse, send_cards
from handlers.menu import show_main_menu
from handlers.start import deep_links
from storage.models import Building, Grid, Place, Request

router = Router()

PREFIX = "fl"
STEP_WHERE = "filing.where"
STEP_CATEGORY = "filing.category"
STEP_DUPLICATE = "filing.duplicate"
STEP_DESCRIPTION = "filing.description"
STEP_PHOTOS = "filing.photos"
STEP_LOCATION = "filing.location"
STEP_HIDE = "filing.hide"
STEP_SUMMARY = "filing.summary"
SHOWN_DUPLICATES = 3
# Listing more names than this says less than naming the unit.
MAX_HOLDER_NAMES = 3


# Where a photo or location sent outside any step waits while the resident is asked whether to file with it.
STATE_OFFER = "offer.filing"


@router.command("new")
def start_filing(ctx: Context) -> None:
    _begin(ctx, {})


def offer_filing(ctx: Context) -> bool:
    """A photo or location sent outside any step: offer to file a request with it (False if it is neither)."""
    t, event = ctx.t, ctx.event
    # Several photos (or a photo and a place) sent one after the other all go into the one offer.
    offered = ctx.state_data if ctx.person.state == STATE_OFFER else {}
    if isinstance(event, Photo):
        photos = [*offered.get("photos", []), event.file_id][: core.MAX_PHOTOS]
        kept = {**offered, "photos": photos}
        question = t._("File a request with this photo?")
    elif isinstance(event, Location):
        kept = {**offered, "latitude": event.latitude, "longitude": event.longitude}
        question = t._("File a request at this place?")
    else:
        return False
    ctx.clear_state()
    ctx.set_state(STATE_OFFER, **kept)
    ctx.reply(question, inline([Button(t._("📝 Yes, file a request"), callback(PREFIX, "with"))]))
    return True


def _file_with_offer(ctx: Context, _argument: str) -> None:
    data = ctx.state_data
    kept: dict[str, object] = {key: data[key] for key in ("photos", "latitude", "longitude") if key in data}
    _close_step(ctx, ctx.t._("📝 Yes, file a request"))
    _begin(ctx, kept)


def _begin(ctx: Context, kept: dict[str, object]) -> None:
    """Start a draft, keeping what the resident already sent (a photo, a location, a place's QR code).

    A location sent first says where the problem is; a resident without a building is asked where."""
    t = ctx.t
    if not filing_choices(ctx.session):
        show_main_menu(ctx, t._("Requests cannot be filed yet. Please try again later."))
        return
    ctx.clear_state()
    # The token ties the Confirm button to this draft, so an old summary cannot file a later draft.
    ctx.set_state(STEP_WHERE, **{"draft": secrets.token_hex(4), "photos": [], **kept})
    latitude, longitude = kept.get("latitude"), kept.get("longitude")
    if "spot" in kept:
        _ask_category(ctx)
    elif isinstance(latitude, float) and isinstance(longitude, float):
        _take_location(ctx, latitude, longitude)
    elif _own_building(ctx) is not None:
        _ask_category(ctx)
    else:
        _ask_where(ctx)


def _own_building(ctx: Context) -> Building | None:
    building = ctx.person.building
    return building if building is not None and building.active else None


def _spot_data(spot: places.Spot) -> dict[str, int | None]:
    return {"grid": spot.grid_id, "building": spot.building.id if spot.building else None,
            "place": spot.place.id if spot.place else None}


def _spot(ctx: Context) -> places.Spot | None:
    """Where the draft is about, from the conversation state; None for the resident's own building."""
    data = ctx.state_data.get("spot")
    if not isinstance(data, dict):
        return None
    grid = ctx.session.get(Grid, int(data.get("grid") or 0))
    if grid is None:
        raise RequestRefused(N_("This place is no longer available. Please start again with /new."))
    building = ctx.session.get(Building, data["building"]) if data.get("building") else None
    place = ctx.session.get(Place, data["place"]) if data.get("place") else None
    if ctx.state_data.get("latitude") is None and place is not None:
        return places.spot_of_place(place)
    return places.Spot(grid.id, building=building, place=place, latitude=ctx.state_data.get("latitude"),
                       longitude=ctx.state_data.get("longitude"))


def _where_text(ctx: Context) -> str:
    """The draft's place, named: the building, the place, or the grid a location lies in."""
    spot = _spot(ctx)
    if spot is None:
        building = _own_building(ctx)
        return building.name if building is not None else "?"
    if spot.building is not None:
        return spot.building.name
    if spot.place is not None:
        return spot.place.name
    grid = ctx.session.get(Grid, spot.grid_id)
    return ctx.t._("a location in {grid}").format(grid=grid.name if grid else "?")


def _ask_where(ctx: Context) -> None:
    t = ctx.t
    ctx.set_state(STEP_WHERE)
    buttons = []
    building = _own_building(ctx)
    if building is not None:
        buttons.append([Button(t._("🏠 My building: {building}").format(building=building.name),
                               callback(PREFIX, "mine"))])
    ctx.reply(t._("Where is the problem? Send its location (📍), or type the name of the place (a market, a street)"
                  " to look it up."), inline(*buttons) if buttons else None)


def _ask_category(ctx: Context) -> None:
    t = ctx.t
    ctx.set_state(STEP_CATEGORY)
    buttons = [[Button(category.name(t.locale), callback(PREFIX, "cat", category.id))]
               for category in filing_choices(ctx.session)]
    buttons.append([Button(t._("📍 It is somewhere else"), callback(PREFIX, "else"))])
    ctx.reply(t._("New request for {building}. What is it about?").format(building=_where_text(ctx)),
              inline(*buttons))


def _take_location(ctx: Context, latitude: float, longitude: float) -> None:
    spot = places.locate(ctx.session, latitude, longitude)
    if spot is None:
        ctx.set_state(STEP_WHERE)
        ctx.reply(ctx.t._("This location is in none of our grids. Send another one, or type the name of the place."))
        return
    ctx.set_state(STEP_WHERE, latitude=latitude, longitude=longitude, spot=_spot_data(spot))
    _ask_category(ctx)


def _search_place(ctx: Context, text: str) -> None:
    t = ctx.t
    found = places.search_places(ctx.session, text)
    if not found:
        ctx.reply(t._("No place is called “{text}”. Try another name, or send the location (📍).").format(
            text=clip(text.strip(), places.MAX_SEARCH)))
        return
    buttons = [[Button(place.name, callback(PREFIX, "place", place.id))] for place in found]
    ctx.reply(t._("Which of these places?"), inline(*buttons))


def _chose_place(ctx: Context, argument: str) -> None:
    place = places.active_place(ctx.session, int(argument)) if argument.isdigit() else None
    if place is None:
        ctx.reply(ctx.t._("This place is no longer available. Please choose again."))
        return
    _close_step(ctx, place.name)
    _settle_place(ctx, place)


def _settle_place(ctx: Context, place: Place) -> None:
    ctx.set_state(STEP_WHERE, spot=_spot_data(places.spot_of_place(place)))
    _ask_category(ctx)


def _chose_own_building(ctx: Context, _argument: str) -> None:
    building = _own_building(ctx)
    if building is None:
        ctx.reply(ctx.t._("First tell us which building you live in: send /building."))
        return
    _close_step(ctx, building.name)
    ctx.set_state(STEP_WHERE, spot=None, latitude=None, longitude=None)
    _ask_category(ctx)


def _somewhere_else(ctx: Context, _argument: str) -> None:
    _close_step(ctx, ctx.t._("📍 It is somewhere else"))
    _ask_where(ctx)


def report_anywhere(ctx: Context, _argument: str) -> None:
    """The greeting's offer to someone without a building: file about any place, no binding needed."""
    _begin(ctx, {})


def file_about_place(ctx: Context, code: str) -> None:
    """``/start p_<place code>``: what the QR code at a place (a market's entrance) opens."""
    place = places.place_by_code(ctx.session, code) if code else None
    if place is None:
        show_main_menu(ctx, ctx.t._("This link names no place we know. Send /new to report a problem."))
        return
    _begin(ctx, {"spot": _spot_data(places.spot_of_place(place))})


deep_links[places.PLACE_LINK_PREFIX] = file_about_place


# --- buttons ----------------------------------------------------------------------------------------------------


@router.button(PREFIX)
def on_button(ctx: Context) -> None:
    args = button_args(ctx)
    action, argument = (args[0], args[1] if len(args) > 1 else "") if args else ("", "")
    entry = BUTTON_STEPS.get(action)
    if entry is None or entry[0] not in (ctx.person.state, ANY_STEP):
        ctx.answer(ctx.t._("This step is over. Send /new to file a request."), alert=True)
        return
    ctx.answer()
    try:
        entry[1](ctx, argument)
    except RequestRefused as error:
        refuse(ctx, error)


def _chose_category(ctx: Context, argument: str) -> None:
    if not argument.isdigit():
        return
    ctx.set_state(STEP_CATEGORY, category_id=int(argument))
    category = next((c for c in filing_choices(ctx.session) if c.id == int(argument)), None)
    _close_step(ctx, ctx.t._("Category: {category}").format(category=category.name(ctx.t.locale) if category else "?"))
    about = _shared_spot(ctx)
    duplicates = core.find_duplicates(ctx.session, about, int(argument), ctx.now)[:SHOWN_DUPLICATES] if (
        about is not None) else []
    if duplicates:
        _offer_duplicates(ctx, duplicates, isinstance(about, Place))
    else:
        _ask_description(ctx)


def _shared_spot(ctx: Context) -> Building | Place | None:
    """Where others may have reported the same problem: the person's own building, or a place (public, so
    anyone there may join); a location alone, or someone else's building, offers no "me too"."""
    spot = _spot(ctx)
    if spot is not None and spot.place is not None:
        return spot.place
    building = spot.building if spot is not None else _own_building(ctx)
    return building if building is not None and building.id == ctx.person.building_id else None


def _offer_duplicates(ctx: Context, duplicates: list[Request], at_a_place: bool) -> None:
    t = ctx.t
    ctx.set_state(STEP_DUPLICATE)
    lines = [t._("Others already reported this here in the last week:") if at_a_place
             else t._("Neighbours already reported this in the last week:")]
    buttons = []
    for request in duplicates:
        # Only what the resident chose themselves and neutral facts: never another resident's words or name.
        joined = (t.n_("{count} person joined", "{count} people joined", request.supporters) if at_a_place
                  else t.n_("{count} neighbour joined", "{count} neighbours joined", request.supporters)
                  ).format(count=request.supporters)
        lines.append(t._("{code} · {category}, filed {date} · {joined}").format(
            code=request.code, category=request.category.name(t.locale), date=t.date(request.created_at),
            joined=joined))
        buttons.append([Button(t._("🙋 Me too: {code}").format(code=request.code),
                               callback(PREFIX, "join", request.id))])
    buttons.append([Button(t._("It is something else: file a new request"), callback(PREFIX, "fresh"))])
    ctx.reply("\n".join(lines), inline(*buttons))


def _close_step(ctx: Context, choice: str) -> None:
    """Show the choice made in place of the step's buttons, so a finished step offers nothing to press."""
    if edits_in_place(ctx.person):
        ctx.edit(ctx.t._("✔ {choice}").format(choice=choice))


def _close_sent_prompt(ctx: Context) -> None:
    """A step answered by sending a photo or a location: take the buttons off its prompt."""
    edit = close_last_prompt(ctx.session, ctx.person, PREFIX)
    if edit is not None:
        ctx.send(ctx.person, edit)


def _join(ctx: Context, argument: str) -> None:
    change = core.join_request(ctx.session, ctx.person, int(argument) if argument.isdigit() else 0, ctx.now)
    request, t = change.request, ctx.t
    _close_step(ctx, t._("🙋 Me too: {code}").format(code=request.code))
    ctx.clear_state()
    # A place (a market, an alley) is everyone's: those who join are not neighbours there.
    at_a_place = request.place_id is not None
    joined = (t.n_("You joined {code}. {count} person supports it now; we will keep you posted.",
                   "You joined {code}. {count} people support it now; we will keep you posted.", request.supporters)
              if at_a_place else
              t.n_("You joined {code}. {count} neighbour supports it now; we will keep you posted.",
                   "You joined {code}. {count} neighbours support it now; we will keep you posted.",
                   request.supporters))
    show_main_menu(ctx, joined.format(code=request.code, count=request.supporters))
    told = (N_("🙋 One more person reported {code} ({count} in all).") if at_a_place
            else N_("🙋 One more neighbour reported {code} ({count} in all)."))
    notify_staff_text(ctx, change.notify, request, told, count=request.supporters + 1)


def _file_anyway(ctx: Context, _argument: str) -> None:
    _close_step(ctx, ctx.t._("It is something else: file a new request"))
    _ask_description(ctx)


def _photos_done(ctx: Context, _argument: str) -> None:
    _close_step(ctx, ctx.t._("Photos: {count}").format(count=len(ctx.state_data.get("photos", []))))
    _after_photos(ctx)


def _after_photos(ctx: Context) -> None:
    # A location sent before filing began is already the request's place.
    if ctx.state_data.get("latitude") is not None:
        _ask_hide(ctx)
    else:
        _ask_location(ctx)


def _location_choice(ctx: Context, argument: str) -> None:
    building = _own_building(ctx) if _spot(ctx) is None else None
    if argument == "b" and building is not None and building.latitude is not None:
        ctx.set_state(STEP_LOCATION, latitude=building.latitude, longitude=building.longitude)
    _close_step(ctx, _location_line(ctx))
    _ask_hide(ctx)


def _location_line(ctx: Context) -> str:
    t = ctx.t
    has_location = ctx.state_data.get("latitude") is not None
    return t._("Location: {location}").format(location=t._("shared") if has_location else t._("not shared"))


def _hide_choice(ctx: Context, argument: str) -> None:
    ctx.set_state(STEP_HIDE, hide=argument == "1")
    t = ctx.t
    _close_step(ctx, t._("Name hidden: {hidden}").format(hidden=t._("yes") if argument == "1" else t._("no")))
    _show_summary(ctx)


def _confirm(ctx: Context, argument: str) -> None:
    data = ctx.state_data
    if argument != data.get("draft"):
        ctx.reply(ctx.t._("This summary is out of date. Please check the latest one."))
        return
    draft = Draft(
        category_id=int(data.get("category_id", 0)), description=str(data.get("description", "")),
        photo_ids=tuple(data.get("photos", [])), latitude=data.get("latitude"), longitude=data.get("longitude"),
        hide_identity=bool(data.get("hide", False)),
    )
    change = core.file_request(ctx.session, ctx.person, draft, ctx.now, ctx.config.daily_request_limit,
                               spot=_spot(ctx))
    _close_summary(ctx)
    ctx.clear_state()
    _send_receipt(ctx, change)
    send_cards(ctx, change.notify, change.request, N_("📥 New request {code}"))
    post_to_team_chat(ctx, change.request, N_("📥 New request {code}"))


def _send_receipt(ctx: Context, change: core.Change) -> None:
    request, t = change.request, ctx.t
    holder = holder_text(ctx, t, request)
    names = [person.display_name for person in change.notify if person.display_name]
    if names and len(names) <= MAX_HOLDER_NAMES:
        holder = t._("{person} ({unit})").format(person=", ".join(names), unit=holder)
    show_main_menu(ctx, t._("Filed as {code}. It is with {holder}. You will hear back by {due}.").format(
        code=request.code, holder=holder, due=due_text(t, request)))


def _cancel(ctx: Context, _argument: str) -> None:
    _close_summary(ctx)
    ctx.clear_state()
    show_main_menu(ctx, ctx.t._("Cancelled. Nothing was filed."))


# --- asking for each part -------------------------------------------------------------------------------------


def _ask_description(ctx: Context) -> None:
    ctx.set_state(STEP_DESCRIPTION)
    ctx.reply(ctx.t._("Describe the problem in a few words (at most {limit} characters).").format(
        limit=core.MAX_DESCRIPTION))


def _ask_photos(ctx: Context) -> None:
    t = ctx.t
    ctx.set_state(STEP_PHOTOS)
    kept = len(ctx.state_data.get("photos", []))
    if kept >= core.MAX_PHOTOS:
        _after_photos(ctx)
    elif kept:
        _photo_received(ctx, kept)
    else:
        ctx.reply(t._("Send up to {limit} photos, or skip.").format(limit=core.MAX_PHOTOS),
                  inline([Button(t._("Skip"), callback(PREFIX, "photos"))]))


def _photo_received(ctx: Context, count: int) -> None:
    t = ctx.t
    ctx.reply(t._("Photo {count} of {limit} received. Send another, or press Done.").format(
        count=count, limit=core.MAX_PHOTOS), inline([Button(t._("Done"), callback(PREFIX, "photos"))]))


def _ask_location(ctx: Context) -> None:
    t = ctx.t
    ctx.set_state(STEP_LOCATION)
    buttons = [Button(t._("Skip"), callback(PREFIX, "loc", "-"))]
    building = _own_building(ctx) if _spot(ctx) is None else None
    if building is not None and building.latitude is not None:
        buttons.insert(0, Button(t._("📍 Use my building's location"), callback(PREFIX, "loc", "b")))
    ctx.reply(t._("Where exactly? Send a location (📍), use your building's, or skip."),
              inline(buttons))


def _ask_hide(ctx: Context) -> None:
    t = ctx.t
    ctx.set_state(STEP_HIDE)
    ctx.reply(
        t._("Hide your name from the staff who handle it?"),
        inline([Button(t._("Yes, hide them"), callback(PREFIX, "hide", 1)),
                Button(t._("No, show them"), callback(PREFIX, "hide", 0))]),
    )


def _summary_text(ctx: Context) -> str:
    t, data = ctx.t, ctx.state_data
    category = next(
        (c for c in filing_choices(ctx.session) if c.id == data.get("category_id")), None
    )
    has_location = data.get("latitude") is not None
    return t._(
        "Please check your request:\nWhere: {where}\nCategory: {category}\n{description}\nPhotos: {photos}\n"
        "Location: {location}\nName hidden: {hidden}"
    ).format(
        where=_where_text(ctx),
        category=category.name(t.locale) if category else "?", description=data.get("description", ""),
        photos=len(data.get("photos", [])), location=t._("shared") if has_location else t._("not shared"),
        hidden=t._("yes") if data.get("hide") else t._("no"),
    )


def _close_summary(ctx: Context) -> None:
    if edits_in_place(ctx.person):
        ctx.edit(clip(_summary_text(ctx)))


def _show_summary(ctx: Context) -> None:
    t = ctx.t
    ctx.set_state(STEP_SUMMARY)
    ctx.reply(
        clip(_summary_text(ctx)),
        inline([Button(t._("✅ Confirm"), callback(PREFIX, "ok", ctx.state_data.get("draft", ""))),
                Button(t._("✖️ Cancel"), callback(PREFIX, "no"))]),
    )


# --- what the resident sends during the steps ---------------------------------------------------------------


@router.step("filing")
def filing_step(ctx: Context) -> None:
    step = ctx.person.state
    if step == STEP_WHERE:
        _where_step(ctx)
    elif step == STEP_DESCRIPTION:
        _description_step(ctx)
    elif step == STEP_PHOTOS:
        _photos_step(ctx)
    elif step == STEP_LOCATION and isinstance(ctx.event, Location):
        ctx.set_state(STEP_LOCATION, latitude=ctx.event.latitude, longitude=ctx.event.longitude)
        _close_sent_prompt(ctx)
        _ask_hide(ctx)
    else:
        ctx.reply(ctx.t._("Please use the buttons above, or /cancel."))


def _where_step(ctx: Context) -> None:
    event = ctx.event
    if isinstance(event, Location):
        _close_sent_prompt(ctx)
        _take_location(ctx, event.latitude, event.longitude)
    elif isinstance(event, Text) and event.text.strip():
        _search_place(ctx, event.text)
    else:
        ctx.reply(ctx.t._("Please send the location (📍) of the problem, or type the name of the place."))


def _description_step(ctx: Context) -> None:
    t, event = ctx.t, ctx.event
    if isinstance(event, Photo):
        _photo_first(ctx, event)
        return
    if not isinstance(event, Text):
        ctx.reply(t._("Please describe the problem in text first; you can add photos next."))
        return
    _take_description(ctx, event.text)


def _take_description(ctx: Context, text: str) -> None:
    try:
        description = core.check_description(text)
    except RequestRefused as error:
        refuse(ctx, error)
        return
    # Emoji and punctuation alone tell the staff nothing.
    if not any(character.isalnum() for character in description):
        ctx.reply(ctx.t._("Please describe the problem in words: what is wrong, and where?"))
        return
    ctx.set_state(STEP_DESCRIPTION, description=description)
    _ask_photos(ctx)


def _photo_first(ctx: Context, photo: Photo) -> None:
    """A photo before the words: keep it as the first photo, and take its caption as the description."""
    photos = [*ctx.state_data.get("photos", []), photo.file_id][: core.MAX_PHOTOS]
    ctx.set_state(STEP_DESCRIPTION, photos=photos)
    if photo.caption.strip():
        _take_description(ctx, photo.caption)
        return
    ctx.reply(ctx.t._("Photo kept. Now describe the problem in a few words (at most {limit} characters).").format(
        limit=core.MAX_DESCRIPTION))


def _photos_step(ctx: Context) -> None:
    t = ctx.t
    if not isinstance(ctx.event, Photo):
        ctx.reply(t._("Please send a photo, or press Done."), inline([Button(t._("Done"), callback(PREFIX, "photos"))]))
        return
    photos = [*ctx.state_data.get("photos", []), ctx.event.file_id]
    ctx.set_state(STEP_PHOTOS, photos=photos)
    _close_sent_prompt(ctx)
    if len(photos) >= core.MAX_PHOTOS:
        _after_photos(ctx)
        return
    _photo_received(ctx, len(photos))


# Each button works only in the step that showed it; pressed later, it is refused rather than misapplied. The
# greeting's "report a problem anywhere" starts afresh from any step.
ANY_STEP = "*"
BUTTON_STEPS: dict[str, tuple[str, Callable[[Context, str], None]]] = {
    "with": (STATE_OFFER, _file_with_offer),
    "any": (ANY_STEP, report_anywhere),
    "mine": (STEP_WHERE, _chose_own_building),
    "place": (STEP_WHERE, _chose_place),
    "else": (STEP_CATEGORY, _somewhere_else),
    "cat": (STEP_CATEGORY, _chose_category),
    "join": (STEP_DUPLICATE, _join),
    "fresh": (STEP_DUPLICATE, _file_anyway),
    "photos": (STEP_PHOTOS, _photos_done),
    "loc": (STEP_LOCATION, _location_choice),
    "hide": (STEP_HIDE, _hide_choice),
    "ok": (STEP_SUMMARY, _confirm),
    "no": (STEP_SUMMARY, _cancel),
}
