"""The life of a request through the core: filing, the ladder up and down, the resident's verdict, and every
move that must be refused."""

from __future__ import annotations

import itertools

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core.app import Core
from bot.core.context import CoreConfig
from bot.core.messages import Photo, Unsupported
from handlers import build_router
from storage.database import Database
from storage.models import Level, Person, Rating, Request, RequestStatus, Role
from tests.harness import CoreChat, FakePerson, ShownMessage
from tests.org_fixture import SmallOrg, make_small_org, staff

# Category ids as make_small_org creates them.
CLUTTER, WIRES = 1, 2


def data_of(message: ShownMessage, prefix: str) -> str:
    """The callback data of the message's first button whose data starts with ``prefix``."""
    for _label, data in message.buttons():
        if data.startswith(prefix):
            return data
    raise AssertionError(f"no {prefix!r} button in {message.buttons()} of {message.text!r}")


def last_with_button(person: FakePerson, prefix: str) -> ShownMessage:
    for message in reversed(person.messages):
        if any(data.startswith(prefix) for _label, data in message.buttons()):
            return message
    raise AssertionError(f"{person.name} has no message with a {prefix!r} button; saw {person.texts()}")


async def make_org_with_staff(database: Database) -> SmallOrg:
    org = await database.run(make_small_org)

    def add_staff(session: Session) -> None:
        staff(session, 2001, "Wang Worker", Role.WORKER, org.grid, "en")
        staff(session, 2002, "Zhao Other", Role.WORKER, org.grid2, "zh_CN")
        staff(session, 3001, "陈社区", Role.COMMUNITY, org.community, "zh_CN")
        staff(session, 4001, "Sun Street", Role.STREET, org.street, "en")
        staff(session, 5001, "周区中心", Role.DISTRICT, 0, "zh_CN")

    await database.run(add_staff)
    return org


async def load_request(database: Database, request_id: int = 1) -> Request:
    def load(session: Session) -> Request:
        request = session.get(Request, request_id)
        assert request is not None
        return request

    return await database.run(load)


async def count_requests(database: Database) -> int:
    return await database.run(lambda s: s.scalar(select(func.count(Request.id))) or 0)


async def bind(chat: CoreChat, person: FakePerson, building_code: str = "DG-JS-01-B1") -> None:
    await chat.text(person, f"/start b_{building_code}")


async def file_request(
    chat: CoreChat, resident: FakePerson, description: str = "楼道里堆满了纸箱，挡住了消防通道",
    photos: tuple[str, ...] = (), hide: bool = False, category: int = CLUTTER,
) -> None:
    await chat.text(resident, "/new")
    await chat.press(resident, data_of(resident.last, f"fl:cat:{category}"))
    await chat.text(resident, description)
    for photo in photos:
        await chat.photo(resident, photo)
    await chat.press(resident, data_of(resident.last, "fl:photos"))
    await chat.press(resident, data_of(resident.last, "fl:loc:b"))
    await chat.press(resident, data_of(resident.last, "fl:hide:1" if hide else "fl:hide:0"))
    await chat.press(resident, data_of(resident.last, "fl:ok:"))


async def staff_writes(chat: CoreChat, person: FakePerson, button_prefix: str, text: str) -> None:
    """Press a card button that asks for a text (resolve, escalate, return, note) and write it."""
    await chat.press(person, data_of(last_with_button(person, button_prefix), button_prefix))
    await chat.text(person, text)


# --- the full walk ----------------------------------------------------------------------------------------------


