"""The main menu (a reply keyboard) and the command menu, per role and language."""

from __future__ import annotations

from bot.core.context import Context
from bot.core.messages import ReplyKeyboard, SetCommands
from bot.core.roles import is_admin, is_staff
from bot.i18n import N_, Translator
from storage.models import Person, Role

NEW_REQUEST = N_("📝 New request")
MY_REQUESTS = N_("📋 My requests")
MY_BUILDING = N_("🏠 My building")
LANGUAGE = N_("🌐 Language")
TASKS = N_("📥 Tasks")

# Menu labels and the command each one stands for.
MENU_COMMANDS = {
    NEW_REQUEST: "new",
    MY_REQUESTS: "my",
    MY_BUILDING: "building",
    LANGUAGE: "lang",
    TASKS: "tasks",
}


def main_menu(t: Translator, person: Person) -> ReplyKeyboard:
    rows: list[tuple[str, ...]] = [(t._(NEW_REQUEST), t._(MY_REQUESTS))]
    if is_staff(person):
        rows.insert(0, (t._(TASKS),))
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
    if person is not None and is_admin(person):
        commands += [
            ("report", t._("Monthly bulletin")),
            ("broadcast", t._("Send a notice")),
            ("staff", t._("Staff of my area")),
            ("invite", t._("Invite staff")),
        ]
    if person is not None and any(role.role is Role.COMMUNITY for role in person.roles):
        commands += [("post", t._("Publish a volunteer post")), ("volunteers", t._("Volunteers and their link")),
                     ("meeting", t._("Three-party meeting"))]
    return SetCommands(tuple(commands))


def show_main_menu(ctx: Context, text: str) -> None:
    """Send ``text`` with the main menu, and keep the command menu in step with role and language."""
    ctx.reply(text, main_menu(ctx.t, ctx.person))
    ctx.send(ctx.person, command_menu(ctx.t, ctx.person))
