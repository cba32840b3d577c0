"""/link and /unlink: staff linking their grid's or community's group chat, whose new requests are then
posted there (``bot.core.team_chats``). In a private chat both only say where they work."""

from __future__ import annotations

from bot.core import team_chats as core
from bot.core.context import Context
from bot.core.messages import Command
from bot.core.requests import RequestRefused
from bot.core.router import Router
from bot.wording import refuse

router = Router()
group_router = Router()


@group_router.command("link")
def link(ctx: Context) -> None:
    assert ctx.group is not None
    code = ctx.event.args if isinstance(ctx.event, Command) else ""
    try:
        _unit, name = core.link(ctx.session, ctx.person, ctx.group, code, ctx.now)
    except RequestRefused as error:
        refuse(ctx, error)
        return
    ctx.reply(ctx.t._("This group is now the team chat of {unit}: its new requests will be posted here. "
                      "Staff of {unit} can act on them with the buttons; /unlink stops it.").format(unit=name))


@group_router.command("unlink")
def unlink(ctx: Context) -> None:
    assert ctx.group is not None
    try:
        name = core.unlink(ctx.session, ctx.person, ctx.group, ctx.now)
    except RequestRefused as error:
        refuse(ctx, error)
        return
    ctx.reply(ctx.t._("This group is no longer the team chat of {unit}; no more requests will be posted here.")
              .format(unit=name))


@router.command("link", "unlink")
def only_in_groups(ctx: Context) -> None:
    ctx.reply(ctx.t._("Add me to your team's group chat and send /link followed by the code of your grid or "
                      "community there."))