async def test_request_climbs_the_ladder_is_reopened_higher_and_closed_with_rating(
    database: Database, chat: CoreChat
) -> None:
    org = await make_org_with_staff(database)
    li = chat.person(1001, "李居民", "zh-hans")
    wang = chat.person(2001, "Wang Worker", "en")
    chen = chat.person(3001, "陈社区", "zh-hans")
    sun = chat.person(4001, "Sun Street", "en")
    await bind(chat, li)

    await file_request(chat, li, photos=("photo-clutter",))
    receipt = li.last.text
    assert "R-000001" in receipt and "Wang Worker" in receipt and "已提交" in receipt
    card = wang.last
    assert card.photo == "photo-clutter"
    assert "New request R-000001" in card.text and "纸箱" in card.text and "李居民" in card.text
    assert "建设路12号院1号楼" in card.text and "Location: 32.99870, 112.52830" in card.text
    assert chen.messages == [] and sun.messages == []

    await chat.press(wang, card.button("Accept"), card)
    assert "Wang Worker" in li.last.text and "受理" in li.last.text
    assert (await load_request(database)).status is RequestStatus.ACCEPTED

    await staff_writes(chat, wang, "rq:esc:", "Needs the property company")
    assert "建设社区" in wang.last.text
    assert "R-000001" in chen.last.text and "Needs the property company" in chen.last.text
    assert "上报" in chen.last.text and chen.last.photo == "photo-clutter"
    assert "建设社区" in li.last.text and "上报" in li.last.text
    request = await load_request(database)
    assert (request.level, request.unit_id, request.status) == (Level.COMMUNITY, org.community, RequestStatus.NEW)

    await chat.press(chen, data_of(last_with_button(chen, "rq:acc:"), "rq:acc:"))
    await staff_writes(chat, chen, "rq:res:", "已联系物业清理")
    verdict = li.last
    assert "已联系物业清理" in verdict.text and "陈社区" in verdict.text
    assert (await load_request(database)).resolved_level is Level.COMMUNITY

    await chat.press(li, data_of(verdict, "my:ok:1:not_fixed"), verdict)
    assert "东关街道" in li.last.text
    assert "Reopened" in sun.last.text and "R-000001" in sun.last.text
    request = await load_request(database)
    assert (request.level, request.unit_id, request.status) == (Level.STREET, org.street, RequestStatus.NEW)

    await chat.press(sun, data_of(last_with_button(sun, "rq:res:"), "rq:res:"))
    await chat.send(sun, Photo("photo-after", caption="Boxes removed, passage clear"))
    verdict = li.last
    assert verdict.photo == "photo-after" and "Boxes removed" in verdict.text
    assert (await load_request(database)).resolved_level is Level.STREET

    await chat.press(li, data_of(verdict, "my:ok:1:fixed"), verdict)
    assert "confirmed R-000001" in sun.last.text
    await chat.press(li, data_of(verdict, "my:star:1:5"), verdict)
    await chat.text(li, "谢谢，处理得很快")
    assert "感谢" in li.last.text

    request = await load_request(database)
    assert request.status is RequestStatus.CLOSED
    rating = await database.run(lambda s: s.get(Rating, 1))
    assert (rating.outcome, rating.stars, rating.comment) == ("fixed", 5, "谢谢，处理得很快")


# --- moves that must be refused --------------------------------------------------------------------------------


async def test_resolving_a_withdrawn_request_is_refused(database: Database, chat: CoreChat) -> None:
    await make_org_with_staff(database)
    ann, wang = chat.person(1002, "Ann", "en"), chat.person(2001, "Wang Worker", "en")
    await bind(chat, ann)
    await file_request(chat, ann)
    card = wang.last
    await chat.text(ann, "/my")
    await chat.press(ann, data_of(ann.last, "my:open:1"))
    await chat.press(ann, data_of(ann.last, "my:wd:1"))
    assert "withdrew R-000001" in wang.last.text

    await chat.press(wang, card.button("Resolve"), card)
    assert "withdrawn" in wang.answers[-1].text and wang.answers[-1].alert
    assert (await load_request(database)).status is RequestStatus.WITHDRAWN


async def test_second_worker_is_told_who_accepted_first(database: Database, chat: CoreChat) -> None:
    org = await make_org_with_staff(database)
    await database.run(lambda s: staff(s, 2003, "Liu Worker", Role.WORKER, org.grid, "en"))
    ann, wang, liu = chat.person(1002, "Ann", "en"), chat.person(2001, "Wang"), chat.person(2003, "Liu")
    await bind(chat, ann)
    await file_request(chat, ann)
    await chat.press(wang, wang.last.button("Accept"))
    await chat.press(liu, liu.last.button("Accept"))
    assert "already accepted by Wang Worker" in liu.answers[-1].text
    assert not any(data.startswith("rq:acc:") for _label, data in wang.last.buttons())
    await chat.press(wang, "rq:acc:1")  # an Accept from a copy of the card kept elsewhere
    assert "already accepted" in wang.answers[-1].text
    assert (await load_request(database)).assignee_id == await person_id(database, "2001")


async def person_id(database: Database, external_id: str) -> int:
    return await database.run(
        lambda s: s.scalars(select(Person.id).where(Person.external_id == external_id)).one()
    )


async def test_resident_pressing_a_forged_worker_button_changes_nothing(
    database: Database, chat: CoreChat
) -> None:
    await make_org_with_staff(database)
    ann = chat.person(1002, "Ann", "en")
    await bind(chat, ann)
    await file_request(chat, ann)
    for forged in ("rq:acc:1", "rq:res:1", "rq:esc:1", "rq:to:1:g:3"):
        await chat.press(ann, forged)
        assert "not held by your unit" in ann.answers[-1].text
    assert ann.messages[-1].text.startswith("Filed as R-000001")
    request = await load_request(database)
    assert (request.status, request.level) == (RequestStatus.NEW, Level.GRID)


