"""Conversation steps, one module per area; ``build_router`` puts them together."""

from __future__ import annotations

from bot.core.router import Router
from handlers import cancel, filing, language, my_requests, start, tasks
from handlers.menu import MENU_COMMANDS


def build_router() -> Router:
    router = Router()
    for module in (start, language, cancel, filing, my_requests, tasks):
        router.include(module.router)
    router.menu.update(MENU_COMMANDS)
    router.fallback = cancel.not_understood
    return router
