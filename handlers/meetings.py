"""The three-party meeting: ``/meeting`` for community staff (schedule, invitations, recording attendance and
decisions), the representatives' invitation links, and reporting a decision's outcome."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from bot.core import meetings as core
from bot.core.context import Context
from bot.core.messages import Button, ButtonPress, Command, Text, clip, inline
from bot.core.router import Router, button_args, callback
from bot.core.volunteers import community_staff, staffed_communities
from bot.i18n import N_, Translator
from bot.meeting_wording import PREFIX, decision_line, party_name, refusal_text
from bot.wording import refresh_cards, tell, tell_resident
from handlers.start import deep_links
from storage.models import Meeting, MeetingDecision, MeetingParty

router = Router()
WEEKDAYS = (N_("Monday"), N_("Tuesday"), N_("Wednesday"), N_("Thursday"), N_("Friday"), N_("Saturday"),
            N_("Sunday"))


def _refused(ctx: Context, error: core.MeetingRefused) -> None:
    text = refusal_text(ctx.t, error)
    if isinstance(ctx.event, ButtonPress):
        ctx.answer(text, alert=True)
    else:
        ctx.reply(text)


def _args(ctx: Context) -> list[str]:
    return button_args(ctx)[1:]


def _int(value: str) -> int | None:
    return int(value) if value.isdigit() else None


def _stale(ctx: Context) -> None:
    ctx.answer(ctx.t._("This button is no longer valid."), alert=True)


def _party(value: str) -> MeetingParty | None:
    return MeetingParty(value) if value in set(MeetingParty) else None


# --- /meeting -----------------------------------------------------------------------------------------------


@router.command("meeting")
def meeting_command(ctx: Context) -> None:
    t = ctx.t
    communities = staffed_communities(ctx.person)
    if not communities:
        ctx.reply(t._(core.NOT_COMMUNITY_STAFF))
        return
    args = (ctx.event.args if isinstance(ctx.event, Command) else "").split()
    if args and args[0] == "time":
        _set_time(ctx, communities[0], args[1:])
        return
    _overview(ctx, communities[0])


def _set_time(ctx: Context, community_id: int, args: list[str]) -> None:
    t = ctx.t
    try:
        weekday = int(args[0]) - 1
        at = time.fromisoformat(args[1])
    except (IndexError, ValueError):
        ctx.reply(t._(core.BAD_SCHEDULE))
        return
    try:
        core.set_schedule(ctx.session, ctx.person, community_id, weekday, at)
    except core.MeetingRefused as error:
        _refused(ctx, error)
        return
    _overview(ctx, community_id)


def _overview(ctx: Context, community_id: int) -> None:
    t = ctx.t
    defaults = ctx.config.meetings
    weekday, at = core.schedule_of(ctx.session, community_id, defaults)
    lines = [t._("🤝 Three-party meeting of {community}: every {weekday} at {time}; next on {next}.").format(
        community=core.community_name(ctx.session, community_id), weekday=t._(WEEKDAYS[weekday]),
        time=at.strftime("%H:%M"), next=t.datetime(core.next_meeting(ctx.session, community_id, ctx.now, defaults)))]
    for party in MeetingParty:
        names = [person.display_name for person in core.representatives(ctx.session, community_id, party)]
        lines.append(t._("• {party}: {names}").format(party=party_name(t, party), names="、".join(names) or "—"))
    lines.append(t._("Change the time with /meeting time <1-7> <HH:MM>."))
    rows = [[Button(t._("Invite for {party}").format(party=party_name(t, party)), callback(PREFIX, "inv", party.value))]
            for party in MeetingParty]
    rows += [[Button(t._("Record the meeting of {when}").format(when=t.date(meeting.held_at)),
                     callback(PREFIX, "rec", meeting.id))]
             for meeting in core.last_meetings(ctx.session, community_id, ctx.now, limit=1)]
    ctx.reply("\n".join(lines), inline(*rows))


@router.button(f"{PREFIX}:inv")
def invite(ctx: Context) -> None:
    args = _args(ctx)
    party = _party(args[0]) if args else None
    communities = staffed_communities(ctx.person)
    if party is None:
        _stale(ctx)
        return
    try:
        member = core.invite(ctx.session, ctx.person, communities[0] if communities else 0, party, ctx.now)
    except core.MeetingRefused as error:
        _refused(ctx, error)
        return
    t = ctx.t
    ctx.answer()
    link = f"https://t.me/{ctx.config.bot_username}?start={core.DEEP_LINK_PREFIX}{member.token}"
    ctx.reply(t._("Send this link to the representative of {party}; it works once:\n{link}").format(
        party=party_name(t, party), link=link))


def open_invitation(ctx: Context, token: str) -> None:
    t = ctx.t
    try:
        member = core.join(ctx.session, ctx.person, token, ctx.now)
    except core.MeetingRefused as error:
        _refused(ctx, error)
        return
    ctx.reply(t._("You now represent {party} at the three-party meeting of {community}. You will get its agenda "
                  "the day before.").format(party=party_name(t, member.party),
                                            community=core.community_name(ctx.session, member.community_id)))


# --- recording the meeting ----------------------------------------------------------------------------------


def _attendance_keyboard(t: Translator, meeting: Meeting) -> list[list[Button]]:
    rows = [[Button(("✅ " if party.value in meeting.attended else "▫️ ") + party_name(t, party),
                    callback(PREFIX, "att", meeting.id, party.value))] for party in MeetingParty]
    rows.append([Button(t._("➕ Add a decision"), callback(PREFIX, "dec", meeting.id))])
    return rows


@router.button(f"{PREFIX}:rec")
def record(ctx: Context) -> None:
    args = _args(ctx)
    meeting_id = _int(args[0]) if args else None
    if meeting_id is None:
        _stale(ctx)
        return
    try:
        meeting = core.get_meeting(ctx.session, ctx.person, meeting_id, ctx.now)
    except core.MeetingRefused as error:
        _refused(ctx, error)
        return
    t = ctx.t
    ctx.answer()
    ctx.reply(t._("Meeting of {when}: tap the parties that attended, then add its decisions.").format(
        when=t.datetime(meeting.held_at)), inline(*_attendance_keyboard(t, meeting)))


@router.button(f"{PREFIX}:att")
def attendance(ctx: Context) -> None:
    args = _args(ctx)
    meeting_id = _int(args[0]) if args else None
    party = _party(args[1]) if len(args) > 1 else None
    if meeting_id is None or party is None:
        _stale(ctx)
        return
    try:
        meeting = core.toggle_attendance(ctx.session, ctx.person, meeting_id, party, ctx.now)
    except core.MeetingRefused as error:
        _refused(ctx, error)
        return
    t = ctx.t
    ctx.answer()
    ctx.edit(t._("Meeting of {when}: tap the parties that attended, then add its decisions.").format(
        when=t.datetime(meeting.held_at)), inline(*_attendance_keyboard(t, meeting)))


@router.button(f"{PREFIX}:dec")
def choose_subject(ctx: Context) -> None:
    args = _args(ctx)
    meeting_id = _int(args[0]) if args else None
    if meeting_id is None:
        _stale(ctx)
        return
    try:
        meeting = core.get_meeting(ctx.session, ctx.person, meeting_id, ctx.now)
    except core.MeetingRefused as error:
        _refused(ctx, error)
        return
    t = ctx.t
    ctx.answer()
    subjects = core.property_requests(ctx.session, meeting.community_id, ctx.config.meetings.property_categories)
    rows = [[Button(f"{request.code} · {request.category.name(t.locale)}", callback(PREFIX, "dr", meeting.id,
                                                                                   request.id))]
            for request in subjects]
    rows.append([Button(t._("A decision standing alone"), callback(PREFIX, "dr", meeting.id, 0))])
    ctx.reply(t._("What is the decision about?"), inline(*rows))


@router.button(f"{PREFIX}:dr")
def decision_subject(ctx: Context) -> None:
    args = _args(ctx)
    meeting_id, request_id = (_int(args[0]), _int(args[1])) if len(args) > 1 else (None, None)
    if meeting_id is None or request_id is None:
        _stale(ctx)
        return
    try:
        core.get_meeting(ctx.session, ctx.person, meeting_id, ctx.now)
    except core.MeetingRefused as error:
        _refused(ctx, error)
        return
    ctx.answer()
    ctx.set_state("mtg.text", meeting=meeting_id, request=request_id)
    ctx.reply(ctx.t._("Write the decision, or /cancel."))


@router.button(f"{PREFIX}:ow")
def decision_owner(ctx: Context) -> None:
    args = _args(ctx)
    party = _party(args[0]) if args else None
    if party is None or ctx.person.state != "mtg.owner":
        _stale(ctx)
        return
    ctx.answer()
    ctx.set_state("mtg.deadline", owner=party.value)
    ctx.edit(ctx.t._("Owner: {party}. By when? A date like 2026-12-10.").format(party=party_name(ctx.t, party)))


@router.step("mtg")
def meeting_step(ctx: Context) -> None:
    t = ctx.t
    text = ctx.event.text.strip() if isinstance(ctx.event, Text) else ""
    if not text or len(text) > core.MAX_TEXT:
        ctx.reply(t._(core.EMPTY_TEXT).format(limit=core.MAX_TEXT))
        return
    state = ctx.person.state
    if state == "mtg.text":
        ctx.set_state("mtg.owner", text=text)
        ctx.reply(t._("Which party owns it?"), inline(*[
            [Button(party_name(t, party), callback(PREFIX, "ow", party.value))] for party in MeetingParty]))
    elif state == "mtg.deadline":
        _save_decision(ctx, text)
    elif state == "mtg.outcome":
        _save_outcome(ctx, text)
    else:
        ctx.reply(t._("Please answer with the buttons above, or /cancel."))


def _deadline(text: str, timezone: str) -> datetime | None:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    return datetime.combine(day, core.DEADLINE_TIME, tzinfo=ZoneInfo(timezone))


def _save_decision(ctx: Context, text: str) -> None:
    t, data = ctx.t, ctx.state_data
    deadline = _deadline(text, ctx.config.timezone)
    if deadline is None:
        ctx.reply(t._(core.BAD_DEADLINE))
        return
    try:
        decision = core.add_decision(ctx.session, ctx.person, int(data["meeting"]), int(data["request"]) or None,
                                     str(data["text"]), MeetingParty(str(data["owner"])), deadline, ctx.now)
    except core.MeetingRefused as error:
        if error.reason == core.BAD_DEADLINE:
            ctx.reply(t._(error.reason))
            return
        ctx.clear_state()
        _refused(ctx, error)
        return
    ctx.clear_state()
    ctx.reply(t._("Decision recorded: {line}").format(line=decision_line(t, decision)), inline(
        [Button(t._("➕ Add a decision"), callback(PREFIX, "dec", decision.meeting_id))]))
    owners = core.representatives(ctx.session, decision.meeting.community_id, decision.owner)
    tell(ctx, owners, lambda tr: tr._("🤝 The three-party meeting gave your party a decision: {line}").format(
        line=decision_line(tr, decision)))
    if decision.request is not None:
        _tell_request(ctx, decision, lambda tr: tr._(
            "The three-party meeting decided on {code}: {text} (by {deadline})").format(
            code=decision.request.code if decision.request else "", text=decision.text,
            deadline=tr.date(decision.deadline)))


# --- the outcome ---------------------------------------------------------------------------------------------


@router.button(f"{PREFIX}:done")
def ask_outcome(ctx: Context) -> None:
    args = _args(ctx)
    decision_id = _int(args[0]) if args else None
    decision = ctx.session.get(MeetingDecision, decision_id) if decision_id else None
    if decision is None:
        _stale(ctx)
        return
    if not core.may_report(ctx.session, ctx.person, decision):
        _refused(ctx, core.MeetingRefused(core.NOT_THE_OWNER))
        return
    if decision.done_at is not None:
        _refused(ctx, core.MeetingRefused(core.ALREADY_DONE))
        return
    ctx.answer()
    ctx.set_state("mtg.outcome", decision=decision.id)
    ctx.reply(ctx.t._("What came of it? {line}\nWrite the outcome, or /cancel.").format(
        line=decision_line(ctx.t, decision)))


def _save_outcome(ctx: Context, text: str) -> None:
    t = ctx.t
    try:
        decision = core.report_outcome(ctx.session, ctx.person, int(ctx.state_data["decision"]), text, ctx.now)
    except core.MeetingRefused as error:
        ctx.clear_state()
        _refused(ctx, error)
        return
    ctx.clear_state()
    ctx.reply(t._("Outcome recorded, thank you: {line}").format(line=decision_line(t, decision)))
    others = [person for person in community_staff(ctx.session, decision.meeting.community_id)
              if person.id != ctx.person.id]
    tell(ctx, others, lambda tr: tr._("🤝 Outcome of a three-party meeting decision ({line}): {outcome}").format(
        line=decision_line(tr, decision), outcome=text))
    if decision.request is not None:
        _tell_request(ctx, decision, lambda tr: tr._(
            "The three-party meeting's decision on {code} was carried out: {outcome}").format(
            code=decision.request.code if decision.request else "", outcome=text))


def _tell_request(ctx: Context, decision: MeetingDecision, render: Callable[[Translator], str]) -> None:
    """The request's cards and views show the timeline anew; its resident is told."""
    request = decision.request
    if request is None or request.status.value == "withdrawn":
        return
    refresh_cards(ctx, request)
    tell_resident(ctx, request, lambda tr: clip(render(tr)))


deep_links[core.DEEP_LINK_PREFIX] = open_invitation
