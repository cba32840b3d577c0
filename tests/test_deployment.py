"""The deployment files, checked as far as a machine without Docker or systemd running can check them."""

from __future__ import annotations

import configparser
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from bot.config import Settings

ROOT = Path(__file__).resolve().parent.parent
UNITS = ("gridbot.service", "gridbot@.service", "gridbot-scheduler.service")
INSTALL_PREFIX = "/opt/gridbot/.venv/bin/"
# pip options that change how an install is shown or cached, not what is installed.
COSMETIC_PIP_OPTIONS = {"--quiet", "-q", "--no-cache-dir"}


def test_env_example_lists_every_setting_with_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    listed = re.findall(r"^(?:# )?GRIDBOT_([A-Z0-9_]+)=", text, re.MULTILINE)
    assert sorted(listed) == sorted(name.upper() for name in Settings.model_fields)
    assert len(listed) == len(set(listed))
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if line.startswith(("GRIDBOT_", "# GRIDBOT_")):
            assert lines[number - 1].startswith("# "), f"{line} has no comment above it"
    for name in [name for name in os.environ if name.startswith("GRIDBOT_")]:
        monkeypatch.delenv(name)
    # Every value it sets is the default: copying it changes nothing until someone edits it.
    from_example = Settings(_env_file=ROOT / ".env.example")  # type: ignore[call-arg]
    assert from_example == Settings(_env_file=None)  # type: ignore[call-arg]


def test_compose_file_has_the_database_a_migration_two_workers_the_scheduler_and_nginx() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert set(services) == {"db", "migrate", "worker1", "worker2", "scheduler", "nginx"}
    assert services["migrate"]["command"] == ["gridbot", "db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    for worker in ("worker1", "worker2"):
        service = services[worker]
        assert service["command"] == ["gridbot", "run"]
        assert service["environment"]["GRIDBOT_SCHEDULER"] == "off"
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert "/readyz" in " ".join(service["healthcheck"]["test"])
    assert services["scheduler"]["command"] == ["gridbot", "scheduler"]
    for name in ("migrate", "worker1", "worker2", "scheduler"):
        assert services[name]["environment"]["GRIDBOT_DATABASE_URL"].startswith("postgresql+asyncpg://")
    mounted = [volume.split(":")[0] for volume in services["nginx"]["volumes"]]
    assert "./deploy/nginx.conf" in mounted and (ROOT / "deploy/nginx.conf").is_file()
    nginx = (ROOT / "deploy/nginx.conf").read_text(encoding="utf-8")
    assert "server worker1:8081" in nginx and "server worker2:8081" in nginx
    assert "location = /metrics" not in nginx and "location = /readyz" not in nginx


def pip_install(command: str) -> list[str]:
    """What a ``pip install`` installs: its arguments after ``install``, without cosmetic options."""
    words = shlex.split(command)
    start = words.index("install") + 1
    return [word for word in words[start:] if word not in COSMETIC_PIP_OPTIONS]


def lock_installs(text: str) -> list[list[str]]:
    return [pip_install(line) for line in text.splitlines() if "pip install" in line and "requirements.lock" in line]


def test_dockerfile_installs_the_lock_with_the_command_ci_runs() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    ci = (ROOT / ".ci/run").read_text(encoding="utf-8")
    assert lock_installs(ci) == [["--require-hashes", "-r", "requirements.lock"]]
    assert lock_installs(dockerfile) == lock_installs(ci)
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.MULTILINE)
    assert "fonts-noto-cjk" in dockerfile
    users = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")


def test_dockerfile_copies_what_building_the_package_reads() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    copied = {word for line in dockerfile.splitlines() if line.startswith("COPY ") for word in line.split()[1:-1]}
    assert {project["readme"], *project["license-files"]} <= copied


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((ROOT / "deploy" / name).read_text(encoding="utf-8"))
    return parser


@pytest.mark.parametrize("name", UNITS)
def test_systemd_unit_has_what_a_service_needs(name: str) -> None:
    parsed = unit(name)
    service = parsed["Service"]
    assert service["ExecStart"].startswith(INSTALL_PREFIX + "gridbot ")
    assert service["User"] == "gridbot" and service["EnvironmentFile"] == "/etc/gridbot/env"
    assert service["KillSignal"] == "SIGTERM" and service["Restart"] == "on-failure"
    assert parsed["Install"]["WantedBy"] == "multi-user.target"
    if name == "gridbot@.service":
        assert "GRIDBOT_WEBHOOK_LISTEN=127.0.0.1:%i" in (ROOT / "deploy" / name).read_text(encoding="utf-8")


def test_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """With systemd-analyze present, the units as installed, with gridbot where this checkout's venv has it."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:  # the key checks above are all this machine can do
        assert all(unit(name).has_section("Service") for name in UNITS)
        return
    here = str(Path(sys.executable).parent) + "/"
    names = []
    for name in UNITS:
        text = (ROOT / "deploy" / name).read_text(encoding="utf-8").replace(INSTALL_PREFIX, here)
        installed = name.replace("@.", "@8081.")
        (tmp_path / installed).write_text(text, encoding="utf-8")
        names.append(installed)
    result = subprocess.run([analyze, "verify", *names], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def check_lock_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_lock", ROOT / ".ci/check_lock.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lock_pins_every_declared_dependency() -> None:
    check_lock = check_lock_module()
    assert check_lock.problems(ROOT / "pyproject.toml", ROOT / "requirements.lock") == []


def test_lock_check_names_what_is_missing_or_outdated(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\ndependencies = ["aiogram>=3.20,<4", "brand-new>=1"]\n'
        '[project.optional-dependencies]\ndev = ["pytest>=99"]\n', encoding="utf-8",
    )
    lock = tmp_path / "requirements.lock"
    lock.write_text("aiogram==3.31.0 \\\n    --hash=sha256:00\npytest==9.2.0 \\\n    --hash=sha256:00\n", "utf-8")
    found = check_lock_module().problems(pyproject, lock)
    assert len(found) == 2
    assert "brand-new>=1 is declared in pyproject.toml but missing" in found[0]
    assert "pytest>=99" in found[1] and "pins 9.2.0" in found[1]


def test_python_m_bot_is_the_gridbot_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "jobs", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and result.stdout.startswith("usage: gridbot jobs")


def test_changelog_keeps_an_unreleased_section_above_the_releases() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## \[([^\]]+)\]", changelog, re.MULTILINE)
    assert headings[0] == "Unreleased" and "0.1.0" in headings
    assert "keepachangelog.com" in changelog
