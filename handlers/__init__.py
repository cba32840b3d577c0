"""Conversation steps, one module per area; ``build_router`` puts them together."""

from __future__ import annotations

from bot.core.router import Router
from handlers import (
    broadcast,
    campaigns,
    cancel,
    categories,
    desk,
    filing,
    language,
    meetings,
    my_requests,
    privacy,
    report,
    rounds,
    staff_admin,
    start,
    tasks,
    team_chats,
    volunteers,
)
from handlers.menu import MENU_COMMANDS


def build_router() -> Router:
    router = Router()
    modules = (start, language, cancel, filing, my_requests, tasks, rounds, campaigns, report, broadcast,
               staff_admin, volunteers, meetings, categories, team_chats, desk)
    for module in modules:
        router.include(module.router)
    router.include(privacy.router)
    router.menu.update(MENU_COMMANDS)
    router.fallback = cancel.not_understood
    privacy.show_notice_at_first_contact(router)
    router.group = build_group_router()
    return router


def build_group_router() -> Router:
    """What the bot answers in team chats: linking, and the buttons of the cards it posts there."""
    router = Router()
    router.include(team_chats.group_router)
    router.include(tasks.card_buttons)
    return router
