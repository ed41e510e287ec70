"""manage.py evaluate: scores the served artifact; last line is machine-readable."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import CommandError, call_command

from classifier.registry import BOOTSTRAP_DIR


def run_evaluate(*args: str) -> list[str]:
    out = io.StringIO()
    call_command("evaluate", *args, stdout=out)
    return out.getvalue().strip().splitlines()


def test_evaluate_the_active_model_on_mnist(active_model):
    lines = run_evaluate("--dataset", "mnist-test")
    match = re.fullmatch(r"accuracy=(\d\.\d+) n=(\d+) ece=(\d\.\d+)", lines[-1])
    assert match, lines[-1]
    accuracy, n = float(match.group(1)), int(match.group(2))
    assert n == 10_000
    # the same figure the training run recorded for the same artifact
    assert accuracy == pytest.approx(active_model.test_accuracy("mnist-test"), abs=1e-6)
    assert any(line.startswith("digit  precision  recall") for line in lines)
    assert sum(1 for line in lines if re.match(r"^\s+\d( +\d+){10}$", line)) == 10


def test_evaluate_a_given_model_on_unseen_pen_writers(db):
    lines = run_evaluate("--dataset", "pendigits", "--model", str(BOOTSTRAP_DIR / "model.tflite"))
    match = re.fullmatch(r"accuracy=(\d\.\d+) n=(\d+) ece=(\d\.\d+)", lines[-1])
    assert match and int(match.group(2)) > 1000
    assert float(match.group(1)) >= 0.99


def test_evaluate_without_a_model_says_so(db):
    with pytest.raises(CommandError, match="No model"):
        call_command("evaluate", "--dataset", "mnist-test", stdout=io.StringIO())


def test_evaluate_a_missing_file(db, tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("evaluate", "--model", str(tmp_path / "nope.tflite"), stdout=io.StringIO())


@pytest.mark.parametrize("given", [True, False])
def test_evaluate_styles_prints_each_view_and_both_as_the_run_reported(db, given, request):
    """Per style: the picture alone, the pen alone and both, for a run directory or
    the active version alike, equal to what the bootstrap's report says."""
    import json

    if not given:
        request.getfixturevalue("active_model")
    lines = run_evaluate("--dataset", "styles", *(["--model", str(BOOTSTRAP_DIR)] if given else []))
    styles = json.loads((BOOTSTRAP_DIR / "metrics.json").read_text())["pen"]["styles"]
    rows = {
        line.split()[0]: line.split()[1:4] for line in lines if line.strip().split(" ")[0] in styles
    }
    assert set(rows) == set(styles)
    for name, figures in rows.items():
        expected = [
            f"{styles[name][view]['accuracy'] * 100:.2f}%" for view in ("image", "pen", "combined")
        ]
        assert figures == expected, name
