"""/desk: a single-use link that signs a community, street or district admin in to the desk (``bot.desk``)."""

from __future__ import annotations

from bot.core.context import Context
from bot.core.desk_access import LINK_LIFETIME, NOT_FOR_YOU, issue_link, may_use_desk
from bot.core.router import RoleFilter, Router

router = Router(role=RoleFilter(may_use_desk, NOT_FOR_YOU))


def sign_in_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/signin/{token}"


@router.command("desk")
def desk_link(ctx: Context) -> None:
    t = ctx.t
    if not ctx.config.desk_url:
        ctx.reply(t._("The desk is not set up in this deployment. Ask whoever runs the bot to set GRIDBOT_DESK_URL."))
        return
    token = issue_link(ctx.session, ctx.person, ctx.now)
    minutes = int(LINK_LIFETIME.total_seconds() // 60)
    ctx.reply(t._("Your sign-in link to the desk, valid for {minutes} minutes and for one sign-in only; do not "
                  "pass it on:\n{url}").format(minutes=t.number(minutes), url=sign_in_url(ctx.config.desk_url, token)))
