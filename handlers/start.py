"""Greeting and binding a resident to their building: deep link, guided choice, or location."""

from __future__ import annotations

from collections.abc import Callable

from bot.core import binding
from bot.core.context import Context
from bot.core.messages import Button, Command, Location, ReplyKeyboard, Text, inline
from bot.core.roles import is_admin, is_staff
from bot.core.rounds import is_worker
from bot.core.router import Router, button_args, callback
from handlers.menu import show_main_menu
from storage.models import Building

router = Router()

BUILDINGS_PER_PAGE = 8
SEARCH_RESULTS = 6
MAX_SEARCH = 60  # more than any name: a pasted paragraph is cut, not searched
BUTTON_WIDTH = 60

# Deep-link payload prefixes (``/start <prefix><rest>``) and what opens them; other modules add theirs.
DeepLinkHandler = Callable[[Context, str], None]
deep_links: dict[str, DeepLinkHandler] = {}


@router.command("start")
def start(ctx: Context) -> None:
    assert isinstance(ctx.event, Command)
    payload = ctx.event.args
    for prefix, open_link in deep_links.items():
        if payload.startswith(prefix):
            open_link(ctx, payload[len(prefix) :])
            return
    if payload:
        ctx.reply(ctx.t._("This link is not valid. Please scan the code on your building again."))
    greet(ctx)


def greet(ctx: Context) -> None:
    t = ctx.t
    ctx.clear_state()
    if is_staff(ctx.person):
        roles = ", ".join(describe_role(ctx, role.role, role.unit_id) for role in ctx.person.roles)
        show_main_menu(ctx, t._("Hello. You are on duty as: {roles}.").format(roles=roles))
        return
    building = ctx.person.building
    if building is not None and building.active:
        show_main_menu(
            ctx,
            t._("Welcome! Your building is {building}. Tell us what needs fixing with /new.").format(
                building=building.name
            ),
        )
        return
    show_main_menu(ctx, t._("Welcome to the community service bot. First, tell us which building you live in."))
    offer_streets(ctx, offer_anywhere=True)


def describe_role(ctx: Context, role: str, unit_id: int) -> str:
    return binding.describe_unit(ctx.session, ctx.t, role, unit_id)


@router.command("building")
def ask_for_building(ctx: Context) -> None:
    offer_streets(ctx)


def offer_streets(ctx: Context, offer_anywhere: bool = False) -> None:
    """Offer the streets to choose from; with ``offer_anywhere`` (a first greeting) also reporting a problem
    without a building, for someone who lives elsewhere (a delivery rider, a driver)."""
    t = ctx.t
    streets = binding.streets(ctx.session)
    buttons = [[Button(street.name, callback("bind", "s", street.id))] for street in streets]
    if offer_anywhere:
        buttons.append([Button(t._("📝 Report a problem here without a building"), callback("fl", "any"))])
    ctx.set_state("bind.location")
    ctx.reply(
        t._(
            "Choose your street, type part of your building's name or address (in Chinese or pinyin: 外贸, "
            "waimao or wmj) or its code, or send your location and we will find the nearest buildings."
        ),
        inline(*buttons),
    )
    ctx.reply(
        t._("You can also scan the QR code on your building."),
        ReplyKeyboard(rows=(), location_button=t._("📍 Send my location"), one_time=True),
    )


@router.button("bind")
def choose_unit(ctx: Context) -> None:
    t = ctx.t
    args = button_args(ctx)
    kind, unit_id = args[0], int(args[1]) if len(args) > 1 and args[1].isdigit() else 0
    page = int(args[2]) if len(args) > 2 and args[2].isdigit() else 0
    if kind == "s":
        communities = binding.communities(ctx.session, unit_id)
        if not communities:
            ctx.answer(t._("This street has no communities yet."), alert=True)
            return
        rows = [[Button(c.name, callback("bind", "c", c.id))] for c in communities]
        ctx.edit(t._("Choose your community:"), inline(*rows))
    elif kind == "c":
        buildings, more = binding.buildings_page(ctx.session, unit_id, page, BUILDINGS_PER_PAGE)
        if not buildings:
            ctx.answer(t._("This community has no buildings yet."), alert=True)
            return
        rows = [[Button(b.name, callback("bind", "b", b.id))] for b in buildings]
        navigation = []
        if page > 0:
            navigation.append(Button(t._("◀ Previous"), callback("bind", "c", unit_id, page - 1)))
        if more:
            navigation.append(Button(t._("Next ▶"), callback("bind", "c", unit_id, page + 1)))
        ctx.edit(t._("Choose your building:"), inline(*rows, navigation))
    elif kind == "b":
        building = binding.active_building(ctx.session, unit_id)
        if building is None:
            ctx.answer(t._("This building is no longer available. Please choose again."), alert=True)
            return
        ctx.answer()
        finish_binding(ctx, building.id)
    else:
        ctx.answer(t._("This button is no longer valid."), alert=True)


