"""What staff and residents hear back, through the core: the worker learns of a "partly fixed" verdict, and
the resident's list marks an overdue request as overdue."""

from __future__ import annotations

from bot.core.clock import FrozenClock
from storage.database import Database
from tests.harness import CoreChat
from tests.test_lifecycle_core import bind, data_of, file_request, make_org_with_staff, staff_writes


async def test_the_worker_hears_a_partly_fixed_verdict(database: Database, chat: CoreChat) -> None:
    await make_org_with_staff(database)
    ann, wang = chat.person(1002, "Ann", "en"), chat.person(2001, "Wang Worker", "en")
    await bind(chat, ann)
    await file_request(chat, ann)
    await chat.press(wang, data_of(wang.last, "rq:acc:"))
    await staff_writes(chat, wang, "rq:res:", "Moved half of the boxes")
    await chat.press(ann, data_of(ann.last, "my:ok:1:partly"))
    assert "R-000001" in wang.last.text and "Partly fixed" in wang.last.text


async def test_my_list_marks_an_overdue_request(database: Database, chat: CoreChat, clock: FrozenClock) -> None:
    await make_org_with_staff(database)
    ann = chat.person(1002, "Ann", "en")
    await bind(chat, ann)
    await file_request(chat, ann)
    await chat.text(ann, "/my")
    assert "overdue" not in ann.last.text
    clock.advance(days=30)
    await chat.text(ann, "/my")
    line = next(line for line in ann.last.text.splitlines() if "R-000001" in line)
    assert line.startswith("⚠️") and "overdue" in line
