"""The desk without a browser: signing in by link, sessions, CSRF, Host checks, the area each admin sees, and an
action that tells the people concerned through the outbox (aiohttp's test client against the desk's app)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core import requests as core
from bot.core.api_keys import issue_key
from bot.core.app import Core
from bot.core.clock import FrozenClock
from bot.core.context import CoreConfig
from bot.core.desk_access import issue_link
from bot.core.desk_requests import Filters, request_page
from bot.desk.app import DeskConfig, make_app
from bot.desk.photos import FetchedPhoto
from handlers import build_router
from storage.database import Database
from storage.models import (
    AuditLog,
    Building,
    DeskLink,
    EventKind,
    Level,
    OutboxMessage,
    Person,
    Request,
    RequestEvent,
    Role,
)
from tests.harness import CoreChat
from tests.org_fixture import make_small_org, staff

DESK_HOST = "desk.example"
DESK_URL = f"http://{DESK_HOST}"


@dataclass
class Org:
    district: int
    jianshe_admin: int
    worker: int
    worker2: int
    jianshe_request: int
    renmin_request: int
    second_grid: int  # the other grid of the community, with Qian as its worker
    renmin: int


def resident(session: Session, user_id: int, name: str, now: datetime) -> Person:
    person = Person(channel="telegram", external_id=str(user_id), chat_id=str(user_id), display_name=name,
                    locale="en", state_data={}, created_at=now)
    session.add(person)
    session.flush()
    return person


def build_org(session: Session, now: datetime) -> Org:
    org = make_small_org(session)
    district = staff(session, 9001, "Zhao District", Role.DISTRICT, 0, "en")
    admin = staff(session, 9002, "Chen Community", Role.COMMUNITY, org.community, "en")
    worker = staff(session, 9003, "Wang Worker", Role.WORKER, org.grid, "en")
    worker2 = staff(session, 9004, "Qian Worker", Role.WORKER, org.empty_grid, "en")
    ann = resident(session, 1001, "Ann", now)
    session.flush()
    draft = core.Draft(1, "Boxes block the stairwell of building 1", photo_ids=("photo-of-boxes",))
    in_jianshe = core.file_request(session, ann, draft, now, building=session.get(Building, org.building))
    wires = core.Draft(2, "Wires hang from the third floor", photo_ids=("photo-of-wires",))
    in_renmin = core.file_request(session, ann, wires, now, building=session.get(Building, org.building2))
    return Org(district.id, admin.id, worker.id, worker2.id, in_jianshe.request.id, in_renmin.request.id,
               org.empty_grid,
               org.community2)


@pytest.fixture
async def org(database: Database, clock: FrozenClock) -> Org:
    return await database.run(lambda session: build_org(session, clock()))


class ChatPhotos:
    """The channel's files: the photos residents sent, by file id."""

    async def fetch(self, file_id: str) -> FetchedPhoto | None:
        return FetchedPhoto(f"bytes of {file_id}".encode(), "image/jpeg") if file_id.startswith("photo-") else None


def desk_client(database: Database, clock: FrozenClock, url: str = DESK_URL) -> TestClient[Any, Any]:
    config = DeskConfig(core=CoreConfig(), public_url=url, listen="127.0.0.1:8083", poll_seconds=0.05)
    app = make_app(database, config, clock, {"telegram": ChatPhotos()})
    return TestClient(TestServer(app), headers={"Host": DESK_HOST})


@pytest.fixture
async def client(database: Database, clock: FrozenClock) -> AsyncIterator[TestClient[Any, Any]]:
    test_client = desk_client(database, clock)
    await test_client.start_server()
    yield test_client
    await test_client.close()


async def new_link(database: Database, clock: FrozenClock, person_id: int) -> str:
    def issue(session: Session) -> str:
        person = session.get(Person, person_id)
        assert person is not None
        return issue_link(session, person, clock())

    return await database.run(issue)


async def sign_in(client: TestClient[Any, Any], token: str) -> Any:
    page = await client.get(f"/signin/{token}")
    assert page.status == 200 and "Sign in" in await page.text()
    return await client.post("/signin", data={"token": token}, headers={"Origin": DESK_URL})


async def signed_in(client: TestClient[Any, Any], database: Database, clock: FrozenClock, person_id: int) -> str:
    """Sign in as the person; returns the CSRF token the pages carry."""
    response = await sign_in(client, await new_link(database, clock, person_id))
    assert response.status == 200, await response.text()
    return csrf_of(await response.text())


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert match, page
    return match.group(1)


