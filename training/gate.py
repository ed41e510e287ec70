"""The quality gate between a trained candidate and the serving model.

Every model is asked the same images in the same run: the candidate, the active
model and the bootstrap model (the one shipped with the code). Whether the
candidate is worse is a question about the images where they disagree, answered
with McNemar's exact test: of the images that changed, ``lost`` the active model
got right and the candidate does not, ``gained`` the other way; if the two were
equally good, each changed image would be a fair coin, so the chance of ``lost``
or more heads in ``lost + gained`` tosses is the p-value. A set rejects only when
that chance is under ``DIGITS_GATE_SIGNIFICANCE`` *and* the net loss is at least
``DIGITS_GATE_MIN_EFFECT`` of the set: one image in 156 never decides (p = 0.5),
a loss of 0.3 points on MNIST's 10,000 always does.

Which sets judge, and how much:

* **real people** (MNIST's writers, the held-out pen writers and their scans, the
  UJI continental writers, the contributed drawings' test split): each judged on
  its own;
* **synthetic styles** (``style:*``): pooled into one family, judged with a larger
  minimum effect (``DIGITS_GATE_MIN_EFFECT_SYNTHETIC``), since they stand for
  writers rather than being them; each style is reported, not judged. The same
  drawings answered as the page sends them, picture and strokes (``style:*+pen``),
  are a second pooled family, ``styles+pen``, judged alike, so that a run which
  keeps the pictures but reads the page's drawings worse is caught;
* **probes** (``probe:*``, kept out of training on purpose): reported only.

Each judged set also has a floor (``DIGITS_GATE_FLOORS``), and may not drift from
the bootstrap model: significantly worse than it by more than
``DIGITS_GATE_DRIFT`` rejects, so many fine-tunes cannot each lose a little.
A candidate significantly better on some real set and worse on none is said to be
better for real writers; one worse on none is promoted.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from django.conf import settings

DRAWINGS_TEST = "drawings-test"
BOTH = "+pen"  # a test set answered by both views: "ujipen+pen"
STYLES = "styles"  # the pooled family of ``style:*`` sets (their pictures)
STYLES_SERVED = STYLES + BOTH  # the pooled family of ``style:*+pen`` sets

REAL, SYNTHETIC, STYLE, PROBE = "real people", "synthetic styles", "one style", "probe"
DISJOINT = "shapes no run trains on"  # a family's held-out band: shown, never gates


def role_of(name: str) -> str:
    if name.startswith("probe:"):
        return PROBE
    if name.startswith("disjoint:"):
        return DISJOINT
    if name.startswith("style:"):
        return STYLE
    if name in (STYLES, STYLES_SERVED):
        return SYNTHETIC
    return REAL


def floor_for(name: str) -> float:
    """A test set's floor: its own, its family's (``style:*`` for the pooled
    styles), or the default."""
    floors: dict[str, float] = settings.DIGITS_GATE_FLOORS
    family = (
        "style:*"
        if role_of(name) == SYNTHETIC
        else (name.split(":", 1)[0] + ":*" if ":" in name else None)
    )
    return floors.get(name, floors.get(family, floors.get("default", 0.0)))


def worse_p_value(lost: int, gained: int) -> float:
    """McNemar's exact test, one-sided: the chance of ``lost`` or more of the
    ``lost + gained`` changed images going against the candidate if the two models
    were equally good (each change a fair coin)."""
    changed = lost + gained
    if changed == 0 or lost == 0:
        return 1.0
    tail = sum(math.comb(changed, k) for k in range(lost, changed + 1))
    return tail / 2**changed


@dataclass
class Comparison:
    """The candidate against another model on one set's images."""

    accuracy: float  # the other model's
    gained: int  # right now, wrong before
    lost: int  # wrong now, right before
    p_worse: float
    p_better: float

    @classmethod
    def of(cls, truth: np.ndarray, candidate: np.ndarray, other: np.ndarray) -> Comparison:
        mine, theirs = candidate == truth, other == truth
        gained, lost = int((mine & ~theirs).sum()), int((~mine & theirs).sum())
        return cls(float(theirs.mean()), gained, lost,
                   worse_p_value(lost, gained), worse_p_value(gained, lost))  # fmt: skip

    def net_loss(self, n: int) -> float:
        return (self.lost - self.gained) / n


@dataclass
class SetVerdict:
    name: str
    role: str
    n: int
    candidate: float
    judged: bool  # whether it can reject the candidate
    floor: float | None = None
    active: Comparison | None = None
    bootstrap: Comparison | None = None
    result: str = "reported"  # passed, failed, better, reported, too small
    reasons: list[str] = field(default_factory=list)


