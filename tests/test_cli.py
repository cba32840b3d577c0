"""The ``gridbot`` command line, run in-process as a user would run it."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from bot.cli import main
from bot.config import Settings
from storage.migrate import head_revision

HEADER = "street_code,street_name,community_code,community_name,grid_code,grid_name,building_code,building_name,address"
ORG_CSV = HEADER + """
DG,东关街道,DG-JS,建设社区,DG-JS-01,建设一网格,DG-JS-01-B1,建设路12号院1号楼,建设路12号
DG,东关街道,DG-JS,建设社区,DG-JS-01,建设一网格,DG-JS-01-B2,建设路12号院2号楼,建设路12号
"""


@pytest.fixture
def sqlite_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cli.db"
    monkeypatch.setenv("GRIDBOT_DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    monkeypatch.delenv("GRIDBOT_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    return path


@pytest.fixture
def playgrounds(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    """The settings every playground run was started with (the playground itself is not started)."""
    started: list[Settings] = []

    async def fake_playground(settings: Settings) -> int:
        started.append(settings)
        return 0

    monkeypatch.setattr("bot.playground.run_playground", fake_playground)
    return started


def test_run_without_token_starts_the_playground_on_its_own_database(
    sqlite_file: Path, capsys: pytest.CaptureFixture[str], playgrounds: list[Settings]
) -> None:
    assert main(["run", "--port", "18123"]) == 0
    out = capsys.readouterr().out
    assert "playground" in out and "@BotFather" in out and "GRIDBOT_TOKEN" in out
    assert [(s.playground_port, s.database_url) for s in playgrounds] == [
        (18123, "sqlite+aiosqlite:///playground.db")
    ]
    assert not sqlite_file.exists()  # the deployment's database was not even created

    assert main(["playground"]) == 0  # GRIDBOT_DATABASE_URL names the deployment's database, not the playground's
    assert playgrounds[-1].database_url == "sqlite+aiosqlite:///playground.db"
    assert main(["playground", "--database-url", "sqlite+aiosqlite:///elsewhere.db"]) == 0
    assert playgrounds[-1].database_url == "sqlite+aiosqlite:///elsewhere.db"


def deployment_state(path: Path) -> list[tuple[object, ...]]:
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        people = connection.exec_driver_sql("select external_id, display_name from people order by id").all()
        roles = connection.exec_driver_sql("select person_id, role, unit_id from staff_roles order by id").all()
        outbox = connection.exec_driver_sql("select count(*) from outbox").all()
    engine.dispose()
    return [*people, *roles, *outbox]


def test_run_without_token_on_a_deployment_stops_and_changes_nothing(
    sqlite_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], playgrounds: list[Settings]
) -> None:
    org = tmp_path / "org.csv"
    org.write_text(ORG_CSV, encoding="utf-8")
    assert main(["org", "import", str(org)]) == 0
    assert main(["staff", "add", "--telegram-id", "777", "--role", "worker", "--unit", "DG-JS-01", "--name", "王"]) == 0
    before = deployment_state(sqlite_file)
    capsys.readouterr()

    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "1 person, 1 street" in err and "GRIDBOT_TOKEN" in err and "gridbot playground" in err
    assert playgrounds == []

    # Pointed at the deployment explicitly, the real playground (not the fixture's stand-in) refuses before it
    # starts anything.
    from bot.playground.app import run_playground

    settings = Settings(database_url=f"sqlite+aiosqlite:///{sqlite_file}", _env_file=None)  # type: ignore[call-arg]
    assert asyncio.run(run_playground(settings)) == 2
    assert "holds a deployment" in capsys.readouterr().err
    assert deployment_state(sqlite_file) == before


def test_db_upgrade_creates_the_schema_with_migrations(sqlite_file: Path) -> None:
    assert main(["db", "upgrade"]) == 0
    engine = create_engine(f"sqlite:///{sqlite_file}")
    with engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        revision = connection.exec_driver_sql("select version_num from alembic_version").scalar()
        journal = connection.exec_driver_sql("pragma journal_mode").scalar()
    assert {"requests", "people", "buildings", "inbox", "outbox"} <= tables
    assert revision == head_revision()
    assert journal == "wal"


def test_org_import_staff_add_and_list(
    sqlite_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = tmp_path / "org.csv"
    org.write_text(ORG_CSV, encoding="utf-8")
    assert main(["org", "import", str(org)]) == 0
    assert "2 building" in capsys.readouterr().out
    assert main(["staff", "add", "--telegram-id", "777", "--role", "worker", "--unit", "DG-JS-01", "--name", "王"]) == 0
    assert main(["staff", "add", "--telegram-id", "778", "--role", "worker", "--unit", "NOPE"]) == 1
    assert "NOPE" in capsys.readouterr().err
    assert main(["staff", "list"]) == 0
    out = capsys.readouterr().out
    assert "777" in out and "DG-JS-01" in out and "778" not in out
    assert out.split()[:4] == ["worker", "DG-JS-01", "777", "(telegram)"] and "StaffLine" not in out


def test_staff_add_by_wechat_openid(sqlite_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    org = tmp_path / "org.csv"
    org.write_text(ORG_CSV, encoding="utf-8")
    assert main(["org", "import", str(org)]) == 0
    openid = "oWx-worker-0123456789abcdef"
    assert main(["staff", "add", "--wechat-openid", openid, "--role", "worker", "--unit", "DG-JS-01"]) == 0
    assert "(wechat)" in capsys.readouterr().out
    assert main(["staff", "add", "--wechat-openid", "bad openid!", "--role", "worker", "--unit", "DG-JS-01"]) == 1
    assert "OpenID" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # one channel per person
        main(["staff", "add", "--wechat-openid", openid, "--telegram-id", "1", "--role", "district"])
    capsys.readouterr()
    assert main(["staff", "list"]) == 0
    out = capsys.readouterr().out
    assert openid in out and "wechat" in out and "has not opened the bot yet" in out
    assert main(["staff", "followers"]) == 0
    assert f"{openid}  -  (staff)" in capsys.readouterr().out
    engine = create_engine(f"sqlite:///{sqlite_file}")
    with engine.connect() as connection:
        people = connection.exec_driver_sql("select channel, external_id, chat_id, awaiting_first_message from people")
        assert people.all() == [("wechat", openid, openid, 1)]
    engine.dispose()


def test_org_import_with_bad_rows_imports_nothing(
    sqlite_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(ORG_CSV + "DG,东关街道,DG-JS,建设社区,DG-JS-01,建设一网格,bad code!,楼,路\n", encoding="utf-8")
    assert main(["org", "import", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "bad.csv:4:" in err and "nothing was imported" in err
    assert main(["staff", "add", "--telegram-id", "1", "--role", "worker", "--unit", "DG-JS-01"]) == 1


def test_demo_and_categories(sqlite_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    assert main(["categories", "list"]) == 0
    out = capsys.readouterr().out
    assert "dangling_wires" in out and "飞线" in out


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (random.Random(15).randbytes(4000), "line 1:"),
        ((ORG_CSV.replace("建设路12号院2号楼", "建设路\x00院2号楼")).encode(), "org.csv:3: building_name"),
    ],
    ids=["random-bytes", "nul-in-a-name"],
)
def test_org_import_refuses_undecodable_bytes_and_control_characters(
    sqlite_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, line: str
) -> None:
    org = tmp_path / "org.csv"
    org.write_bytes(content)
    assert main(["org", "import", str(org)]) == 1
    err = capsys.readouterr().err
    assert line in err and "Traceback" not in err
    assert main(["staff", "add", "--telegram-id", "1", "--role", "worker", "--unit", "DG-JS-01"]) == 1
