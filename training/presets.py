"""Named run configurations for the admin's Retrain form, the API and ``retrain``."""

from __future__ import annotations

from training.models import ARCHITECTURE_NAMES

PRESETS: dict[str, dict] = {
    # Minutes on a CPU: a smoke test of the whole pipeline, not a better model.
    "quick": {"architecture": "digitnet", "epochs": 2, "limit": 4000},
    # The bootstrap model's recipe: about 20 minutes on the 2-core CPU.
    "default": {"architecture": "digitnet", "epochs": 22},
    # The prior work's models, for comparison on the same data and test sets.
    **{
        name: {"architecture": name, "epochs": 15}
        for name in ARCHITECTURE_NAMES
        if name != "digitnet"
    },
}


def config_for(name: str) -> dict:
    return dict(PRESETS.get(name, {}))
