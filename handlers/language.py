"""Choosing the language the bot speaks to a person."""

from __future__ import annotations

from babel import Locale

from bot.core.context import Context
from bot.core.messages import Button, inline
from bot.core.router import Router, button_args, callback
from bot.i18n import available_locales
from handlers.menu import show_main_menu

router = Router()


@router.command("lang")
def choose_language(ctx: Context) -> None:
    buttons = [
        [Button(Locale.parse(locale).get_language_name(locale) or locale, callback("lang", locale))]
        for locale in available_locales()
    ]
    ctx.reply(ctx.t._("Choose your language:"), inline(*buttons))


@router.button("lang")
def set_language(ctx: Context) -> None:
    args = button_args(ctx)
    if not args or args[0] not in available_locales():
        ctx.answer(ctx.t._("This language is not available."), alert=True)
        return
    ctx.person.locale = args[0]
    ctx.answer()
    show_main_menu(ctx, ctx.t._("I will speak English with you from now on."))
