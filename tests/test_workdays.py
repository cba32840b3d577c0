"""Working days and office hours over the 2026-2027 festivals, 调休 Saturdays and a year the library lacks."""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from bot.cli import main
from bot.core import workdays
from bot.core.organisation import FileFormatError
from bot.core.workdays import (
    DEFAULT_OFFICE_HOURS,
    SESSION_KEY,
    WorkCalendar,
    WorkingTime,
    calendar_of,
    read_calendar_file,
)
from storage.database import Database

SHANGHAI = ZoneInfo("Asia/Shanghai")
OFFICE = WorkingTime.parse(DEFAULT_OFFICE_HOURS, "Asia/Shanghai")

# 2027's schedule as a district would import it before the library has it (the days are made up for the test).
DISTRICT_2027 = """date,working,note
2027-02-05,no,春节
2027-02-08,no,春节
2027-02-09,no,春节
2027-02-10,no,春节
2027-02-11,no,春节
2027-02-12,no,春节
2027-02-20,yes,调休上班
2027-10-01,no,国庆节
2027-10-04,no,国庆节
2027-10-05,no,国庆节
2027-10-06,no,国庆节
2027-10-07,no,国庆节
2027-09-26,yes,调休上班
2026-11-20,no,区运动会
"""


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


@pytest.fixture
def district_file(tmp_path: Path) -> Path:
    path = tmp_path / "calendar.csv"
    path.write_text(DISTRICT_2027, encoding="utf-8")
    return path


@pytest.fixture
def with_file(district_file: Path) -> WorkCalendar:
    return WorkCalendar(OFFICE, {row.day: row.working for row in read_calendar_file(district_file)})


@pytest.mark.parametrize(("day", "working", "why"), [
    (date(2026, 1, 1), False, "New Year's Day"),
    (date(2026, 1, 2), False, "New Year bridge day"),
    (date(2026, 1, 4), True, "调休 Sunday before the New Year break ends"),
    (date(2026, 2, 13), True, "the Friday before the Spring Festival"),
    (date(2026, 2, 14), True, "调休 Saturday"),
    (date(2026, 2, 15), False, "除夕, a Sunday"),
    (date(2026, 2, 16), False, "Spring Festival"),
    (date(2026, 2, 20), False, "Spring Festival, a Friday"),
    (date(2026, 2, 23), False, "Spring Festival bridge Monday"),
    (date(2026, 2, 24), True, "back to work"),
    (date(2026, 2, 28), True, "调休 Saturday after the festival"),
    (date(2026, 4, 6), False, "Qingming"),
    (date(2026, 5, 1), False, "Labour Day"),
    (date(2026, 5, 5), False, "Labour Day bridge"),
    (date(2026, 5, 9), True, "调休 Saturday"),
    (date(2026, 6, 19), False, "Dragon Boat Festival"),
    (date(2026, 9, 20), True, "调休 Sunday"),
    (date(2026, 9, 25), False, "Mid-Autumn Festival"),
    (date(2026, 10, 7), False, "National Day week"),
    (date(2026, 10, 10), True, "调休 Saturday"),
    (date(2026, 10, 11), False, "an ordinary Sunday"),
    (date(2026, 11, 20), False, "the district's own day off over a library working day"),
    (date(2026, 11, 23), True, "an ordinary Monday"),
    (date(2027, 2, 5), False, "Spring Festival 2027 from the district's file"),
    (date(2027, 2, 12), False, "Spring Festival 2027 from the district's file"),
    (date(2027, 2, 15), True, "back to work in 2027"),
    (date(2027, 2, 20), True, "2027 调休 Saturday from the district's file"),
    (date(2027, 2, 21), False, "an ordinary 2027 Sunday"),
    (date(2027, 9, 26), True, "2027 调休 Sunday from the district's file"),
    (date(2027, 10, 5), False, "National Day 2027 from the district's file"),
    (date(2027, 10, 8), True, "an ordinary 2027 Friday"),
])
def test_working_days_of_2026_and_2027(with_file: WorkCalendar, day: date, working: bool, why: str) -> None:
    assert with_file.is_working_day(day) is working, why


@pytest.mark.parametrize(("filed", "days", "due"), [
    # Friday before the festival: the 调休 Saturday counts, the festival does not.
    (local(2026, 2, 13, 10), 1, local(2026, 2, 14, 17, 30)),
    (local(2026, 2, 13, 10), 2, local(2026, 2, 24, 17, 30)),
    # Seven: the 调休 Saturday after the festival (28 February) counts too.
    (local(2026, 2, 13, 10), 7, local(2026, 3, 2, 17, 30)),
    # Filed during the festival: the first working day after it is day one.
    (local(2026, 2, 18, 9), 1, local(2026, 2, 24, 17, 30)),
    # National Day week 2026 and its 调休 Saturday.
    (local(2026, 9, 30, 16), 3, local(2026, 10, 10, 17, 30)),
    # An ordinary week: five working days from Tuesday is the next Tuesday.
    (local(2026, 12, 1, 11), 5, local(2026, 12, 8, 17, 30)),
    # 2027 from the district's file.
    (local(2027, 2, 4, 15), 2, local(2027, 2, 16, 17, 30)),
])
def test_due_dates_count_working_days(with_file: WorkCalendar, filed: datetime, days: int, due: datetime) -> None:
    assert with_file.due(filed, days) == due


