"""/invite and /staff: admins bringing staff in by a single-use link, and taking roles away.

Callback data: ``st:p:<page>`` pages the staff list, ``st:rm:<role id>`` asks to confirm a removal,
``st:ok:<role id>`` removes; ``iv:u:<role>:<page>`` lists the units an invite can be for (or the admin types
one of a unit's buildings, state ``invite.unit``), ``iv:m:<role>:<unit id>`` makes it. The core checks the
area again whatever the buttons said. A newcomer the platform gives no name for (WeChat) is asked for one
after opening the invitation (state ``joined.name``).
"""

from __future__ import annotations

from functools import partial

from bot.core import invites, staff_admin
from bot.core.binding import describe_unit
from bot.core.context import Context
from bot.core.invites import AcceptedInvite, InviteError, InviteProblem, InviteRefusal
from bot.core.messages import Button, Command, SendStartCode, SendText, Text, clip, inline
from bot.core.roles import is_admin
from bot.core.router import RoleFilter, Router, button_args, callback
from bot.core.staff_admin import Removal, StaffChangeNotAllowed
from bot.core.units import LEVEL_OF_ROLE, LEVELS, Unit, own_name
from bot.i18n import N_, Translator
from bot.wording import holder_text, refresh_cards, tell
from handlers.menu import show_main_menu
from handlers.start import building_label, deep_links, typed_buildings
from storage.models import Person, Request, Role, StaffInvite, StaffRole

router = Router(role=RoleFilter(is_admin, N_("Only community, street and district staff can manage staff.")))
inviting = Router(role=RoleFilter(is_admin, N_("Only community, street and district staff can invite staff.")))
joining = Router()  # the newcomer who opened an invitation, whatever their role

PREFIX = "st"
INVITE_PREFIX = "iv"
STAFF_PER_PAGE = 8
UNITS_PER_PAGE = 8
NAME_STATE = "joined.name"
UNIT_SEARCH_STATE = "invite.unit"
MAX_NAME = 60
ROLE_LABELS = {
    Role.WORKER: N_("Grid worker"),
    Role.COMMUNITY: N_("Community staff"),
    Role.STREET: N_("Street staff"),
    Role.DEPARTMENT: N_("Department staff"),
}


# --- invites --------------------------------------------------------------------------------------------


@inviting.command("invite")
def invite(ctx: Context) -> None:
    """``/invite`` offers roles and units as buttons; ``/invite <role> <unit code>`` invites at once."""
    t = ctx.t
    assert isinstance(ctx.event, Command)
    ctx.clear_state()
    words = ctx.event.args.split()
    if not words:
        offer_roles(ctx)
        return
    role = invites.INVITABLE_ROLES.get(words[0].lower()) if len(words) == 2 else None
    if role is None:
        ctx.reply(t._(
            "Send /invite alone to choose with buttons, or name the role and the unit's code: "
            "/invite worker GRID-CODE (or 网格员), /invite community COMMUNITY-CODE (社区), "
            "/invite street STREET-CODE (街道)."
        ))
        return
    code = words[1]
    try:
        created = invites.create_invite(ctx.session, ctx.person, role, code, ctx.now)
    except InviteError as error:
        if error.problem is InviteProblem.UNKNOWN_UNIT:
            ctx.reply(t._("There is no unit with the code “{code}” for this role.").format(code=code[:60]))
        else:
            ctx.reply(t._("You can only invite staff within your own area."))
        return
    send_invite(ctx, role, created)


def offer_roles(ctx: Context) -> None:
    t = ctx.t
    roles = invites.invitable_roles(ctx.session, ctx.person)
    if not roles:
        ctx.reply(t._("Your area has no units to invite staff to yet."))
        return
    rows = [[Button(t._(ROLE_LABELS[role]), callback(INVITE_PREFIX, "u", role.value, 0))] for role in roles]
    ctx.reply(t._("Invite staff as:"), inline(*rows))


@inviting.button(INVITE_PREFIX)
def invite_button(ctx: Context) -> None:
    t = ctx.t
    args = button_args(ctx)
    try:
        action, role, number = args[0], Role(args[1]), int(args[2])
    except (IndexError, ValueError):
        action, role, number = "", Role.WORKER, 0
    if role not in ROLE_LABELS or action not in ("u", "m"):
        ctx.answer(t._("This button is no longer valid."), alert=True)
        return
    if action == "u":
        ctx.answer()
        show_units_page(ctx, role, number)
        return
    try:
        created = invites.create_invite_in(ctx.session, ctx.person, role, Unit(LEVEL_OF_ROLE[role], number), ctx.now)
    except InviteError:
        ctx.answer(t._("You can only invite staff within your own area."), alert=True)
        return
    ctx.answer()
    ctx.clear_state()
    ctx.edit(t._("✔ {choice}").format(choice=describe_unit(ctx.session, t, role, created.unit_id)))
    send_invite(ctx, role, created)


