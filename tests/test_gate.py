"""training.gate: floors on each test set, and no worse than the active model on
any of them (beyond a tolerance), compared on the same images in the same run."""

from __future__ import annotations

from training.gate import decide, floor_for


def report(accuracy: float, n: int = 1000) -> dict:
    return {"accuracy": accuracy, "n": n}


def test_passes_when_every_floor_is_met_and_it_is_no_worse(settings):
    settings.DIGITS_GATE_FLOORS = {"mnist-test": 0.99, "drawings-test": 0.9, "default": 0.9}
    decision = decide(
        {"mnist-test": report(0.995), "drawings-test": report(0.95, 40)},
        {"mnist-test": report(0.995), "drawings-test": report(0.95, 40)},
    )
    assert decision.passed and decision.reasons == []


def test_a_floor_missed_is_a_reason(settings):
    settings.DIGITS_GATE_FLOORS = {"mnist-test": 0.99, "default": 0.9}
    decision = decide({"mnist-test": report(0.985)}, None)
    assert not decision.passed
    assert decision.reasons == ["mnist-test: 98.50% is under the floor of 99.00%"]


def test_worse_than_the_active_model_on_the_same_drawings_is_rejected(settings):
    settings.DIGITS_GATE_FLOORS = {"default": 0.5}
    settings.DIGITS_GATE_TOLERANCE = 0.002
    decision = decide({"drawings-test": report(0.90, 50)}, {"drawings-test": report(0.92, 50)})
    assert not decision.passed
    assert "worse than the active model's 92.00% on the same 50 images" in decision.reasons[0]


def test_worse_on_any_judged_set_beyond_the_tolerance_is_rejected(settings):
    settings.DIGITS_GATE_FLOORS = {"default": 0.5}
    settings.DIGITS_GATE_TOLERANCE = 0.002
    active = {
        "mnist-test": report(0.996),
        "pendigits": report(0.99),
        "style:slashed-zero": report(0.98, 150),
    }
    # better on the style, a hair worse on MNIST (within tolerance): it passes
    within = {**active, "mnist-test": report(0.9945), "style:slashed-zero": report(0.99, 150)}
    assert decide(within, active).passed
    # but losing half a point on held-out pen writers is a reason, whatever it gains
    worse = {**within, "pendigits": report(0.985)}
    decision = decide(worse, active)
    assert not decision.passed and len(decision.reasons) == 1
    assert decision.reasons[0].startswith("pendigits: 98.50% is worse")


def test_tiny_test_sets_are_not_judged(settings):
    settings.DIGITS_GATE_FLOORS = {"default": 0.99}
    settings.DIGITS_GATE_MIN_TEST_SIZE = 20
    decision = decide({"drawings-test": report(0.5, 4)}, {"drawings-test": report(1.0, 4)})
    assert decision.passed
    assert decision.checks[0]["result"] == "skipped"


def test_style_families_have_their_own_floors(settings):
    settings.DIGITS_GATE_FLOORS = {"style:*": 0.9, "probe:*": 0.0, "default": 0.95}
    assert floor_for("style:slashed-zero") == 0.9
    assert floor_for("probe:dotted-zero") == 0.0
    assert floor_for("pendigits") == 0.95
    # a probe, a style the model was never taught, is reported but not floored
    assert decide({"probe:dotted-zero": report(0.3, 150)}, None).passed
