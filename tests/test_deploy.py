"""The deployment files in deploy/: the Dockerfile, the compose file and the systemd units.

There is no Docker engine here: the Dockerfile and the compose file are parsed and
their properties checked. The systemd units are checked with `systemd-analyze
verify` (and the hardening with `systemd-analyze security`) where systemd is installed.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from cafebot.cli.main import build_parser

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNITS = ["cafebot.service", "cafebot-backup.service", "cafebot-backup.timer"]
INSTALLED_CAFEBOT = "/opt/cafebot/bin/cafebot"  # where deploy/README.md installs it

CONFIG_DIR = "/etc/cafebot"
STATE_DIR = "/var/lib/cafebot"


# ------------------------------------------------------------------ Dockerfile


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comments dropped, continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        whole = (pending + stripped).strip()
        pending = ""
        if whole:
            word, _, args = whole.partition(" ")
            instructions.append((word.upper(), " ".join(args.split())))
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    starts = [i for i, (word, _) in enumerate(instructions) if word == "FROM"]
    return instructions[starts[-1] :]


def exec_form(args: str) -> list[str]:
    """A JSON-array (exec form) argument, or the shell form as sh -c would run it."""
    if args.startswith("["):
        value = json.loads(args)
        assert isinstance(value, list)
        return [str(v) for v in value]
    return ["/bin/sh", "-c", args]


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return dockerfile_instructions((DEPLOY / "Dockerfile").read_text())


def test_dockerfile_parser_joins_lines_and_drops_comments() -> None:
    parsed = dockerfile_instructions("# c\nFROM x AS b\nRUN a \\\n  # inner\n    && b\nUSER u\n")
    assert parsed == [("FROM", "x AS b"), ("RUN", "a && b"), ("USER", "u")]


def test_dockerfile_uses_a_slim_python_base(dockerfile: list[tuple[str, str]]) -> None:
    bases = [args.split()[0] for word, args in dockerfile if word == "FROM"]
    assert bases, "no FROM"
    for base in bases:
        image, _, tag = base.partition(":")
        assert image in {"python", "docker.io/library/python"}, base
        assert "slim" in tag, f"{base} is not a slim image"
        major_minor = re.match(r"(\d+)\.(\d+)", tag)
        assert major_minor and (int(major_minor[1]), int(major_minor[2])) >= (3, 11), base


def test_dockerfile_runs_as_a_dedicated_non_root_user(dockerfile: list[tuple[str, str]]) -> None:
    stage = final_stage(dockerfile)
    users = [(i, args) for i, (word, args) in enumerate(stage) if word == "USER"]
    assert users, "the image runs as root"
    index, user = users[-1]
    name = user.split(":")[0]
    assert name not in {"root", "0"}
    # The user is created in the image, and nothing runs as root after switching.
    assert any(word == "RUN" and "useradd" in args and name in args for word, args in stage)
    later = [word for word, _ in stage[index + 1 :]]
    assert "RUN" not in later, "RUN after USER: the last steps should not need root"


def test_dockerfile_declares_config_and_state_volumes(dockerfile: list[tuple[str, str]]) -> None:
    stage = final_stage(dockerfile)
    volumes: list[str] = []
    for word, args in stage:
        if word == "VOLUME":
            volumes += exec_form(args) if args.startswith("[") else args.split()
    assert CONFIG_DIR in volumes and STATE_DIR in volumes
    env = " ".join(args for word, args in stage if word == "ENV")
    # The config is found in the config volume, the state (heartbeat) in the state volume.
    assert f"CAFEBOT_CONFIG={CONFIG_DIR}/config.ini" in env
    assert f"STATE_DIRECTORY={STATE_DIR}" in env
    workdirs = [args for word, args in stage if word == "WORKDIR"]
    assert workdirs[-1] == STATE_DIR


def test_dockerfile_health_check_runs_cafebot_health(dockerfile: list[tuple[str, str]]) -> None:
    checks = [args for word, args in final_stage(dockerfile) if word == "HEALTHCHECK"]
    assert len(checks) == 1
    options, _, command = checks[0].partition(" CMD ")
    assert exec_form(command.strip()) == ["cafebot", "health"]
    for option in ("--interval", "--timeout", "--start-period", "--retries"):
        assert option in options


def test_dockerfile_migrates_then_runs(dockerfile: list[tuple[str, str]]) -> None:
    cmds = [args for word, args in final_stage(dockerfile) if word == "CMD"]
    assert len(cmds) == 1
    argv = exec_form(cmds[0])
    assert argv[:2] == ["sh", "-c"]
    script = argv[2]
    assert re.fullmatch(r"cafebot db upgrade && exec cafebot run", script), script


def test_dockerfile_copies_what_exists_and_installs_postgres_support(
    dockerfile: list[tuple[str, str]],
) -> None:
    copied = [args.split()[:-1] for word, args in dockerfile if word == "COPY"]
    sources = [s for parts in copied for s in parts if not s.startswith("--")]
    assert sources
    for source in sources:
        if source.startswith("/"):
            continue  # from the build stage
        assert (ROOT / source).exists(), f"COPY {source}: not in the checkout"
    runs = " ".join(args for word, args in dockerfile if word == "RUN")
    assert "[postgres]" in runs


# ------------------------------------------------------------------ compose


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def test_compose_has_the_bot_and_postgres(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"bot", "postgres", "web"}
    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    data_mount = [v for v in postgres["volumes"] if v.endswith(":/var/lib/postgresql/data")]
    assert data_mount and data_mount[0].split(":")[0] in compose["volumes"]
    assert postgres["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")


def test_compose_bot_waits_for_a_healthy_database(compose: dict[str, Any]) -> None:
    bot = compose["services"]["bot"]
    assert bot["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert bot["restart"] in {"unless-stopped", "always", "on-failure"}
    build = bot["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"


def test_compose_bot_uses_postgres_and_secrets_from_the_environment(
    compose: dict[str, Any],
) -> None:
    env = compose["services"]["bot"]["environment"]
    url = env["CAFEBOT_DATABASE_URL"]
    assert url.startswith("postgresql+psycopg://cafebot:${POSTGRES_PASSWORD")
    assert "@postgres:5432/cafebot" in url
    # No secret is written into the file itself: both come from .env.
    assert env["CAFEBOT_ZULIP_KEY"].startswith("${CAFEBOT_ZULIP_KEY:?")


def test_compose_bot_mounts_config_and_state(compose: dict[str, Any]) -> None:
    bot = compose["services"]["bot"]
    targets = {v.split(":")[1]: v for v in bot["volumes"]}
    assert f"{CONFIG_DIR}/config.ini" in targets
    assert targets[f"{CONFIG_DIR}/config.ini"].endswith(":ro")
    state = targets[STATE_DIR].split(":")[0]
    assert state in compose["volumes"]
    assert bot["healthcheck"]["test"] == ["CMD", "cafebot", "health"]


def test_compose_serves_the_site_on_the_loopback_address_only(compose: dict[str, Any]) -> None:
    web = compose["services"]["web"]
    assert web["image"] == compose["services"]["bot"]["image"]
    assert web["command"][:2] == ["cafebot", "web"]
    assert web["ports"] == ["127.0.0.1:8080:8080"]  # the reverse proxy is in front
    assert web["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "CAFEBOT_ZULIP_KEY" not in web["environment"]  # the site needs no Zulip key
    assert "/healthz" in " ".join(web["healthcheck"]["test"])
    proxy = (DEPLOY / "nginx.conf").read_text()
    assert "proxy_pass http://cafebot_site;" in proxy and "server 127.0.0.1:8080;" in proxy
    assert "X-Forwarded-Proto" in proxy


# ------------------------------------------------------------------ systemd


def unit_entries(path: Path) -> list[tuple[str, str, str]]:
    """(section, key, value) for every assignment; systemd allows repeated keys."""
    entries = []
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        entries.append((section, key.strip(), value.strip()))
    return entries


def unit_values(path: Path, section: str, key: str) -> list[str]:
    return [v for s, k, v in unit_entries(path) if s == section and k == key]


def unit_value(path: Path, section: str, key: str) -> str:
    values = unit_values(path, section, key)
    assert len(values) == 1, f"{key}: {values}"
    return values[0]


SERVICE = DEPLOY / "cafebot.service"


def test_unit_upgrades_the_database_then_runs_the_bot() -> None:
    pre = shlex.split(unit_value(SERVICE, "Service", "ExecStartPre"))
    start = shlex.split(unit_value(SERVICE, "Service", "ExecStart"))
    assert pre[:3] == [INSTALLED_CAFEBOT, "db", "upgrade"]
    assert start[:2] == [INSTALLED_CAFEBOT, "run"]
    for argv in (pre, start):
        assert argv[argv.index("--config") + 1] == f"{CONFIG_DIR}/config.ini"
    assert unit_value(SERVICE, "Service", "Restart") in {"on-failure", "always"}
    assert unit_value(SERVICE, "Install", "WantedBy") == "multi-user.target"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        pytest.param("User", "cafebot", id="dedicated-user"),
        pytest.param("Group", "cafebot", id="dedicated-group"),
        pytest.param("ProtectSystem", "strict", id="protect-system"),
        pytest.param("NoNewPrivileges", "yes", id="no-new-privileges"),
        pytest.param("ProtectHome", "yes", id="protect-home"),
        pytest.param("PrivateTmp", "yes", id="private-tmp"),
        pytest.param("StateDirectory", "cafebot", id="state-directory"),
        pytest.param("ConfigurationDirectory", "cafebot", id="configuration-directory"),
        pytest.param("CapabilityBoundingSet", "", id="no-capabilities"),
    ],
)
def test_unit_is_hardened(key: str, expected: str) -> None:
    assert unit_value(SERVICE, "Service", key) == expected


def test_unit_paths_match_its_declared_directories() -> None:
    # ProtectSystem=strict: the service may write only its StateDirectory.
    assert unit_value(SERVICE, "Service", "WorkingDirectory") == STATE_DIR
    env = unit_value(SERVICE, "Service", "Environment")
    assert env == f"CAFEBOT_CONFIG={CONFIG_DIR}/config.ini"
    assert not unit_values(SERVICE, "Service", "ReadWritePaths")  # nothing beyond the state


def systemd_analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd to run this)")
    return tool


def installable_copies(tmp_path: Path) -> list[Path]:
    """The units with the program path pointed at this checkout's cafebot (verify checks it)."""
    program = Path(sys.executable).parent / "cafebot"
    if not program.exists():
        pytest.skip(f"no cafebot script beside {sys.executable} (pip install -e . first)")
    copies = []
    for name in UNITS:
        text = (DEPLOY / name).read_text().replace(INSTALLED_CAFEBOT, str(program))
        copy = tmp_path / name
        copy.write_text(text)
        copies.append(copy)
    return copies


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    tool = systemd_analyze()
    copies = installable_copies(tmp_path)
    result = subprocess.run(
        [tool, "verify", "--man=no", *map(str, copies)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # verify exits 0 on unknown keys and bad values too, but says so: no output is the bar.
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_systemd_analyze_verify_would_catch_a_mistake(tmp_path: Path) -> None:
    tool = systemd_analyze()
    copy = installable_copies(tmp_path)[0]
    copy.write_text(copy.read_text().replace("ProtectSystem=strict", "ProtectSystem=strictly"))
    result = subprocess.run(
        [tool, "verify", "--man=no", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "strictly" in result.stderr


def test_unit_exposure_is_low(tmp_path: Path) -> None:
    tool = systemd_analyze()
    copy = installable_copies(tmp_path)[0]
    result = subprocess.run(
        [tool, "security", "--offline=yes", "--no-pager", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    if found is None:
        pytest.skip(f"this systemd-analyze has no offline security check: {result.stderr[:200]}")
    # 0 is a sandbox, 10 is none; systemd calls below 2 "OK".
    assert float(found[1]) < 2.0, result.stdout


def test_backup_timer_runs_the_backup_service() -> None:
    timer = DEPLOY / "cafebot-backup.timer"
    service = DEPLOY / "cafebot-backup.service"
    assert unit_value(timer, "Timer", "OnCalendar") == "daily"
    assert unit_value(timer, "Install", "WantedBy") == "timers.target"
    assert unit_value(service, "Service", "Type") == "oneshot"
    assert f"{INSTALLED_CAFEBOT} backup" in unit_value(service, "Service", "ExecStart")
    assert unit_value(service, "Service", "User") == "cafebot"
    assert unit_value(service, "Service", "ProtectSystem") == "strict"


# ------------------------------------------------------------------ the guide


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def cli_commands() -> set[str]:
    """``backup``, ``db upgrade``, ...: what the ``cafebot`` command accepts."""
    names = set()
    for name, sub in subcommands(build_parser()).items():
        names.add(name)
        names.update(f"{name} {child}" for child in subcommands(sub))
    return names


def test_guide_walks_through_every_step() -> None:
    guide = (DEPLOY / "README.md").read_text()
    headings = [line.lower() for line in guide.splitlines() if line.startswith("## ")]
    for step in ("zulip", "install", "database", "config", "first start", "upgrade", "backup"):
        assert any(step in heading for heading in headings), step
    for needed in ("restore", "compose", "cafebot health", "Generic bot", "systemctl enable"):
        assert needed in guide, needed
    for name in ["Dockerfile", "compose.yaml", *UNITS]:
        assert f"`{name}`" in guide, f"the guide does not mention {name}"


def test_guide_uses_only_commands_that_exist() -> None:
    guide = (DEPLOY / "README.md").read_text()
    blocks = re.findall(r"```(?:sh|ini)?\n(.*?)```", guide, flags=re.DOTALL)
    used = set()
    for block in blocks:
        # As the guide runs it: /opt/cafebot/bin/cafebot X, or in the container: bot cafebot X.
        for match in re.finditer(r"(?:bin/|bot )cafebot (db \w+|[a-z]+)\b", block):
            used.add(match[1])
    known = cli_commands()
    assert {"backup", "restore", "health", "db upgrade"} <= used
    assert used <= known, f"the guide uses unknown subcommands: {sorted(used - known)}"