@router.step("bind")
def location_step(ctx: Context) -> None:
    t = ctx.t
    if isinstance(ctx.event, Text):
        search_step(ctx, ctx.event.text)
        return
    if not isinstance(ctx.event, Location):
        ctx.reply(t._("Please choose your building with the buttons above, or send your location."))
        return
    nearest = binding.nearest_buildings(ctx.session, ctx.event.latitude, ctx.event.longitude, limit=5)
    if not nearest:
        ctx.reply(t._("We found no building near this place. Please choose your street instead."))
        return
    rows = [
        [Button(f"{b.name} ({distance:.0f} m)", callback("bind", "b", b.id))] for b, distance in nearest
    ]
    ctx.reply(t._("Which of these is your building?"), inline(*rows))


def search_step(ctx: Context, typed: str) -> None:
    """Text while choosing a building: the best matches of its name, address or code, as buttons."""
    t = ctx.t
    found = typed_buildings(ctx, typed)
    if not found:
        ctx.reply(t._("No building matches “{typed}”. Please type more of its name or address, or choose your "
                      "street above.").format(typed=typed[:40]))
        return
    rows = [[Button(building_label(b), callback("bind", "b", b.id))] for b in found]
    ctx.reply(t._("Which of these is your building?"), inline(*rows))


def typed_buildings(ctx: Context, typed: str) -> list[Building]:
    """The buildings best matching what someone typed (Chinese, pinyin, initials or a code)."""
    return binding.find_buildings(ctx.session, typed[:MAX_SEARCH], limit=SEARCH_RESULTS)


def building_label(building: Building, prefix: str = "") -> str:
    """A found building as a button shows it: name and address, within a button's width."""
    label = f"{building.name} · {building.address}" if building.address else building.name
    return f"{prefix}{label}"[:BUTTON_WIDTH]


def bind_by_code(ctx: Context, code: str) -> None:
    """``/start b_<building code>``: what the QR code on a building opens.

    A link naming no building we know leaves a bound resident's building and menu as they were.
    """
    t = ctx.t
    building = binding.building_by_code(ctx.session, code) if code else None
    if building is not None:
        finish_binding(ctx, building.id)
        return
    current = ctx.person.building
    if current is not None and current.active:
        show_main_menu(ctx, t._("This link names no building we know. Your building is still {building}.").format(
            building=current.name))
        return
    if code:
        ctx.reply(t._("We do not know the building code “{code}”. Please choose your building instead.").format(
            code=code[:64]))
    else:
        ctx.reply(t._("This link names no building. Please choose your building instead."))
    ask_for_building(ctx)


def finish_binding(ctx: Context, building_id: int) -> None:
    building = binding.bind_person(ctx.session, ctx.person, building_id)
    ctx.clear_state()
    t = ctx.t
    show_main_menu(
        ctx,
        t._("Your building is now {building} ({address}). Requests you file go to its grid worker.").format(
            building=building.name, address=building.address
        ),
    )


@router.command("help")
def show_help(ctx: Context) -> None:
    t = ctx.t
    lines = [
        t._("/new — file a request (broken things, clutter, wires, illegal building...)"),
        t._("/my — your requests and their progress"),
        t._("/building — change your building"),
        t._("/lang — change language"),
        t._("/cancel — leave the current step"),
    ]
    if is_staff(ctx.person):
        lines.insert(0, t._("/tasks — requests your unit holds"))
    if is_worker(ctx.person):
        lines[1:1] = [
            t._("/lead — file what you found on your rounds: solve it on the spot, take it on or report it up"),
            t._("/visit — record a visit to a household or building; an issue found becomes a lead"),
            t._("/patrol — start a night patrol, send your location at each checkpoint, end it for a summary"),
            t._("/targets — your grid's targets of focused campaigns: rectified or not, with a photo"),
        ]
    if is_admin(ctx.person):
        lines += [
            t._("/campaign — open a focused campaign for your area and follow its progress by grid"),
            t._("/unvisited, /patrols, /target — buildings not visited lately, tonight's patrols, daily visits"),
        ]
    show_main_menu(ctx, "\n".join(lines))


deep_links["b_"] = bind_by_code
