"""Working days and office hours: when a request is due and when its reminder and escalation fall.

A district office counts deadlines the way the 12345 hotlines do: in working days, skipping weekends and the
official holidays, and working on the 调休 make-up days (a Saturday before a long holiday). The official
schedule comes from the ``holidays`` library's China calendar; the district's own file (``gridbot calendar
import``) overrides it day by day, for local days off and for a year the library does not know yet.

The reminder and escalation hours are counted in office hours (08:30-12:00 and 14:30-17:30 unless the
deployment says otherwise), so a request filed on Friday evening is not escalated over the weekend.
A deployment set to ``always`` counts calendar time, as before working days existed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import delete, extract, select
from sqlalchemy.orm import Session

from bot.core.organisation import FileFormatError, RowProblem, read_table
from storage.models import CalendarDay

log = logging.getLogger(__name__)

DEFAULT_OFFICE_HOURS = "08:30-12:00,14:30-17:30"
ROUND_THE_CLOCK = "always"
# session.info key under which Database.run hands the deployment's working time to the core.
SESSION_KEY = "working_time"
_CALENDAR_CACHE = "work_calendar"
# Nothing a district sets is further away than this; a calendar with no working day in it is a mistake.
MAX_SEARCH_DAYS = 3 * 366
CALENDAR_COLUMNS = ("date", "working")
CALENDAR_OPTIONAL = ("note",)
WORKING_WORDS = frozenset({"1", "yes", "y", "true", "work", "working", "上班", "班", "是"})
OFF_WORDS = frozenset({"0", "no", "n", "false", "off", "holiday", "休", "休息", "放假", "否"})
MAX_NOTE = 100


@dataclass(frozen=True)
class WorkingTime:
    """The deployment's office hours in its time zone; no periods means round the clock, every day."""

    zone: ZoneInfo
    periods: tuple[tuple[time, time], ...]

    @classmethod
    def parse(cls, hours: str, timezone: str) -> WorkingTime:
        """``08:30-12:00,14:30-17:30`` (periods in order, not overlapping) or ``always``; ValueError if not."""
        zone = ZoneInfo(timezone)
        if hours.strip().lower() == ROUND_THE_CLOCK:
            return cls(zone, ())
        periods = tuple(_period(part) for part in hours.split(",") if part.strip())
        if not periods:
            raise ValueError(f"office hours {hours!r}: expected e.g. {DEFAULT_OFFICE_HOURS} or {ROUND_THE_CLOCK}")
        for (_, end), (start, _) in pairwise(periods):
            if start < end:
                raise ValueError(f"office hours {hours!r}: the periods must be in order and not overlap")
        return cls(zone, periods)

    @property
    def round_the_clock(self) -> bool:
        return not self.periods


def _period(text: str) -> tuple[time, time]:
    try:
        start_text, end_text = text.strip().split("-")
        start, end = time.fromisoformat(start_text.strip()), time.fromisoformat(end_text.strip())
    except ValueError as error:
        raise ValueError(f"office hours period {text.strip()!r}: expected HH:MM-HH:MM") from error
    if start >= end:
        raise ValueError(f"office hours period {text.strip()!r} ends before it starts")
    return start, end


CALENDAR_TIME = WorkingTime(ZoneInfo("Asia/Shanghai"), ())


# --- the official schedule --------------------------------------------------------------------------------


@dataclass(frozen=True)
class OfficialYear:
    """One year of the official schedule: holidays, and weekend days that are working days (调休)."""

    days_off: frozenset[date]
    make_up_days: frozenset[date]


@lru_cache(maxsize=32)
def official_year(year: int) -> OfficialYear | None:
    """The State Council's schedule for ``year`` as the library knows it, or None when it does not.

    The library computes the statutory festival days for any year, but the bridge days and make-up working days
    exist only once the year's notice is out; a year without a single make-up day is taken as not yet known,
    since every notice since 2001 has had some."""
    # Imported on first use: the library's 24 modules are not needed to start serving.
    import holidays

    calendar = holidays.country_holidays("CN", years=year)
    make_up = frozenset(day for day in getattr(calendar, "weekend_workdays", ()) if day.year == year)
    if not make_up:
        return None
    return OfficialYear(frozenset(calendar.keys()), make_up)


_warned_years: set[int] = set()


def _warn_unknown(year: int) -> None:
    if year in _warned_years:
        return
    _warned_years.add(year)
    log.warning(
        "the holiday calendar does not know %d's official holidays and make-up working days yet: counting "
        "weekends and the district's calendar file only; import %d's schedule with `gridbot calendar import`",
        year, year,
    )


# --- one deployment's calendar ------------------------------------------------------------------------------