def code(request_id: int) -> str:
    return f"R-{request_id:06d}"


async def test_a_link_signs_in_once_with_a_strict_http_only_cookie(
    client: TestClient[Any, Any], database: Database, clock: FrozenClock, org: Org
) -> None:
    token = await new_link(database, clock, org.district)
    first = await sign_in(client, token)
    assert first.status == 200 and first.url.path == "/overview"
    assert "Overview: the whole district" in await first.text()
    listed = await (await client.get("/requests")).text()
    assert code(org.jianshe_request) in listed and code(org.renmin_request) in listed
    cookie = first.history[0].headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    assert token not in cookie
    again = await sign_in(client, token)
    assert again.status == 403
    assert "used already" in await again.text()

    def audited(session: Session) -> list[str]:
        return list(session.scalars(select(AuditLog.action).order_by(AuditLog.id)))

    assert await database.run(audited) == ["desk.link_issued", "desk.signed_in"]


async def test_behind_https_the_cookie_is_secure(database: Database, clock: FrozenClock, org: Org) -> None:
    async with desk_client(database, clock, f"https://{DESK_HOST}") as secure_client:
        token = await new_link(database, clock, org.district)
        response = await secure_client.post("/signin", data={"token": token}, allow_redirects=False,
                                            headers={"Origin": f"https://{DESK_HOST}"})
        assert response.status == 303
        assert "Secure" in response.headers["Set-Cookie"]


async def test_a_link_older_than_ten_minutes_is_refused(
    client: TestClient[Any, Any], database: Database, clock: FrozenClock, org: Org
) -> None:
    token = await new_link(database, clock, org.district)
    clock.advance(minutes=10)
    response = await sign_in(client, token)
    assert response.status == 403
    assert "expired" in await response.text()
    unknown = await client.post("/signin", data={"token": "made-up"})
    # Nobody's link: the deployment's default language.
    assert unknown.status == 403 and "此登录链接无效" in await unknown.text()


async def test_a_session_ends_when_idle_or_signed_out(
    client: TestClient[Any, Any], database: Database, clock: FrozenClock, org: Org
) -> None:
    csrf = await signed_in(client, database, clock, org.district)
    clock.advance(hours=1)
    assert (await client.get("/requests")).status == 200
    clock.advance(hours=2, minutes=1)
    ended = await client.get("/requests")
    assert ended.status == 401 and "工作台登录已结束" in await ended.text()
    csrf = await signed_in(client, database, clock, org.district)
    signed_out = await client.post("/signout", data={"csrf": csrf})
    assert signed_out.status == 200
    assert (await client.get(f"/requests/{org.jianshe_request}")).status == 401


async def test_a_form_without_the_csrf_token_is_refused_and_changes_nothing(
    client: TestClient[Any, Any], database: Database, clock: FrozenClock, org: Org
) -> None:
    csrf = await signed_in(client, database, clock, org.district)
    for form in ({"text": "call the property company"}, {"text": "call the property company", "csrf": "0" * 64}):
        refused = await client.post(f"/requests/{org.jianshe_request}/note", data=form)
        assert refused.status == 403
    assert (await client.post("/signout", data={})).status == 403

    def notes(session: Session) -> int:
        query = select(func.count(RequestEvent.id)).where(RequestEvent.kind == EventKind.NOTE)
        return session.scalar(query) or 0

    assert await database.run(notes) == 0
    noted = await client.post(f"/requests/{org.jianshe_request}/note", data={"csrf": csrf, "text": "call them"})
    assert noted.status == 200 and "Note added" in await noted.text()
    assert await database.run(notes) == 1


async def test_requests_from_another_host_or_origin_are_refused(
    client: TestClient[Any, Any], database: Database, clock: FrozenClock, org: Org
) -> None:
    token = await new_link(database, clock, org.district)
    assert (await client.get(f"/signin/{token}", headers={"Host": "evil.example"})).status == 403
    cross = await client.post("/signin", data={"token": token}, headers={"Origin": "https://evil.example"})
    assert cross.status == 403
    assert (await sign_in(client, token)).status == 200  # the refused attempts did not use the link up


