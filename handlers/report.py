"""``/report [YYYY-MM]``: the monthly bulletin of the sender's area, as text, a chart and a spreadsheet."""

from __future__ import annotations

from bot.core.areas import admin_areas
from bot.core.bulletin import BadMonth, Month, compute_bulletin
from bot.core.bulletin_render import bulletin_documents
from bot.core.context import Context
from bot.core.messages import Command
from bot.core.roles import is_admin
from bot.core.router import RoleFilter, Router
from bot.i18n import N_

router = Router(role=RoleFilter(is_admin, N_("The monthly bulletin is for community, street and district staff.")))


def requested_month(ctx: Context, argument: str) -> Month | None:
    """The month named after the command, or the previous month; None (after telling the sender) if bad."""
    if not argument:
        return Month.previous(ctx.now, ctx.config.timezone)
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
    t = ctx.t
    month = requested_month(ctx, ctx.event.args)
    if month is None:
        return
    for area in admin_areas(ctx.person):
        documents = bulletin_documents(t, compute_bulletin(ctx.session, area, month, ctx.config.timezone))
        ctx.reply(documents.summary)
        for document in (documents.chart, documents.workbook):
            ctx.reply_document(document.file_name, document.content, caption=documents.title)