@dataclass
class WorkCalendar:
    """Working days (official schedule, then the district's overrides) and the office hours within them."""

    working_time: WorkingTime
    overrides: Mapping[date, bool] = field(default_factory=dict)

    def knows(self, year: int) -> bool:
        """Whether ``year``'s holidays are known, from the library or from the district's file."""
        return official_year(year) is not None or any(day.year == year for day in self.overrides)

    def is_working_day(self, day: date) -> bool:
        if self.working_time.round_the_clock:
            return True
        if day in self.overrides:
            return self.overrides[day]
        official = official_year(day.year)
        if official is None:
            if not self.knows(day.year):
                _warn_unknown(day.year)
            return day.weekday() < 5
        if day in official.make_up_days:
            return True
        return day.weekday() < 5 and day not in official.days_off

    def due(self, start: datetime, working_days: int) -> datetime:
        """The close of office on the ``working_days``-th working day after ``start``'s own day."""
        if self.working_time.round_the_clock:
            return start + timedelta(days=working_days)
        day = start.astimezone(self.working_time.zone).date()
        counted = 0
        for _ in range(MAX_SEARCH_DAYS):
            day += timedelta(days=1)
            if self.is_working_day(day):
                counted += 1
                if counted >= working_days:
                    return self._at(day, self.working_time.periods[-1][1])
        raise ValueError(f"no {working_days} working days within {MAX_SEARCH_DAYS} days of {start:%Y-%m-%d}")

    def after_hours(self, start: datetime, hours: float) -> datetime:
        """``start`` plus ``hours`` of office time (or of plain time, round the clock)."""
        if self.working_time.round_the_clock:
            return start + timedelta(hours=hours)
        left = timedelta(hours=hours)
        day = start.astimezone(self.working_time.zone).date()
        for _ in range(MAX_SEARCH_DAYS):
            if self.is_working_day(day):
                for opens, closes in self.working_time.periods:
                    begin, end = max(start, self._at(day, opens)), self._at(day, closes)
                    if end <= begin:
                        continue
                    if left <= end - begin:
                        return begin + left
                    left -= end - begin
            day += timedelta(days=1)
        raise ValueError(f"no {hours} office hours within {MAX_SEARCH_DAYS} days of {start:%Y-%m-%d}")

    def _at(self, day: date, moment: time) -> datetime:
        return datetime.combine(day, moment, tzinfo=self.working_time.zone).astimezone(UTC)


def calendar_of(session: Session) -> WorkCalendar:
    """The calendar of the deployment whose database ``session`` belongs to, overrides read once a session."""
    cached = session.info.get(_CALENDAR_CACHE)
    if isinstance(cached, WorkCalendar):
        return cached
    working_time = session.info.get(SESSION_KEY) or CALENDAR_TIME
    overrides: dict[date, bool] = {}
    if not working_time.round_the_clock:
        overrides = {row.day: row.working for row in session.scalars(select(CalendarDay))}
    calendar = WorkCalendar(working_time, overrides)
    session.info[_CALENDAR_CACHE] = calendar
    return calendar


# --- the district's file ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalendarRow:
    line: int
    day: date
    working: bool
    note: str


def read_calendar_file(path: Path) -> list[CalendarRow]:
    """The rows of ``date,working[,note]`` (CSV or XLSX): ``2027-02-06,no,春节`` / ``2027-02-20,yes,调休``.

    Raises ``FileFormatError`` listing every bad line."""
    rows: list[CalendarRow] = []
    problems: list[RowProblem] = []
    seen: dict[date, int] = {}
    for line, values in read_table(path, CALENDAR_COLUMNS, CALENDAR_OPTIONAL):
        try:
            day = date.fromisoformat(values["date"])
        except ValueError:
            problems.append(RowProblem(line, f"date {values['date']!r} must be written YYYY-MM-DD"))
            continue
        working = values["working"].lower()
        if working not in WORKING_WORDS | OFF_WORDS:
            problems.append(RowProblem(line, f"working {values['working']!r} must be yes (a working day) or no"))
            continue
        if day in seen:
            problems.append(RowProblem(line, f"{day} is already listed on line {seen[day]}"))
            continue
        seen[day] = line
        rows.append(CalendarRow(line, day, working in WORKING_WORDS, values.get("note", "")[:MAX_NOTE]))
    if problems:
        raise FileFormatError("\n".join(str(problem) for problem in problems))
    return rows


def import_calendar(session: Session, rows: Sequence[CalendarRow]) -> list[int]:
    """Replace the district's days of every year the file mentions; returns those years."""
    years = sorted({row.day.year for row in rows})
    if years:
        session.execute(delete(CalendarDay).where(extract("year", CalendarDay.day).in_(years)))
    session.add_all(CalendarDay(day=row.day, working=row.working, note=row.note) for row in rows)
    session.info.pop(_CALENDAR_CACHE, None)
    return years


def year_report(session: Session, year: int) -> list[str]:
    """Lines describing ``year``: where its holidays come from, the district's own days, and a warning."""
    calendar = WorkCalendar(session.info.get(SESSION_KEY) or CALENDAR_TIME, {
        row.day: row.working for row in session.scalars(select(CalendarDay).order_by(CalendarDay.day))
    })
    own = sorted((day, working) for day, working in calendar.overrides.items() if day.year == year)
    official = official_year(year)
    if official is not None:
        lines = [f"{year}: official schedule from the holidays library"]
    elif own:
        lines = [f"{year}: the holidays library does not know {year} yet; weekends and the district's file count"]
    else:
        lines = [f"{year}: WARNING neither the holidays library nor the district's file knows {year}'s holidays; "
                 "counting weekends only until its schedule is imported with `gridbot calendar import`"]
    if official is not None:
        lines += [f"  {day} day off (official)" for day in sorted(official.days_off)]
        lines += [f"  {day} working day (调休)" for day in sorted(official.make_up_days)]
    lines += [f"  {day} {'working day' if working else 'day off'} (district file)" for day, working in own]
    return lines

