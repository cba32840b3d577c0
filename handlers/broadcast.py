"""/broadcast: an admin chooses an audience in their area, writes a notice, sees a preview and confirms.

Callback data: ``bc:l:<area level>:<area id>:<level>:<page>`` lists units, ``bc:u:<level>:<id>`` picks one,
``bc:w:<who>`` picks residents / staff / both, ``bc:go`` and ``bc:no`` confirm or drop the draft;
``bcx:<id>`` cancels a broadcast being sent. Levels are one letter (``handlers.callback_codes``). The core
checks the area again whatever the buttons said.
"""

from __future__ import annotations

from bot.core import broadcasts
from bot.core.areas import admin_areas, units_page
from bot.core.broadcasts import CANCEL_PREFIX, Audience, BroadcastEmpty, BroadcastNotAllowed, Who
from bot.core.context import Context
from bot.core.messages import Button, ButtonPress, InlineKeyboard, Photo, Text, inline
from bot.core.roles import is_admin
from bot.core.router import RoleFilter, Router, button_args, callback
from bot.core.units import Unit, area_name, levels_below
from bot.i18n import N_
from handlers.callback_codes import LEVEL_BY_CODE, LEVEL_CODES, unit_args, unit_from_args
from storage.models import Level

router = Router(role=RoleFilter(is_admin, N_("Only community, street and district staff can send notices.")))

PREFIX = "bc"
STATE_WHO = "broadcast.who"
STATE_TEXT = "broadcast.text"
STATE_CONFIRM = "broadcast.confirm"
UNITS_PER_PAGE = 8

LEVEL_CHOICE = {
    Level.STREET: N_("A street in {area}"),
    Level.COMMUNITY: N_("A community in {area}"),
    Level.GRID: N_("A grid in {area}"),
    Level.BUILDING: N_("A building in {area}"),
}
WHO_LABELS = {
    Who.RESIDENTS: N_("Residents"),
    Who.STAFF: N_("Staff"),
    Who.EVERYONE: N_("Residents and staff"),
}


@router.command("broadcast")
def start_broadcast(ctx: Context) -> None:
    t = ctx.t
    ctx.clear_state()
    rows: list[list[Button]] = []
    for area in admin_areas(ctx.person):
        name = area_name(ctx.session, t, area)
        rows.append([Button(t._("Everyone in {area}").format(area=name), callback(PREFIX, "u", *unit_args(area)))])
        for level in levels_below(area.level):
            label = t._(LEVEL_CHOICE[level]).format(area=name)
            rows.append([Button(label, callback(PREFIX, "l", *unit_args(area), LEVEL_CODES[level], 0))])
    ctx.reply(t._("Who should receive the notice?"), inline(*rows))


@router.button(PREFIX)
def broadcast_button(ctx: Context) -> None:
    args = button_args(ctx)
    action = args[0] if args else ""
    handlers = {"l": list_units, "u": choose_unit, "w": choose_who, "go": confirm, "no": discard}
    handler = handlers.get(action)
    if handler is None:
        ctx.answer(ctx.t._("This button is no longer valid."), alert=True)
        return
    handler(ctx, args[1:])


def _unit_from(args: list[str]) -> Unit | None:
    return unit_from_args(args[0], args[1]) if len(args) >= 2 else None


def refuse_outside_area(ctx: Context) -> None:
    ctx.answer(ctx.t._("You can only send notices within your own area."), alert=True)


def list_units(ctx: Context, args: list[str]) -> None:
    t = ctx.t
    area = _unit_from(args)
    try:
        level, page = LEVEL_BY_CODE[args[2]], int(args[3])
    except (IndexError, KeyError, ValueError):
        level, page = None, 0
    if area is None or level is None or area not in admin_areas(ctx.person):
        refuse_outside_area(ctx)
        return
    units, more = units_page(ctx.session, level, area, page, UNITS_PER_PAGE)
    if not units:
        ctx.answer(t._("There is nothing to choose here."), alert=True)
        return
    rows = [[Button(name, callback(PREFIX, "u", LEVEL_CODES[level], unit_id))] for unit_id, name in units]
    navigation = []
    listing = (PREFIX, "l", *unit_args(area), LEVEL_CODES[level])
    if page > 0:
        navigation.append(Button(t._("◀ Previous"), callback(*listing, page - 1)))
    if more:
        navigation.append(Button(t._("Next ▶"), callback(*listing, page + 1)))
    ctx.edit(t._("Choose where the notice goes:"), inline(*rows, navigation))


def choose_unit(ctx: Context, args: list[str]) -> None:
    t = ctx.t
    unit = _unit_from(args)
    if unit is None or not broadcasts.may_address(ctx.session, ctx.person, unit):
        refuse_outside_area(ctx)
        return
    ctx.set_state(STATE_WHO, scope=LEVEL_CODES[unit.level], unit_id=unit.id)
    rows = [[Button(t._(label), callback(PREFIX, "w", who))] for who, label in WHO_LABELS.items()]
    ctx.edit(t._("Who in {unit} should get it?").format(unit=area_name(ctx.session, t, unit)), inline(*rows))


