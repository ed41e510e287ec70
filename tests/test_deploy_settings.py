"""Production settings: `manage.py check --deploy` is clean with a production-like
environment, and no secret lives in the repository."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_check_deploy_is_clean_in_production(tmp_path):
    env = {
        **os.environ,
        "DIGITS_DATA_DIR": str(tmp_path),
        "DJANGO_DEBUG": "0",
        "DIGITS_HTTPS": "1",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(60),
        "DJANGO_ALLOWED_HOSTS": "digits.example.com",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_no_secret_key_is_committed():
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert "var/secret_key" not in tracked and not any(p.endswith("secret_key") for p in tracked)
    settings_source = (ROOT / "digits_site" / "settings.py").read_text()
    # the key comes from the environment or a file generated into the data directory
    assert not re.search(r"SECRET_KEY\s*=\s*[rbf]?['\"]", settings_source)
    assert not re.search(r"PASSWORD\s*=\s*[rbf]?['\"]", settings_source)
