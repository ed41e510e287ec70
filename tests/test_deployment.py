"""docker-compose.yml cannot run here (no Docker engine); check what can be checked:
it parses, every command it names exists in the project, and every setting it
sets is one the settings read."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_SOURCE = (ROOT / "digits_site" / "settings.py").read_text()


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_scale_out_services():
    services = compose()["services"]
    assert {"web", "worker", "redis", "postgres"} <= set(services)
    worker = services["worker"]
    assert worker["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert "--queues" in worker["command"] and "training" in worker["command"]
    assert "media:/data/media" in services["web"]["volumes"]
    assert "media:/data/media" in worker["volumes"]


def test_every_command_it_names_exists():
    commands = get_commands()
    for name, service in compose()["services"].items():
        command = service.get("command")
        if command is None or name in {"postgres", "redis"}:
            continue
        text = " ".join(command) if isinstance(command, list) else command
        for management in re.findall(r"manage\.py (\w+)", text):
            assert management in commands, (name, management)
        if text.startswith("gunicorn"):
            import importlib

            module, _, attribute = text.split()[1].partition(":")
            assert hasattr(importlib.import_module(module), attribute)
        if text.startswith("celery"):
            from digits_site.celery import app

            assert text.split()[2] == "digits_site" and app.main == "digits"


def test_every_setting_it_sets_is_read():
    settings_block = compose()["x-settings"]
    web_env = compose()["services"]["web"]["environment"]
    for key in {*settings_block, *web_env} - {"<<"}:
        read = re.search(rf'["\']{key}["\']', SETTINGS_SOURCE) or key == "WEB_CONCURRENCY"
        assert read, f"{key} is set by docker-compose.yml but never read"
    assert "WEB_CONCURRENCY" in (ROOT / "digits_site/management/commands/serve.py").read_text()


def test_the_dockerfile_installs_the_project():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'pip install ".[${EXTRAS}]"' in dockerfile and "collectstatic" in dockerfile
    assert re.search(r"^FROM python:3\.11", dockerfile, re.M)
