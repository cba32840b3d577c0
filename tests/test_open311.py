"""Open311 GeoReport v2 for partner apps: each resource's fields and formats (JSON, and XML parsed with
defusedxml) against the specification, keys issued, refused and revoked, a posted request routed like a chat
one (its grid worker's chat gets the card), no personal data in anything read, and bad input answered with the
specification's errors."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from xml.etree.ElementTree import Element

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from defusedxml.ElementTree import fromstring
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.cli import main
from bot.core import requests as core
from bot.core.api_keys import issue_key, key_hash, revoke_key
from bot.core.clock import FrozenClock
from bot.core.context import CoreConfig
from bot.core.requests import Draft
from bot.core.units import DISTRICT, Unit, own_names
from bot.desk.open311 import PREFIX, open311_app
from bot.logs import redact
from bot.service import prepare_database
from bot.simulator import BotApiSimulator
from storage.database import Database, DatabaseUnavailable
from storage.models import ApiKey, AuditLog, Category, Level, OutboxMessage, Person, Request, RequestStatus, Role
from tests.e2e import QUIET_MORNING, eventually, running_bot
from tests.org_fixture import NOW, staff
from tests.place_fixture import MARKET_CODE, NEAR_RENMIN, make_places_org
from tests.reliability import ROOT, free_port

Client = TestClient[Any, Any]
WANG, ZHAO = 7001, 7003
RESIDENT_NAME, RESIDENT_PHONE, RESIDENT_TG = "Zhang Mingyuan", "13800138000", "982734561"
RESIDENT_WORDS = "住在3单元502的张先生，电话13800138000，楼道堆满纸箱"
REQUEST_FIELDS = {
    "service_request_id", "status", "status_notes", "service_name", "service_code", "description",
    "agency_responsible", "service_notice", "requested_datetime", "updated_datetime", "expected_datetime",
    "address", "address_id", "zipcode", "lat", "long", "media_url",
}
SERVICE_FIELDS = {"service_code", "service_name", "description", "metadata", "type", "keywords", "group"}


@dataclass
class Setup:
    grid: int
    grid2: int
    building: int
    key: str
    worker: int
    resident: int


def org_with_partner(session: Session) -> Setup:
    places = make_places_org(session)
    org = places.org
    worker = staff(session, WANG, "Wang Worker", Role.WORKER, org.grid, "en")
    staff(session, ZHAO, "Zhao Worker", Role.WORKER, org.grid2, "en")
    resident = Person(channel="telegram", external_id=RESIDENT_TG, chat_id=RESIDENT_TG, display_name=RESIDENT_NAME,
                      phone=RESIDENT_PHONE, locale="zh_CN", building_id=org.building, state_data={}, created_at=NOW)
    session.add(resident)
    session.flush()
    issued = issue_key(session, "Street Fixer", NOW)
    return Setup(org.grid, org.grid2, org.building, issued.key, worker.id, resident.id)


@contextlib.asynccontextmanager
async def open311_client(database: Database, clock: FrozenClock, locale: str = "en",
                         daily_limit: int = 500) -> AsyncIterator[Client]:
    # Mounted the way the desk mounts it, under an application with aiohttp's own limits.
    desk = web.Application()
    config = CoreConfig(default_locale=locale, open311_daily_limit=daily_limit)
    desk.add_subapp(PREFIX, open311_app(database, clock, config))
    client = TestClient(TestServer(desk))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


def file_as_resident(setup: Setup, at: datetime, category: str = "clutter", hidden: bool = True) -> Any:
    def work(session: Session) -> int:
        resident = session.get_one(Person, setup.resident)
        category_id = session.scalars(select(Category.id).where(Category.code == category)).one()
        draft = Draft(category_id=category_id, description=RESIDENT_WORDS, hide_identity=hidden)
        return core.file_request(session, resident, draft, at).request.id

    return work


def xml(text: str) -> Element:
    assert text.startswith('<?xml version="1.0" encoding="utf-8"?>')
    root: Element = fromstring(text)
    return root


def children(element: Element) -> dict[str, str]:
    return {child.tag: child.text or "" for child in element}


async def get_json(client: Client, path: str, status: int = 200) -> Any:
    response = await client.get(PREFIX + path)
    assert response.status == status, await response.text()
    assert response.content_type == "application/json" and response.charset == "utf-8"
    return json.loads(await response.text())


async def get_xml(client: Client, path: str, status: int = 200) -> Element:
    response = await client.get(PREFIX + path)
    assert response.status == status, await response.text()
    assert response.content_type == "text/xml"
    return xml(await response.text())


async def post(client: Client, fmt: str, status: int, **form: str) -> Any:
    response = await client.post(f"{PREFIX}/requests.{fmt}", data=form)
    assert response.status == status, await response.text()
    text = await response.text()
    return json.loads(text) if fmt == "json" else xml(text)


def assert_error(body: Any, status: int, part: str) -> None:
    """The specification's error list, in JSON (a list) or XML (``<errors><error>``)."""
    if isinstance(body, list):
        assert len(body) == 1 and body[0]["code"] == status and part in body[0]["description"], body
        return
    assert body.tag == "errors"
    error = children(body.find("error"))  # type: ignore[arg-type]
    assert error["code"] == str(status) and part in error["description"], error