def show_units_page(ctx: Context, role: Role, page: int) -> None:
    t = ctx.t
    units = invites.invitable_units(ctx.session, ctx.person, role)
    shown = units[page * UNITS_PER_PAGE : (page + 1) * UNITS_PER_PAGE]
    rows = [[Button(own_name(ctx.session, unit), callback(INVITE_PREFIX, "m", role.value, unit.id))] for unit in shown]
    navigation = []
    if page > 0:
        navigation.append(Button(t._("◀ Previous"), callback(INVITE_PREFIX, "u", role.value, page - 1)))
    if len(units) > (page + 1) * UNITS_PER_PAGE:
        navigation.append(Button(t._("Next ▶"), callback(INVITE_PREFIX, "u", role.value, page + 1)))
    question = t._("{role} for which unit?").format(role=t._(ROLE_LABELS[role]))
    if LEVEL_OF_ROLE[role] in LEVELS:
        # Hundreds of grids page slowly: the admin may type one of the unit's buildings instead.
        ctx.set_state(UNIT_SEARCH_STATE, role=role.value)
        question += "\n" + t._("Or type part of the name, address (in Chinese or pinyin) or code of a building in it.")
    ctx.edit(question, inline(*rows, navigation))


@inviting.step(UNIT_SEARCH_STATE.split(".", 1)[0])
def unit_search_step(ctx: Context) -> None:
    """Text while choosing the unit of an invite: the units holding the best-matching buildings, as buttons."""
    t = ctx.t
    role = next((role for role in ROLE_LABELS if role.value == ctx.state_data.get("role")), None)
    if role is None:
        ctx.clear_state()
        ctx.reply(t._("Sorry, I lost track. Please start again with /invite."))
        return
    if not isinstance(ctx.event, Text):
        ctx.reply(t._("Please choose the unit with the buttons above, or type a building's name."))
        return
    found = invites.units_of_buildings(ctx.session, ctx.person, role, typed_buildings(ctx, ctx.event.text))
    if not found:
        ctx.reply(t._("No building of your area matches “{typed}”. Please type more of its name or address, or "
                      "choose with the buttons above.").format(typed=ctx.event.text[:40]))
        return
    rows = [[Button(building_label(building, f"{own_name(ctx.session, unit)} · "),
                    callback(INVITE_PREFIX, "m", role.value, unit.id))] for unit, building in found]
    ctx.reply(t._("{role} for which unit?").format(role=t._(ROLE_LABELS[role])), inline(*rows))


def send_invite(ctx: Context, role: Role, created: StaffInvite) -> None:
    t = ctx.t
    link = invites.invite_link(ctx.config.bot_username, created.token)
    role_text = describe_unit(ctx.session, t, role, created.unit_id)
    date = t.date(created.expires_at)
    if invites.invites_by_link(ctx.person):
        text = t._(
            "Invitation for a new {role}. Send this link or let them scan the code; it works once, until {date}:\n"
            "{link}"
        ).format(role=role_text, date=date, link=link)
    else:
        text = t._(
            "Invitation for a new {role}. Let them scan the code below with WeChat; it works once, until {date}."
        ).format(role=role_text, date=date)
    command = invites.start_command(created.token)
    ctx.reply(text + "\n" + t._("Or they send the bot this message: {command}").format(command=command))
    caption = t._("Scan to join as {role}").format(role=role_text)
    wechat_caption = t._("For a colleague on WeChat: scan with WeChat to join as {role}").format(role=role_text)
    lifetime = int((created.expires_at - ctx.now).total_seconds())
    ctx.send(ctx.person, SendStartCode(invites.INVITE_PREFIX + created.token, link, f"invite-{created.id}.png",
                                       clip(caption, 1024), lifetime, clip(wechat_caption, 1024)))


