"""Translations and locale-aware formatting.

Catalogs live in ``locales/<locale>/LC_MESSAGES/messages.po`` and are compiled in memory when first used, so
a fresh clone needs no compile step. Every person gets a ``Translator`` for their own locale; text for
someone else is rendered with that person's translator, never the sender's.

Extraction keywords: ``_`` (text), ``n_`` (singular, plural, count) and ``N_`` (a marker for text defined
before a locale is known, translated later with ``t._(value)``).
"""

from __future__ import annotations

import datetime as dt
import gettext
import io
from functools import cache, lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_time, format_timedelta
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"


def N_(message: str) -> str:
    """Mark a string for extraction without translating it yet."""
    return message


def available_locales() -> tuple[str, ...]:
    """Every locale with a catalog; adding a folder under ``locales/`` adds a language."""
    return tuple(
        sorted(path.parent.parent.name for path in LOCALES_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))
    )


def negotiate_locale(language_code: str | None, default: str) -> str:
    """Map a chat client's language (``zh-hans``, ``en-US``...) to a locale with a catalog."""
    if language_code:
        wanted = language_code.replace("-", "_").lower()
        locales = available_locales()
        for locale in locales:
            if locale.lower() == wanted:
                return locale
        language = wanted.split("_", 1)[0]
        for locale in locales:
            if locale.lower().split("_", 1)[0] == language:
                return locale
    return default


@cache
def _translations(locale: str) -> gettext.NullTranslations:
    po_path = LOCALES_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not po_path.exists():
        return gettext.NullTranslations()
    with po_path.open("rb") as po_file:
        catalog = read_po(po_file, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


class Translator:
    """Text and formatting for one person: their locale, the deployment's time zone."""

    def __init__(self, locale: str, timezone: str = "Asia/Shanghai") -> None:
        self.locale = locale
        self.babel_locale = Locale.parse(locale)
        self.tz = ZoneInfo(timezone)
        self._catalog = _translations(locale)
        # Babel takes some 10 µs a number; a page of the desk's figures writes thousands, mostly the same few
        # counts and rates. Kept per translator (one per locale and time zone), typed so 1 and 1.0 stay apart.
        self._numbers = lru_cache(maxsize=4096, typed=True)(self._format_number)
        self._percents = lru_cache(maxsize=4096, typed=True)(self._format_percent)

    def _(self, message: str) -> str:
        return self._catalog.gettext(message)

    def n_(self, singular: str, plural: str, count: int) -> str:
        return self._catalog.ngettext(singular, plural, count)

    def datetime(self, moment: dt.datetime) -> str:
        """The medium date (as ``date`` shows it) and the short time: "Dec 1, 2026, 5:26 PM"."""
        local = moment.astimezone(self.tz)
        pattern = str(self.babel_locale.datetime_formats["medium"])
        return pattern.replace("{1}", self.date(local)).replace(
            "{0}", format_time(local, "short", tzinfo=self.tz, locale=self.babel_locale)
        )

    def date(self, moment: dt.datetime) -> str:
        return format_date(moment.astimezone(self.tz), "medium", locale=self.babel_locale)

    def ago(self, moment: dt.datetime, now: dt.datetime) -> str:
        """"3 days ago" / "3天前"."""
        return format_timedelta(moment - now, add_direction=True, locale=self.babel_locale)

    def duration(self, delta: dt.timedelta) -> str:
        return format_timedelta(delta, locale=self.babel_locale)

    def number(self, value: float) -> str:
        return self._numbers(value)

    def percent(self, fraction: float) -> str:
        return self._percents(fraction)

    def _format_number(self, value: float) -> str:
        return format_decimal(value, locale=self.babel_locale)

    def _format_percent(self, fraction: float) -> str:
        return format_percent(fraction, locale=self.babel_locale)


@cache
def translator(locale: str, timezone: str = "Asia/Shanghai") -> Translator:
    return Translator(locale, timezone)
