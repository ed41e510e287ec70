"""Make a benchmark script a Django process (settings from the environment)."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digits_site.settings")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import django  # noqa: E402

django.setup()
