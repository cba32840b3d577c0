"""Careless input in the core: links without a building for someone not yet bound, a photo with its caption
before the words, and how few taps filing takes."""

from __future__ import annotations

from bot.core.messages import Photo
from storage.database import Database
from tests.harness import CoreChat
from tests.org_fixture import make_small_org


async def test_an_empty_building_link_asks_an_unbound_resident_to_choose(database: Database, chat: CoreChat) -> None:
    await database.run(make_small_org)
    ann = chat.person(1001, "Ann", "en")
    await chat.text(ann, "/start b_")
    texts = ann.texts()
    assert any("This link names no building" in text for text in texts)
    assert not any("“”" in text for text in texts)
    assert "Choose your street" in ann.find("Choose your street").text


async def test_a_photo_with_a_caption_at_the_description_step_gives_both(database: Database, chat: CoreChat) -> None:
    await database.run(make_small_org)
    ann = chat.person(1001, "Ann", "en")
    await chat.text(ann, "/start b_DG-JS-01-B1")
    await chat.text(ann, "/new")
    await chat.press(ann, ann.last.button("Clutter"))
    await chat.send(ann, Photo("stairs-photo", caption="Boxes on the stairs"))
    assert "Photo 1 of 3 received" in ann.last.text


async def test_filing_without_a_photo_takes_six_taps(database: Database, chat: CoreChat) -> None:
    await database.run(make_small_org)
    ann = chat.person(1001, "Ann", "en")
    await chat.text(ann, "/start b_DG-JS-01-B1")
    taps = 0

    async def tap(label: str) -> None:
        nonlocal taps
        taps += 1
        await chat.press(ann, ann.last.button(label))

    await chat.text(ann, "📝 New request")  # the menu button
    taps += 1
    await tap("Clutter")
    await chat.text(ann, "Boxes on the stairs")
    await tap("Skip")
    await tap("Use my building's location")
    await tap("No, show them")
    await tap("Confirm")
    assert "Filed as R-000001" in ann.last.text
    assert taps <= 7


async def test_photos_and_a_place_sent_outside_filing_all_go_into_the_request(
    database: Database, chat: CoreChat
) -> None:
    await database.run(make_small_org)
    ann = chat.person(1001, "Ann", "en")
    await chat.text(ann, "/start b_DG-JS-01-B1")
    await chat.send(ann, Photo("first"))
    await chat.send(ann, Photo("second"))
    await chat.location(ann, 32.9987, 112.5283)
    assert "File a request at this place?" in ann.last.text
    await chat.press(ann, ann.last.button("Yes, file a request"))
    await chat.press(ann, ann.last.button("Clutter"))
    await chat.text(ann, "Boxes on the stairs")
    assert "Photo 2 of 3 received" in ann.last.text
    await chat.press(ann, ann.last.button("Done"))
    # The place is known already: no location question.
    assert "Hide your name" in ann.last.text
