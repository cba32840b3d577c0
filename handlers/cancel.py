"""Leaving whatever conversation step a person is in, and answering what nobody asked for."""

from __future__ import annotations

from bot.core.context import Context
from bot.core.router import Router
from handlers.filing import offer_filing
from handlers.menu import show_main_menu
from handlers.rounds import patrol_point

router = Router()


@router.command("cancel")
def cancel(ctx: Context) -> None:
    had_step = ctx.person.state is not None
    ctx.clear_state()
    text = ctx.t._("Cancelled. Nothing was saved.") if had_step else ctx.t._("There is nothing to cancel.")
    show_main_menu(ctx, text)


def not_understood(ctx: Context) -> None:
    # A worker on patrol sends a location at each checkpoint; anyone else is offered to file with it.
    if patrol_point(ctx) or offer_filing(ctx):
        return
    show_main_menu(ctx, ctx.t._("Sorry, I did not understand. Choose from the menu or send /help."))
