"""Chinese and English wording that a rule can check: the zh_CN catalog's typography, one date format,
greetings and role sentences."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from babel.messages.pofile import read_po

from bot.i18n import LOCALES_DIR, Translator
from handlers import staff_admin
from storage.database import Database
from storage.models import Role
from tests.harness import CoreChat
from tests.org_fixture import make_small_org, staff

CJK = "\u3400-\u4dbf\u4e00-\u9fff\u3000-\u303f\uff00-\uffef"
# A clause ends at Chinese punctuation or a line break; three 的 in one clause read as a chain.
CLAUSE_BREAK = re.compile("[，。！？；：、\n]")
TYPOGRAPHY_RULES = {
    "an ASCII colon after Chinese (use ：)": re.compile(f"[{CJK}]:(?!//)"),
    "a space between Chinese and a number or placeholder": re.compile(f"[{CJK}] +[{{0-9]|[}}0-9] +[{CJK}]"),
}


def zh_messages() -> list[tuple[str, str]]:
    with (LOCALES_DIR / "zh_CN" / "LC_MESSAGES" / "messages.po").open("rb") as po_file:
        catalog = read_po(po_file, locale="zh_CN")
    pairs = []
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        pairs += [(str(ids[0]), str(text)) for text in strings if text]
    return pairs


def typography_problems(text: str) -> list[str]:
    problems = [rule for rule, pattern in TYPOGRAPHY_RULES.items() if pattern.search(text)]
    if any(clause.count("的") >= 3 for clause in CLAUSE_BREAK.split(text)):
        problems.append("three 的 in one clause")
    return problems


def test_the_rules_catch_what_they_are_for() -> None:
    assert typography_problems("已由 {worker} 受理") == ["a space between Chinese and a number or placeholder"]
    assert typography_problems("最多 3 张") == ["a space between Chinese and a number or placeholder"]
    assert typography_problems("{code} 已办结") == ["a space between Chinese and a number or placeholder"]
    assert typography_problems("时间: 明天") == ["an ASCII colon after Chinese (use ：)"]
    assert typography_problems("发给建设社区的居民的第1号通知的回执") == ["three 的 in one clause"]
    assert typography_problems("链接：https://t.me/x，共3人") == []


def test_zh_catalog_keeps_chinese_typography() -> None:
    problems = [f"{msgid!r} → {text!r}: {problem}" for msgid, text in zh_messages()
                for problem in typography_problems(text)]
    assert problems == []


@pytest.mark.parametrize(
    ("locale", "expected"), [("en", "Dec 1, 2026, 5:26\u202fPM"), ("zh_CN", "2026年12月1日 17:26")]
)
def test_date_and_time_use_the_medium_date_everywhere(locale: str, expected: str) -> None:
    t = Translator(locale)
    moment = datetime(2026, 12, 1, 9, 26, tzinfo=UTC)
    assert t.datetime(moment) == expected
    assert t.datetime(moment).startswith(t.date(moment))


async def test_staff_are_greeted_without_welcome_back_the_first_time(database: Database, chat: CoreChat) -> None:
    org = await database.run(make_small_org)
    await database.run(lambda session: staff(session, 2001, "王网格员", Role.WORKER, org.grid))
    wang = chat.person(2001, "王网格员")
    await chat.text(wang, "/start")
    assert "欢迎回来" not in wang.last.text and "建设一网格" in wang.last.text


async def test_invite_offers_units_of_the_area_page_by_page(
    database: Database, chat: CoreChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(staff_admin, "UNITS_PER_PAGE", 1)
    org = await database.run(make_small_org)
    await database.run(lambda session: staff(session, 500, "Admin", Role.STREET, org.street, "en"))
    admin = chat.person(500, "Admin", "en")
    await chat.text(admin, "/invite")
    assert [label for label, _data in admin.last.buttons()] == ["Grid worker", "Community staff", "Street staff"]
    await chat.press(admin, admin.last.button("Grid worker"))
    assert [label for label, _data in admin.last.buttons()] == ["建设一网格", "Next ▶"]
    await chat.press(admin, admin.last.button("Next"))
    assert [label for label, _data in admin.last.buttons()] == ["建设二网格", "◀ Previous"]
    # A grid of another street is refused whatever the button says.
    await chat.press(admin, f"iv:m:worker:{org.grid2}")
    assert "within your own area" in admin.answers[-1].text
    await chat.press(admin, admin.last.button("建设二网格"))
    assert "Invitation for a new grid worker of 建设二网格" in admin.find("Invitation").text
    await chat.text(admin, "/invite 社区 DG-JS")
    assert "staff of 建设社区" in admin.find("Invitation").text


async def test_english_role_sentences_read_naturally(database: Database, chat: CoreChat) -> None:
    org = await database.run(make_small_org)
    await database.run(lambda session: staff(session, 500, "Admin", Role.COMMUNITY, org.community, "en"))
    admin = chat.person(500, "Admin", "en")
    await chat.text(admin, "/invite worker DG-JS-01")
    command = re.search(r"/start inv_\S+", admin.find("/start inv_").text)
    assert command is not None
    newcomer = chat.person(600, "Zhao", "en")
    await chat.text(newcomer, command.group(0))
    assert "You are now grid worker" not in newcomer.last.text
    assert "grid worker of 建设一网格" in newcomer.last.text


def test_accepting_is_confirmed_in_words_true_at_every_level() -> None:
    # The district center has nobody above it: the confirmation must not tell it to escalate.
    for locale in ("en", "zh_CN"):
        text = Translator(locale)._("You accepted {code}. Resolve it, or escalate it if needed.")
        assert "escalate" not in text and "上报" not in text
