"""The resident's side of a request: the list, its timeline, withdrawing, chasing, and the verdict with a rating."""

from __future__ import annotations

from bot.core import requests as core
from bot.core.context import Context
from bot.core.messages import Button, SendText, Text, clip, inline
from bot.core.requests import Outcome, RequestRefused
from bot.core.router import Router, button_args, callback
from bot.i18n import N_
from bot.wording import (
    OUTCOME_LABELS,
    RESIDENT_PREFIX,
    holder_text,
    notify_staff_text,
    open_button,
    refresh_cards,
    refuse,
    resident_view,
    send_cards,
    show_resident_view,
    status_text,
)
from handlers.menu import show_main_menu
from storage.models import RequestEvent

router = Router()

PREFIX = RESIDENT_PREFIX


# --- /my ------------------------------------------------------------------------------------------------------


@router.command("my")
def list_my_requests(ctx: Context) -> None:
    t = ctx.t
    requests = core.requests_of_resident(ctx.session, ctx.person)
    if not requests:
        show_main_menu(ctx, t._("You have no requests yet. File one with /new."))
        return
    lines = [t._("Your requests:")]
    for request in requests:
        line = t._("{code} · {category} · {status} · with {holder} · due {due}").format(
            code=request.code, category=request.category.name(t.locale), status=status_text(t, request),
            holder=holder_text(ctx, t, request), due=t.date(request.due_at),
        )
        lines.append(f"⚠️ {line} · {t._('overdue')}" if core.is_overdue(request, ctx.now) else line)
    buttons = [[Button(request.code, callback(PREFIX, "open", request.id))] for request in requests]
    ctx.reply(clip("\n".join(lines)), inline(*buttons))


def _open(ctx: Context, request_id: int) -> None:
    request = core.get_request(ctx.session, request_id)
    if core.view_of(ctx.session, ctx.person, request) is None:
        raise RequestRefused(N_("There is no request {code}."), code=request.code)
    ctx.answer()
    show_resident_view(ctx, request)


def _withdraw(ctx: Context, request_id: int) -> None:
    change = core.withdraw(ctx.session, ctx.person, request_id, ctx.now)
    ctx.answer()
    ctx.edit(*resident_view(ctx, change.request))
    refresh_cards(ctx, change.request)
    ctx.reply(ctx.t._("{code} was withdrawn.").format(code=change.request.code))
    notify_staff_text(ctx, change.notify, change.request, N_("The resident withdrew {code}."))


def _chase(ctx: Context, request_id: int) -> None:
    change = core.chase(ctx.session, ctx.person, request_id, ctx.now)
    ctx.answer()
    ctx.reply(ctx.t._("We reminded the staff handling {code} and their superiors.").format(
        code=change.request.code))
    for person in change.notify:
        t = ctx.translator_for(person)
        overdue = t._("⏰ The resident is chasing {code}: it was due by {due}.").format(
            code=change.request.code, due=t.date(change.request.due_at)
        )
        ctx.send(person, SendText(overdue, inline([open_button(t, change.request)])))


def _verdict(ctx: Context, request_id: int, outcome: Outcome) -> None:
    # What was resolved, read before the verdict moves the request on.
    resolution = core.last_resolution(ctx.session, core.get_request(ctx.session, request_id))
    change = core.confirm(ctx.session, ctx.person, request_id, outcome, ctx.now)
    request, t = change.request, ctx.t
    ctx.answer()
    refresh_cards(ctx, request)
    if outcome is Outcome.NOT_FIXED:
        ctx.edit(t._("Sorry it is not fixed. {code} now goes to {holder}, who will take it up; you will hear "
                     "back by {due}.").format(code=request.code, holder=holder_text(ctx, t, request),
                                              due=t.date(request.due_at)))
        _send_reopened_cards(ctx, change, resolution)
        return
    for person in change.notify:
        tr = ctx.translator_for(person)
        ctx.send(person, SendText(tr._("The resident confirmed {code}: {outcome}.").format(
            code=request.code, outcome=tr._(OUTCOME_LABELS[outcome]))))
    stars = [Button("⭐" * n, callback(PREFIX, "star", request.id, n)) for n in range(1, 6)]
    ctx.edit(t._("Thank you. How would you rate the handling of {code}?").format(code=request.code),
             inline(stars[:3], stars[3:]))


def _send_reopened_cards(ctx: Context, change: core.Change, resolution: RequestEvent | None) -> None:
    request = change.request
    notify_staff_text(ctx, change.informed, request, N_("❌ The resident says {code} is not fixed. It was reopened "
                                                        "and goes to the level above."))
    if resolution is None or resolution.actor is None:
        send_cards(ctx, change.notify, request, N_("🔁 Reopened: the resident says {code} is not fixed."))
        return
    send_cards(ctx, change.notify, request, N_(
        "🔁 Reopened: the resident says {code} is not fixed. It was resolved by {worker}: {note}"),
        worker=resolution.actor.display_name, note=resolution.text or "")


def _stars(ctx: Context, request_id: int, stars: int) -> None:
    change = core.rate(ctx.session, ctx.person, request_id, stars, ctx.now)
    t = ctx.t
    ctx.answer()
    notify_staff_text(ctx, change.notify, change.request, N_("⭐ The resident rated {code}: {stars} of 5 stars."),
                      stars=stars)
    ctx.set_state("rate.comment", request_id=request_id)
    ctx.edit(
        t._("You gave {code} {stars} of 5 stars. Add a comment? Send it now, or skip.").format(
            code=change.request.code, stars=stars),
        inline([Button(t._("Skip"), callback(PREFIX, "skip", request_id))]),
    )


@router.button(PREFIX)
def on_button(ctx: Context) -> None:
    args = button_args(ctx)
    action, request_id = (args[0], int(args[1])) if len(args) > 1 and args[1].isdigit() else ("", 0)
    try:
        if action == "open":
            _open(ctx, request_id)
        elif action == "wd":
            _withdraw(ctx, request_id)
        elif action == "chase":
            _chase(ctx, request_id)
        elif action == "ok" and len(args) > 2 and args[2] in set(Outcome):
            _verdict(ctx, request_id, Outcome(args[2]))
        elif action == "star" and len(args) > 2 and args[2].isdigit():
            _stars(ctx, request_id, int(args[2]))
        elif action == "skip":
            _finish_rating(ctx)
        else:
            ctx.answer(ctx.t._("This button is no longer valid."), alert=True)
    except RequestRefused as error:
        refuse(ctx, error)


def _finish_rating(ctx: Context) -> None:
    ctx.answer()
    if ctx.person.state == "rate.comment":
        ctx.clear_state()
    show_main_menu(ctx, ctx.t._("Thank you for your feedback."))


@router.step("rate")
def comment_step(ctx: Context) -> None:
    request_id = int(ctx.state_data.get("request_id", 0))
    if not isinstance(ctx.event, Text):
        ctx.reply(ctx.t._("Please write your comment as text, or press Skip."))
        return
    try:
        change = core.comment_rating(ctx.session, ctx.person, request_id, ctx.event.text, ctx.now)
    except RequestRefused as error:
        ctx.clear_state()
        refuse(ctx, error)
        return
    notify_staff_text(ctx, change.notify, change.request, N_("💬 The resident commented on {code}: {comment}"),
                      comment=ctx.event.text.strip())
    ctx.clear_state()
    show_main_menu(ctx, ctx.t._("Thank you for your feedback."))
