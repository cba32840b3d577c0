"""The translation catalogs: the real ones are complete, and every kind of breakage is caught."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

from bot import catalogs, i18n

REAL_ROOT = catalogs.PROJECT_ROOT

ACCEPTED = "Request {code} was accepted by {worker}"
HELP = "Help"
REQUESTS = ("{n} request", "{n} requests")
CHINESE = {
    ACCEPTED: "{worker} 已受理诉求 {code}",
    HELP: "帮助",
    REQUESTS[0]: ("共 {n} 条诉求",),
}

HANDLER_SOURCE = f'''\
from bot.i18n import N_

HELP = N_("{HELP}")


def accepted(t, code, worker):
    return t._("{ACCEPTED}").format(code=code, worker=worker)


class Counter:
    def count(self, n):
        return self.t.n_("{REQUESTS[0]}", "{REQUESTS[1]}", n).format(n=n)
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A tiny project: one handler module, a test file whose text must stay out of the catalogs."""
    root = tmp_path / "project"
    (root / "handlers").mkdir(parents=True)
    (root / "tests").mkdir()
    shutil.copy(REAL_ROOT / catalogs.MAPPING_FILE, root / catalogs.MAPPING_FILE)
    (root / "handlers" / "greet.py").write_text(HANDLER_SOURCE, encoding="utf-8")
    (root / "tests" / "test_greet.py").write_text('t._("only in a test")\n', encoding="utf-8")
    return root


@pytest.fixture
def locales(project: Path) -> Path:
    """Catalogs for the tiny project, fully translated, so any problem found comes from the test's change."""
    locales_dir = project / "locales"
    catalogs.update(locales_dir, project)
    edit_catalog(po_path(locales_dir, "zh_CN"), translate_into_chinese)
    assert catalogs.check(locales_dir, project) == []
    return locales_dir


def po_path(locales_dir: Path, locale: str) -> Path:
    return locales_dir / locale / "LC_MESSAGES" / "messages.po"


def edit_catalog(path: Path, change: Callable[[Catalog], None]) -> None:
    with path.open("rb") as po_file:
        catalog = read_po(po_file, locale=path.parent.parent.name)
    change(catalog)
    with path.open("wb") as po_file:
        write_po(po_file, catalog)


def translate_into_chinese(catalog: Catalog) -> None:
    for message_id, translation in CHINESE.items():
        catalog[message_id].string = translation


def problems_about(locales_dir: Path, project: Path, text: str) -> list[str]:
    return [problem for problem in catalogs.check(locales_dir, project) if text in problem]


def test_project_catalogs_pass_check() -> None:
    assert catalogs.check() == []


def test_extraction_finds_attribute_calls_and_markers_but_not_tests(project: Path) -> None:
    ids = {message.id for message in catalogs.extract(project) if message.id}
    assert ids == {ACCEPTED, HELP, REQUESTS}


def test_update_creates_the_required_catalogs(project: Path) -> None:
    catalogs.update(project / "locales", project)
    found = [path.parent.parent.name for path in catalogs.catalog_paths(project / "locales")]
    assert found == ["en", "zh_CN"]


def test_english_catalog_is_filled_with_the_source_text(locales: Path) -> None:
    with po_path(locales, "en").open("rb") as po_file:
        english = read_po(po_file, locale="en")
    assert english[ACCEPTED].string == ACCEPTED
    assert tuple(english[REQUESTS[0]].string) == REQUESTS


def test_missing_translation_is_reported(locales: Path, project: Path) -> None:
    edit_catalog(po_path(locales, "zh_CN"), lambda catalog: setattr(catalog[HELP], "string", ""))
    assert problems_about(locales, project, f"{HELP!r} is not translated")


def test_missing_plural_form_is_reported(locales: Path, project: Path) -> None:
    def drop_plural(catalog: Catalog) -> None:
        catalog[REQUESTS[0]].string = (REQUESTS[0], "")

    edit_catalog(po_path(locales, "en"), drop_plural)
    assert problems_about(locales, project, "lacks plural form(s) msgstr[1]")