async def test_open311_is_served_at_the_desks_address_with_its_own_rule_and_not_the_desks(
    client: TestClient[Any, Any], database: Database, clock: FrozenClock, org: Org
) -> None:
    key = await database.run(lambda session: issue_key(session, "Street Fixer", clock()).key)
    partner = {"Origin": "https://partner.example", "Host": "gridbot.partner-proxy.example"}
    form = {"service_code": "clutter", "address_id": "DG-JS-01-B1", "description": "Bikes block the stairwell"}
    filed = await client.post("/open311/v2/requests.json", data={"api_key": key, **form}, headers=partner)
    assert filed.status == 200, await filed.text()
    filed_code = (await filed.json())[0]["service_request_id"]
    assert filed_code == code(max(org.jianshe_request, org.renmin_request) + 1)
    refused = await client.post("/open311/v2/requests.json", data={"api_key": "not-a-key", **form}, headers=partner)
    assert refused.status == 403 and "api_key" in (await refused.json())[0]["description"]
    missing = await client.get("/open311/v2/nothing.json")
    assert missing.status == 404 and (await missing.json())[0]["code"] == 404
    followed = await client.get(f"/open311/v2/requests/{filed_code}.json", headers=partner)
    assert followed.status == 200 and (await followed.json())[0]["status"] == "open"
    # The desk's own pages keep their rules: a session, and only the desk's Host and Origin.
    assert (await client.get("/requests")).status == 401
    assert (await client.get("/requests", headers=partner)).status == 403
    csrf = await signed_in(client, database, clock, org.district)
    noted = await client.post(f"/requests/{org.jianshe_request}/note", data={"csrf": csrf, "text": "x"},
                              headers=partner)
    assert noted.status == 403


async def test_a_community_admin_sees_and_acts_only_within_the_community(
    client: TestClient[Any, Any], database: Database, clock: FrozenClock, org: Org
) -> None:
    csrf = await signed_in(client, database, clock, org.jianshe_admin)
    listed = await (await client.get("/requests")).text()
    assert code(org.jianshe_request) in listed and code(org.renmin_request) not in listed
    assert f'value="grid:{org.second_grid}"' in listed and f'value="community:{org.renmin}"' not in listed
    outside = await client.get(f"/requests/{org.renmin_request}")
    assert outside.status == 404 and "There is no request" in await outside.text()
    acted = await client.post(f"/requests/{org.renmin_request}/note", data={"csrf": csrf, "text": "mine now"})
    assert acted.status == 404
    forged_filter = await client.get("/requests", params={"unit": f"community:{org.renmin}"})
    assert forged_filter.status == 403 and "outside your area" in await forged_filter.text()
    assert (await client.get(f"/requests/{org.renmin_request}/photos/1")).status == 404
    bad_filter = await client.get("/requests", params={"status": "lost"})
    assert bad_filter.status == 400 and "not valid" in await bad_filter.text()

    def renmin_events(session: Session) -> list[EventKind]:
        query = select(RequestEvent.kind).where(RequestEvent.request_id == org.renmin_request)
        return list(session.scalars(query))

    assert await database.run(renmin_events) == [EventKind.FILED]


async def test_the_district_hands_a_request_to_another_grid_and_its_worker_gets_the_card(
    client: TestClient[Any, Any], database: Database, clock: FrozenClock, org: Org
) -> None:
    csrf = await signed_in(client, database, clock, org.district)
    listed = await (await client.get("/requests")).text()
    # The district's filter offers streets and communities; grids are too many to list in a province.
    assert f'value="community:{org.renmin}"' in listed and 'value="grid:' not in listed
    page = await (await client.get(f"/requests/{org.jianshe_request}")).text()
    assert f'value="grid:{org.second_grid}"' in page
    moved = await client.post(f"/requests/{org.jianshe_request}/reassign",
                              data={"csrf": csrf, "target": f"grid:{org.second_grid}"})
    assert moved.status == 200
    assert "handed over to 建设二网格" in await moved.text()

    def state(session: Session) -> tuple[tuple[Level, int], list[str]]:
        request = session.get(Request, org.jianshe_request)
        assert request is not None
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.person_id == org.worker2))
        return (request.level, request.unit_id), [str(row.action) for row in rows]

    holder, cards = await database.run(state)
    assert holder == (Level.GRID, org.second_grid)
    assert len(cards) == 1 and "was handed over to your unit" in cards[0]
    refused = await client.post(f"/requests/{org.jianshe_request}/escalate", data={"csrf": csrf, "text": " "})
    assert refused.status == 409 and "Please say why" in await refused.text()


