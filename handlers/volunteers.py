"""Volunteers: checking in to a community, staff approving, publishing posts, claiming slots, checking in and
out at the post, rating the service and ``/myservice``."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from bot.core import requests
from bot.core import volunteers as core
from bot.core.app import write_outbox
from bot.core.context import Context
from bot.core.messages import Action, Button, ButtonPress, Location, SendText, Text, inline
from bot.core.router import Router, button_args, callback
from bot.i18n import N_, Translator
from bot.volunteer_wording import (
    PREFIX,
    claim_actions,
    claim_buttons,
    claim_line,
    hours_text,
    post_text,
    rate_button,
    refusal_text,
    slot_time,
)
from bot.wording import HELP_PREFIX, holder_text, notify_staff_text, refresh_cards
from bot.wording import refuse as refuse_request
from handlers.start import deep_links
from storage.models import Community, Person, Priority, SlotClaim, Volunteer

router = Router()

# "2026-12-05 09:00-11:30", local time; one slot per line.
SLOT_PATTERN = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})\s+(\d{1,2}):(\d{2})\s*[-–~]\s*(\d{1,2}):(\d{2})")


def _refused(ctx: Context, error: core.VolunteerRefused) -> None:
    text = refusal_text(ctx.t, error)
    if isinstance(ctx.event, ButtonPress):
        ctx.answer(text, alert=True)
    else:
        ctx.reply(text)


def _int_arg(ctx: Context, index: int) -> int | None:
    args = button_args(ctx)
    return int(args[index]) if len(args) > index and args[index].isdigit() else None


def _stale(ctx: Context) -> None:
    ctx.answer(ctx.t._("This button is no longer valid."), alert=True)


# --- check-in ---------------------------------------------------------------------------------------------


def open_check_in(ctx: Context, code: str) -> None:
    """``/start v_<community code>``: the community's volunteer QR code or link."""
    t = ctx.t
    community = core.community_by_code(ctx.session, code) if code else None
    if community is None:
        ctx.reply(t._("This volunteer link names no community we know."))
        return
    volunteer = core.volunteer_of(ctx.session, ctx.person, community.id)
    if volunteer is not None and volunteer.status.value == "approved":
        ctx.reply(t._("You are already a volunteer of {community}.").format(community=community.name))
        return
    ctx.set_state("vol.name", community=community.id)
    ctx.reply(t._("Check in to {community} as a volunteer. What is your name?").format(
        community=community.name))


@router.step("vol")
def volunteer_step(ctx: Context) -> None:
    state = ctx.person.state
    if state == "vol.name":
        _name_step(ctx)
    elif state == "vol.comment":
        _comment_step(ctx)
    elif state == "vol.rcomment":
        _resident_comment_step(ctx)
    elif state == "vol.at":
        _location_step(ctx)
    else:
        ctx.reply(ctx.t._("Please answer with the buttons above, or /cancel."))


def _name_step(ctx: Context) -> None:
    t = ctx.t
    name = ctx.event.text.strip() if isinstance(ctx.event, Text) else ""
    if not name or len(name) > core.MAX_NAME:
        ctx.reply(t._("Please send your name as text, at most {limit} characters.").format(limit=core.MAX_NAME))
        return
    ctx.set_state("vol.unit", name=name)
    rows = [[Button(unit.name, callback(PREFIX, "pu", unit.id))] for unit in core.partner_units(ctx.session)]
    rows.append([Button(t._("None"), callback(PREFIX, "pu", 0))])
    ctx.reply(t._("Which partner unit do you come from?"), inline(*rows))


@router.button(f"{PREFIX}:pu")
def choose_partner_unit(ctx: Context) -> None:
    unit_id = _int_arg(ctx, 1)
    if ctx.person.state != "vol.unit" or unit_id is None:
        _stale(ctx)
        return
    t = ctx.t
    ctx.set_state("vol.party", unit=unit_id)
    ctx.edit(t._("Are you a member of the Communist Party?"), inline(
        [Button(t._("Yes, a party member"), callback(PREFIX, "pm", 1)), Button(t._("No"), callback(PREFIX, "pm", 0))]
    ))


