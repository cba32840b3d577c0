"""Keep the gettext catalogs in step with the code.

``update`` extracts the text marked with ``_``, ``n_`` and ``N_`` from the sources listed in ``babel.cfg`` and
merges it into every ``locales/<locale>/LC_MESSAGES/messages.po``; ``check`` lists whatever stands between the
catalogs and a complete, consistent translation. Run as ``python -m bot.catalogs update|check|init LOCALE``
or ``gridbot i18n ...``.
"""

from __future__ import annotations

import argparse
import copy
import io
import re
import string
import sys
import tomllib
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_keywords, parse_mapping_cfg
from babel.messages.plurals import get_plural
from babel.messages.pofile import PoFileError, read_po, write_po

from bot.i18n import DOMAIN, LOCALES_DIR

PROJECT_ROOT = LOCALES_DIR.parent
MAPPING_FILE = "babel.cfg"
PROJECT_NAME = "gridbot"
# Same keywords as babel.cfg; passed here as well so extraction does not depend on the Babel version reading
# per-section keywords, and without Babel's defaults (gettext, ngettext...), which the code does not use.
KEYWORDS = parse_keywords(["_", "n_:1,2", "N_"])
# `# TRANSLATORS: ...` on the line above a call reaches the translator as a comment in the .po file.
COMMENT_TAGS = ("TRANSLATORS:",)
# The sources are written in English, so the English catalog is the source text itself.
SOURCE_LOCALE = "en"
REQUIRED_LOCALES = (SOURCE_LOCALE, "zh_CN")

# A message is identified by its id (a str, or a (singular, plural) tuple) and its context.
MessageKey = tuple[str | tuple[str, ...], str | None]


def extract(project_root: Path = PROJECT_ROOT) -> Catalog:
    """Every translatable string in the project, as ``pybabel extract -F babel.cfg`` would find it."""
    method_map, options_map = _read_mapping(project_root / MAPPING_FILE)
    template = Catalog(project=PROJECT_NAME, fuzzy=False)
    found = extract_from_dir(
        project_root,
        method_map,
        options_map,
        keywords=KEYWORDS,
        comment_tags=COMMENT_TAGS,
        strip_comment_tags=True,
    )
    for filename, lineno, message, comments, context in found:
        location = (Path(filename).as_posix(), lineno)
        template.add(message, None, [location], auto_comments=comments, context=context)
    return template


def update(locales_dir: Path = LOCALES_DIR, project_root: Path = PROJECT_ROOT) -> None:
    """Create the required catalogs if missing and merge the code's current strings into every catalog.

    Translations of ids still in use are kept, new ids arrive untranslated (never guessed from similar
    ones), ids no longer in the code are dropped. Running it twice in a row leaves the files unchanged.
    """
    template = extract(project_root)
    for locale in REQUIRED_LOCALES:
        _create_if_missing(locales_dir, locale, project_root)
    for path in catalog_paths(locales_dir):
        _update_catalog(path, template)


def init(locale: str, locales_dir: Path = LOCALES_DIR, project_root: Path = PROJECT_ROOT) -> Path:
    """Start a catalog for a new language (``zh_TW``, ``fr``...) holding the current ids; returns its path.

    Raises ValueError for a locale Babel does not know, before anything is created.
    """
    try:
        Locale.parse(locale)
    except UnknownLocaleError as error:
        raise ValueError(f"unknown locale {locale!r}") from error
    path = _create_if_missing(locales_dir, locale, project_root)
    _update_catalog(path, extract(project_root))
    return path


def check(locales_dir: Path = LOCALES_DIR, project_root: Path = PROJECT_ROOT) -> list[str]:
    """Problems that keep the catalogs from being complete and current; empty when all is well."""
    paths = catalog_paths(locales_dir)
    if not paths:
        return [f"{locales_dir}: no catalogs; run `python -m bot.catalogs update`"]
    template = extract(project_root)
    return [problem for path in paths for problem in _catalog_problems(path, template)]


def catalog_paths(locales_dir: Path = LOCALES_DIR) -> list[Path]:
    """The ``messages.po`` of every locale, in a stable order."""
    return sorted(locales_dir.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))


# --- reading and writing -----------------------------------------------------------------------------------


def _read_mapping(path: Path) -> tuple[list[tuple[str, str]], dict[str, dict[str, Any]]]:
    """The (pattern, method) list and per-pattern options of a Babel mapping file."""
    method_map: list[tuple[str, str]]
    options_map: dict[str, dict[str, Any]]
    with path.open(encoding="utf-8") as mapping:
        # Babel's mapping parser carries no type annotations.
        method_map, options_map = parse_mapping_cfg(mapping, path.name)  # type: ignore[no-untyped-call]
    return method_map, options_map


def _catalog_path(locales_dir: Path, locale: str) -> Path:
    return locales_dir / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def _locale_of(path: Path) -> str:
    return path.parent.parent.name


