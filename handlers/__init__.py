"""Conversation steps, one module per area; ``build_router`` puts them together."""

from __future__ import annotations

from bot.core.router import Router
from handlers import (
    broadcast,
    cancel,
    filing,
    language,
    meetings,
    my_requests,
    privacy,
    report,
    staff_admin,
    start,
    tasks,
    volunteers,
)
from handlers.menu import MENU_COMMANDS


def build_router() -> Router:
    router = Router()
    for module in (start, language, cancel, filing, my_requests, tasks, report, broadcast, staff_admin,
                   volunteers, meetings):
        router.include(module.router)
    router.include(privacy.router)
    router.menu.update(MENU_COMMANDS)
    router.fallback = cancel.not_understood
    privacy.show_notice_at_first_contact(router)
    return router