def open_invite(ctx: Context, token: str) -> None:
    """``/start inv_<token>``: what an invite link (or a scanned WeChat invitation) opens."""
    t = ctx.t
    outcome = invites.accept_invite(ctx.session, ctx.person, token, ctx.now)
    if isinstance(outcome, InviteRefusal):
        refusals = {
            InviteRefusal.UNKNOWN: t._("This invitation link is not valid."),
            InviteRefusal.USED: t._("This invitation has already been used. Please ask for a new one."),
            InviteRefusal.EXPIRED: t._("This invitation has expired. Please ask for a new one."),
        }
        ctx.reply(refusals[outcome])
        return
    if not ctx.person.display_name:
        # WeChat gives no follower's name: colleagues and residents would see "?" on every card.
        inviter = outcome.inviter.id if outcome.inviter is not None else None
        ctx.set_state(NAME_STATE, role=outcome.role.value, unit_id=outcome.unit_id, inviter_id=inviter)
        role_text = describe_unit(ctx.session, t, outcome.role, outcome.unit_id)
        ctx.reply(t._("You are now {role}. What name should colleagues and residents see? Write your name.").format(
            role=role_text))
        return
    welcome(ctx, outcome)


def welcome(ctx: Context, accepted: AcceptedInvite) -> None:
    role_text = describe_unit(ctx.session, ctx.t, accepted.role, accepted.unit_id)
    text = ctx.t._("Welcome aboard! You are now {role}. Send /tasks to see the requests you handle.")
    show_main_menu(ctx, text.format(role=role_text))
    tell_inviter(ctx, accepted)


@joining.step(NAME_STATE.split(".", 1)[0])
def name_step(ctx: Context) -> None:
    """The name a newcomer without one (on WeChat) gives after opening their invitation."""
    typed = ctx.event.text.strip() if isinstance(ctx.event, Text) else ""
    if not typed:
        ctx.reply(ctx.t._("Please write your name as text."))
        return
    data = ctx.state_data
    ctx.person.display_name = typed[:MAX_NAME]
    ctx.clear_state()
    # The role was given when the invitation was opened; the state only says which, for the welcome.
    role = next((r for r in ctx.person.roles if r.role.value == data.get("role")
                 and r.unit_id == data.get("unit_id")), None)
    if role is None:
        show_main_menu(ctx, ctx.t._("Thank you, {name}.").format(name=ctx.person.display_name))
        return
    inviter = ctx.session.get(Person, data["inviter_id"]) if isinstance(data.get("inviter_id"), int) else None
    welcome(ctx, AcceptedInvite(role.role, role.unit_id, inviter))


def tell_inviter(ctx: Context, accepted: AcceptedInvite) -> None:
    inviter = accepted.inviter
    if inviter is None or inviter.id == ctx.person.id:
        return
    t = ctx.translator_for(inviter)
    text = t._("{name} accepted your invitation and is now {role}.").format(
        name=ctx.person.display_name or "?", role=describe_unit(ctx.session, t, accepted.role, accepted.unit_id)
    )
    ctx.send(inviter, SendText(text))


# --- the staff list -------------------------------------------------------------------------------------


@router.command("staff")
def list_staff(ctx: Context) -> None:
    show_staff_page(ctx, 0)


def show_staff_page(ctx: Context, page: int) -> None:
    t = ctx.t
    roles = staff_admin.staff_in_area(ctx.session, ctx.person)
    if not roles:
        ctx.edit(t._("There are no staff in your area yet. Invite some with /invite."))
        return
    shown = roles[page * STAFF_PER_PAGE : (page + 1) * STAFF_PER_PAGE]
    lines = [t._("Staff of your area ({count}):").format(count=t.number(len(roles)))]
    rows: list[list[Button]] = []
    for role in shown:
        label = f"{role.person.display_name or '?'} — {describe_unit(ctx.session, t, role.role, role.unit_id)}"
        if role.person.awaiting_first_message:
            lines.append("• " + t._("{label} (has not opened the bot yet)").format(label=label))
        else:
            lines.append(f"• {label}")
        if role.person_id != ctx.person.id:
            rows.append([Button(t._("Remove {label}").format(label=label)[:60], callback(PREFIX, "rm", role.id))])
    navigation = []
    if page > 0:
        navigation.append(Button(t._("◀ Previous"), callback(PREFIX, "p", page - 1)))
    if len(roles) > (page + 1) * STAFF_PER_PAGE:
        navigation.append(Button(t._("Next ▶"), callback(PREFIX, "p", page + 1)))
    ctx.edit("\n".join(lines), inline(*rows, navigation))