def requests_in(session: Session) -> list[Request]:
    return list(session.scalars(select(Request).order_by(Request.id)))


# --- services ---------------------------------------------------------------------------------------------


async def test_services_are_the_active_categories_in_json_and_xml(database: Database, clock: FrozenClock) -> None:
    await database.run(org_with_partner)
    async with open311_client(database, clock) as client:
        services = await get_json(client, "/services.json")
        assert [service["service_code"] for service in services] == ["clutter", "wires"]
        assert set(services[0]) == SERVICE_FIELDS
        assert services[0]["service_name"] == "Clutter in common areas"
        assert services[0]["metadata"] is False and services[0]["type"] == "realtime"
        in_chinese = await get_json(client, "/services.json?locale=zh_CN")
        assert in_chinese[1]["service_name"] == "飞线充电"
        root = await get_xml(client, "/services.xml")
        assert root.tag == "services" and [child.tag for child in root] == ["service", "service"]
        first = children(root[0])
        assert set(first) == SERVICE_FIELDS and first["metadata"] == "false" and first["service_code"] == "clutter"

        definition = await get_json(client, "/services/wires.json")
        assert definition == {"service_code": "wires", "attributes": []}
        defined = await get_xml(client, "/services/wires.xml")
        assert defined.tag == "service_definition" and [child.tag for child in defined] == [
            "service_code", "attributes"]

        await database.run(lambda s: setattr(s.scalars(select(Category).where(Category.code == "wires")).one(),
                                             "active", False))
        assert [service["service_code"] for service in await get_json(client, "/services.json")] == ["clutter"]
        assert_error(await get_json(client, "/services/wires.json", 404), 404, "no service wires")
        assert_error(await get_xml(client, "/services/wires.xml", 404), 404, "no service wires")
        assert_error(await get_json(client, "/nothing-here.json", 404), 404, "no such resource")
        unknown_format = await client.get(f"{PREFIX}/services.csv")
        assert unknown_format.status == 404
        assert_error(json.loads(await unknown_format.text()), 404, "no such resource")


async def test_discovery_names_the_endpoint_and_both_formats(database: Database, clock: FrozenClock) -> None:
    async with open311_client(database, clock) as client:
        discovery = await get_json(client, "/discovery.json")
        endpoint = discovery["endpoints"][0]
        assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
        assert endpoint["url"].endswith(f"{PREFIX}/") and endpoint["formats"] == ["application/json", "text/xml"]
        root = await get_xml(client, "/discovery.xml")
        formats = root.find("endpoints/endpoint/formats")
        assert formats is not None and [f.text for f in formats] == ["application/json", "text/xml"]


# --- filing -----------------------------------------------------------------------------------------------


