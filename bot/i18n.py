"""Translations and locale-aware formatting.

Catalogs live in ``locales/<locale>/LC_MESSAGES/messages.po`` and are compiled when first used, so a fresh
clone needs no compile step. The compiled form is kept in the user's cache directory under the catalog's
content hash, so the next start-up reads it instead of parsing the catalog again (about 50 ms for both
languages), and an edited catalog is compiled afresh. Every person gets a ``Translator`` for their own locale; text for
someone else is rendered with that person's translator, never the sender's.

Extraction keywords: ``_`` (text), ``n_`` (singular, plural, count) and ``N_`` (a marker for text defined
before a locale is known, translated later with ``t._(value)``).
"""

from __future__ import annotations

import datetime as dt
import gettext
import hashlib
import io
import os
from functools import cache, lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_time, format_timedelta
from babel.numbers import format_decimal, format_percent

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"
COMPILED_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gridbot" / "locales"


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
    source = po_path.read_bytes()
    compiled_path = COMPILED_DIR / f"{locale}-{hashlib.sha256(source).hexdigest()[:24]}.mo"
    try:
        compiled = compiled_path.read_bytes()
    except OSError:
        compiled = _compile(source, locale)
        _keep_compiled(compiled_path, locale, compiled)
    return gettext.GNUTranslations(io.BytesIO(compiled))


def _compile(source: bytes, locale: str) -> bytes:
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    buffer = io.BytesIO()
    write_mo(buffer, read_po(io.BytesIO(source), locale=locale))
    return buffer.getvalue()


def _keep_compiled(path: Path, locale: str, compiled: bytes) -> None:
    """Store a compiled catalog for the next start, in place of older ones; a cache that cannot be written
    (a read-only home) only makes start-up slower."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for older in path.parent.glob(f"{locale}-*.mo"):
            older.unlink(missing_ok=True)
        # Written whole under another name first: a process starting meanwhile never reads half a catalog.
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        partial.write_bytes(compiled)
        partial.replace(path)
    except OSError:
        pass


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
