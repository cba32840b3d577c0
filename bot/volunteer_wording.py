"""What volunteers and community staff read about posts, slots and service, shared by the handlers and the
scheduler's reminders."""

from __future__ import annotations

from bot.core import volunteers
from bot.core.messages import Button, InlineKeyboard, inline
from bot.core.router import callback
from bot.i18n import Translator
from storage.models import PostSlot, SlotClaim, VolunteerPost

PREFIX = "vl"


def refusal_text(t: Translator, error: volunteers.VolunteerRefused) -> str:
    return t._(error.reason).format(**error.params)


def slot_time(t: Translator, slot: PostSlot) -> str:
    end = slot.ends_at.astimezone(t.tz).strftime("%H:%M")
    return f"{t.datetime(slot.starts_at)}–{end}"


def hours_text(t: Translator, hours: float) -> str:
    # TRANSLATORS: hours of volunteer service, e.g. "2.5 h"
    return t._("{hours} h").format(hours=t.number(round(hours, 1)))


def post_text(t: Translator, post: VolunteerPost) -> str:
    lines = [t._("📌 New volunteer post at {community}: {title}").format(community=post.community.name,
                                                                        title=post.title)]
    if post.description:
        lines.append(post.description)
    if post.place:
        lines.append(t._("📍 Place: {place}").format(place=post.place))
    lines.append(t._("Time slots (places each: {places}):").format(places=t.number(post.slots[0].places)))
    lines += [f"• {slot_time(t, slot)}" for slot in post.slots]
    lines.append(t._("Claim a slot with its button; first come, first served."))
    return "\n".join(lines)


def claim_buttons(t: Translator, post: VolunteerPost) -> InlineKeyboard:
    return inline(*[
        [Button(t._("Claim {slot}").format(slot=slot_time(t, slot)), callback(PREFIX, "cl", slot.id))]
        for slot in post.slots
    ])


def claim_line(t: Translator, claim: SlotClaim) -> str:
    slot = claim.slot
    line = t._("{title} at {place}, {time}").format(title=slot.post.title, place=slot.post.place or "—",
                                                   time=slot_time(t, slot))
    if claim.checked_out_at is not None:
        line += " · " + t._("served {hours}").format(hours=hours_text(t, volunteers.served_hours(claim)))
    elif claim.checked_in_at is not None:
        line += " · " + t._("checked in")
    if claim.status.value == "no_show":
        line += " · " + t._("did not come")
    if claim.stars is not None:
        line += " · " + "★" * claim.stars
    return line


def claim_actions(t: Translator, claim: SlotClaim) -> list[Button]:
    """The buttons a volunteer may press on a claim still active."""
    if claim.status.value != "claimed" or claim.checked_out_at is not None:
        return []
    if claim.checked_in_at is not None:
        return [Button(t._("🏁 Check out"), callback(PREFIX, "out", claim.id))]
    return [
        Button(t._("✅ Check in"), callback(PREFIX, "in", claim.id)),
        Button(t._("Cancel claim"), callback(PREFIX, "cx", claim.id)),
    ]


def reminder_text(t: Translator, claim: SlotClaim, evening: bool) -> str:
    slot = claim.slot
    if evening:
        text = t._("⏰ Tomorrow you serve at {title}: {time}, {place}.")
    else:
        text = t._("⏰ In an hour you serve at {title}: {time}, {place}. Check in with the button when you arrive.")
    return text.format(title=slot.post.title, time=slot_time(t, slot), place=slot.post.place or "—")


def rate_button(t: Translator, claim: SlotClaim) -> Button:
    return Button(t._("Rate {name}").format(name=claim.volunteer.name), callback(PREFIX, "rt", claim.id))
