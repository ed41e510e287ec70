"""The quality gate between a trained candidate and the serving model.

A candidate passes when it reaches the floor on every test set big enough to
judge, and is not worse than the active model on the *same* test drawings,
both scored in the same run with the artifacts that would be served.
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


def decide(candidate: dict[str, dict], active_on_drawings: dict | None) -> GateDecision:
    """``candidate``: test-set name → report; ``active_on_drawings``: the active
    model's report on the same drawings test split (None when there is none)."""
    floors: dict[str, float] = settings.DIGITS_GATE_FLOORS
    minimum = settings.DIGITS_GATE_MIN_TEST_SIZE
    decision = GateDecision(passed=True)
    for name, report in candidate.items():
        floor = floors.get(name, floors.get("default", 0.0))
        if report["n"] < minimum:
            decision.checks.append(
                {
                    "check": f"floor on {name}",
                    "result": "skipped",
                    "why": f"only {report['n']} images",
                }
            )
            continue
        ok = report["accuracy"] >= floor
        decision.checks.append(
            {"check": f"floor on {name}", "result": "pass" if ok else "fail",
             "accuracy": report["accuracy"], "floor": floor}
        )  # fmt: skip
        if not ok:
            decision.reasons.append(
                f"{name}: {report['accuracy'] * 100:.2f}% is under the floor of {floor * 100:.2f}%"
            )
    drawings = candidate.get(DRAWINGS_TEST)
    if drawings is not None and active_on_drawings is not None:
        ok = drawings["accuracy"] >= active_on_drawings["accuracy"]
        decision.checks.append(
            {"check": "no worse than the active model on the same test drawings",
             "result": "pass" if ok else "fail", "candidate": drawings["accuracy"],
             "active": active_on_drawings["accuracy"], "n": drawings["n"]}
        )  # fmt: skip
        if not ok:
            decision.reasons.append(
                f"{DRAWINGS_TEST}: {drawings['accuracy'] * 100:.2f}% is worse than the active "
                f"model's {active_on_drawings['accuracy'] * 100:.2f}% on the same "
                f"{drawings['n']} drawings"
            )
    else:
        decision.checks.append(
            {"check": "no worse than the active model on the same test drawings",
             "result": "skipped", "why": "no approved test drawings or no active model"}
        )  # fmt: skip
    decision.passed = not decision.reasons
    return decision