@router.button(f"{PREFIX}:pm")
def choose_party_member(ctx: Context) -> None:
    answer = _int_arg(ctx, 1)
    data = ctx.state_data
    if ctx.person.state != "vol.party" or answer not in (0, 1) or "community" not in data:
        _stale(ctx)
        return
    t = ctx.t
    try:
        volunteer = core.check_in(ctx.session, ctx.person, int(data["community"]), str(data["name"]),
                                  int(data["unit"]) or None, answer == 1, ctx.now)
    except core.VolunteerRefused as error:
        ctx.clear_state()
        _refused(ctx, error)
        return
    ctx.clear_state()
    ctx.edit(t._("Thank you, {name}. The staff of {community} will confirm your check-in.").format(
        name=volunteer.name, community=volunteer.community.name))
    for staff in core.community_staff(ctx.session, volunteer.community_id):
        st = ctx.translator_for(staff)
        ctx.send(staff, SendText(_check_in_card(st, volunteer), inline([
            Button(st._("✅ Approve"), callback(PREFIX, "ok", volunteer.id)),
            Button(st._("✖ Refuse"), callback(PREFIX, "no", volunteer.id)),
        ])))


def _check_in_card(t: Translator, volunteer: Volunteer) -> str:
    unit = volunteer.partner_unit.name if volunteer.partner_unit is not None else t._("none")
    party = t._("yes") if volunteer.party_member else t._("no")
    return t._("🙋 Volunteer check-in to {community}: {name}; partner unit: {unit}; party member: {party}.").format(
        community=volunteer.community.name, name=volunteer.name, unit=unit, party=party)


@router.button(f"{PREFIX}:ok")
def approve(ctx: Context) -> None:
    _decide(ctx, approve=True)


@router.button(f"{PREFIX}:no")
def refuse(ctx: Context) -> None:
    _decide(ctx, approve=False)


def _decide(ctx: Context, approve: bool) -> None:
    volunteer_id = _int_arg(ctx, 1)
    if volunteer_id is None:
        _stale(ctx)
        return
    try:
        volunteer = core.decide(ctx.session, ctx.person, volunteer_id, approve, ctx.now)
    except core.VolunteerRefused as error:
        _refused(ctx, error)
        return
    t = ctx.t
    verdict = t._("You approved this check-in.") if approve else t._("You refused this check-in.")
    ctx.edit(_check_in_card(t, volunteer) + "\n" + verdict)
    vt = ctx.translator_for(volunteer.person)
    news = (vt._("Your check-in to {community} is approved. You will hear of new posts; see /myservice.")
            if approve else vt._("Your check-in to {community} was not approved."))
    ctx.send(volunteer.person, SendText(news.format(community=volunteer.community.name)))


@router.command("volunteers")
def volunteer_link(ctx: Context) -> None:
    """Community staff: the check-in link of their community and its volunteers."""
    t = ctx.t
    communities = core.staffed_communities(ctx.person)
    if not communities:
        ctx.reply(t._(core.NOT_COMMUNITY_STAFF))
        return
    for community_id in communities:
        community = ctx.session.get_one(Community, community_id)
        approved = core.approved_volunteers(ctx.session, community_id)
        ctx.reply(t._("Volunteers of {community}: {count} approved. Their check-in link (print it as a QR code):"
                      "\n{link}").format(community=community.name, count=t.number(len(approved)),
                                         link=core.deep_link(ctx.config.bot_username, community)))


# --- publishing a post ------------------------------------------------------------------------------------


@router.command("post")
def start_post(ctx: Context) -> None:
    t = ctx.t
    communities = core.staffed_communities(ctx.person)
    if not communities:
        ctx.reply(t._(core.NOT_COMMUNITY_STAFF))
        return
    ctx.clear_state()
    ctx.set_state("post.title", community=communities[0])
    ctx.reply(t._("A new volunteer post. Its title? (at most {limit} characters; /cancel to stop)").format(
        limit=core.MAX_TITLE))