async def test_worker_of_another_grid_cannot_accept(database: Database, chat: CoreChat) -> None:
    await make_org_with_staff(database)
    ann, zhao = chat.person(1002, "Ann", "en"), chat.person(2002, "Zhao Other")
    await bind(chat, ann)
    await file_request(chat, ann)
    assert zhao.messages == []
    await chat.text(zhao, "/tasks")
    assert "暂无待办" in zhao.last.text
    await chat.press(zhao, "rq:acc:1")
    assert "R-000001" in zhao.answers[-1].text and zhao.answers[-1].alert
    assert (await load_request(database)).status is RequestStatus.NEW


async def test_stale_card_button_after_escalation_is_refused(database: Database, chat: CoreChat) -> None:
    org = await make_org_with_staff(database)
    ann, wang = chat.person(1002, "Ann", "en"), chat.person(2001, "Wang")
    await bind(chat, ann)
    await file_request(chat, ann)
    old_card = wang.last
    await staff_writes(chat, wang, "rq:esc:", "Too big for the grid")
    await chat.press(wang, old_card.button("Resolve"), old_card)
    assert "not held by your unit" in wang.answers[-1].text
    await chat.press(wang, old_card.button("Accept"), old_card)
    assert "not held by your unit" in wang.answers[-1].text
    assert wang.last.text.startswith("Done: R-000001")  # no prompt for a resolution note followed
    request = await load_request(database)
    assert (request.level, request.unit_id, request.status) == (Level.COMMUNITY, org.community, RequestStatus.NEW)


async def test_grid_without_workers_sends_request_to_its_community(database: Database, chat: CoreChat) -> None:
    org = await make_org_with_staff(database)
    ann, chen = chat.person(1002, "Ann", "en"), chat.person(3001, "陈社区")
    await bind(chat, ann, "DG-JS-02-B1")
    await chat.text(ann, "/new")
    await chat.press(ann, ann.last.button("Clutter"))
    await chat.text(ann, "Bikes block the stairs")
    await chat.press(ann, data_of(ann.last, "fl:photos"))
    assert "fl:loc:b" not in str(ann.last.buttons())  # this building has no coordinates on record
    await chat.press(ann, data_of(ann.last, "fl:loc:-"))
    await chat.press(ann, data_of(ann.last, "fl:hide:0"))
    await chat.press(ann, data_of(ann.last, "fl:ok:"))
    assert "建设社区" in ann.last.text
    assert "R-000001" in chen.last.text and "Bikes block the stairs" in chen.last.text
    request = await load_request(database)
    assert (request.level, request.unit_id) == (Level.COMMUNITY, org.community)


async def test_neighbour_joins_an_open_request_and_the_worker_sees_the_count(
    database: Database, chat: CoreChat
) -> None:
    await make_org_with_staff(database)
    ann, bob, wang = chat.person(1002, "Ann", "en"), chat.person(1003, "Bob", "en"), chat.person(2001, "Wang")
    await bind(chat, ann)
    await bind(chat, bob)
    await file_request(chat, ann, description="Boxes in the stairwell")
    await chat.text(bob, "/new")
    await chat.press(bob, bob.last.button("Clutter"))
    offer = bob.last
    assert "R-000001" in offer.text and "Boxes in the stairwell" not in offer.text
    await chat.press(bob, offer.button("Me too"), offer)
    assert "You joined R-000001" in bob.last.text and "1 neighbour" in bob.last.text
    assert "One more neighbour reported R-000001 (2 in all)" in wang.last.text
    await chat.press(wang, data_of(wang.last, "rq:open:1"))
    assert "1 neighbour reported the same" in wang.last.text
    assert await count_requests(database) == 1
    assert (await load_request(database)).supporters == 1


async def test_hidden_identity_keeps_name_and_phone_off_the_card(database: Database, chat: CoreChat) -> None:
    await make_org_with_staff(database)
    ann, wang = chat.person(1002, "Ann Secret", "en"), chat.person(2001, "Wang")
    await bind(chat, ann)

    def give_phone(session: Session) -> None:
        session.scalars(select(Person).where(Person.external_id == "1002")).one().phone = "13800001111"

    await database.run(give_phone)
    await file_request(chat, ann, hide=True)
    card = wang.last.text
    assert "R-000001" in card and "anonymous" in card
    assert "Ann Secret" not in card and "13800001111" not in card
    await chat.press(wang, data_of(wang.last, "rq:tl:1"))
    assert "Ann Secret" not in wang.last.text and "the resident" in wang.last.text