async def test_a_posted_request_is_routed_by_its_location_like_a_chat_one(database: Database,
                                                                          clock: FrozenClock) -> None:
    setup = await database.run(org_with_partner)
    async with open311_client(database, clock) as client:
        body = await post(client, "json", 200, api_key=setup.key, service_code="wires", lat=str(NEAR_RENMIN[0]),
                          long=str(NEAR_RENMIN[1]), description="Charging cable hangs from the 3rd floor",
                          first_name="Li", email="li@example.org")
        assert set(body[0]) == {"service_request_id", "service_notice"}
        code = body[0]["service_request_id"]
        assert code == "R-000001" and "人民一网格" in body[0]["service_notice"]
        by_building = await post(client, "xml", 200, api_key=setup.key, service_code="clutter",
                                 address_id="DG-JS-01-B1", description="Boxes piled in the stairwell")
        assert by_building.tag == "service_requests"
        assert children(by_building[0])["service_request_id"] == "R-000002"
        at_market = await post(client, "json", 200, api_key=setup.key, service_code="clutter",
                               address_id=MARKET_CODE, description="Stalls block the east gate")
        assert at_market[0]["service_request_id"] == "R-000003"

    def check(session: Session) -> None:
        near, building, market = requests_in(session)
        partner = session.scalars(select(Person).where(Person.channel == "open311")).one()
        assert partner.display_name == "Street Fixer" and partner.awaiting_first_message and partner.unreachable
        assert (near.grid_id, near.unit_id, near.resident_id) == (setup.grid2, setup.grid2, partner.id)
        assert near.building is not None and near.building.code == "XH-RM-01-B1"
        assert (near.latitude, near.longitude) == NEAR_RENMIN
        assert (building.grid_id, building.building_id) == (setup.grid, setup.building)
        assert market.place is not None and market.place.code == MARKET_CODE
        # Each holder's card waits in the outbox for the running bot's loop, as a job's notices do.
        cards = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        assert [(row.request_id, session.get_one(Person, row.person_id).external_id) for row in cards] == [
            (near.id, str(ZHAO)), (building.id, str(WANG)), (market.id, str(WANG))]
        assert all(row.claimed_until is None and "New request" in row.action["text"] for row in cards)
        assert "Li" not in near.description and all("li@example.org" not in str(row.action) for row in cards)

    await database.run(check)


async def test_a_key_files_at_most_its_daily_limit_in_24_hours(database: Database, clock: FrozenClock) -> None:
    setup = await database.run(org_with_partner)
    form = {"api_key": setup.key, "service_code": "clutter", "address_id": "DG-JS-01-B1",
            "description": "Boxes piled in the stairwell"}
    async with open311_client(database, clock, daily_limit=2) as client:
        await post(client, "json", 200, **form)
        clock.advance(hours=1)
        await post(client, "json", 200, **form)
        assert_error(await post(client, "json", 429, **form), 429, "2 requests in the last 24 hours")
        assert_error(await post(client, "xml", 429, **form), 429, "as many as it may")
        clock.advance(hours=23, seconds=1)  # the first has left the 24 hours, the second has not
        await post(client, "json", 200, **form)
        assert_error(await post(client, "json", 429, **form), 429, "2 requests")
    assert len(await database.run(requests_in)) == 3


async def test_the_grid_workers_chat_gets_the_card_of_a_posted_request(
    sim: tuple[BotApiSimulator, str], database_url: str
) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url) as bot:
        setup = await bot.service.database.run(org_with_partner)
        wang = simulator.user(WANG, "Wang", language_code="en")
        await wang.send_text("/start")
        await wang.wait_for(lambda m: m.text is not None)
        mark = simulator.seq
        clock = FrozenClock(QUIET_MORNING)
        async with open311_client(bot.service.database, clock) as client:
            body = await post(client, "json", 200, api_key=setup.key, service_code="clutter",
                              address_id="DG-JS-01-B1", description="Boxes piled in the stairwell")
        code = body[0]["service_request_id"]
        card = await wang.wait_for(lambda m: m.seq > mark and code in (m.text or ""), timeout=10)
        assert "New request" in (card.text or "") and "Boxes piled in the stairwell" in (card.text or "")
        assert any(data and data.startswith("rq:") for _text, data in card.buttons())

        async def delivered() -> bool:
            def sent(session: Session) -> bool:
                rows = session.scalars(select(OutboxMessage)).all()
                wang_id = session.scalars(select(Person.id).where(Person.external_id == str(WANG))).one()
                return bool(rows) and all(row.status.value == "sent" for row in rows if row.person_id == wang_id)

            return await bot.service.database.run(sent)

        assert await eventually(delivered)


async def test_an_unknown_or_revoked_api_key_is_refused(database: Database, clock: FrozenClock) -> None:
    setup = await database.run(org_with_partner)
    form = {"service_code": "clutter", "address_id": "DG-JS-01-B1", "description": "Boxes"}
    async with open311_client(database, clock) as client:
        assert_error(await post(client, "json", 403, **form), 403, "api_key")
        assert_error(await post(client, "xml", 403, api_key="not-a-key", **form), 403, "api_key")
        await database.run(lambda s: revoke_key(s, "Street Fixer", NOW))
        assert_error(await post(client, "json", 403, api_key=setup.key, **form), 403, "revoked")
    assert await database.run(requests_in) == []


