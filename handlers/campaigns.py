"""Focused campaigns in the chat (rules in ``bot.core.campaigns``).

``/campaign`` for community, street and district staff: open a campaign (name, category, end date, then its
target buildings, chosen with buttons or sent as codes) and see each one's progress by grid. ``/targets`` for
grid workers: their grid's targets, each recorded as rectified or not with a photo.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import select

from bot.core import campaigns as core
from bot.core import requests as requests_core
from bot.core.areas import admin_areas
from bot.core.context import Context
from bot.core.messages import Button, Photo, Text, clip, inline
from bot.core.requests import RequestRefused
from bot.core.roles import is_admin, is_staff
from bot.core.rounds import is_worker, worker_grids
from bot.core.router import RoleFilter, Router, button_args, callback
from bot.core.units import ids_within
from bot.i18n import N_
from bot.rounds_wording import campaign_progress_text, day_text
from bot.wording import refuse
from handlers.menu import show_main_menu
from storage.models import Building, CampaignTarget, Level, TargetStatus

workers = Router(role=RoleFilter(is_worker, N_("This is for grid workers.")))
admins = Router(role=RoleFilter(is_admin, N_("This is for community, street and district staff.")))
buttons = Router(role=RoleFilter(is_staff, N_("This is for grid workers and staff only.")))
router = Router()

PREFIX = "ca"
NAME = "campaign.name"
CATEGORY = "campaign.category"
END = "campaign.end"
TARGETS = "campaign.targets"
TARGET_PHOTO = "campaign.photo"
SHOWN = 30
CODE_SEPARATORS = re.compile(r"[\s,，、;；]+")


# --- /campaign: staff open campaigns and follow them ----------------------------------------------------------


@admins.command("campaign")
def campaigns(ctx: Context) -> None:
    t = ctx.t
    ctx.clear_state()
    rows = [[Button(t._("📊 {name}").format(name=campaign.name), callback(PREFIX, "p", campaign.id))]
            for campaign in core.campaigns_of(ctx.session, ctx.person)]
    rows.append([Button(t._("🆕 New campaign"), callback(PREFIX, "new"))])
    intro = t._("Focused campaigns of your area. Choose one to see its progress, or open a new one.")
    ctx.reply(intro if len(rows) > 1 else t._("No campaigns yet in your area."), inline(*rows))


def _new(ctx: Context, _argument: str) -> None:
    ctx.set_state(NAME)
    ctx.reply(ctx.t._("🆕 New focused campaign. What is its name? (e.g. 飞线充电整治)"))


def _name(ctx: Context, text: str) -> None:
    ctx.set_state(CATEGORY, name=core.check_name(text))
    categories = requests_core.categories_for_filing(ctx.session)
    rows = [[Button(category.name(ctx.t.locale), callback(PREFIX, "c", category.id))] for category in categories]
    ctx.reply(ctx.t._("Which category of problem does it deal with?"), inline(*rows))


def _category(ctx: Context, argument: str) -> None:
    category = next((c for c in requests_core.categories_for_filing(ctx.session) if str(c.id) == argument), None)
    if category is None:
        raise RequestRefused(N_("This category is no longer available. Please start again with /new."))
    ctx.edit(ctx.t._("✔ {choice}").format(choice=category.name(ctx.t.locale)))
    ctx.set_state(END, category_id=category.id)
    ctx.reply(ctx.t._("Its last day? Write the date as YYYY-MM-DD."))


def _end(ctx: Context, text: str) -> None:
    data = ctx.state_data
    campaign = core.open_campaign(ctx.session, ctx.person, str(data.get("name", "")),
                                  int(data.get("category_id", 0)), core.parse_end_date(text), ctx.now,
                                  ctx.config.timezone)
    _ask_targets(ctx, campaign.id)


def _ask_targets(ctx: Context, campaign_id: int) -> None:
    t = ctx.t
    campaign = core.managed_campaign(ctx.session, ctx.person, campaign_id)
    ctx.clear_state()
    ctx.set_state(TARGETS, campaign_id=campaign.id)
    within = ids_within(Level.BUILDING, core.area_of(campaign))
    assert within is not None
    chosen = select(CampaignTarget.building_id).where(CampaignTarget.campaign_id == campaign.id)
    buildings = ctx.session.scalars(select(Building).where(
        Building.id.in_(within), Building.active.is_(True), Building.id.not_in(chosen))
        .order_by(Building.code).limit(SHOWN))
    rows = [[Button(building.name, callback(PREFIX, "t", campaign.id, building.code))] for building in buildings]
    rows.append([Button(t._("✅ Done"), callback(PREFIX, "done", campaign.id))])
    ctx.reply(t._("Targets of “{name}”: choose buildings, or send their codes (several at once, one per line). "
                  "An operator can import a CSV with: gridbot campaign import {id} FILE.csv").format(
        name=campaign.name, id=campaign.id), inline(*rows))


def _added(ctx: Context, campaign_id: int, codes: list[str]) -> None:
    t = ctx.t
    added = core.add_targets(ctx.session, ctx.person, campaign_id, codes)
    lines = [t._("{count} targets added.").format(count=added.added)]
    if added.refused:
        lines.append(t._("Not in your area or unknown: {codes}").format(codes=", ".join(added.refused[:20])))
    ctx.reply(clip("\n".join(lines)))


def _chose_target(ctx: Context, argument: str) -> None:
    campaign_id, _, code = argument.partition(":")
    if int(ctx.state_data.get("campaign_id", 0)) != _int(campaign_id):
        raise RequestRefused(N_("This step is over."))
    _added(ctx, _int(campaign_id), [code])


def _done(ctx: Context, argument: str) -> None:
    campaign, grids = core.campaign_progress(ctx.session, ctx.person, _int(argument))
    ctx.clear_state()
    show_main_menu(ctx, campaign_progress_text(ctx.t, campaign, grids))


def _progress(ctx: Context, argument: str) -> None:
    campaign, grids = core.campaign_progress(ctx.session, ctx.person, _int(argument))
    ctx.reply(campaign_progress_text(ctx.t, campaign, grids),
              inline([Button(ctx.t._("➕ Add targets"), callback(PREFIX, "more", campaign.id))]))


# --- /targets: a grid worker records their grid's targets ------------------------------------------------------


@workers.command("targets")
def targets(ctx: Context) -> None:
    t = ctx.t
    ctx.clear_state()
    pending = core.worker_targets(ctx.session, ctx.person, ctx.now, ctx.config.timezone)
    if not pending:
        show_main_menu(ctx, t._("No campaign targets in your grid are waiting."))
        return
    rows = [[Button(t._("🎯 {campaign} · {building}").format(campaign=target.campaign.name,
                                                             building=target.building.name),
                    callback(PREFIX, "r", target.id))] for target in pending]
    ctx.reply(t._("Campaign targets in your grid still to rectify:"), inline(*rows))


def _target(ctx: Context, argument: str) -> None:
    t = ctx.t
    target = _own_target(ctx, _int(argument))
    ctx.reply(t._("{campaign} · {building} (until {date}): is it rectified?").format(
        campaign=target.campaign.name, building=target.building.name, date=day_text(t, target.campaign.ends_on)),
        inline([Button(t._("✅ Rectified"), callback(PREFIX, "y", target.id)),
                Button(t._("❌ Not rectified"), callback(PREFIX, "n", target.id))]))


def _verdict(rectified: bool) -> Callable[[Context, str], None]:
    def ask_photo(ctx: Context, argument: str) -> None:
        target = _own_target(ctx, _int(argument))
        ctx.clear_state()
        ctx.set_state(TARGET_PHOTO, target_id=target.id, rectified=rectified)
        ctx.edit(ctx.t._("✔ {choice}").format(choice=ctx.t._("✅ Rectified") if rectified
                                               else ctx.t._("❌ Not rectified")))
        ctx.reply(ctx.t._("Send a photo of the place (a caption adds a note)."))
    return ask_photo


def _photo(ctx: Context) -> None:
    t, data = ctx.t, ctx.state_data
    event = ctx.event
    if not isinstance(event, Photo):
        ctx.reply(t._("Please send a photo of the place."))
        return
    target = core.record_target(ctx.session, ctx.person, int(data.get("target_id", 0)), bool(data.get("rectified")),
                                event.file_id, event.caption, ctx.now)
    ctx.clear_state()
    left = len(core.worker_targets(ctx.session, ctx.person, ctx.now, ctx.config.timezone))
    done = t._("rectified") if target.status is TargetStatus.RECTIFIED else t._("not rectified")
    show_main_menu(ctx, t._("{building} recorded as {status}. Targets still waiting: {left} (/targets).").format(
        building=target.building.name, status=done, left=left))


def _own_target(ctx: Context, target_id: int) -> CampaignTarget:
    target = ctx.session.get(CampaignTarget, target_id)
    if target is None or target.grid_id not in worker_grids(ctx.person):
        raise RequestRefused(N_("This target is not in your grid."))
    return target


def _int(text: str) -> int:
    return int(text) if text.isdigit() else 0


# --- routing --------------------------------------------------------------------------------------------------


ADMIN_BUTTONS: dict[str, Callable[[Context, str], None]] = {
    "new": _new, "p": _progress, "done": _done, "more": lambda ctx, a: _ask_targets(ctx, _int(a)),
}
WORKER_BUTTONS: dict[str, Callable[[Context, str], None]] = {
    "r": _target, "y": _verdict(True), "n": _verdict(False),
}
STEP_BUTTONS: dict[str, tuple[str, Callable[[Context, str], None]]] = {
    "c": (CATEGORY, _category), "t": (TARGETS, _chose_target),
}


@buttons.button(PREFIX)
def on_button(ctx: Context) -> None:
    args = button_args(ctx)
    action, argument = (args[0], ":".join(args[1:])) if args else ("", "")
    try:
        if action in ADMIN_BUTTONS and admin_areas(ctx.person):
            ctx.answer()
            ADMIN_BUTTONS[action](ctx, argument)
        elif action in WORKER_BUTTONS and is_worker(ctx.person):
            ctx.answer()
            WORKER_BUTTONS[action](ctx, argument)
        elif action in STEP_BUTTONS and ctx.person.state == STEP_BUTTONS[action][0]:
            ctx.answer()
            STEP_BUTTONS[action][1](ctx, argument)
        else:
            ctx.answer(ctx.t._("This step is over."), alert=True)
    except RequestRefused as error:
        refuse(ctx, error)


@buttons.step("campaign")
def campaign_step(ctx: Context) -> None:
    state, event = ctx.person.state or "", ctx.event
    try:
        if state == TARGET_PHOTO:
            _photo(ctx)
        elif not isinstance(event, Text):
            ctx.reply(ctx.t._("Please write it as text, or /cancel."))
        elif state == NAME:
            _name(ctx, event.text)
        elif state == END:
            _end(ctx, event.text)
        elif state == TARGETS:
            _added(ctx, int(ctx.state_data.get("campaign_id", 0)), CODE_SEPARATORS.split(event.text))
        else:
            ctx.reply(ctx.t._("Please use the buttons above, or /cancel."))
    except RequestRefused as error:
        refuse(ctx, error)


router.include(workers)
router.include(admins)
router.include(buttons)