async def test_without_hiding_the_card_shows_the_name_and_never_a_phone(database: Database, chat: CoreChat) -> None:
    # No phone number is ever asked for, so neither the filing questions nor the card mention one.
    await make_org_with_staff(database)
    ann, wang = chat.person(1002, "Ann Open", "en"), chat.person(2001, "Wang")
    await bind(chat, ann)
    await file_request(chat, ann)
    assert "Ann Open" in wang.last.text
    assert not [text for text in ann.texts() + wang.texts() if "phone" in text.lower()]


async def test_half_filed_request_survives_a_restart(database: Database, chat: CoreChat) -> None:
    await make_org_with_staff(database)
    ann = chat.person(1002, "Ann", "en")
    await bind(chat, ann)
    await chat.text(ann, "/new")
    await chat.press(ann, ann.last.button("Clutter"))
    assert "Describe the problem" in ann.last.text

    restarted = CoreChat(database, Core(database, build_router(), CoreConfig(), chat.clock), chat.clock)
    restarted._update_ids = itertools.count(10_000)  # the platform keeps numbering updates across restarts
    ann_again = restarted.person(1002, "Ann", "en")
    await restarted.text(ann_again, "Broken door on the ground floor")
    assert "photos" in ann_again.last.text
    await restarted.press(ann_again, data_of(ann_again.last, "fl:photos"))
    await restarted.press(ann_again, data_of(ann_again.last, "fl:loc:-"))
    await restarted.press(ann_again, data_of(ann_again.last, "fl:hide:0"))
    assert "Broken door on the ground floor" in ann_again.last.text
    await restarted.press(ann_again, data_of(ann_again.last, "fl:ok:"))
    assert "Filed as R-000001" in ann_again.last.text
    assert (await load_request(database)).description == "Broken door on the ground floor"


async def test_description_must_be_text_of_sensible_length(database: Database, chat: CoreChat) -> None:
    await make_org_with_staff(database)
    ann = chat.person(1002, "Ann", "en")
    await bind(chat, ann)
    await chat.text(ann, "/new")
    await chat.press(ann, ann.last.button("Clutter"))
    await chat.text(ann, "x" * 2001)
    assert "too long" in ann.last.text and "2001" in ann.last.text and "2000" in ann.last.text
    await chat.text(ann, "   ")
    assert "describe the problem in a few words" in ann.last.text
    await chat.text(ann, "😡😡😡 !!!")
    assert "describe the problem in words" in ann.last.text
    await chat.send(ann, Photo("photo-first"))
    assert "Photo kept" in ann.last.text
    await chat.send(ann, Unsupported("sticker"))
    assert "in text first" in ann.last.text
    await chat.text(ann, "x" * 2000)
    assert "Photo 1 of 3 received" in ann.last.text


async def test_confirm_pressed_twice_files_once(database: Database, chat: CoreChat) -> None:
    await make_org_with_staff(database)
    ann, wang = chat.person(1002, "Ann", "en"), chat.person(2001, "Wang")
    await bind(chat, ann)
    await file_request(chat, ann)
    summary = ann.find("Please check your request")
    assert summary.buttons() == []  # the confirmed summary offers nothing more to press
    await chat.press(ann, "fl:ok:stale", summary)
    assert "This step is over" in ann.answers[-1].text
    assert await count_requests(database) == 1
    assert len([m for m in wang.messages if "New request" in m.text]) == 1


async def test_chase_only_when_overdue_reaches_holder_and_superiors(
    database: Database, chat: CoreChat
) -> None:
    await make_org_with_staff(database)
    ann, wang, chen = chat.person(1002, "Ann", "en"), chat.person(2001, "Wang"), chat.person(3001, "陈社区")
    await bind(chat, ann)
    await file_request(chat, ann)
    await chat.press(ann, "my:chase:1")
    assert "not overdue" in ann.answers[-1].text
    await chat.text(ann, "/my")
    await chat.press(ann, data_of(ann.last, "my:open:1"))
    assert "my:chase" not in str(ann.last.buttons())

    chat.clock.advance(days=8)
    listing = ann.find("Your requests")
    await chat.press(ann, data_of(listing, "my:open:1"), listing)
    await chat.press(ann, data_of(ann.last, "my:chase:1"))
    assert "reminded" in ann.last.text
    assert "chasing R-000001" in wang.last.text
    assert "R-000001" in chen.last.text and "催办" in chen.last.text
    await chat.press(ann, "my:chase:1")
    assert "already chased" in ann.answers[-1].text


