"""What the parties of the three-party meeting read: the agenda, a decision, the reminder of its deadline;
shared by the handlers and the scheduler."""

from __future__ import annotations

from bot.core import meetings
from bot.core.messages import Button, InlineKeyboard, inline
from bot.core.requests import where_name
from bot.core.router import callback
from bot.i18n import N_, Translator
from storage.models import MeetingDecision, MeetingParty

PREFIX = "mt"
PARTY_NAMES = {
    MeetingParty.RESIDENTS: N_("the residents' committee"),
    MeetingParty.OWNERS: N_("the owners' committee"),
    MeetingParty.PROPERTY: N_("the property company"),
}


def party_name(t: Translator, party: MeetingParty) -> str:
    return t._(PARTY_NAMES[party])


def refusal_text(t: Translator, error: meetings.MeetingRefused) -> str:
    return t._(error.reason).format(**error.params)


def decision_line(t: Translator, decision: MeetingDecision) -> str:
    about = decision.request.code + ": " if decision.request is not None else ""
    return t._("{about}{text} — {owner}, by {deadline}").format(
        about=about, text=decision.text, owner=party_name(t, decision.owner), deadline=t.date(decision.deadline))


def agenda_text(t: Translator, community: str, agenda: meetings.Agenda) -> str:
    lines = [t._("📋 Agenda of the three-party meeting of {community}, {when}:").format(
        community=community, when=t.datetime(agenda.meeting.held_at))]
    lines.append(t._("Open property requests:"))
    lines += [t._("• {code} · {category} · {building} · filed {filed}").format(
        code=request.code, category=request.category.name(t.locale), building=where_name(request),
        filed=t.date(request.created_at)) for request in agenda.requests] or [t._("• none")]
    lines.append(t._("Open decisions of earlier meetings:"))
    lines += [f"• {decision_line(t, decision)}" for decision in agenda.open_decisions] or [t._("• none")]
    return "\n".join(lines)


def outcome_button(t: Translator, decision: MeetingDecision) -> InlineKeyboard:
    return inline([Button(t._("✅ Report the outcome"), callback(PREFIX, "done", decision.id))])


def reminder_text(t: Translator, decision: MeetingDecision) -> str:
    return t._("⏰ A decision of the three-party meeting of {community} is due by {deadline}: {line}").format(
        community=decision.meeting.community.name, deadline=t.datetime(decision.deadline),
        line=decision_line(t, decision))