async def test_bad_input_gets_the_specifications_error(database: Database, clock: FrozenClock) -> None:
    setup = await database.run(org_with_partner)
    key = setup.key
    where = {"address_id": "DG-JS-01-B1"}
    async with open311_client(database, clock) as client:
        cases: list[tuple[dict[str, str], str]] = [
            ({"service_code": "potholes", **where, "description": "x"}, "potholes is not one of our services"),
            ({"service_code": "clutter", "description": "Boxes"}, "lat and long, or address_id"),
            ({"service_code": "clutter", "address_id": "NOWHERE", "description": "x"}, "NOWHERE is none of our"),
            ({"service_code": "clutter", "lat": "10", "long": "10", "description": "x"}, "none of our grids"),
            ({"service_code": "clutter", "lat": "north", "long": "112.5", "description": "x"}, "lat must be"),
            ({"service_code": "clutter", "lat": "91", "long": "112.5", "description": "x"}, "lat must be"),
            ({"service_code": "clutter", **where, "description": "x" * (core.MAX_DESCRIPTION + 1)},
             f"at most {core.MAX_DESCRIPTION}"),
            ({"service_code": "clutter", **where, "description": "   "}, "describe the problem"),
        ]
        for form, part in cases:
            assert_error(await post(client, "json", 400, api_key=key, **form), 400, part)
        assert_error(await post(client, "xml", 400, api_key=key, service_code="potholes", **where,
                                description="x"), 400, "potholes")
        chinese = await client.post(f"{PREFIX}/requests.json?locale=zh_CN",
                                    data={"api_key": key, "service_code": "clutter", **where, "description": ""})
        assert chinese.status == 400 and "请" in (await chinese.json())[0]["description"]
        assert (await client.put(f"{PREFIX}/requests.json")).status == 405
        too_large = await client.post(f"{PREFIX}/requests.xml", data={"api_key": key, "description": "x" * 70_000})
        assert too_large.status == 413
        assert_error(xml(await too_large.text()), 413, "too large")
    assert await database.run(requests_in) == []


# --- reading ----------------------------------------------------------------------------------------------


async def test_requests_answer_every_field_in_json_and_xml(database: Database, clock: FrozenClock) -> None:
    setup = await database.run(org_with_partner)
    filed = clock.now - timedelta(days=2)
    request_id = await database.run(file_as_resident(setup, filed))
    await database.run(lambda s: core.accept(s, s.get_one(Person, setup.worker), request_id, clock.now))
    async with open311_client(database, clock) as client:
        [row] = await get_json(client, "/requests.json")
        assert set(row) == REQUEST_FIELDS
        assert row["service_request_id"] == "R-000001" and row["status"] == "open"
        assert row["status_notes"] == "being handled" and row["service_code"] == "clutter"
        assert row["agency_responsible"] == "建设一网格" and row["address"] == "建设路12号"
        assert row["address_id"] == "DG-JS-01-B1" and (row["lat"], row["long"]) == (32.9987, 112.5283)
        assert row["requested_datetime"] == "2026-11-23T10:00:00+08:00"
        assert row["updated_datetime"] == "2026-11-25T10:00:00+08:00"
        assert datetime.fromisoformat(row["expected_datetime"]).utcoffset() == timedelta(hours=8)
        root = await get_xml(client, "/requests.xml")
        assert root.tag == "service_requests" and [child.tag for child in root] == ["request"]
        fields = children(root[0])
        assert set(fields) == REQUEST_FIELDS and fields["status"] == "open" and fields["lat"] == "32.9987"
        assert await get_json(client, "/requests/R-000001.json") == [row]
        single = await get_xml(client, "/requests/1.xml")
        assert children(single[0])["service_request_id"] == "R-000001"
        assert_error(await get_json(client, "/requests/R-000099.json", 404), 404, "no such request")
        assert_error(await get_xml(client, "/requests/nonsense.xml", 404), 404, "no such request")


