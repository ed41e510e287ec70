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

            assert "--config python:digits_site.gunicorn_conf" in text
            config = importlib.import_module("digits_site.gunicorn_conf")
            module, _, attribute = config.wsgi_app.partition(":")
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
    assert "WEB_CONCURRENCY" in (ROOT / "digits_site/gunicorn_conf.py").read_text()


def test_the_dockerfile_installs_the_project():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'pip install ".[${EXTRAS}]"' in dockerfile and "collectstatic" in dockerfile
    assert re.search(r"^FROM python:3\.11", dockerfile, re.M)


def test_only_nginx_is_published_and_the_web_trusts_only_it():
    services = compose()["services"]
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"nginx"}
    nginx = services["nginx"]
    template = "./deploy/nginx/digits.conf.template"
    assert any(
        volume.startswith(template + ":/etc/nginx/templates/") for volume in nginx["volumes"]
    )
    assert (ROOT / template).is_file()
    # Every ${VAR} of the template is given by the service (or its shared env_file).
    from operations import cluster

    given = set(nginx["environment"]) | set(cluster.shared_settings())
    needed = set(re.findall(r"\$\{([A-Z_]+)\}", (ROOT / template).read_text()))
    assert needed <= given, needed - given
    nginx_address = nginx["networks"]["edge"]["ipv4_address"]
    assert services["web"]["environment"]["DIGITS_TRUSTED_PROXIES"] == nginx_address


def test_compose_and_the_cluster_share_one_settings_file():
    """``deploy/digits.env`` is the one place for what every process shares: compose
    reads it for each Django service and nginx, ``manage.py cluster`` reads it too,
    and compose does not set any of its names again elsewhere."""
    from operations import cluster

    shared = cluster.shared_settings()
    assert shared and "DIGITS_MODEL_CHECK_SECONDS" in shared
    services = compose()["services"]
    for name in ("migrate", "web", "worker", "background", "nginx"):
        assert services[name]["env_file"] == ["deploy/digits.env"], name
        assert not set(shared) & set(services[name].get("environment") or {}), name
    assert not set(shared) & set(compose()["x-settings"])
    template = (ROOT / "deploy/nginx/digits.conf.template").read_text()
    for key in shared:
        read = re.search(rf'["\']{key}["\']', SETTINGS_SOURCE) or "${" + key + "}" in template
        assert read, f"{key} is in deploy/digits.env but nothing reads it"


def test_the_nginx_template_takes_one_server_line_per_web_host():
    from operations import services

    site = services.render_nginx_template(
        {"NGINX_LISTEN": "8080", "DIGITS_WEB_UPSTREAM": "10.0.0.1:8000", "NGINX_API_RATE": "5r/s",
         "NGINX_API_BURST": "10"},
        more_upstreams=["10.0.0.2:8000"],
    )  # fmt: skip
    upstream = site[site.index("upstream digits_web") : site.index("}", site.index("upstream"))]
    assert upstream.count("server 10.0.0.1:8000 max_fails") == 1
    assert upstream.count("server 10.0.0.2:8000 max_fails") == 1


def environment_variables_read() -> set[str]:
    """Every environment variable the code reads by name (``os.environ.get``,
    ``os.environ[...]``, ``setdefault``, ``os.getenv``, settings' ``env_bool``)."""
    import ast

    names = set()
    for folder in ("digits_site", "classifier", "collector", "training", "operations"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call) and node.args:
                    func = ast.unparse(node.func)
                    reads = func in {"os.environ.get", "os.getenv", "os.environ.setdefault",
                                     "env_bool"}  # fmt: skip
                    argument = node.args[0]
                elif isinstance(node, ast.Subscript):
                    reads, argument = ast.unparse(node.value) == "os.environ", node.slice
                else:
                    continue
                if reads and isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                    names.add(argument.value)
    text = (ROOT / "manage.py").read_text()
    names.update(re.findall(r'os\.environ(?:\.get|\.setdefault)?[\[(]"([A-Z_0-9]+)"', text))
    return names


def test_every_environment_variable_the_code_reads_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Settings") : readme.index("## Benchmarks")]
    documented = set(re.findall(r"`([A-Z][A-Z_0-9]+)`", table))
    read = environment_variables_read()
    assert {"DIGITS_MAX_REQUEST_BYTES", "DJANGO_CSRF_TRUSTED_ORIGINS"} <= read
    assert sorted(read - documented) == []