@router.step("post")
def post_step(ctx: Context) -> None:
    t = ctx.t
    if not isinstance(ctx.event, Text) or not ctx.event.text.strip():
        ctx.reply(t._("Please answer in text, or /cancel."))
        return
    text = ctx.event.text.strip()
    state = ctx.person.state
    if state == "post.title":
        if len(text) > core.MAX_TITLE:
            ctx.reply(t._("Please keep the title within {limit} characters.").format(limit=core.MAX_TITLE))
            return
        ctx.set_state("post.desc", title=text)
        ctx.reply(t._("What will volunteers do? (a short description)"))
    elif state == "post.desc":
        ctx.set_state("post.place", description=text[: core.MAX_DESCRIPTION])
        ctx.reply(t._("Where? (a building, a place or an address)"))
    elif state == "post.place":
        ctx.set_state("post.slots", place=text[: core.MAX_PLACE])
        ctx.reply(t._("The time slots, one per line, like 2026-12-05 09:00-11:00"))
    elif state == "post.slots":
        _slots_step(ctx, text)
    elif state == "post.places":
        _places_step(ctx, text)


def _parse_slots(text: str, timezone: str) -> list[core.SlotTimes] | None:
    zone = ZoneInfo(timezone)
    slots = []
    for line in (line.strip() for line in text.splitlines()):
        if not line:
            continue
        match = SLOT_PATTERN.fullmatch(line)
        if match is None:
            return None
        year, month, day, h1, m1, h2, m2 = (int(part) for part in match.groups())
        try:
            day_ = date(year, month, day)
            slots.append(core.SlotTimes(datetime.combine(day_, time(h1, m1), tzinfo=zone),
                                        datetime.combine(day_, time(h2, m2), tzinfo=zone)))
        except ValueError:
            return None
    return slots or None


def _slots_step(ctx: Context, text: str) -> None:
    t = ctx.t
    slots = _parse_slots(text, ctx.config.timezone)
    if slots is None or len(slots) > core.MAX_SLOTS:
        ctx.reply(t._("Please write up to {limit} slots, one per line, like 2026-12-05 09:00-11:00").format(
            limit=core.MAX_SLOTS))
        return
    if any(slot.starts_at <= ctx.now or slot.ends_at <= slot.starts_at for slot in slots):
        ctx.reply(t._(core.BAD_SLOT))
        return
    ctx.set_state("post.places", slots=[[s.starts_at.isoformat(), s.ends_at.isoformat()] for s in slots])
    ctx.reply(t._("How many places does each slot have?"))