async def test_requests_are_filtered_as_the_specification_says(database: Database, clock: FrozenClock) -> None:
    setup = await database.run(org_with_partner)
    now = clock.now
    old = await database.run(file_as_resident(setup, now - timedelta(days=120)))
    wires = await database.run(file_as_resident(setup, now - timedelta(days=10), "wires"))
    clutter = await database.run(file_as_resident(setup, now - timedelta(days=1)))
    await database.run(lambda s: core.withdraw(s, s.get_one(Person, setup.resident), wires, now))

    async def codes(query: str) -> list[str]:
        return [row["service_request_id"] for row in await get_json(client, f"/requests.json?{query}")]

    async with open311_client(database, clock) as client:
        assert await codes("") == [f"R-{clutter:06d}", f"R-{wires:06d}"]  # the latest 90 days, newest first
        assert await codes("status=closed") == [f"R-{wires:06d}"]
        assert await codes("status=open,closed") == [f"R-{clutter:06d}", f"R-{wires:06d}"]
        assert await codes("service_code=wires") == [f"R-{wires:06d}"]
        assert await codes("start_date=2026-07-01T00:00:00%2B08:00&end_date=2026-08-01T00:00:00Z") == [
            f"R-{old:06d}"]
        assert await codes("start_date=2026-11-20T00:00:00Z") == [f"R-{clutter:06d}"]
        assert await codes("end_date=2026-11-20T00:00:00Z") == [f"R-{wires:06d}"]
        # A list of ids overrides every other filter.
        assert await codes(f"service_request_id=R-{old:06d},{wires}&status=open") == [
            f"R-{wires:06d}", f"R-{old:06d}"]
        for query, part in [
            ("start_date=2026-01-01T00:00:00Z&end_date=2026-11-01T00:00:00Z", "at most 90 days"),
            ("start_date=2026-11-20T00:00:00Z&end_date=2026-11-01T00:00:00Z", "before start_date"),
            ("start_date=yesterday", "ISO 8601"),
            ("start_date=2026-11-20T00:00:00", "with its offset"),
            ("status=pending", "open or closed"),
            ("service_request_id=abc", "not a request code"),
        ]:
            assert_error(await get_json(client, f"/requests.json?{query}", 400), 400, part)
        assert_error(await get_xml(client, "/requests.xml?status=pending", 400), 400, "open or closed")


async def test_nothing_read_names_or_identifies_a_resident(database: Database, clock: FrozenClock) -> None:
    setup = await database.run(org_with_partner)
    await database.run(file_as_resident(setup, clock.now - timedelta(hours=3)))
    await database.run(file_as_resident(setup, clock.now - timedelta(hours=2), hidden=False))
    async with open311_client(database, clock) as client:
        posted = await post(client, "json", 200, api_key=setup.key, service_code="clutter",
                            address_id="DG-JS-01-B1", description="Partner words: boxes on the stairs")
        bodies = []
        for path in ("/requests.json", "/requests.xml", "/requests/R-000001.json", "/requests/R-000002.xml",
                     f"/requests.json?api_key={setup.key}"):
            response = await client.get(PREFIX + path)
            assert response.status == 200
            bodies.append(await response.text())
    for body in bodies:
        for secret in (RESIDENT_NAME, RESIDENT_PHONE, RESIDENT_TG, "13800138000", "502", str(WANG), "Wang Worker",
                       "telegram"):
            assert secret not in body
    public, _xml, _one, _two, with_key = bodies
    # The partner's own words are shown to it, never to anyone else.
    assert "Partner words" not in public and "Partner words" in with_key
    rows = {row["service_request_id"]: row for row in json.loads(with_key)}
    assert rows[posted[0]["service_request_id"]]["description"] == "Partner words: boxes on the stairs"
    assert rows["R-000001"]["description"] == ""
    async with open311_client(database, clock) as client:
        assert_error(await get_json(client, "/requests.json?api_key=wrong", 403), 403, "api_key")
        assert_error(await get_xml(client, "/requests/R-000001.xml?api_key=wrong", 403), 403, "api_key")


# --- keys -------------------------------------------------------------------------------------------------


