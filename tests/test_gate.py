"""training.gate: "worse than the active model" as a paired statistical question
(McNemar's exact test on the images that changed, with a minimum effect), real
people judged set by set, synthetic styles pooled and weighing less, probes never
judged, floors, and a floor relative to the bootstrap model against drift."""

from __future__ import annotations

import numpy as np
import pytest

from training.gate import STYLES, STYLES_SERVED, decide, floor_for, worse_p_value


@pytest.fixture(autouse=True)
def the_default_rules(settings):
    settings.DIGITS_GATE_FLOORS = {"style:*": 0.9, "probe:*": 0.0, "default": 0.5}
    settings.DIGITS_GATE_SIGNIFICANCE = 0.01
    settings.DIGITS_GATE_MIN_EFFECT = 0.002
    settings.DIGITS_GATE_MIN_EFFECT_SYNTHETIC = 0.01
    settings.DIGITS_GATE_DRIFT = 0.005
    settings.DIGITS_GATE_MIN_TEST_SIZE = 20


def answers(n: int, wrong: set[int] | range, rng_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """True labels for ``n`` images and answers that are right except at ``wrong``."""
    truth = np.random.default_rng(rng_seed).integers(0, 10, n)
    said = truth.copy()
    for i in wrong:
        said[i] = (truth[i] + 1) % 10
    return truth, said


def test_mcnemar_exact_p_values():
    assert worse_p_value(1, 0) == 0.5  # one image lost, none gained: a coin toss
    assert worse_p_value(0, 5) == 1.0
    assert worse_p_value(10, 0) == pytest.approx(1 / 1024)
    assert worse_p_value(5, 5) == pytest.approx(0.623, abs=1e-3)


def test_one_image_on_a_small_set_never_rejects():
    # The case that blocked real contributions: 98.08 % against 98.72 % on 156 images.
    truth, active = answers(156, {3, 40})
    _, candidate = answers(156, {3, 40, 77})
    decision = decide({"style:continental-one-both": truth}, {"style:continental-one-both":
                      candidate}, {"style:continental-one-both": active})  # fmt: skip
    assert decision.passed, decision.reasons
    for n in (40, 156, 499):  # nor on a real set of any small size
        truth, active = answers(n, set())
        _, candidate = answers(n, {0})
        assert decide({"drawings-test": truth}, {"drawings-test": candidate},
                      {"drawings-test": active}).passed  # fmt: skip


def test_a_real_regression_on_a_large_set_always_rejects():
    # 0.3 points worse on MNIST's 10,000: 50 images lost, 20 gained.
    truth, active = answers(10_000, range(0, 40))
    _, candidate = answers(10_000, [*range(20, 40), *range(100, 150)])
    decision = decide({"mnist-test": truth}, {"mnist-test": candidate}, {"mnist-test": active})
    assert not decision.passed
    assert decision.reasons == [
        "mnist-test: worse than the active model: 99.30% against 99.60% on the same 10000 "
        "images (50 lost, 20 gained, p = 0.00022)"
    ]
    verdict = decision.sets[0]
    assert (verdict.active.lost, verdict.active.gained, verdict.result) == (50, 20, "failed")


def test_significant_but_tiny_changes_do_not_reject():
    # 15 lost, 0 gained on 10,000 (p = 3e-5) is 0.15 points: under the minimum effect.
    truth, active = answers(10_000, set())
    _, candidate = answers(10_000, range(15))
    assert decide({"mnist-test": truth}, {"mnist-test": candidate}, {"mnist-test": active}).passed


def test_probes_never_gate():
    truth, active = answers(156, range(100))  # the active model read 56 of them
    _, candidate = answers(156, range(150))  # the candidate reads 6
    decision = decide({"probe:backslashed-zero": truth}, {"probe:backslashed-zero": candidate},
                      {"probe:backslashed-zero": active})  # fmt: skip
    assert decision.passed
    (verdict,) = decision.sets
    assert not verdict.judged and verdict.result == "reported"
    assert (verdict.active.lost, verdict.active.gained) == (50, 0)  # still shown


def test_styles_are_judged_as_one_pooled_family_weighing_less():
    names = [f"style:s{k}" for k in range(15)]
    truth, active, candidate = {}, {}, {}
    for k, name in enumerate(names):
        truth[name], active[name] = answers(156, set(), k)
        # each style loses 3 images: 1.9 points on each, 1.9 points pooled
        candidate[name] = answers(156, range(3), k)[1] if k < 14 else active[name]
    decision = decide(truth, candidate, active)
    pooled = next(v for v in decision.sets if v.name == STYLES)
    assert pooled.judged and pooled.n == 15 * 156 and pooled.active.lost == 42
    assert not decision.passed and decision.reasons[0].startswith("styles: worse")
    assert all(not v.judged for v in decision.sets if v.name.startswith("style:"))
    # one point lost on the pooled family passes the synthetic threshold (1 point)...
    for k, name in enumerate(names):
        candidate[name] = answers(156, range(1), k)[1] if k < 10 else active[name]
    assert decide(truth, candidate, active).passed
    # ...where the same loss on a real set of the same size rejects
    truth_r, active_r = answers(2340, set())
    _, candidate_r = answers(2340, range(10))
    assert not decide({"pendigits": truth_r}, {"pendigits": candidate_r},
                      {"pendigits": active_r}).passed  # fmt: skip


def test_the_styles_as_the_page_sends_them_are_a_family_of_their_own():
    # The pictures hold; the served answers (picture and strokes) lose 3 images
    # on each of 15 styles: 1.9 points pooled, caught on their own family.
    truth, active, candidate = {}, {}, {}
    for k in range(15):
        picture, served = f"style:s{k}", f"style:s{k}+pen"
        truth[picture], active[picture] = answers(156, set(), k)
        truth[served], active[served] = truth[picture], active[picture]
        candidate[picture] = active[picture]
        candidate[served] = answers(156, range(3), k)[1]
    decision = decide(truth, candidate, active)
    pooled = {v.name: v for v in decision.sets if v.name in (STYLES, STYLES_SERVED)}
    assert pooled[STYLES].n == pooled[STYLES_SERVED].n == 15 * 156
    assert pooled[STYLES].result == "passed" and pooled[STYLES].active.lost == 0
    assert pooled[STYLES_SERVED].judged and pooled[STYLES_SERVED].active.lost == 45
    assert decision.reasons and all(r.startswith("styles+pen: worse") for r in decision.reasons)
    assert floor_for(STYLES_SERVED) == 0.9  # the styles' floor
    # the same loss on the pictures alone, the served answers holding: the other family
    for k in range(15):
        candidate[f"style:s{k}"], candidate[f"style:s{k}+pen"] = (
            answers(156, range(3), k)[1],
            active[f"style:s{k}+pen"],
        )
    assert [r.split(":")[0] for r in decide(truth, candidate, active).reasons] == [STYLES]


def test_the_bootstrap_floor_stops_drift_that_each_step_hides():
    # Each fine-tune lost a little; against the active model this step is fine...
    truth, bootstrap = answers(10_000, range(40))  # the bootstrap: 99.60 %
    _, active = answers(10_000, range(100))  # after some steps: 99.00 %
    _, candidate = answers(10_000, range(105))  # this one: 98.95 %
    decision = decide({"mnist-test": truth}, {"mnist-test": candidate}, {"mnist-test": active},
                      {"mnist-test": bootstrap})  # fmt: skip
    assert not decision.passed
    (reason,) = decision.reasons
    assert reason.startswith("mnist-test: drifted from the bootstrap model: 98.95% against its "
                             "99.60% (65 lost, 0 gained")  # fmt: skip
    # ...and within the drift allowance (0.5 points) it passes
    _, candidate = answers(10_000, range(80))
    assert decide({"mnist-test": truth}, {"mnist-test": candidate}, {"mnist-test": active},
                  {"mnist-test": bootstrap}).passed  # fmt: skip


def test_significantly_better_for_real_writers_is_said():
    truth, active = answers(2000, range(60))
    _, candidate = answers(2000, range(20))
    decision = decide({"ujipen": truth, "probe:x": truth[:50]},
                      {"ujipen": candidate, "probe:x": truth[:50]},
                      {"ujipen": active, "probe:x": truth[:50]})  # fmt: skip
    assert decision.passed and decision.better_on_real == ["ujipen"]
    assert decision.summary.startswith("promoted: significantly better for real writers on ujipen")
    verdict = decision.as_dict()["sets"][0]
    assert verdict["result"] == "better" and verdict["active"]["gained"] == 40
    assert verdict["active"]["p_better"] < 1e-9


def test_floors_and_tiny_sets():
    truth, said = answers(1000, range(20))
    decision = decide({"mnist-test": truth}, {"mnist-test": said}, None)
    assert decision.passed  # 98 % over the default floor of 50 %, no active model
    decision = decide({"pendigits": truth}, {"pendigits": said}, None)
    assert decision.passed
    tiny_truth, tiny = answers(4, range(4))
    verdict = decide({"drawings-test": tiny_truth}, {"drawings-test": tiny}, None).sets[0]
    assert verdict.result == "too small" and not verdict.judged


def test_a_floor_missed_is_a_reason(settings):
    settings.DIGITS_GATE_FLOORS = {"mnist-test": 0.99, "default": 0.9}
    truth, said = answers(1000, range(15))
    decision = decide({"mnist-test": truth}, {"mnist-test": said}, None)
    assert decision.reasons == ["mnist-test: 98.50% is under the floor of 99.00%"]


def test_family_floors(settings):
    settings.DIGITS_GATE_FLOORS = {"style:*": 0.9, "probe:*": 0.0, "default": 0.95}
    assert floor_for("style:slashed-zero") == 0.9 and floor_for(STYLES) == 0.9
    assert floor_for("probe:dotted-zero") == 0.0
    assert floor_for("pendigits") == 0.95


def test_a_familys_held_out_shapes_never_gate_nor_join_the_pooled_styles():
    truth, active = answers(300, set())
    _, candidate = answers(300, range(120))  # far worse on shapes no run trains on
    name = "disjoint:continental-one-flag"
    decision = decide({name: truth, "style:a": truth}, {name: candidate, "style:a": active},
                      {name: active, "style:a": active})  # fmt: skip
    assert decision.passed
    shown = next(v for v in decision.sets if v.name == name)
    assert not shown.judged and shown.active.lost == 120  # shown, with its figures
    pooled = next(v for v in decision.sets if v.name == STYLES)
    assert pooled.n == 300  # the style alone, not the held-out shapes
