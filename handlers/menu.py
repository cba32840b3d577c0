"""The main menu (a reply keyboard) and the command menu, per role and language."""

from __future__ import annotations

from bot.core.context import Context
from bot.core.messages import ReplyKeyboard, SetCommands
from bot.core.roles import is_admin, is_district_staff, is_staff
from bot.i18n import N_, Translator
from storage.models import Person, Role

NEW_REQUEST = N_("📝 New request")
MY_REQUESTS = N_("📋 My requests")
MY_BUILDING = N_("🏠 My building")
LANGUAGE = N_("🌐 Language")
TASKS = N_("📥 Tasks")
LEAD = N_("📌 Lead")
VISIT = N_("🚶 Visit")
PATROL = N_("🌙 Patrol")
TARGETS = N_("🎯 Campaign targets")

# Menu labels and the command each one stands for.
MENU_COMMANDS = {
    NEW_REQUEST: "new",
    MY_REQUESTS: "my",
    MY_BUILDING: "building",
    LANGUAGE: "lang",
    TASKS: "tasks",
    LEAD: "lead",
    VISIT: "visit",
    PATROL: "patrol",
    TARGETS: "targets",
}


def main_menu(t: Translator, person: Person) -> ReplyKeyboard:
    rows: list[tuple[str, ...]] = [(t._(NEW_REQUEST), t._(MY_REQUESTS))]
    if is_staff(person):
        rows.insert(0, (t._(TASKS),))
    if any(role.role is Role.WORKER for role in person.roles):
        rows.insert(1, (t._(LEAD), t._(VISIT), t._(PATROL), t._(TARGETS)))
    rows.append((t._(MY_BUILDING), t._(LANGUAGE)))
    return ReplyKeyboard(rows=tuple(rows))


def command_menu(t: Translator, person: Person | None) -> SetCommands:
    """The command menu for ``person`` (None: a resident who has not written yet)."""
    commands = [
        ("new", t._("File a new request")),
        ("my", t._("My requests")),
        ("building", t._("Choose my building")),
        ("lang", t._("Change language")),
        ("privacy", t._("Privacy notice")),
        ("mydata", t._("My data")),
        ("myservice", t._("My volunteer service")),
        ("cancel", t._("Cancel the current step")),
        ("help", t._("Help")),
    ]
    if person is not None and is_staff(person):
        commands.insert(0, ("tasks", t._("Requests my unit holds")))
    if person is not None and any(role.role is Role.WORKER for role in person.roles):
        commands[1:1] = [("lead", t._("File a lead from my rounds")), ("visit", t._("Record a visit")),
                         ("patrol", t._("Start or end a night patrol")),
                         ("targets", t._("My grid's campaign targets"))]
    if person is not None and is_admin(person):
        commands += [
            ("report", t._("Monthly bulletin")),
            ("broadcast", t._("Send a notice")),
            ("staff", t._("Staff of my area")),
            ("invite", t._("Invite staff")),
            ("unvisited", t._("Buildings not visited lately")),
            ("patrols", t._("Tonight's patrols")),
            ("target", t._("Set a grid's daily visits")),
            ("campaign", t._("Focused campaigns")),
            ("desk", t._("Sign in to the desk")),
        ]
    if person is not None and any(role.role is Role.COMMUNITY for role in person.roles):
        commands += [("post", t._("Publish a volunteer post")), ("volunteers", t._("Volunteers and their link")),
                     ("meeting", t._("Three-party meeting"))]
    if person is not None and is_district_staff(person):
        commands.append(("categories", t._("Request categories")))
    return SetCommands(tuple(commands))


def show_main_menu(ctx: Context, text: str) -> None:
    """Send ``text`` with the main menu, and keep the command menu in step with role and language."""
    ctx.reply(text, main_menu(ctx.t, ctx.person))
    ctx.send(ctx.person, command_menu(ctx.t, ctx.person))
