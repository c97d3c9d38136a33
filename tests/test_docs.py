"""Docs are part of the change: an undocumented setting, command, API route or parameter fails here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from routes import all_routes

from paperboy import db
from paperboy.web.app import create_app

ROOT = Path(__file__).resolve().parents[1]


def test_generated_docs_are_current() -> None:
    """docs/configuration.md and docs/cli.md are regenerated from Settings and the click commands."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_docs.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_every_api_route_and_parameter_is_in_api_md() -> None:
    api_md = (ROOT / "docs" / "api.md").read_text()
    spec = create_app(db.make_engine("sqlite://")).openapi()
    assert spec["paths"], "no API routes found"
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            route = f"{method.upper()} {path.replace('{paper_id}', '{id}')}"
            assert route in api_md, f"{route} is not in docs/api.md"
            for param in op.get("parameters", []):
                if param["in"] == "query":
                    assert f"`{param['name']}`" in api_md, f"{path}?{param['name']} is not in docs/api.md"


def test_every_page_and_feed_route_is_in_api_md() -> None:
    api_md = (ROOT / "docs" / "api.md").read_text()
    app = create_app(db.make_engine("sqlite://"))
    placeholders = {
        "{day}": "YYYY-MM-DD",
        "{week}": "YYYY-Www",
        "{month}": "YYYY-MM",
        "{arxiv_id:path}": "{id}",
        "{name:path}": "{name}",
    }
    paths = [getattr(route, "path", "") for route in all_routes(app)]
    assert "/papers/trending" in paths and "/login" in paths, paths
    for path in paths:
        if path.startswith(("/api/", "/static", "/docs", "/openapi")) or path == "/":
            continue
        for key, value in placeholders.items():
            path = path.replace(key, value)
        assert f"`{path}" in api_md, f"{path} is not in docs/api.md"


def test_readme_names_the_two_commands_and_they_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "paperboy serve" in readme
    assert "bash scripts/test.sh" in readme
    assert (ROOT / "scripts" / "test.sh").exists()
    assert "scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
    for doc in re.findall(r"\(docs/([a-z]+\.md)\)", readme):
        assert (ROOT / "docs" / doc).exists(), doc