async def test_the_list_pages_by_keyset_without_repeating_a_request(
    database: Database, clock: FrozenClock, org: Org
) -> None:
    def file_many(session: Session) -> None:
        ann = session.scalars(select(Person).where(Person.external_id == "1001")).one()
        building = session.scalars(select(Building)).first()
        for number in range(60):
            clock.advance(minutes=1)
            core.file_request(session, ann, core.Draft(1, f"Clutter number {number}"), clock(), building=building)

    await database.run(file_many)

    def pages(session: Session) -> list[list[int]]:
        viewer = session.get(Person, org.district)
        assert viewer is not None
        found, after = [], None
        while True:
            page = request_page(session, viewer, Filters(text="Clutter number", after=after), clock(), size=25)
            found.append([request.id for request in page.requests])
            if page.next is None:
                return found
            after = page.next

    found = await database.run(pages)
    assert [len(page) for page in found] == [25, 25, 10]
    ids = [request_id for page in found for request_id in page]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 60


async def test_only_admins_get_a_desk_link_from_the_bot(database: Database, clock: FrozenClock, org: Org) -> None:
    core_ = Core(database, build_router(), CoreConfig(bot_username="gridbot_test", desk_url=DESK_URL), clock)
    chat = CoreChat(database, core_, clock)
    ann, wang, zhao = chat.person(1001, "Ann", "en"), chat.person(9003, "Wang", "en"), chat.person(9001, "Zhao", "en")
    await chat.text(ann, "/desk")
    ann.find("The desk is for the staff of a community")
    await chat.text(wang, "/desk")
    wang.find("The desk is for the staff of a community")
    await chat.text(zhao, "/desk")
    link = zhao.find(f"{DESK_URL}/signin/").text
    assert "valid for 10 minutes" in link
    token = link.rsplit("/signin/", 1)[1].strip()

    def stored(session: Session) -> list[str]:
        return list(session.scalars(select(DeskLink.token_hash)))

    hashes = await database.run(stored)
    assert len(hashes) == 1 and token not in hashes[0]


async def next_event(stream: Any) -> str:
    """The name of the next server-sent event (heartbeats are comments and skipped)."""
    while True:
        line = (await stream.content.readline()).decode()
        if line.startswith("event: "):
            return line.removeprefix("event: ").strip()


async def test_the_live_stream_says_when_the_request_changes_and_ends_with_the_session(
    client: TestClient[Any, Any], database: Database, clock: FrozenClock, org: Org
) -> None:
    csrf = await signed_in(client, database, clock, org.district)
    assert (await client.get("/events", params={"watch": "nothing"})).status == 404
    stream = await client.get("/events", params={"watch": f"request:{org.jianshe_request}"})
    assert stream.headers["Content-Type"] == "text/event-stream"
    noted = await client.post(f"/requests/{org.jianshe_request}/note", data={"csrf": csrf, "text": "on my way"})
    assert noted.status == 200
    assert await next_event(stream) == "update"
    await client.post("/signout", data={"csrf": csrf})
    assert await next_event(stream) == "ended"
    stream.close()
    assert (await client.get("/events", params={"watch": "list"})).status == 401


async def test_a_requests_photos_are_served_only_to_who_may_open_it(
    client: TestClient[Any, Any], database: Database, clock: FrozenClock, org: Org
) -> None:
    assert (await client.get(f"/requests/{org.jianshe_request}/photos/1")).status == 401
    await signed_in(client, database, clock, org.jianshe_admin)
    page = await (await client.get(f"/requests/{org.jianshe_request}")).text()
    assert f'src="/requests/{org.jianshe_request}/photos/1"' in page
    shown = await client.get(f"/requests/{org.jianshe_request}/photos/1")
    assert shown.status == 200 and await shown.read() == b"bytes of photo-of-boxes"
    assert (await client.get(f"/requests/{org.jianshe_request}/photos/2")).status == 404
    assert (await client.get(f"/requests/{org.renmin_request}/photos/1")).status == 404


async def test_pages_of_requests_that_are_not_there_say_so(
    client: TestClient[Any, Any], database: Database, clock: FrozenClock, org: Org
) -> None:
    await signed_in(client, database, clock, org.jianshe_admin)
    for path in ("/requests/999999", "/requests/999999?done=note", f"/requests/{org.renmin_request}?done=reassign"):
        missing = await client.get(path)
        assert missing.status == 404 and "There is no request" in await missing.text()
        assert "Wires hang" not in await missing.text()
    assert (await client.get("/no-such-page")).status == 404