@router.button(PREFIX)
def staff_button(ctx: Context) -> None:
    t = ctx.t
    args = button_args(ctx)
    if len(args) != 2 or not args[1].isdigit():
        ctx.answer(t._("This button is no longer valid."), alert=True)
        return
    action, number = args[0], int(args[1])
    if action == "p":
        show_staff_page(ctx, number)
    elif action == "rm":
        ask_to_remove(ctx, number)
    elif action == "ok":
        remove(ctx, number)
    else:
        ctx.answer(t._("This button is no longer valid."), alert=True)


def _managed_role(ctx: Context, role_id: int) -> StaffRole | None:
    role = ctx.session.get(StaffRole, role_id)
    if role is None:
        ctx.answer(ctx.t._("This person no longer has that role."), alert=True)
        return None
    if not staff_admin.may_manage(ctx.session, ctx.person, role):
        ctx.answer(ctx.t._("You can only manage staff within your own area."), alert=True)
        return None
    return role


def ask_to_remove(ctx: Context, role_id: int) -> None:
    t = ctx.t
    role = _managed_role(ctx, role_id)
    if role is None:
        return
    open_count = staff_admin.open_requests_of(ctx.session, role)
    question = t._("Remove {name} as {role}?").format(
        name=role.person.display_name or "?", role=describe_unit(ctx.session, t, role.role, role.unit_id)
    )
    if open_count:
        question += "\n" + t.n_(
            "Their {count} open request will go to the other workers of the grid (or up to the community).",
            "Their {count} open requests will go to the other workers of the grid (or up to the community).",
            open_count,
        ).format(count=t.number(open_count))
    keyboard = inline(
        [Button(t._("Yes, remove"), callback(PREFIX, "ok", role.id)), Button(t._("Keep"), callback(PREFIX, "p", 0))]
    )
    ctx.edit(question, keyboard)


def remove(ctx: Context, role_id: int) -> None:
    t = ctx.t
    if _managed_role(ctx, role_id) is None:
        return
    try:
        removal = staff_admin.remove_staff_role(ctx.session, ctx.person, role_id, ctx.now)
    except StaffChangeNotAllowed:
        ctx.answer(t._("You can only manage staff within your own area."), alert=True)
        return
    if removal is None:
        ctx.answer(t._("This person no longer has that role."), alert=True)
        return
    role_text = describe_unit(ctx.session, t, removal.role, removal.unit_id)
    done = t._("{name} is no longer {role}.").format(name=removal.person.display_name or "?", role=role_text)
    if removal.handed_over:
        moved = len(removal.handed_over)
        done += "\n" + t.n_(
            "{count} open request was handed on.", "{count} open requests were handed on.", moved
        ).format(count=t.number(moved))
    ctx.edit(done)
    tell_people_concerned(ctx, removal)


def tell_people_concerned(ctx: Context, removal: Removal) -> None:
    """The removed person, whoever now holds their requests, and the residents who filed them."""
    removed_t = ctx.translator_for(removal.person)
    ctx.send(
        removal.person,
        SendText(
            removed_t._("You are no longer {role}. Thank you for your work.").format(
                role=describe_unit(ctx.session, removed_t, removal.role, removal.unit_id)
            )
        ),
    )
    waiting: dict[int, tuple[Person, list[Request]]] = {}
    for change in removal.handed_over:
        for holder in change.notify:
            waiting.setdefault(holder.id, (holder, []))[1].append(change.request)
        tell(ctx, change.residents, partial(_handed_over_news, ctx, change.request))
        refresh_cards(ctx, change.request)
    for holder, moved in waiting.values():
        holder_t = ctx.translator_for(holder)
        codes = ", ".join(request.code for request in moved[:20])
        text = holder_t.n_(
            "{count} open request now waits for you (from {name}, who left): {codes}. See /tasks.",
            "{count} open requests now wait for you (from {name}, who left): {codes}. See /tasks.",
            len(moved),
        ).format(count=holder_t.number(len(moved)), name=removal.person.display_name or "?", codes=codes)
        ctx.send(holder, SendText(text))


def _handed_over_news(ctx: Context, request: Request, t: Translator) -> str:
    return t._("Your request {code} has been handed to {holder}, who will take it from here.").format(
        code=request.code, holder=holder_text(ctx, t, request))


router.include(inviting)
router.include(joining)
deep_links[invites.INVITE_PREFIX] = open_invite