async def test_withdraw_only_while_new(database: Database, chat: CoreChat) -> None:
    await make_org_with_staff(database)
    ann, wang = chat.person(1002, "Ann", "en"), chat.person(2001, "Wang")
    await bind(chat, ann)
    await file_request(chat, ann)
    await chat.press(wang, wang.last.button("Accept"))
    await chat.press(ann, "my:wd:1")
    assert "can no longer be withdrawn" in ann.answers[-1].text
    assert (await load_request(database)).status is RequestStatus.ACCEPTED


async def test_someone_else_cannot_withdraw_or_confirm(database: Database, chat: CoreChat) -> None:
    await make_org_with_staff(database)
    ann, wang = chat.person(1002, "Ann", "en"), chat.person(2001, "Wang")
    await bind(chat, ann)
    await file_request(chat, ann)
    await chat.press(wang, "my:wd:1")
    assert "Only the resident" in wang.answers[-1].text
    await chat.press(wang, "my:ok:1:fixed")
    assert "Only the resident" in wang.answers[-1].text
    assert (await load_request(database)).status is RequestStatus.NEW


async def test_timeline_shows_each_step(database: Database, chat: CoreChat) -> None:
    await make_org_with_staff(database)
    ann, wang = chat.person(1002, "Ann", "en"), chat.person(2001, "Wang")
    await bind(chat, ann)
    await file_request(chat, ann)
    await chat.press(wang, wang.last.button("Accept"))
    await staff_writes(chat, wang, "rq:note:", "Called the property office")
    await chat.text(ann, "/my")
    listing = ann.last
    assert "R-000001" in listing.text and "being handled" in listing.text and "Wang Worker" in listing.text
    await chat.press(ann, data_of(listing, "my:open:1"), listing)
    view = ann.last.text
    assert "Timeline of R-000001" in view and "filed, sent to 建设一网格" in view
    assert "accepted — Wang Worker" in view
    assert "Called the property office" not in view  # staff notes stay between staff
    await chat.press(wang, data_of(last_with_button(wang, "rq:tl:"), "rq:tl:"))
    assert "Called the property office" in wang.last.text


async def test_tasks_lists_overdue_first_and_opens_by_code(database: Database, chat: CoreChat) -> None:
    await make_org_with_staff(database)
    ann, wang = chat.person(1002, "Ann", "en"), chat.person(2001, "Wang")
    await bind(chat, ann)
    await file_request(chat, ann, category=CLUTTER, description="Clutter again")
    await file_request(chat, ann, category=WIRES, description="Cable from the window")
    chat.clock.advance(days=4)  # the wires request (3 days) is overdue, the clutter one (7 days) is not
    await chat.text(wang, "/tasks")
    listing = wang.last.text.splitlines()
    assert listing[1].startswith("⚠️ R-000002") and listing[2].startswith("R-000001")
    await chat.text(wang, "/tasks R-000002")
    assert "Cable from the window" in wang.last.text
    await chat.text(ann, "/tasks")
    assert "staff only" in ann.last.text


async def test_return_down_and_reassign_stay_on_the_ladder(database: Database, chat: CoreChat) -> None:
    org = await make_org_with_staff(database)
    ann, wang, chen = chat.person(1002, "Ann", "en"), chat.person(2001, "Wang"), chat.person(3001, "陈社区")
    await bind(chat, ann)
    await file_request(chat, ann)
    await staff_writes(chat, wang, "rq:esc:", "Needs the community")
    await staff_writes(chat, chen, "rq:ret:", "请网格员先联系楼栋长")
    assert "请网格员先联系楼栋长" in wang.last.text
    request = await load_request(database)
    assert (request.level, request.unit_id) == (Level.GRID, org.grid)
    await chat.press(wang, data_of(last_with_button(wang, "rq:mv:"), "rq:mv:"))
    assert "no other unit" in wang.last.text  # the other grid of the community has no workers


async def test_different_problems_of_one_building_are_separate_requests(database: Database, chat: CoreChat) -> None:
    await make_org_with_staff(database)
    ann, bob = chat.person(1002, "Ann", "en"), chat.person(1003, "Bob", "en")
    await bind(chat, ann)
    await bind(chat, bob)
    assert await count_requests(database) == 0
    await file_request(chat, ann, description="Boxes in the stairwell")
    await file_request(chat, bob, description="Cables across the yard", category=WIRES)
    assert await count_requests(database) == 2
    first, second = await load_request(database, 1), await load_request(database, 2)
    assert (first.code, first.category_id) == ("R-000001", CLUTTER)
    assert (second.code, second.category_id) == ("R-000002", WIRES)

