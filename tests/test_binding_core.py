from __future__ import annotations

from bot.core.messages import Photo
from storage.database import Database
from storage.models import Person
from tests.harness import CoreChat
from tests.org_fixture import make_small_org


async def test_deep_link_binds_resident_to_building(database: Database, chat: CoreChat) -> None:
    org = await database.run(make_small_org)
    li = chat.person(1001, "Li", "zh-hans")
    await chat.text(li, "/start b_DG-JS-01-B1")
    assert "建设路12号院1号楼" in li.last.text
    person = await database.run(lambda s: s.query(Person).filter_by(external_id="1001").one())
    assert person.building_id == org.building
    assert person.locale == "zh_CN"


async def test_unknown_building_code_gets_clear_message(database: Database, chat: CoreChat) -> None:
    await database.run(make_small_org)
    ann = chat.person(1002, "Ann", "en")
    await chat.text(ann, "/start b_NOPE")
    assert any("NOPE" in text and "do not know" in text for text in ann.texts())


async def test_guided_binding_by_street_community_building(database: Database, chat: CoreChat) -> None:
    org = await database.run(make_small_org)
    ann = chat.person(1003, "Ann", "en")
    await chat.text(ann, "/start")
    choice = ann.find("Choose your street")
    await chat.press(ann, choice.button("新华街道"), choice)
    await chat.press(ann, choice.button("人民社区"), choice)
    await chat.press(ann, choice.button("人民路8号院2号楼"), choice)
    assert "人民路8号院2号楼" in ann.last.text
    person = await database.run(lambda s: s.query(Person).filter_by(external_id="1003").one())
    assert person.building_id == org.building2


async def test_location_offers_nearest_building(database: Database, chat: CoreChat) -> None:
    org = await database.run(make_small_org)
    ann = chat.person(1004, "Ann", "en")
    await chat.text(ann, "/building")
    await chat.location(ann, 32.9986, 112.5284)
    offer = ann.find("Which of these")
    assert offer.buttons()[0][0].startswith("建设路12号院1号楼")
    await chat.press(ann, offer.buttons()[0][1], offer)
    person = await database.run(lambda s: s.query(Person).filter_by(external_id="1004").one())
    assert person.building_id == org.building


async def test_photo_during_binding_is_answered_not_crashed(database: Database, chat: CoreChat) -> None:
    await database.run(make_small_org)
    ann = chat.person(1005, "Ann", "en")
    await chat.text(ann, "/building")
    await chat.send(ann, Photo("file-1"))
    assert "choose your building" in ann.last.text.lower()