@pytest.mark.parametrize(("start", "hours", "end"), [
    (local(2026, 11, 23, 9), 2, local(2026, 11, 23, 11)),
    # Over lunch: 11:00 + 2 h of office time is 15:30.
    (local(2026, 11, 23, 11), 2, local(2026, 11, 23, 15, 30)),
    # Filed at night: the clock starts at 08:30.
    (local(2026, 11, 23, 22), 1, local(2026, 11, 24, 9, 30)),
    # Friday 16:00 + 2 h: 1.5 h on Friday, then Monday morning.
    (local(2026, 11, 27, 16), 2, local(2026, 11, 30, 9)),
    # 24 office hours from the Friday before the festival: the 调休 Saturday, then after the festival.
    (local(2026, 2, 13, 16), 24, local(2026, 2, 26, 11, 30)),
    # Exactly one office day (6.5 h) from opening ends at closing.
    (local(2026, 11, 23, 8, 30), 6.5, local(2026, 11, 23, 17, 30)),
])
def test_reminder_hours_count_office_hours(with_file: WorkCalendar, start: datetime, hours: float,
                                           end: datetime) -> None:
    assert with_file.after_hours(start, hours) == end


def test_round_the_clock_counts_calendar_time() -> None:
    calendar = WorkCalendar(WorkingTime.parse("always", "Asia/Shanghai"))
    filed = local(2026, 2, 13, 16)
    assert calendar.due(filed, 7) == local(2026, 2, 20, 16)
    assert calendar.after_hours(filed, 48) == local(2026, 2, 15, 16)
    assert calendar.is_working_day(date(2026, 2, 17))


def test_a_year_the_library_lacks_warns_and_counts_weekends(caplog: pytest.LogCaptureFixture,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workdays, "_warned_years", set())  # warned once a process; this test must see it
    assert workdays.official_year(2026) is not None
    assert workdays.official_year(2031) is None
    calendar = WorkCalendar(OFFICE)
    with caplog.at_level(logging.WARNING, logger="bot.core.workdays"):
        # 2031's Spring Festival falls on Thursday 23 January; without a file it counts as a working day.
        assert calendar.is_working_day(date(2031, 1, 23))
        assert not calendar.is_working_day(date(2031, 1, 25))
        assert calendar.due(local(2031, 1, 24, 10), 1) == local(2031, 1, 27, 17, 30)
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any("2031" in message and "gridbot calendar import" in message for message in warnings)


def test_a_year_in_the_district_file_gives_no_warning(with_file: WorkCalendar,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.core.workdays"):
        assert not with_file.is_working_day(date(2027, 2, 8))
    assert not [record for record in caplog.records if "2027" in record.getMessage()]


@pytest.mark.parametrize("hours", ["8:30-12:00,11:00-17:30", "12:00-08:30", "morning", ""])
def test_bad_office_hours_are_refused(hours: str) -> None:
    with pytest.raises(ValueError, match="office hours"):
        WorkingTime.parse(hours, "Asia/Shanghai")


def test_a_bad_calendar_file_names_every_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("date,working\n2027-02-30,no\n2027-02-06,maybe\n2027-02-07,no\n2027-02-07,yes\n",
                    encoding="utf-8")
    with pytest.raises(FileFormatError) as error:
        read_calendar_file(path)
    assert str(error.value).splitlines() == [
        "line 2: date '2027-02-30' must be written YYYY-MM-DD",
        "line 3: working 'maybe' must be yes (a working day) or no",
        "line 5: 2027-02-07 is already listed on line 4",
    ]


def test_import_replaces_the_years_of_the_file_and_the_core_reads_it(
    database_url: str, district_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["calendar", "import", str(district_file), "--database-url", database_url]) == 0
    assert "14 days of 2026, 2027" in capsys.readouterr().out
    corrected = tmp_path / "corrected.csv"
    corrected.write_text("date,working,note\n2027-02-19,no,补休\n", encoding="utf-8")
    assert main(["calendar", "import", str(corrected), "--database-url", database_url]) == 0

    def read(session: Session) -> tuple[bool, bool, bool]:
        calendar = calendar_of(session)
        return (calendar.is_working_day(date(2027, 2, 19)), calendar.is_working_day(date(2027, 2, 8)),
                calendar.is_working_day(date(2026, 11, 20)))

    async def read_back() -> tuple[bool, bool, bool]:
        office = Database(database_url, {SESSION_KEY: OFFICE})
        try:
            return await office.run(read)
        finally:
            await office.dispose()

    # 2027 now holds only the corrected file's day; 2026's day off is untouched.
    assert asyncio.run(read_back()) == (False, True, False)
    assert main(["calendar", "show", "2027", "--database-url", database_url]) == 0
    assert "2027-02-19 day off (district file)" in capsys.readouterr().out
