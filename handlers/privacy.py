"""The privacy notice, ``/privacy``, ``/mydata`` (a summary and an export file) and ``/deletemydata``."""

from __future__ import annotations

import json
from functools import wraps

from bot.core import binding, privacy
from bot.core.context import Context
from bot.core.messages import Button, inline
from bot.core.router import Handler, Router, button_args, callback
from bot.i18n import Translator

router = Router()

PREFIX = "pv"


def notice_text(t: Translator, retention_days: int) -> str:
    return t._(
        "🔒 Privacy notice. We store your name and chat id, your building, and the requests you file with "
        "their photos and locations, so that the grid worker and the community, street and district staff "
        "responsible for your building can handle them and report on them. Other residents never see your "
        "name or your words; neighbours who join a request of yours with “me too” see its category and progress. We "
        "keep this until you delete it (your requests then stay, anonymous, in the district's statistics); the "
        "raw messages you send and the bot's replies are deleted after {days} days. /privacy shows this notice "
        "again, /mydata shows and exports what we store about you, and /deletemydata deletes it."
    ).format(days=retention_days)


def send_notice(ctx: Context) -> None:
    ctx.reply(notice_text(ctx.t, ctx.config.retention_days))
    privacy.mark_notice_shown(ctx.person, ctx.now)


def with_notice_first(handler: Handler) -> Handler:
    """``handler``, preceded by the privacy notice for a person who has not been shown it yet."""

    @wraps(handler)
    def handle(ctx: Context) -> None:
        if privacy.needs_notice(ctx.person):
            send_notice(ctx)
        handler(ctx)

    return handle


def show_notice_at_first_contact(target: Router) -> None:
    """Whatever a person sends first (``/start``, a deep link, a button, plain text), the notice comes first."""
    for handlers in (target.commands, target.buttons, target.steps):
        for key, handler in handlers.items():
            # /privacy shows the notice itself, and only once.
            if handler is not show_privacy:
                handlers[key] = with_notice_first(handler)
    if target.fallback is not None:
        target.fallback = with_notice_first(target.fallback)


@router.command("privacy")
def show_privacy(ctx: Context) -> None:
    send_notice(ctx)


@router.command("mydata")
def show_my_data(ctx: Context) -> None:
    t, person = ctx.t, ctx.person
    stored = privacy.stored_data(ctx.session, person)
    building = person.building
    roles = ", ".join(binding.describe_unit(ctx.session, t, role.role, role.unit_id) for role in person.roles)
    lines = [
        t._("🗂 What we store about you:"),
        t._("Name: {name}").format(name=person.display_name or "—"),
        t._("Chat id: {chat_id}").format(chat_id=person.chat_id),
        t._("Phone: {phone}").format(phone=person.phone or "—"),
        t._("Building: {building}").format(
            building=f"{building.name} ({building.address})" if building is not None else "—"
        ),
        t._("Staff roles: {roles}").format(roles=roles or "—"),
        t.n_("{count} request filed ({open} open)", "{count} requests filed ({open} open)", stored.requests).format(
            count=stored.requests, open=stored.open_requests
        ),
        t.n_("{count} rating given", "{count} ratings given", stored.ratings).format(count=stored.ratings),
        t.n_("{count} request joined with “me too”", "{count} requests joined with “me too”", stored.supports).format(
            count=stored.supports
        ),
        t._("Known since {date}.").format(date=t.date(person.created_at)),
        t._("The file below holds all of it, with your requests, their history and photo ids."),
    ]
    ctx.reply("\n".join(lines), inline([Button(t._("🗑 Delete my data"), callback(PREFIX, "ask"))]))
    export = privacy.export_data(ctx.session, person, ctx.now, t.locale, ctx.config.timezone)
    content = json.dumps(export, ensure_ascii=False, indent=2).encode("utf-8")
    ctx.reply_document(f"mydata-{ctx.now:%Y%m%d}.json", content, t._("Your data (JSON, UTF-8)"))


@router.command("deletemydata")
def ask_to_delete(ctx: Context) -> None:
    t = ctx.t
    ctx.answer()
    if ctx.person.roles:
        ctx.reply(staff_cannot_delete(t))
        return
    stored = privacy.stored_data(ctx.session, ctx.person)
    token = privacy.ask_for_confirmation(ctx.person, ctx.now)
    warning = t.n_(
        "⚠️ Delete your data? This cannot be undone. We remove your name, chat id, phone and building, the "
        "descriptions, photos and locations of your {count} request and your rating comments, and your “me "
        "too” supports. The request itself stays for the district's statistics (category, building, dates, "
        "status, stars) without anything that points to you, and you will no longer hear about it. The next "
        "time you write, you start afresh.",
        "⚠️ Delete your data? This cannot be undone. We remove your name, chat id, phone and building, the "
        "descriptions, photos and locations of your {count} requests and your rating comments, and your “me "
        "too” supports. The requests themselves stay for the district's statistics (category, building, dates, "
        "status, stars) without anything that points to you, and you will no longer hear about them. The next "
        "time you write, you start afresh.",
        stored.requests,
    ).format(count=stored.requests)
    ctx.reply(warning, inline(
        [Button(t._("⚠️ Yes, delete my data for good"), callback(PREFIX, "yes", token))],
        [Button(t._("Keep my data"), callback(PREFIX, "no"))],
    ))


def staff_cannot_delete(t: Translator) -> str:
    return t._(
        "You hold a staff role, and what you did in it is part of your unit's records, so you cannot delete "
        "your data yourself. Please ask an administrator to remove your role first."
    )


@router.button(PREFIX)
def on_button(ctx: Context) -> None:
    args = button_args(ctx)
    action = args[0] if args else ""
    if action == "ask":
        ask_to_delete(ctx)
    elif action == "yes" and len(args) == 2:
        delete_my_data(ctx, args[1])
    elif action == "no":
        keep_my_data(ctx)
    else:
        ctx.answer(ctx.t._("This button is no longer valid."), alert=True)


def delete_my_data(ctx: Context, token: str) -> None:
    t = ctx.t
    if not privacy.confirmation_is_valid(ctx.person, token, ctx.now):
        ctx.answer(t._("This confirmation is no longer valid, and nothing was deleted. Send /deletemydata to "
                       "start again."), alert=True)
        return
    try:
        fresh = privacy.erase_person(ctx.session, ctx.person, ctx.now)
    except privacy.ErasureRefused:
        ctx.clear_state()
        ctx.answer(staff_cannot_delete(t), alert=True)
        return
    # Everything from here on goes to the chat's fresh person: the tombstone has no address.
    ctx.person = fresh
    ctx.edit(t._("Your data was deleted. Your requests remain only as anonymous figures in the statistics. "
                 "If you write again, you start as someone new."))
    ctx.answer()


def keep_my_data(ctx: Context) -> None:
    if ctx.person.state == privacy.CONFIRMATION_STATE:
        ctx.clear_state()
    ctx.edit(ctx.t._("Nothing was deleted."))
    ctx.answer()


@router.step(privacy.CONFIRMATION_STATE.split(".")[0])
def waiting_for_confirmation(ctx: Context) -> None:
    ctx.reply(ctx.t._("Please press one of the buttons above: delete your data, or keep it."))