def _draft_audience(ctx: Context) -> Audience | None:
    data = ctx.state_data
    try:
        return Audience(Unit(LEVEL_BY_CODE[data["scope"]], int(data["unit_id"])), Who(data["who"]))
    except (KeyError, ValueError):
        return None


def choose_who(ctx: Context, args: list[str]) -> None:
    t = ctx.t
    if ctx.person.state != STATE_WHO or not args or args[0] not in set(Who):
        ctx.answer(t._("This choice has expired. Please start again with /broadcast."), alert=True)
        return
    ctx.set_state(STATE_TEXT, who=args[0])
    ctx.edit(t._("Now write the notice. You can also send a photo with the notice as its caption."))


@router.step("broadcast")
def write_notice(ctx: Context) -> None:
    t = ctx.t
    if ctx.person.state not in (STATE_TEXT, STATE_CONFIRM):
        ctx.reply(t._("Please use the buttons above, or /cancel."))
        return
    event = ctx.event
    if isinstance(event, Text):
        text, photo = event.text, None
    elif isinstance(event, Photo):
        text, photo = event.caption, event.file_id
    else:
        ctx.reply(t._("Please send the notice as text, or as a photo with a caption."))
        return
    audience = _draft_audience(ctx)
    if audience is None or not broadcasts.may_address(ctx.session, ctx.person, audience.unit):
        ctx.clear_state()
        ctx.reply(t._("This choice has expired. Please start again with /broadcast."))
        return
    if not (text.strip() or photo):
        ctx.reply(t._("Please send the notice as text, or as a photo with a caption."))
        return
    text = broadcasts.with_header(ctx.session, t, ctx.person, audience, text)
    if not broadcasts.check_text(text, photo):
        ctx.reply(t._("This is too long for one message. Please shorten it (a photo caption holds 1,024 characters)."))
        return
    ctx.set_state(STATE_CONFIRM, text=text, photo=photo)
    show_preview(ctx, audience, text, photo)


def show_preview(ctx: Context, audience: Audience, text: str, photo: str | None) -> None:
    t = ctx.t
    count = broadcasts.count_recipients(ctx.session, audience)
    ctx.reply(t._("Preview — this is exactly what people will receive:"))
    if photo:
        ctx.reply_photo(photo, text)
    else:
        ctx.reply(text)
    label = broadcasts.describe_audience(ctx.session, t, audience)
    question = t.n_(
        "It will go to {count} person: {audience}. Send it now? (To change it, just send a new text.)",
        "It will go to {count} people: {audience}. Send it now? (To change it, just send a new text.)",
        count,
    ).format(count=t.number(count), audience=label)
    keyboard = inline(
        [Button(t._("✅ Send"), callback(PREFIX, "go")), Button(t._("✖ Discard"), callback(PREFIX, "no"))]
    )
    ctx.reply(question, keyboard)


def confirm(ctx: Context, _args: list[str]) -> None:
    t = ctx.t
    audience = _draft_audience(ctx)
    data = ctx.state_data
    if ctx.person.state != STATE_CONFIRM or audience is None:
        ctx.answer(t._("This notice was already sent or discarded."), alert=True)
        return
    message_id = ctx.event.message_id if isinstance(ctx.event, ButtonPress) else None
    try:
        broadcast = broadcasts.create_broadcast(
            ctx.session, ctx.person, audience, str(data.get("text", "")), data.get("photo"), ctx.now, message_id
        )
    except BroadcastNotAllowed:
        ctx.clear_state()
        refuse_outside_area(ctx)
        return
    except BroadcastEmpty:
        ctx.answer(t._("Nobody would receive this notice."), alert=True)
        return
    ctx.clear_state()
    ctx.answer(t._("Sending started."))
    label = broadcasts.describe_audience(ctx.session, t, audience)
    text = t.n_(
        "📣 Notice #{number} to {audience} is queued for {count} person. Progress is shown here.",
        "📣 Notice #{number} to {audience} is queued for {count} people. Progress is shown here.",
        broadcast.total,
    ).format(number=broadcast.id, audience=label, count=t.number(broadcast.total))
    ctx.edit(text, cancel_keyboard(ctx, broadcast.id))


def cancel_keyboard(ctx: Context, broadcast_id: int) -> InlineKeyboard:
    return inline([Button(ctx.t._("⏹ Cancel sending"), callback(CANCEL_PREFIX, broadcast_id))])


def discard(ctx: Context, _args: list[str]) -> None:
    ctx.clear_state()
    ctx.answer()
    ctx.edit(ctx.t._("The notice was discarded; nothing was sent."))


@router.button(CANCEL_PREFIX)
def cancel_sending(ctx: Context) -> None:
    t = ctx.t
    args = button_args(ctx)
    if not args or not args[0].isdigit():
        ctx.answer(t._("This button is no longer valid."), alert=True)
        return
    try:
        cancelled = broadcasts.cancel_broadcast(ctx.session, ctx.person, int(args[0]), ctx.now)
    except BroadcastNotAllowed:
        refuse_outside_area(ctx)
        return
    if cancelled is None:
        ctx.answer(t._("This notice is no longer being sent."), alert=True)
        return
    ctx.answer(t._("Stopping… a summary follows in a moment."))