def test_desk_links_start_with_the_desk_url_or_else_its_listen_address() -> None:
    from pydantic import ValidationError

    from bot.cli import build_parser, desk
    from bot.config import Settings

    assert Settings(_env_file=None).desk_base_url is None  # type: ignore[call-arg]
    listening = Settings(desk_listen="127.0.0.1:9000", _env_file=None)  # type: ignore[call-arg]
    assert listening.desk_base_url == "http://127.0.0.1:9000"
    public = Settings(desk_listen="127.0.0.1:9000", desk_url="https://desk.example", _env_file=None)  # type: ignore[call-arg]
    assert public.desk_base_url == "https://desk.example"
    with pytest.raises(ValidationError):
        Settings(desk_url="desk.example", _env_file=None)  # type: ignore[call-arg]
    assert build_parser().parse_args(["desk"]).handler is desk


async def test_a_text_search_reads_the_newest_requests_and_dates_reach_further_back(
    database: Database, clock: FrozenClock, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.core import desk_requests

    monkeypatch.setattr(desk_requests, "SEARCH_WINDOW", 2)
    first_day = clock()

    def file_three(session: Session) -> None:
        ann = session.scalars(select(Person).where(Person.external_id == "1001")).one()
        building = session.scalars(select(Building)).first()
        for text in ("A broken lamp in the yard", "Leaves in the gutter", "Noise at night"):
            clock.advance(days=1)
            core.file_request(session, ann, core.Draft(1, text), clock(), building=building)

    await database.run(file_three)

    def search(session: Session, filters: Filters) -> list[str]:
        viewer = session.get(Person, org.district)
        assert viewer is not None
        return [request.description for request in request_page(session, viewer, filters, clock()).requests]

    assert await database.run(lambda session: search(session, Filters(text="Noise"))) == ["Noise at night"]
    assert await database.run(lambda session: search(session, Filters(text="lamp"))) == []
    first_days = Filters(text="lamp", since=first_day, until=first_day + timedelta(days=2))
    assert await database.run(lambda session: search(session, first_days)) == ["A broken lamp in the yard"]


async def test_gridbot_run_serves_the_desk_beside_the_bot_when_it_has_an_address(database_url: str) -> None:
    import asyncio
    import socket

    import aiohttp

    from bot.cli import with_desk
    from bot.config import Settings
    from bot.service import Service, prepare_database

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = Settings(database_url=database_url, desk_listen=f"127.0.0.1:{port}", _env_file=None)  # type: ignore[call-arg]
    service = Service.from_settings(settings)
    await prepare_database(service.database)
    answers: list[int] = []

    async def bot(stop: asyncio.Event) -> None:
        async with aiohttp.ClientSession() as http:
            for _attempt in range(100):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/requests") as response:
                        answers.append(response.status)
                    async with http.get(f"http://127.0.0.1:{port}/open311/v2/services.json") as response:
                        answers.append(response.status)
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
        stop.set()

    try:
        await asyncio.wait_for(with_desk(service, bot)(asyncio.Event()), 30)
    finally:
        await service.database.dispose()
    assert answers == [401, 200]  # the desk answered (nobody is signed in), and Open311 beside it


def outbox_texts(session: Session, person_id: int) -> list[str]:
    rows = session.scalars(select(OutboxMessage).where(OutboxMessage.person_id == person_id).order_by(OutboxMessage.id))
    return [str(row.action) for row in rows]


async def test_returning_escalating_and_resolving_on_the_desk_tell_whom_the_chat_would(
    client: TestClient[Any, Any], database: Database, clock: FrozenClock, org: Org
) -> None:
    def reported_up(session: Session) -> None:
        worker = session.get(Person, org.worker)
        assert worker is not None
        core.escalate(session, worker, org.jianshe_request, "needs the property company", clock())

    await database.run(reported_up)
    csrf = await signed_in(client, database, clock, org.jianshe_admin)
    page = await (await client.get(f"/requests/{org.jianshe_request}")).text()
    assert "Return with instruction" in page and "Resolve" in page
    returned = await client.post(f"/requests/{org.jianshe_request}/return",
                                 data={"csrf": csrf, "text": "Ask the property company today"})
    assert returned.status == 200 and "is now with 建设一网格" in await returned.text()
    worker_news = await database.run(lambda session: outbox_texts(session, org.worker))
    assert any("was returned to you: Ask the property company today" in text for text in worker_news)
    again = await (await client.get(f"/requests/{org.jianshe_request}")).text()
    assert "Your unit does not hold this request" in again

    await database.run(reported_up)
    escalated = await client.post(f"/requests/{org.jianshe_request}/escalate",
                                  data={"csrf": csrf, "text": "The street must decide"})
    assert escalated.status == 200 and "is now with the district center" in await escalated.text()
    district_news = await database.run(lambda session: outbox_texts(session, org.district))
    assert any("was reported up to you: The street must decide" in text for text in district_news)

    await client.post("/signout", data={"csrf": csrf})
    csrf = await signed_in(client, database, clock, org.district)
    resolved = await client.post(f"/requests/{org.jianshe_request}/resolve",
                                 data={"csrf": csrf, "text": "The boxes were taken away"})
    assert resolved.status == 200 and "We asked the resident" in await resolved.text()

    def resident_news(session: Session) -> list[str]:
        ann = session.scalars(select(Person).where(Person.external_id == "1001")).one()
        return outbox_texts(session, ann.id)

    assert any("was resolved by Zhao District: The boxes were taken away" in text
               for text in await database.run(resident_news))


async def test_a_street_hands_a_request_to_a_department_from_the_desk(
    client: TestClient[Any, Any], database: Database, clock: FrozenClock
) -> None:
    from tests.department_fixture import QIAN, SUN, make_departments_org

    made = await database.run(lambda session: make_departments_org(session, clock()))

    def person_id(session: Session, user_id: int) -> int:
        return session.scalars(select(Person.id).where(Person.external_id == str(user_id))).one()

    sun, squad_member = (await database.run(lambda session: person_id(session, SUN)),
                         await database.run(lambda session: person_id(session, QIAN)))
    csrf = await signed_in(client, database, clock, sun)
    page = await (await client.get(f"/requests/{made.request}")).text()
    assert f'<option value="{made.squad}">东关城管中队</option>' in page
    assert f'value="{made.market_office}"' not in page  # another street's, and nobody on duty
    dispatched = await client.post(f"/requests/{made.request}/dispatch",
                                   data={"csrf": csrf, "department": str(made.squad), "text": "Clear the alley"})
    assert dispatched.status == 200 and "is now with 东关城管中队" in await dispatched.text()
    squad_news = await database.run(lambda session: outbox_texts(session, squad_member))
    assert any("was handed to your department: Clear the alley" in text for text in squad_news)
    forged = await client.post(f"/requests/{made.request}/dispatch",
                               data={"csrf": csrf, "department": str(made.power), "text": "again"})
    assert forged.status == 409


async def test_the_map_shows_the_requests_of_the_area_by_their_location(
    client: TestClient[Any, Any], database: Database, clock: FrozenClock, org: Org
) -> None:
    await signed_in(client, database, clock, org.jianshe_admin)
    drawn = await client.get("/map")
    page = await drawn.text()
    assert drawn.status == 200 and "<svg" in page
    assert f'href="/requests/{org.jianshe_request}"' in page and f'href="/requests/{org.renmin_request}"' not in page
    assert 'class="request new"' in page and 'class="building"' in page
    assert "1 request with a location is shown" in page
    nothing = await (await client.get("/map", params={"status": "closed"})).text()
    assert f'href="/requests/{org.jianshe_request}"' not in nothing
    forged = await client.get("/map", params={"unit": f"community:{org.renmin}"})
    assert forged.status == 403


def test_the_map_projection_keeps_the_district_in_the_frame_and_north_up() -> None:
    from bot.desk.pages import MAP_WIDTH, Projection

    places = [(32.99, 112.52), (33.01, 112.56), (33.00, 112.54)]
    projection = Projection.around(places)
    (west_x, south_y), (east_x, north_y), (middle_x, middle_y) = (projection.point(*place) for place in places)
    assert 0 <= west_x < middle_x < east_x <= MAP_WIDTH and 0 <= north_y < middle_y < south_y <= projection.height
    alone = Projection.around([(33.0, 112.5)])
    assert alone.point(33.0, 112.5) == (MAP_WIDTH / 2, alone.height / 2)