async def test_keys_are_issued_listed_and_revoked_from_the_command_line_and_only_hashes_are_kept(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/keys.db"
    database = Database(url)
    await prepare_database(database)
    await database.dispose()

    def run(*argv: str) -> int:
        return main(["apikey", *argv, "--database-url", url])

    assert await _in_thread(run, "add", "--name", "FixMyStreet") == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert len(key) >= 40
    assert await _in_thread(run, "add", "--name", "FixMyStreet") == 1
    assert "already has a key" in capsys.readouterr().err
    assert await _in_thread(run, "list") == 0
    listed = capsys.readouterr().out
    assert "FixMyStreet" in listed and "active" in listed and key not in listed
    assert await _in_thread(run, "revoke", "--name", "FixMyStreet") == 0
    assert await _in_thread(run, "revoke", "--name", "FixMyStreet") == 1
    assert await _in_thread(run, "list") == 0
    assert "revoked" in capsys.readouterr().out

    database = Database(url)
    try:
        def stored(session: Session) -> tuple[list[str], list[str]]:
            hashes = list(session.scalars(select(ApiKey.key_hash)))
            return hashes, [entry.action for entry in session.scalars(select(AuditLog).order_by(AuditLog.id))]

        hashes, actions = await database.run(stored)
    finally:
        await database.dispose()
    assert hashes == [key_hash(key)] and key not in hashes
    assert actions == ["api_key.issued", "api_key.revoked"]


async def _in_thread(run: Any, *argv: str) -> int:
    # ``main`` runs its own event loop, so it runs beside this test's.
    code: int = await asyncio.to_thread(run, *argv)
    return code


def test_a_key_in_a_logged_url_is_redacted() -> None:
    assert "s3cr3t" not in redact("GET /open311/v2/requests.json?api_key=s3cr3t&status=open")


async def test_a_partner_files_as_one_person_across_its_keys(database: Database) -> None:
    def reissue(session: Session) -> int:
        first = issue_key(session, "Street Fixer", NOW)
        revoke_key(session, "Street Fixer", NOW)
        second = issue_key(session, "Street Fixer", NOW)
        assert first.key != second.key
        return len(session.scalars(select(Person).where(Person.channel == "open311")).all())

    assert await database.run(reissue) == 1


def test_statuses_the_public_sees() -> None:
    from bot.core.open311 import STATUSES_OF, PublicStatus

    assert set(STATUSES_OF[PublicStatus.OPEN]) | set(STATUSES_OF[PublicStatus.CLOSED]) == set(RequestStatus)


async def test_gridbot_open311_serves_it_alone_and_logs_no_key(database_url: str) -> None:
    database = Database(database_url)
    try:
        await prepare_database(database)
        setup = await database.run(org_with_partner)
    finally:
        await database.dispose()
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("GRIDBOT_")}
    env["PYTHONPATH"] = str(ROOT)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "open311", "--listen", f"127.0.0.1:{port}", "--database-url", database_url,
        cwd=ROOT / "tests", env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}{PREFIX}"
    try:
        async with aiohttp.ClientSession() as http:
            async def serving() -> bool:
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{base}/services.json") as response:
                        return response.status == 200
                return False

            assert await eventually(serving, timeout=60)
            async with http.get(f"{base}/requests.json?api_key={setup.key}") as response:
                assert response.status == 200
            form = {"api_key": setup.key, "service_code": "clutter", "address_id": "DG-JS-01-B1",
                    "description": "Boxes piled in the stairwell"}
            async with http.post(f"{base}/requests.xml", data=form) as response:
                assert response.status == 200 and "R-000001" in await response.text()
    finally:
        process.send_signal(signal.SIGTERM)
        _out, err = await asyncio.wait_for(process.communicate(), 30)
    log = err.decode()
    assert process.returncode == 0, log
    assert "/open311/v2/requests.json" in log and setup.key not in log


async def test_the_holders_of_a_page_are_named_together(database: Database) -> None:
    def names(session: Session) -> dict[Unit, str]:
        org = make_places_org(session).org
        return own_names(session, [Unit(Level.GRID, org.grid), Unit(Level.COMMUNITY, org.community2), DISTRICT])

    assert sorted((await database.run(names)).values()) == ["", "人民社区", "建设一网格"]


async def test_a_database_that_does_not_answer_gets_a_503_in_the_specifications_shape(
    database: Database, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unavailable(*_args: object) -> object:
        raise DatabaseUnavailable("down")

    monkeypatch.setattr(database, "run", unavailable)
    async with open311_client(database, clock) as client:
        assert_error(await get_json(client, "/services.json", 503), 503, "try again")
        assert_error(await get_xml(client, "/requests.xml", 503), 503, "try again")