@dataclass
class GateDecision:
    passed: bool
    reasons: list[str] = field(default_factory=list)
    sets: list[SetVerdict] = field(default_factory=list)
    better_on_real: list[str] = field(default_factory=list)
    significance: float = 0.0
    against: int | None = None  # the version that was serving, compared with

    @property
    def summary(self) -> str:
        if not self.passed:
            return "rejected: " + "; ".join(self.reasons)
        if self.better_on_real:
            return ("promoted: significantly better for real writers on "
                    + ", ".join(self.better_on_real) + ", worse on none")  # fmt: skip
        return "promoted: not significantly worse on any judged set"

    def as_dict(self) -> dict:
        return {**asdict(self), "summary": self.summary}


def _judge(verdict: SetVerdict, min_effect: float) -> None:
    alpha, drift = settings.DIGITS_GATE_SIGNIFICANCE, settings.DIGITS_GATE_DRIFT
    name, n, points = verdict.name, verdict.n, 100.0
    if verdict.floor is not None and verdict.candidate < verdict.floor:
        verdict.reasons.append(f"{name}: {verdict.candidate * points:.2f}% is under the floor "
                               f"of {verdict.floor * points:.2f}%")  # fmt: skip
    active = verdict.active
    if active is not None and active.p_worse < alpha and active.net_loss(n) >= min_effect:
        verdict.reasons.append(
            f"{name}: worse than the active model: {verdict.candidate * points:.2f}% against "
            f"{active.accuracy * points:.2f}% on the same {n} images ({active.lost} lost, "
            f"{active.gained} gained, p = {active.p_worse:.2g})"
        )
    boot = verdict.bootstrap
    if boot is not None and boot.p_worse < alpha and boot.net_loss(n) > drift:
        verdict.reasons.append(
            f"{name}: drifted from the bootstrap model: {verdict.candidate * points:.2f}% against "
            f"its {boot.accuracy * points:.2f}% ({boot.lost} lost, {boot.gained} gained, "
            f"p = {boot.p_worse:.2g}; {drift * points:.1f} points allowed)"
        )
    if verdict.reasons:
        verdict.result = "failed"
    elif active is not None and active.p_better < alpha and -active.net_loss(n) >= min_effect:
        verdict.result = "better"
    else:
        verdict.result = "passed"


def decide(
    truth: dict[str, np.ndarray],
    candidate: dict[str, np.ndarray],
    active: dict[str, np.ndarray] | None,
    bootstrap: dict[str, np.ndarray] | None = None,
) -> GateDecision:
    """Each argument maps a test set's name to digits, one per image in the same
    order: the true labels, and what the candidate, the active model (None when
    none is active) and the bootstrap model (None when it cannot be scored)
    answered."""
    minimum = settings.DIGITS_GATE_MIN_TEST_SIZE
    decision = GateDecision(passed=True, significance=settings.DIGITS_GATE_SIGNIFICANCE)
    units = dict(truth)
    styles = sorted(name for name in truth if role_of(name) == STYLE)
    families = {
        STYLES: [name for name in styles if not name.endswith(BOTH)],
        STYLES_SERVED: [name for name in styles if name.endswith(BOTH)],
    }
    for family, members in families.items():
        if members:
            units[family] = np.concatenate([truth[name] for name in members])

    def answers(of: dict[str, np.ndarray] | None, name: str) -> np.ndarray | None:
        if of is None:
            return None
        if name in families:
            parts = [of.get(style) for style in families[name]]
            return None if any(p is None for p in parts) else np.concatenate(parts)
        return of.get(name)

    for name, labels in units.items():
        role, mine = role_of(name), answers(candidate, name)
        verdict = SetVerdict(name, role, len(labels), float((mine == labels).mean()) if len(labels)
                             else 0.0, judged=role in (REAL, SYNTHETIC))  # fmt: skip
        for attribute, other in (("active", active), ("bootstrap", bootstrap)):
            theirs = answers(other, name)
            if theirs is not None and len(theirs) == len(labels):
                setattr(verdict, attribute, Comparison.of(labels, mine, theirs))
        if verdict.judged and verdict.n < minimum:
            verdict.judged, verdict.result = False, "too small"
        if verdict.judged:
            verdict.floor = floor_for(name)
            _judge(verdict, settings.DIGITS_GATE_MIN_EFFECT if role == REAL
                   else settings.DIGITS_GATE_MIN_EFFECT_SYNTHETIC)  # fmt: skip
            decision.reasons += verdict.reasons
            if verdict.result == "better" and role == REAL:
                decision.better_on_real.append(name)
        decision.sets.append(verdict)
    decision.passed = not decision.reasons
    return decision