def _read(path: Path) -> Catalog:
    with path.open("rb") as po_file:
        return read_po(po_file, locale=_locale_of(path), abort_invalid=True)


def _write(path: Path, catalog: Catalog) -> None:
    buffer = io.BytesIO()
    # Sorted by msgid with file names but no line numbers: moving code around or two people adding strings
    # in different places then changes the catalog little and merges cleanly.
    write_po(buffer, catalog, sort_output=True, ignore_obsolete=True, include_lineno=False)
    content = buffer.getvalue()
    if path.exists() and path.read_bytes() == content:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def _create_if_missing(locales_dir: Path, locale: str, project_root: Path) -> Path:
    path = _catalog_path(locales_dir, locale)
    if not path.exists():
        _write(path, _new_catalog(locale, project_root))
    return path


def _new_catalog(locale: str, project_root: Path) -> Catalog:
    language = Locale.parse(locale).english_name
    return Catalog(
        locale=locale,
        project=PROJECT_NAME,
        version=_project_version(project_root),
        header_comment=(
            f"# {language} translations for {PROJECT_NAME}.\n"
            "# Refresh with `python -m bot.catalogs update`; translators edit only the msgstr lines."
        ),
        language_team=f"{language} <{locale}@{PROJECT_NAME}>",
        # Babel marks a fresh header fuzzy, which `pybabel compile` would then skip.
        fuzzy=False,
    )