def test_fuzzy_entry_is_reported(locales: Path, project: Path) -> None:
    edit_catalog(po_path(locales, "zh_CN"), lambda catalog: catalog[HELP].flags.add("fuzzy"))
    assert problems_about(locales, project, f"{HELP!r} is marked fuzzy")


def test_placeholder_mismatch_is_reported(locales: Path, project: Path) -> None:
    def misspell(catalog: Catalog) -> None:
        catalog[ACCEPTED].string = "{worker} 已受理诉求 {cod}"

    edit_catalog(po_path(locales, "zh_CN"), misspell)
    assert problems_about(locales, project, "uses {cod, worker}, the source {code, worker}")


def test_broken_format_string_is_reported(locales: Path, project: Path) -> None:
    edit_catalog(po_path(locales, "zh_CN"), lambda catalog: setattr(catalog[ACCEPTED], "string", "{code"))
    assert problems_about(locales, project, "is not a valid format string")


def test_id_added_in_code_makes_catalogs_stale(locales: Path, project: Path) -> None:
    with (project / "handlers" / "greet.py").open("a", encoding="utf-8") as source:
        source.write('\nBYE = N_("Goodbye")\n')
    stale = problems_about(locales, project, "'Goodbye' is used in the code but missing here")
    assert len(stale) == 2  # one per catalog


def test_id_removed_from_code_makes_catalogs_stale(locales: Path, project: Path) -> None:
    source = project / "handlers" / "greet.py"
    source.write_text(source.read_text(encoding="utf-8").replace(f'N_("{HELP}")', '"Help"'), encoding="utf-8")
    assert len(problems_about(locales, project, f"{HELP!r} is no longer used in the code")) == 2


def test_update_drops_obsolete_ids_and_keeps_translations(locales: Path, project: Path) -> None:
    source = project / "handlers" / "greet.py"
    source.write_text(source.read_text(encoding="utf-8").replace(f'N_("{HELP}")', '"Help"'), encoding="utf-8")
    catalogs.update(locales, project)
    assert catalogs.check(locales, project) == []
    text = po_path(locales, "zh_CN").read_text(encoding="utf-8")
    assert f'"{HELP}"' not in text
    assert CHINESE[ACCEPTED] in text


def test_update_adds_new_ids_untranslated_not_fuzzy(locales: Path, project: Path) -> None:
    # Nearly the same as an existing id: gettext's fuzzy matching would copy the old translation over.
    with (project / "handlers" / "greet.py").open("a", encoding="utf-8") as source:
        source.write('\nHELP_MORE = N_("Help!")\n')
    catalogs.update(locales, project)
    assert catalogs.check(locales, project) == ["locales/zh_CN/LC_MESSAGES/messages.po: 'Help!' is not translated"]


def test_update_restarts_a_message_that_turned_plural(locales: Path, project: Path) -> None:
    # Babel flags such a message fuzzy and keeps the old text in the wrong shape; it should start over.
    source = project / "handlers" / "greet.py"
    plural_call = f'lambda t, n: t.n_("{HELP}", "Helps", n)'
    source.write_text(source.read_text(encoding="utf-8").replace(f'N_("{HELP}")', plural_call), encoding="utf-8")
    catalogs.update(locales, project)
    assert catalogs.check(locales, project) == [
        f"locales/zh_CN/LC_MESSAGES/messages.po: {HELP!r} lacks plural form(s) msgstr[0]"
    ]


def test_update_is_idempotent(locales: Path, project: Path) -> None:
    catalogs.update(locales, project)
    first = {path: path.read_bytes() for path in catalogs.catalog_paths(locales)}
    catalogs.update(locales, project)
    assert {path: path.read_bytes() for path in catalogs.catalog_paths(locales)} == first


