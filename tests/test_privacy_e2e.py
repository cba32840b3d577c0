"""A resident's data rights through a real engine against the Bot API simulator: the notice at first contact,
/privacy, the /mydata export file, and deletion with a confirmation another person cannot forge."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core import requests as core
from bot.core.bulletin import Month, compute_bulletin
from bot.core.clock import FrozenClock
from bot.core.privacy import ERASED_CHANNEL, ERASED_TEXT
from bot.core.units import DISTRICT
from bot.simulator import BotApiSimulator, SimMessage, SimUser
from storage.models import Person, Request, RequestPhoto, Role
from tests.e2e import RunningBot, running_bot
from tests.org_fixture import make_small_org, staff

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


def count_notices(user: SimUser) -> int:
    return sum("隐私说明" in (message.text or "") for message in user.messages if message.from_bot)


def button(message: SimMessage, prefix: str) -> str:
    return next(data for _label, data in message.buttons() if data and data.startswith(prefix))


async def forge_press(simulator: BotApiSimulator, user: SimUser, message: SimMessage, data: str) -> None:
    """What a hostile client can do: send callback data that was never on any of its buttons."""
    user._begin_action()
    query_id = simulator._register_callback_query(user, message, data)
    user._last_query_id = query_id
    simulator._enqueue_update("callback_query", {
        "id": query_id, "from": user.to_api(), "message": message.to_api(),
        "chat_instance": str(simulator._chat_instance(user)), "data": data,
    })


def file_for(user_id: int, description: str, photo: str, category_id: int) -> Callable[[Session], None]:
    def file(session: Session) -> None:
        resident = session.scalars(select(Person).where(Person.external_id == str(user_id))).one()
        draft = core.Draft(category_id=category_id, description=description, photo_ids=(photo,),
                           latitude=32.99871, longitude=112.52832)
        core.file_request(session, resident, draft, NOW)

    return file


async def two_neighbours(bot: RunningBot, simulator: BotApiSimulator) -> tuple[SimUser, SimUser]:
    await bot.service.database.run(lambda s: (make_small_org(s), staff(s, 7001, "Wang Worker", Role.WORKER, 1, "en")))
    li = simulator.user(1001, "李", language_code="zh-hans")
    mei = simulator.user(1077, "梅", language_code="zh-hans")
    for user in (li, mei):
        await user.send_text("/start b_DG-JS-01-B1")
        await user.wait_for_text("建设路12号院1号楼")
    await bot.service.database.run(file_for(1001, "LI-WORDS 楼道堆满纸箱", "li-photo-id", 1))
    await bot.service.database.run(file_for(1077, "MEI-WORDS 飞线充电", "mei-photo-id", 2))
    return li, mei


async def test_notice_once_then_privacy_then_mydata_export_through_the_engine(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url, engine=engine, clock=FrozenClock(NOW)) as bot:
        li, _mei = await two_neighbours(bot, simulator)
        first = next(message for message in li.messages if message.from_bot)
        assert "隐私说明" in (first.text or "") and "/mydata" in (first.text or "")
        await li.send_text("/help")
        await li.wait_for_text("/cancel")
        assert count_notices(li) == 1
        await li.send_text("/privacy")
        await li.wait_for_text("隐私说明")
        assert count_notices(li) == 2

        await li.send_text("/mydata")
        summary = await li.wait_for_text("我们保存的您的数据")
        assert "已提交诉求1件" in (summary.text or "") and button(summary, "pv:ask")
        export = await li.wait_for(lambda m: m.document is not None)
        assert export.document is not None and (export.document.name or "").endswith(".json")
        content = export.document.data.decode("utf-8")
        data = json.loads(content)
        assert data["person"]["chat_id"] == "1001" and data["person"]["name"] == "李"
        [request] = data["requests"]
        assert request["code"] == "R-000001" and request["description"].startswith("LI-WORDS")
        assert request["photos"][0]["file_id"] == "li-photo-id" and request["latitude"] == 32.99871
        for neighbour in ("MEI-WORDS", "mei-photo-id", "梅", "1077", "R-000002"):
            assert neighbour not in content


async def test_deletion_through_the_engine_refuses_a_forged_confirmation(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url, engine=engine, clock=FrozenClock(NOW)) as bot:
        li, mei = await two_neighbours(bot, simulator)
        database = bot.service.database
        await li.send_text("/deletemydata")
        warning = await li.wait_for(lambda m: any((d or "").startswith("pv:yes:") for _t, d in m.buttons()))
        assert "无法撤销" in (warning.text or "")
        confirm = button(warning, "pv:yes:")

        await forge_press(simulator, mei, mei.messages[-1], confirm)
        answer = await mei.wait_for_answer()
        assert "失效" in (answer.text or "") and answer.show_alert
        descriptions = await database.run(lambda s: list(s.scalars(select(Request.description).order_by(Request.id))))
        assert descriptions[0].startswith("LI-WORDS") and descriptions[1].startswith("MEI-WORDS")

        await li.press(warning, confirm)
        await li.wait_for(lambda m: m.message_id == warning.message_id and "已删除" in (m.text or ""))

        def anonymised(session: Session) -> tuple[object, ...]:
            request = session.get(Request, 1)
            assert request is not None
            resident = session.get(Person, request.resident_id)
            assert resident is not None
            photos = session.scalar(select(func.count()).select_from(RequestPhoto).where(RequestPhoto.request_id == 1))
            received = compute_bulletin(session, DISTRICT, Month(2026, 11), "Asia/Shanghai").totals
            return (request.description, request.latitude, photos, resident.channel, resident.display_name,
                    received.counts.received)

        assert await database.run(anonymised) == (ERASED_TEXT, None, 0, ERASED_CHANNEL, "", 2)

        # The next message is a fresh first contact: the notice again, and the building to choose.
        await li.send_text("/start")
        await li.wait_for_text("隐私说明")
        await li.wait_for(lambda m: any((d or "").startswith("bind:s:") for _t, d in m.buttons()))
