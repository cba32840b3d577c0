"""District staff changing request categories: the core's rules and audit, the category file's new columns, and
the /categories conversation in the core."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core import categories
from bot.core.categories import CategoryChangeRefused, CategoryProblem, Setting
from bot.core.organisation import FileFormatError
from storage.database import Database
from storage.models import AuditLog, Category, Person, Role
from tests.harness import CoreChat
from tests.org_fixture import NOW, make_small_org, staff


def org_with_district(session: Session) -> tuple[int, int]:
    """The small organisation, a district staff member and a community admin; their person ids."""
    make_small_org(session)
    district = staff(session, 5001, "Zhou District", Role.DISTRICT, 0, "en")
    community = staff(session, 3001, "陈社区", Role.COMMUNITY, 1)
    session.flush()
    session.expire_all()
    return district.id, community.id


def category(session: Session, code: str) -> Category:
    return session.scalars(select(Category).where(Category.code == code)).one()


def audit_entries(session: Session) -> list[tuple[str, dict[str, object]]]:
    return [(entry.action, entry.details) for entry in session.scalars(select(AuditLog).order_by(AuditLog.id))]


async def test_district_staff_change_numbers_names_order_and_activity_with_audit(database: Database) -> None:
    def work(session: Session) -> None:
        district_id, _ = org_with_district(session)
        district = session.get_one(Person, district_id)
        clutter = category(session, "clutter")
        categories.set_number(session, district, clutter.id, Setting.DUE_DAYS, 5, NOW)
        categories.set_number(session, district, clutter.id, Setting.REMIND_HOURS, 8, NOW)
        categories.set_number(session, district, clutter.id, Setting.ESCALATE_HOURS, 16, NOW)
        categories.set_name(session, district, clutter.id, "ug", "  كارىدوردىكى نەرسىلەر ", NOW)
        categories.move(session, district, clutter.id, +1, NOW)
        categories.toggle_active(session, district, clutter.id, NOW)

    await database.run(work)

    def check(session: Session) -> None:
        clutter = category(session, "clutter")
        assert (clutter.due_days, clutter.remind_after_hours, clutter.escalate_after_hours) == (5, 8, 16)
        assert clutter.names["ug"] == "كارىدوردىكى نەرسىلەر" and clutter.name("ug") == "كارىدوردىكى نەرسىلەر"
        assert clutter.names["zh_CN"] == "楼道杂物堆积"
        assert [c.code for c in categories.list_categories(session)] == ["wires", "clutter"]
        assert clutter.active is False
        assert audit_entries(session) == [
            ("category.changed", {"category": "clutter", "change": "due_days", "old": 7, "new": 5}),
            ("category.changed", {"category": "clutter", "change": "remind_after_hours", "old": 24, "new": 8}),
            ("category.changed", {"category": "clutter", "change": "escalate_after_hours", "old": 48, "new": 16}),
            ("category.changed", {"category": "clutter", "change": "name_ug", "old": None,
                                  "new": "كارىدوردىكى نەرسىلەر"}),
            ("category.changed", {"category": "clutter", "change": "order", "old": 1, "new": 2}),
            ("category.changed", {"category": "clutter", "change": "active", "old": True, "new": False}),
        ]

    await database.run(check)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda s, p, c: categories.set_number(s, p, c, Setting.DUE_DAYS, 0, NOW), CategoryProblem.OUT_OF_RANGE),
        (lambda s, p, c: categories.set_number(s, p, c, Setting.DUE_DAYS, 366, NOW), CategoryProblem.OUT_OF_RANGE),
        (lambda s, p, c: categories.set_number(s, p, c, Setting.REMIND_HOURS, 48, NOW),
         CategoryProblem.REMIND_NOT_BEFORE_ESCALATE),
        (lambda s, p, c: categories.set_number(s, p, c, Setting.ESCALATE_HOURS, 10, NOW),
         CategoryProblem.REMIND_NOT_BEFORE_ESCALATE),
        (lambda s, p, c: categories.set_name(s, p, c, "en", " ", NOW), CategoryProblem.BAD_NAME),
        (lambda s, p, c: categories.set_name(s, p, c, "en", "x" * 41, NOW), CategoryProblem.BAD_NAME),
        (lambda s, p, c: categories.set_name(s, p, c, "en", "a\x00b", NOW), CategoryProblem.BAD_NAME),
        (lambda s, p, c: categories.set_name(s, p, c, "English", "Clutter", NOW), CategoryProblem.BAD_LOCALE),
        (lambda s, p, c: categories.set_name(s, p, 999, "en", "Clutter", NOW), CategoryProblem.UNKNOWN),
        (lambda s, p, c: categories.add_category(s, p, "bad code", "噪音", NOW), CategoryProblem.BAD_CODE),
        (lambda s, p, c: categories.add_category(s, p, "wires", "噪音", NOW), CategoryProblem.CODE_TAKEN),
        (lambda s, p, c: categories.add_category(s, p, "noise", "", NOW), CategoryProblem.BAD_NAME),
    ],
    ids=["zero-days", "too-many-days", "remind-at-escalate", "escalate-before-remind", "blank-name", "long-name",
         "nul-in-name", "bad-locale", "unknown-category", "bad-code", "taken-code", "new-without-name"],
)
async def test_bad_changes_are_refused_and_change_nothing(database: Database, change: object,
                                                          problem: CategoryProblem) -> None:
    def work(session: Session) -> tuple[CategoryProblem, list[tuple[int, dict[str, object], int, int, int]]]:
        district_id, _ = org_with_district(session)
        clutter = category(session, "clutter")
        before = [(c.id, dict(c.names), c.due_days, c.remind_after_hours, c.escalate_after_hours)
                  for c in categories.list_categories(session)]
        with pytest.raises(CategoryChangeRefused) as refused:
            change(session, session.get_one(Person, district_id), clutter.id)  # type: ignore[operator]
        after = [(c.id, dict(c.names), c.due_days, c.remind_after_hours, c.escalate_after_hours)
                 for c in categories.list_categories(session)]
        assert after == before and audit_entries(session) == []
        return refused.value.problem, after

    found, _ = await database.run(work)
    assert found is problem


async def test_the_last_active_category_stays_on(database: Database) -> None:
    def work(session: Session) -> CategoryProblem:
        district_id, _ = org_with_district(session)
        district = session.get_one(Person, district_id)
        categories.toggle_active(session, district, category(session, "clutter").id, NOW)
        with pytest.raises(CategoryChangeRefused) as refused:
            categories.toggle_active(session, district, category(session, "wires").id, NOW)
        assert category(session, "wires").active
        return refused.value.problem

    assert await database.run(work) is CategoryProblem.LAST_ACTIVE


def write_csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def test_category_file_carries_hours_and_names_in_any_language(database: Database, tmp_path: Path) -> None:
    await database.run(make_small_org)

    def tune_wires(session: Session) -> None:
        category(session, "wires").remind_after_hours = 4
        category(session, "wires").escalate_after_hours = 8

    await database.run(tune_wires)
    path = write_csv(tmp_path / "categories.csv", [
        "code,name_zh_CN,name_en,due_days,active,remind_after_hours,escalate_after_hours,name_ug",
        "clutter,楼道杂物堆积,Clutter,5,yes,8,16,كارىدوردىكى نەرسىلەر",
        "wires,飞线充电,Dangling wires,3,yes,,,",
        "noise,噪音扰民,Noise,7,yes,,,",
    ])
    rows = categories.read_category_file(path)
    assert categories.validate_category_rows(rows) == []

    await database.run(partial(categories.import_categories, rows=rows))

    def check(session: Session) -> None:
        clutter, wires, noise = (category(session, code) for code in ("clutter", "wires", "noise"))
        assert (clutter.remind_after_hours, clutter.escalate_after_hours) == (8, 16)
        assert clutter.names == {"zh_CN": "楼道杂物堆积", "en": "Clutter", "ug": "كارىدوردىكى نەرسىلەر"}
        # Blank hours keep what the category had; a new category starts with 24 and 48.
        assert (wires.remind_after_hours, wires.escalate_after_hours) == (4, 8)
        assert (noise.remind_after_hours, noise.escalate_after_hours) == (24, 48)
        assert "ug" not in wires.names

    await database.run(check)


async def test_category_file_hour_problems(database: Database, tmp_path: Path) -> None:
    await database.run(make_small_org)
    path = write_csv(tmp_path / "categories.csv", [
        "code,name_zh_CN,remind_after_hours,escalate_after_hours,name_Klingon",
    ])
    with pytest.raises(FileFormatError, match="unknown column 'name_Klingon'"):
        categories.read_category_file(path)

    path = write_csv(tmp_path / "categories.csv", [
        "code,name_zh_CN,remind_after_hours,escalate_after_hours",
        "clutter,杂物,48,24",
        "wires,飞线,0,",
        "noise,噪音,,30",
    ])
    rows = categories.read_category_file(path)
    assert [str(problem) for problem in categories.validate_category_rows(rows)] == [
        "line 2: remind_after_hours (48) must be less than escalate_after_hours (24)",
        "line 3: remind_after_hours '0' must be a whole number of hours from 1 to 720",
    ]
    # Only an escalation given: a new category's reminder keeps the default 24 hours, which must still come first.
    late = write_csv(tmp_path / "late.csv", ["code,name_zh_CN,escalate_after_hours", "noise,噪音,20"])
    with pytest.raises(FileFormatError, match="line 2: remind_after_hours \\(24\\) must be less than"):
        await database.run(partial(categories.import_categories, rows=categories.read_category_file(late)))


async def test_categories_conversation_in_the_core(database: Database, chat: CoreChat) -> None:
    await database.run(org_with_district)
    zhou = chat.person(5001, "Zhou", "en")
    chen = chat.person(3001, "陈", "zh-hans")

    await chat.text(chen, "/categories")
    assert chen.last.text == "只有区级工作人员可以修改诉求类别。"

    await chat.text(zhou, "/categories")
    listing = zhou.last
    assert "1. Clutter in common areas: 7 working days, reminder after 24 h, escalation after 48 h" in listing.text
    await chat.press(zhou, listing.button("Clutter"), listing)
    await chat.press(zhou, zhou.last.button("Due days"))
    assert "Now: 7" in zhou.last.text
    await chat.text(zhou, "0")
    assert zhou.last.text == "Please send a whole number from 1 to 365."
    await chat.text(zhou, "５")  # a full-width digit from a Chinese keyboard
    assert "✔ Saved." in zhou.last.text and "Due: 5 working days" in zhou.last.text

    await chat.press(zhou, zhou.last.button("Reminder hours"))
    await chat.text(zhou, "60")
    assert "reminder 60 h, escalation 48 h" not in zhou.last.text
    assert "The reminder must come before the escalation: reminder 24 h, escalation 48 h." in zhou.last.text

    await chat.text(zhou, "/cancel")
    await chat.text(zhou, "/categories")
    await chat.press(zhou, zhou.last.button("Clutter"))
    await chat.press(zhou, zhou.last.button("Name in another language"))
    await chat.text(zhou, "ug كارىدوردىكى نەرسىلەر")
    assert "Name in ئۇيغۇرچە: كارىدوردىكى نەرسىلەر" in zhou.last.text  # Uyghur, named in Uyghur

    await chat.press(zhou, zhou.last.button("All categories"))
    await chat.press(zhou, zhou.last.button("Add a category"))
    await chat.text(zhou, "noise 噪音扰民")
    assert "✔ Added." in zhou.last.text and "Category noise" in zhou.last.text

    def check(session: Session) -> list[str]:
        assert category(session, "clutter").due_days == 5
        assert category(session, "noise").names == {"zh_CN": "噪音扰民"}
        return [action for action, _details in audit_entries(session)]

    assert await database.run(check) == ["category.changed", "category.changed", "category.created"]


async def test_forged_category_buttons(database: Database, chat: CoreChat) -> None:
    await database.run(org_with_district)
    zhou = chat.person(5001, "Zhou", "en")
    chen = chat.person(3001, "陈", "zh-hans")
    await chat.text(zhou, "/categories")

    await chat.press(chen, "ct:a:1", zhou.last)
    assert chen.answers[-1].text == "只有区级工作人员可以修改诉求类别。" and chen.answers[-1].alert
    for forged in ("ct:a:999", "ct:zz:1", "ct:s:1:x", "ct:n:1:<>", "ct"):
        await chat.press(zhou, forged, zhou.last)
        assert zhou.answers[-1].alert, forged

    def still_active(session: Session) -> bool:
        return category(session, "clutter").active and not audit_entries(session)

    assert await database.run(still_active)
