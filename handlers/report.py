"""``/report [YYYY-MM]``: the monthly bulletin of the sender's area, as text, a chart and a spreadsheet.

Without a month it offers this month (so far) and the last one as buttons: ``rp:<YYYY-MM>``.
"""

from __future__ import annotations

from bot.core.areas import admin_areas
from bot.core.bulletin import BadMonth, Month, compute_bulletin
from bot.core.bulletin_render import bulletin_documents, month_label
from bot.core.context import Context
from bot.core.messages import Button, Command, inline
from bot.core.roles import is_admin
from bot.core.router import RoleFilter, Router, button_args, callback
from bot.i18n import N_

router = Router(role=RoleFilter(is_admin, N_("The monthly bulletin is for community, street and district staff.")))


PREFIX = "rp"


def requested_month(ctx: Context, argument: str) -> Month | None:
    """The month named after the command or on the button; None (after telling the sender) if bad."""
    try:
        month = Month.parse(argument)
    except BadMonth:
        ctx.reply(
            ctx.t._("“{text}” is not a month. Write it as year and month, for example /report {example}.").format(
                text=argument[:20], example=str(Month.previous(ctx.now, ctx.config.timezone))
            )
        )
        return None
    if month > Month.containing(ctx.now, ctx.config.timezone):
        ctx.reply(ctx.t._("{month} has not begun yet; choose a month up to this one.").format(month=str(month)))
        return None
    return month


@router.command("report")
def report(ctx: Context) -> None:
    """Send the bulletin of every area the sender answers for (most have one)."""
    assert isinstance(ctx.event, Command)
    if not ctx.event.args.strip():
        offer_months(ctx)
        return
    send_bulletins(ctx, ctx.event.args.strip())


def offer_months(ctx: Context) -> None:
    t = ctx.t
    this_month = Month.containing(ctx.now, ctx.config.timezone)
    buttons = [
        Button(t._("{month} (so far)").format(month=month_label(t, this_month)), callback(PREFIX, this_month)),
        Button(month_label(t, this_month.shifted(-1)), callback(PREFIX, this_month.shifted(-1))),
    ]
    ctx.reply(t._("Which month? (Or send /report {example} for an earlier one.)").format(
        example=str(this_month.shifted(-2))), inline(buttons))


@router.button(PREFIX)
def month_chosen(ctx: Context) -> None:
    args = button_args(ctx)
    ctx.answer()
    send_bulletins(ctx, args[0] if args else "")


def send_bulletins(ctx: Context, argument: str) -> None:
    t = ctx.t
    month = requested_month(ctx, argument)
    if month is None:
        return
    for area in admin_areas(ctx.person):
        documents = bulletin_documents(t, compute_bulletin(ctx.session, area, month, ctx.config.timezone))
        ctx.reply(documents.summary)
        for document in (documents.chart, documents.workbook):
            ctx.reply_document(document.file_name, document.content, caption=documents.title)