def _project_version(project_root: Path) -> str:
    pyproject = project_root / "pyproject.toml"
    if not pyproject.exists():
        return "0"
    return str(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"])


# --- merging -----------------------------------------------------------------------------------------------


def _update_catalog(path: Path, template: Catalog) -> None:
    catalog = _read(path)
    _merge(catalog, template)
    if _locale_of(path) == SOURCE_LOCALE:
        _fill_with_source_text(catalog)
    _write(path, catalog)


def _merge(catalog: Catalog, template: Catalog) -> None:
    fuzzy_before = {_key(message) for message in _messages(catalog) if message.fuzzy}
    # Babel inserts the template's new Message objects into the catalog as they are, so a private copy keeps
    # one catalog's edits (the English fill-in) out of the next. Keeping the catalog's own creation date is
    # what makes a rerun on an unchanged tree a no-op.
    catalog.update(copy.deepcopy(template), no_fuzzy_matching=True, update_creation_date=False)
    catalog.obsolete.clear()
    catalog.fuzzy = False
    for message in _messages(catalog):
        if message.fuzzy and _key(message) not in fuzzy_before:
            # Even without fuzzy matching Babel flags a message whose id turned plural (or back) and keeps the
            # old text in the wrong shape; treat it as new instead.
            message.flags.discard("fuzzy")
            message.string = ("",) * catalog.num_plurals if message.pluralizable else ""


def _fill_with_source_text(catalog: Catalog) -> None:
    for message in _messages(catalog):
        if not message.pluralizable:
            message.string = message.string or message.id
            continue
        sources = tuple(message.id)
        forms = _translation_forms(message, catalog.num_plurals)
        # English has two forms, singular and plural, matching the two source ids.
        message.string = tuple(form or sources[min(index, len(sources) - 1)] for index, form in enumerate(forms))


# --- checking ----------------------------------------------------------------------------------------------


def _catalog_problems(path: Path, template: Catalog) -> list[str]:
    label = path.relative_to(path.parents[3]).as_posix()  # locales/<locale>/LC_MESSAGES/messages.po
    try:
        catalog = _read(path)
    except (PoFileError, UnicodeDecodeError, UnknownLocaleError, ValueError) as error:
        return [f"{label}: does not parse: {error}"]
    problems = chain(
        _plural_forms_problems(path, catalog),
        _staleness_problems(catalog, template),
        _message_problems(catalog),
    )
    return [f"{label}: {problem}" for problem in problems]


def _plural_forms_problems(path: Path, catalog: Catalog) -> Iterator[str]:
    expected = get_plural(catalog.locale_identifier or _locale_of(path)).plural_forms
    # Babel silently falls back to the locale's rule when the header is missing, so look at the file itself.
    written = _raw_headers(path.read_text(encoding="utf-8")).get("plural-forms")
    if written is None:
        yield f"Plural-Forms header is missing; expected {expected!r}"
    elif _normalise_plural_forms(written) != _normalise_plural_forms(expected):
        yield f"Plural-Forms header is {written!r}; expected {expected!r}"


def _raw_headers(po_text: str) -> dict[str, str]:
    """The header fields exactly as written in a .po file, with lower-case names."""
    header = re.search(r'^msgid ""\nmsgstr ""\n((?:".*"\n)*)', po_text, re.MULTILINE)
    if header is None:
        return {}
    text = "".join(line[1:-1] for line in header.group(1).splitlines())
    fields = (line.partition(":") for line in text.split("\\n") if ":" in line)
    return {name.strip().lower(): value.strip() for name, _, value in fields}


def _normalise_plural_forms(value: str) -> str:
    return re.sub(r"[\s()]", "", value).rstrip(";")


def _staleness_problems(catalog: Catalog, template: Catalog) -> Iterator[str]:
    in_code = {_key(message) for message in _messages(template)}
    in_catalog = {_key(message) for message in _messages(catalog)}
    for key in sorted(in_code - in_catalog, key=repr):
        yield f"stale: {_describe(key)} is used in the code but missing here; run update"
    for key in sorted(in_catalog - in_code, key=repr):
        yield f"stale: {_describe(key)} is no longer used in the code; run update"
    if catalog.obsolete:
        yield f"stale: {len(catalog.obsolete)} obsolete (#~) entries; run update"


def _message_problems(catalog: Catalog) -> Iterator[str]:
    if catalog.fuzzy:
        yield "the header is marked fuzzy"
    for message in _messages(catalog):
        label = _describe(_key(message))
        if message.fuzzy:
            yield f"{label} is marked fuzzy; review the translation and remove the flag"
        forms = _translation_forms(message, catalog.num_plurals)
        missing = [str(index) for index, form in enumerate(forms) if not form]
        if missing and message.pluralizable:
            yield f"{label} lacks plural form(s) msgstr[{', '.join(missing)}]"
        elif missing:
            yield f"{label} is not translated"
        yield from (f"{label}: {problem}" for problem in _placeholder_problems(message, forms))


def _placeholder_problems(message: Message, forms: Sequence[str]) -> Iterator[str]:
    try:
        # A plural form may follow either source: "one request" drops the {n} of "{n} requests".
        allowed = {_placeholders(source) for source in _source_texts(message)}
    except ValueError:
        return  # not a format string at all, so there are no placeholders to keep
    for form in filter(None, forms):
        try:
            used = _placeholders(form)
        except ValueError as error:
            yield f"translation {form!r} is not a valid format string ({error})"
            continue
        if used not in allowed:
            expected = " or ".join(sorted(_show_fields(fields) for fields in allowed))
            yield f"translation {form!r} uses {_show_fields(used)}, the source {expected}"


def _placeholders(text: str) -> frozenset[str]:
    """The ``{names}`` that ``str.format`` fills in ``text``; raises ValueError for stray braces."""
    return frozenset(field for _, field, _, _ in string.Formatter().parse(text) if field is not None)


def _show_fields(fields: Iterable[str]) -> str:
    return "{" + ", ".join(sorted(fields)) + "}" if fields else "no placeholders"


# --- small helpers -----------------------------------------------------------------------------------------


def _messages(catalog: Catalog) -> Iterator[Message]:
    """The catalog's messages without the header entry."""
    return (message for message in catalog if message.id)


def _key(message: Message) -> MessageKey:
    message_id = message.id if isinstance(message.id, str) else tuple(message.id)
    return message_id, message.context


def _source_texts(message: Message) -> tuple[str, ...]:
    return (message.id,) if isinstance(message.id, str) else tuple(message.id)


def _describe(key: MessageKey) -> str:
    message_id, context = key
    text = repr(message_id if isinstance(message_id, str) else message_id[0])
    return f"{text} (context {context!r})" if context else text


def _translation_forms(message: Message, num_plurals: int) -> list[str]:
    """The msgstr values, one per plural form the locale has (a single one for a plain message)."""
    if not message.pluralizable:
        return [str(message.string or "")]
    written = [str(form or "") for form in message.string or ()]
    return (written + [""] * num_plurals)[:num_plurals]


# --- command line ------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None, prog: str = "python -m bot.catalogs") -> int:
    """``update``, ``check`` or ``init LOCALE``; returns the exit status (1 when ``check`` finds problems)."""
    parser = argparse.ArgumentParser(prog=prog, description="Maintain the translation catalogs.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("update", help="merge the strings in the code into every catalog")
    commands.add_parser("check", help="list missing, fuzzy, inconsistent or stale translations")
    init_parser = commands.add_parser("init", help="start a catalog for a new language")
    init_parser.add_argument("locale", help="a locale identifier such as zh_TW or fr")
    args = parser.parse_args(argv)

    if args.command == "update":
        update()
        print(f"Updated {len(catalog_paths())} catalogs in {LOCALES_DIR}")
        return 0
    if args.command == "init":
        try:
            path = init(args.locale)
        except ValueError as error:
            parser.error(str(error))
        print(f"Catalog ready for translation: {path}")
        return 0
    problems = check()
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s); see locales/README.md", file=sys.stderr)
        return 1
    print(f"All {len(catalog_paths())} catalogs are complete and current")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
