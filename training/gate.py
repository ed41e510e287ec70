"""The quality gate between a trained candidate and the serving model.

A candidate passes when it reaches the floor on every test set big enough to
judge, and is no worse than the active model on any of them (MNIST test, the
held-out pen writers, their scans, every style of the style test set, the
drawings' test split) by more than ``DIGITS_GATE_TOLERANCE``: both are scored
in the same run, on the same images, with the artifacts that would be served.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from django.conf import settings

DRAWINGS_TEST = "drawings-test"


@dataclass
class GateDecision:
    passed: bool
    reasons: list[str] = field(default_factory=list)
    checks: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def floor_for(name: str) -> float:
    """A test set's floor: its own, its family's (``style:*``), or the default."""
    floors: dict[str, float] = settings.DIGITS_GATE_FLOORS
    family = name.split(":", 1)[0] + ":*" if ":" in name else None
    return floors.get(name, floors.get(family, floors.get("default", 0.0)))


def decide(candidate: dict[str, dict], active: dict[str, dict] | None) -> GateDecision:
    """``candidate`` and ``active``: test-set name → report, both scored in this run
    (``active`` is None when no model is active)."""
    minimum = settings.DIGITS_GATE_MIN_TEST_SIZE
    tolerance = settings.DIGITS_GATE_TOLERANCE
    decision = GateDecision(passed=True)
    for name, report in candidate.items():
        if report["n"] < minimum:
            decision.checks.append(
                {"check": f"{name}", "result": "skipped", "why": f"only {report['n']} images"}
            )
            continue
        floor = floor_for(name)
        ok = report["accuracy"] >= floor
        decision.checks.append(
            {"check": f"floor on {name}", "result": "pass" if ok else "fail",
             "accuracy": report["accuracy"], "floor": floor}
        )  # fmt: skip
        if not ok:
            decision.reasons.append(
                f"{name}: {report['accuracy'] * 100:.2f}% is under the floor of {floor * 100:.2f}%"
            )
        theirs = (active or {}).get(name)
        if theirs is None:
            continue
        ok = report["accuracy"] >= theirs["accuracy"] - tolerance
        decision.checks.append(
            {"check": f"no worse than the active model on {name}",
             "result": "pass" if ok else "fail", "candidate": report["accuracy"],
             "active": theirs["accuracy"], "tolerance": tolerance, "n": report["n"]}
        )  # fmt: skip
        if not ok:
            decision.reasons.append(
                f"{name}: {report['accuracy'] * 100:.2f}% is worse than the active model's "
                f"{theirs['accuracy'] * 100:.2f}% on the same {report['n']} images "
                f"(tolerance {tolerance * 100:.2f} points)"
            )
    if active is None:
        decision.checks.append(
            {"check": "no worse than the active model", "result": "skipped",
             "why": "no model is active"}
        )  # fmt: skip
    decision.passed = not decision.reasons
    return decision