def _places_step(ctx: Context, text: str) -> None:
    t = ctx.t
    if not text.isdigit() or not 1 <= int(text) <= core.MAX_PLACES:
        ctx.reply(t._(core.BAD_PLACES).format(limit=core.MAX_PLACES))
        return
    data = ctx.state_data
    slots = [core.SlotTimes(datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in data["slots"]]
    try:
        post = core.publish_post(ctx.session, ctx.person, int(data["community"]), str(data["title"]),
                                 str(data["description"]), str(data["place"]), slots, int(text), ctx.now,
                                 ctx.config.timezone)
    except core.VolunteerRefused as error:
        ctx.clear_state()
        _refused(ctx, error)
        return
    ctx.clear_state()
    told = core.approved_volunteers(ctx.session, post.community_id)
    # Written to the outbox for its loop, which sends them at the send rate after everyone's answers.
    announcements: list[tuple[Person, Action]] = []
    for volunteer in told:
        vt = ctx.translator_for(volunteer.person)
        announcements.append((volunteer.person, SendText(post_text(vt, post), claim_buttons(vt, post))))
    write_outbox(ctx.session, announcements, ctx.now, not_before=lambda _person: ctx.now,
                 priority=Priority.BROADCAST)
    ctx.reply(t._("Published “{title}” with {slots} slot(s); {count} volunteer(s) will be told.").format(
        title=post.title, slots=t.number(len(post.slots)), count=t.number(len(told))),
        inline([Button(t._("⭐ Residents served rate it too"), callback(PREFIX, "rr", post.id))]))


@router.button(f"{PREFIX}:rr")
def let_residents_rate(ctx: Context) -> None:
    post_id = _int_arg(ctx, 1)
    if post_id is None:
        _stale(ctx)
        return
    try:
        post = core.let_residents_rate(ctx.session, ctx.person, post_id)
    except core.VolunteerRefused as error:
        _refused(ctx, error)
        return
    t = ctx.t
    ctx.edit(t._("Residents of {community} who were served will rate the volunteers of “{title}” after each slot. "
                 "Give them this link at the post (on a notice or as a QR code):\n{link}").format(
        community=post.community.name, title=post.title, link=core.rating_link(ctx.config.bot_username, post)))


# --- claims, check-in and check-out -----------------------------------------------------------------------


@router.button(f"{PREFIX}:cl")
def claim(ctx: Context) -> None:
    slot_id = _int_arg(ctx, 1)
    if slot_id is None:
        _stale(ctx)
        return
    try:
        claimed = core.claim_slot(ctx.session, ctx.person, slot_id, ctx.now)
    except core.VolunteerRefused as error:
        _refused(ctx, error)
        return
    t = ctx.t
    ctx.answer(t._("Claimed."))
    ctx.reply(t._("✅ You claimed {slot}. You can cancel until {hours} hours before the start.").format(
        slot=claim_line(t, claimed), hours=t.number(int(core.CANCEL_BEFORE.total_seconds() // 3600))),
        inline(claim_actions(t, claimed)))


@router.button(f"{PREFIX}:cx")
def cancel(ctx: Context) -> None:
    _claim_move(ctx, lambda claim_id: core.cancel_claim(ctx.session, ctx.person, claim_id, ctx.now),
                ctx.t._("Your claim is cancelled: {slot}"))


@router.button(f"{PREFIX}:in")
def check_in(ctx: Context) -> None:
    claimed = _claim_move(ctx, lambda claim_id: core.check_in_at_post(ctx.session, ctx.person, claim_id, ctx.now),
                          ctx.t._("Checked in: {slot}. You may share your location; check out when you leave."))
    if claimed is not None:
        ctx.set_state("vol.at", claim=claimed)


@router.button(f"{PREFIX}:out")
def check_out(ctx: Context) -> None:
    if _claim_move(ctx, lambda claim_id: core.check_out(ctx.session, ctx.person, claim_id, ctx.now),
                   ctx.t._("Checked out, thank you: {slot}")) is not None and ctx.person.state == "vol.at":
        ctx.clear_state()


def _claim_move(ctx: Context, move: Callable[[int], SlotClaim], done: str) -> int | None:
    claim_id = _int_arg(ctx, 1)
    if claim_id is None:
        _stale(ctx)
        return None
    try:
        claimed = move(claim_id)
    except core.VolunteerRefused as error:
        _refused(ctx, error)
        return None
    t = ctx.t
    ctx.edit(done.format(slot=claim_line(t, claimed)), inline(claim_actions(t, claimed)))
    return claim_id


def _location_step(ctx: Context) -> None:
    if not isinstance(ctx.event, Location):
        ctx.clear_state()
        ctx.reply(ctx.t._("Send /myservice to see your claims."))
        return
    try:
        core.record_location(ctx.session, ctx.person, int(ctx.state_data["claim"]),
                             (ctx.event.latitude, ctx.event.longitude))
    except core.VolunteerRefused as error:
        ctx.clear_state()
        _refused(ctx, error)
        return
    ctx.reply(ctx.t._("Your location at the post is recorded."))


# --- helping with a request -------------------------------------------------------------------------------


@router.button(HELP_PREFIX)
def help_with_request(ctx: Context) -> None:
    """A volunteer answers a request holder's call for help; the holders hear, the timeline shows it."""
    request_id = _int_arg(ctx, 1)
    if request_id is None:
        _stale(ctx)
        return
    try:
        change = requests.help_with(ctx.session, ctx.person, request_id, ctx.now)
    except requests.RequestRefused as error:
        refuse_request(ctx, error)
        return
    request, t = change.request, ctx.t
    ctx.answer()
    ctx.edit(t._("Thank you for helping with {code}. Its holder knows you are coming: {holder}.").format(
        code=request.code, holder=holder_text(ctx, t, request)))
    refresh_cards(ctx, request)
    volunteer = core.volunteer_of(ctx.session, ctx.person, requests.community_of(request))
    name = volunteer.name if volunteer is not None else ctx.person.display_name
    notify_staff_text(ctx, change.notify, request, N_("🙋 Volunteer {name} will help with {code}."), name=name)


# --- evaluation -------------------------------------------------------------------------------------------


@router.button(f"{PREFIX}:rt")
def ask_stars(ctx: Context) -> None:
    claim_id = _int_arg(ctx, 1)
    if claim_id is None:
        _stale(ctx)
        return
    t = ctx.t
    claimed = ctx.session.get(SlotClaim, claim_id)
    if claimed is None or not core.is_community_staff(ctx.person, claimed.slot.post.community_id):
        _refused(ctx, core.VolunteerRefused(core.NOT_COMMUNITY_STAFF))
        return
    stars = [Button("★" * n, callback(PREFIX, "st", claim_id, n)) for n in range(1, 6)]
    ctx.reply(t._("How did {name} serve at {slot}?").format(name=claimed.volunteer.name,
                                                            slot=claim_line(t, claimed)), inline(stars))


@router.button(f"{PREFIX}:st")
def give_stars(ctx: Context) -> None:
    claim_id, stars = _int_arg(ctx, 1), _int_arg(ctx, 2)
    if claim_id is None or stars is None:
        _stale(ctx)
        return
    try:
        rated = core.rate_service(ctx.session, ctx.person, claim_id, stars, None, ctx.now)
    except core.VolunteerRefused as error:
        _refused(ctx, error)
        return
    t = ctx.t
    ctx.set_state("vol.comment", claim=claim_id)
    ctx.edit(t._("Rated {name}: {stars}. Send a comment, or /cancel to leave none.").format(
        name=rated.volunteer.name, stars="★" * stars))


def _comment_step(ctx: Context) -> None:
    t = ctx.t
    if not isinstance(ctx.event, Text) or not ctx.event.text.strip():
        ctx.reply(t._("Please write the comment as text, or /cancel."))
        return
    if len(ctx.event.text) > core.MAX_COMMENT:
        ctx.reply(t._("Please keep the comment within {limit} characters.").format(limit=core.MAX_COMMENT))
        return
    try:
        rated = core.add_comment(ctx.session, ctx.person, int(ctx.state_data["claim"]), ctx.event.text.strip(),
                                 ctx.now)
    except core.VolunteerRefused as error:
        ctx.clear_state()
        _refused(ctx, error)
        return
    ctx.clear_state()
    ctx.reply(t._("Comment saved for {name}.").format(name=rated.volunteer.name))


# --- residents rate the service ---------------------------------------------------------------------------


def open_resident_rating(ctx: Context, post_id: str) -> None:
    """``/start vr_<post id>``: the rating link of a post residents rate."""
    t = ctx.t
    try:
        if not post_id.isdigit():
            raise core.VolunteerRefused(core.NO_SUCH_THING)
        claims = core.services_to_rate(ctx.session, ctx.person, int(post_id), ctx.now)
    except core.VolunteerRefused as error:
        _refused(ctx, error)
        return
    if not claims:
        ctx.reply(t._("There is no service to rate here yet: come back after the slot."))
        return
    buttons = [[Button(t._("Rate {name}").format(name=claim.volunteer.name) + f" · {slot_time(t, claim.slot)}",
                       callback(PREFIX, "rs", claim.id))] for claim in claims]
    ctx.reply(t._("Thank you for rating the volunteers who served you. Whom will you rate?"), inline(*buttons))


@router.button(f"{PREFIX}:rs")
def ask_resident_stars(ctx: Context) -> None:
    claim_id = _int_arg(ctx, 1)
    if claim_id is None:
        _stale(ctx)
        return
    try:
        claimed = core.resident_may_rate(ctx.session, ctx.person, claim_id, ctx.now)
    except core.VolunteerRefused as error:
        _refused(ctx, error)
        return
    t = ctx.t
    stars = [Button("★" * n, callback(PREFIX, "rv", claimed.id, n)) for n in range(1, 6)]
    ctx.reply(t._("How did {name} serve you at {slot}?").format(name=claimed.volunteer.name,
                                                                slot=slot_time(t, claimed.slot)), inline(stars))


@router.button(f"{PREFIX}:rv")
def give_resident_stars(ctx: Context) -> None:
    claim_id, stars = _int_arg(ctx, 1), _int_arg(ctx, 2)
    if claim_id is None or stars is None:
        _stale(ctx)
        return
    try:
        core.rate_as_resident(ctx.session, ctx.person, claim_id, stars, ctx.now)
    except core.VolunteerRefused as error:
        _refused(ctx, error)
        return
    t = ctx.t
    name = ctx.session.get_one(SlotClaim, claim_id).volunteer.name
    ctx.set_state("vol.rcomment", claim=claim_id)
    ctx.edit(t._("You rated {name}: {stars}. Send a comment, or /cancel to leave none.").format(
        name=name, stars="★" * stars))


def _resident_comment_step(ctx: Context) -> None:
    t = ctx.t
    if not isinstance(ctx.event, Text) or not ctx.event.text.strip():
        ctx.reply(t._("Please write the comment as text, or /cancel."))
        return
    if len(ctx.event.text) > core.MAX_COMMENT:
        ctx.reply(t._("Please keep the comment within {limit} characters.").format(limit=core.MAX_COMMENT))
        return
    claim_id = int(ctx.state_data["claim"])
    ctx.clear_state()
    try:
        core.comment_as_resident(ctx.session, ctx.person, claim_id, ctx.event.text.strip())
    except core.VolunteerRefused as error:
        _refused(ctx, error)
        return
    ctx.reply(t._("Thank you: your comment on {name} is saved.").format(
        name=ctx.session.get_one(SlotClaim, claim_id).volunteer.name))


# --- /myservice -------------------------------------------------------------------------------------------


@router.command("myservice")
def my_service(ctx: Context) -> None:
    t = ctx.t
    shown = False
    if core.volunteerships(ctx.session, ctx.person):
        shown = True
        _volunteer_view(ctx)
    for community_id in core.staffed_communities(ctx.person):
        shown = True
        _staff_view(ctx, community_id)
    if not shown:
        ctx.reply(t._("You have not checked in as a volunteer. Scan your community's volunteer QR code to do so."))


def _volunteer_view(ctx: Context) -> None:
    t = ctx.t
    totals = core.my_totals(ctx.session, ctx.person)
    lines = [t._("🙋 Your volunteer service: {hours}, {served} slot(s) served, {no_shows} missed.").format(
        hours=hours_text(t, totals.hours), served=t.number(totals.served), no_shows=t.number(totals.no_shows))]
    if totals.average is not None:
        lines.append(t._("Average rating: {average} of 5 ({count} rating(s)).").format(
            average=t.number(totals.average), count=t.number(totals.ratings)))
    if totals.resident_average is not None:
        lines.append(t._("Residents' rating: {average} of 5 ({count} rating(s)).").format(
            average=t.number(totals.resident_average), count=t.number(totals.resident_ratings)))
    claims = [claim for claim in core.claims_of(ctx.session, ctx.person) if claim.status.value != "cancelled"]
    lines += [f"• {claim_line(t, claim)}" for claim in claims]
    buttons = [[Button(f"{label.text} · {slot_time(t, claim.slot)}", label.data) for label in claim_actions(t, claim)]
               for claim in claims]
    ctx.reply("\n".join(lines), inline(*buttons))


def _staff_view(ctx: Context, community_id: int) -> None:
    t = ctx.t
    community = ctx.session.get_one(Community, community_id)
    claims = core.community_claims(ctx.session, community_id)
    lines = [t._("Volunteer service in {community}:").format(community=community.name)]
    for totals in core.totals_by_volunteer(claims):
        average = t.number(totals.average) if totals.average is not None else "—"
        residents = t.number(totals.resident_average) if totals.resident_average is not None else "—"
        lines.append(t._("• {name}: {hours}, {served} served, {no_shows} missed, rating {average}, residents' "
                         "rating {residents}").format(
            name=totals.name, hours=hours_text(t, totals.hours), served=t.number(totals.served),
            no_shows=t.number(totals.no_shows), average=average, residents=residents))
    unrated = core.unrated_services(ctx.session, community_id, ctx.now)
    if unrated:
        lines.append(t._("To rate:"))
    ctx.reply("\n".join(lines), inline(*[[rate_button(t, claim)] for claim in unrated]))


deep_links[core.DEEP_LINK_PREFIX] = open_check_in
deep_links[core.RATING_LINK_PREFIX] = open_resident_rating
