"""training.gate: floors on each test set, and no worse than the active model."""

from __future__ import annotations

from training.gate import decide


def report(accuracy: float, n: int = 1000) -> dict:
    return {"accuracy": accuracy, "n": n}


def test_passes_when_every_floor_is_met_and_it_is_no_worse(settings):
    settings.DIGITS_GATE_FLOORS = {"mnist-test": 0.99, "drawings-test": 0.9, "default": 0.9}
    decision = decide(
        {"mnist-test": report(0.995), "drawings-test": report(0.95, 40)}, report(0.95, 40)
    )
    assert decision.passed and decision.reasons == []


def test_a_floor_missed_is_a_reason(settings):
    settings.DIGITS_GATE_FLOORS = {"mnist-test": 0.99, "default": 0.9}
    decision = decide({"mnist-test": report(0.985)}, None)
    assert not decision.passed
    assert decision.reasons == ["mnist-test: 98.50% is under the floor of 99.00%"]


def test_worse_than_the_active_model_on_the_same_drawings_is_rejected(settings):
    settings.DIGITS_GATE_FLOORS = {"default": 0.5}
    decision = decide({"drawings-test": report(0.90, 50)}, report(0.92, 50))
    assert not decision.passed
    assert "worse than the active model's 92.00% on the same 50 drawings" in decision.reasons[0]


def test_tiny_test_sets_are_not_judged_by_floors(settings):
    settings.DIGITS_GATE_FLOORS = {"default": 0.99}
    settings.DIGITS_GATE_MIN_TEST_SIZE = 20
    decision = decide({"drawings-test": report(0.5, 4)}, None)
    assert decision.passed
    assert decision.checks[0]["result"] == "skipped"