def test_unparseable_catalog_is_reported(locales: Path, project: Path) -> None:
    po_path(locales, "zh_CN").write_text('msgid "Help"\nthis is not gettext\n', encoding="utf-8")
    assert problems_about(locales, project, "does not parse")


def test_missing_plural_forms_header_is_reported(locales: Path, project: Path) -> None:
    path = po_path(locales, "zh_CN")
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('"Plural-Forms: nplurals=1; plural=0;\\n"\n', ""), encoding="utf-8")
    assert problems_about(locales, project, "Plural-Forms header is missing")


def test_wrong_plural_forms_header_is_reported(locales: Path, project: Path) -> None:
    path = po_path(locales, "zh_CN")
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("nplurals=1; plural=0;", "nplurals=2; plural=(n != 1);"), encoding="utf-8")
    assert problems_about(locales, project, "Plural-Forms header is 'nplurals=2; plural=(n != 1);'")


def test_init_starts_a_new_language_with_current_ids(locales: Path, project: Path) -> None:
    path = catalogs.init("fr", locales, project)
    assert path == po_path(locales, "fr")
    untranslated = problems_about(locales, project, "locales/fr/")
    assert len(untranslated) == 3


def test_init_rejects_an_unknown_locale(locales: Path, project: Path) -> None:
    with pytest.raises(ValueError):
        catalogs.init("xx_NOPE", locales, project)
    assert not (locales / "xx_NOPE").exists()


@pytest.fixture
def translations_from(locales: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Point bot.i18n at the temporary catalogs and a cache directory of their own; its compiled catalogs
    in memory are emptied on both sides."""
    monkeypatch.setattr(i18n, "LOCALES_DIR", locales)
    monkeypatch.setattr(i18n, "COMPILED_DIR", tmp_path / "compiled")
    i18n._translations.cache_clear()
    yield locales
    i18n._translations.cache_clear()


def test_a_compiled_catalog_is_kept_for_the_next_start_and_an_edited_one_compiled_again(
    translations_from: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert i18n.Translator("zh_CN")._(ACCEPTED).format(code="R-7", worker="王芳") == "王芳 已受理诉求 R-7"
    assert len(list(i18n.COMPILED_DIR.glob("zh_CN-*.mo"))) == 1

    def not_compiled_again(source: bytes, locale: str) -> bytes:
        raise AssertionError(f"{locale} was compiled again")

    i18n._translations.cache_clear()  # as a new process starts
    with monkeypatch.context() as patched:
        patched.setattr(i18n, "_compile", not_compiled_again)
        assert i18n.Translator("zh_CN")._(ACCEPTED).format(code="R-7", worker="王芳") == "王芳 已受理诉求 R-7"

    path = po_path(translations_from, "zh_CN")
    path.write_text(path.read_text(encoding="utf-8").replace("已受理诉求", "已接单"), encoding="utf-8")
    i18n._translations.cache_clear()
    assert i18n.Translator("zh_CN")._(ACCEPTED).format(code="R-7", worker="王芳") == "王芳 已接单 R-7"
    assert len(list(i18n.COMPILED_DIR.glob("zh_CN-*.mo"))) == 1


def test_translator_speaks_chinese_from_the_catalog(translations_from: Path) -> None:
    t = i18n.Translator("zh_CN")
    assert t._(ACCEPTED).format(code="R-7", worker="王芳") == "王芳 已受理诉求 R-7"
    assert t.n_(*REQUESTS, 3).format(n=3) == "共 3 条诉求"


def test_translator_english_keeps_plural_rules(translations_from: Path) -> None:
    t = i18n.Translator("en")
    assert t.n_(*REQUESTS, 1).format(n=1) == "1 request"
    assert t.n_(*REQUESTS, 2).format(n=2) == "2 requests"


def test_check_command_exits_non_zero_on_problems(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalogs, "check", lambda: ["zh_CN: 'Help' is not translated"])
    assert catalogs.main(["check"]) == 1
    monkeypatch.setattr(catalogs, "check", lambda: [])
    assert catalogs.main(["check"]) == 0
