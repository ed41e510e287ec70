"""One run configuration: every training default, rule and preset lives here.

``TrainConfig`` is what ``train()`` runs. A ``TrainingRun`` row stores the
fields in ``RUN_FIELDS`` (data sources as ``use_*`` switches, which is how
staff pick them), its field defaults come from ``DEFAULTS``, and
``TrainingRun.config()`` turns the row into a ``TrainConfig`` in one call.
The admin's Retrain form, the staff API and the ``train`` and ``retrain``
commands all check a configuration with :meth:`TrainConfig.problems`.

No Django, Keras or TensorFlow here: every web process imports it.
"""

from __future__ import annotations

import stat
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from training.recipes import OURS, RECIPE_NAMES, RECIPES

# The names in ``training.architectures`` (which imports Keras), for choices.
ARCHITECTURE_NAMES = ("digitnet", "canvas-cnn", "mlp", "kaggle-cnn", "vgg-bn", "deep-bn")
SOURCES = ("mnist", "pendigits", "drawings", "kaggle", "folder", "emnist", "usps", "ujipen")
EPOCHS_RANGE = (1, 200)
# Below this many approved training drawings, they are mixed in at their natural share.
DRAWINGS_FOR_SHARE = 50
BATCH_SIZE_RANGE = (8, 4096)

# What a run row stores and staff may set, in the order forms show them.
RUN_FIELDS = (
    "architecture", "recipe", "epochs", "batch_size", "learning_rate", "augment",
    "use_mnist", "use_pendigits", "use_drawings", "kaggle_csv", "image_folder", "limit",
    "seed", "start_from_active", "drawings_share", "correction_weight", "use_emnist",
    "use_usps", "use_ujipen", "variants",
)  # fmt: skip
# Row switches for the sources with no further setting ("kaggle" is on with a CSV
# path, "folder" with a folder of images).
SOURCE_SWITCHES = {
    "use_mnist": "mnist",
    "use_pendigits": "pendigits",
    "use_drawings": "drawings",
    "use_emnist": "emnist",
    "use_usps": "usps",
    "use_ujipen": "ujipen",
}


class ConfigError(ValueError):
    """A configuration that cannot be trained; ``problems`` maps field → message."""

    def __init__(self, problems: dict[str, str]):
        self.problems = problems
        super().__init__("; ".join(f"{field}: {message}" for field, message in problems.items()))


@dataclass(frozen=True)
class TrainConfig:
    # The bootstrap model's recipe (see classifier/bootstrap/metrics.json); a
    # recipe's optimizer, schedule, callbacks and augmentation ranges live in
    # ``training.recipes``, and a run may change its epochs, batch and rate.
    architecture: str = "digitnet"
    recipe: str = "digitnet"
    epochs: int = OURS.epochs
    batch_size: int = OURS.batch_size
    learning_rate: float = OURS.learning_rate
    # Approved contributions count by default: they are how the model improves.
    sources: tuple[str, ...] = ("mnist", "pendigits", "drawings")
    augment: bool = True
    seed: int = OURS.seed
    # For smoke runs and tests: cap each source's training set (None = all).
    limit: int | None = None
    kaggle_csv: str = ""
    # A folder of images, one sub-folder per digit (scans, photos), under the datasets folder.
    image_folder: str = ""
    # Fine-tuning: begin from the active model's weights (and its architecture).
    start_from_active: bool = False
    # Approved drawings' share of every batch once there are ``DRAWINGS_FOR_SHARE``
    # of them, so a few hundred corrections count against 60,000 MNIST images.
    drawings_share: float = 0.2
    # How much more often a correction (a drawing the model got wrong) is drawn.
    correction_weight: float = 3.0
    # Stroke-space variants rendered per pen digit and drawing (``training.strokes``),
    # and the share of them written in another style (``training.allographs``) or
    # turned into a scan-like upload.
    variants: int = 10
    style_share: float = 0.25
    scan_share: float = 0.15

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", tuple(self.sources))
        problems = self.problems()
        if problems:
            raise ConfigError(problems)

    def problems(self) -> dict[str, str]:
        """What is wrong with this configuration, by field ({} when nothing is)."""
        found: dict[str, str] = {}
        if self.architecture not in ARCHITECTURE_NAMES:
            found["architecture"] = f"Choose one of {', '.join(ARCHITECTURE_NAMES)}."
        if self.recipe not in RECIPE_NAMES:
            found["recipe"] = f"Choose one of {', '.join(RECIPE_NAMES)}."
        low, high = EPOCHS_RANGE
        if not low <= self.epochs <= high:
            found["epochs"] = f"Between {low} and {high} epochs."
        low, high = BATCH_SIZE_RANGE
        if not low <= self.batch_size <= high:
            found["batch_size"] = f"Between {low} and {high}."
        if not 0 < self.learning_rate <= 1:
            found["learning_rate"] = "Between 0 and 1."
        if not 0 <= self.drawings_share <= 0.9:
            found["drawings_share"] = "Between 0 and 0.9 of each batch."
        if not 1 <= self.correction_weight <= 20:
            found["correction_weight"] = "Between 1 and 20."
        if not 1 <= self.variants <= 64:
            found["variants"] = "Between 1 and 64."
        if not (0 <= self.style_share <= 1 and 0 <= self.scan_share <= 1):
            found["style_share"] = "Shares are between 0 and 1."
        if self.limit is not None and self.limit < 1:
            found["limit"] = "At least 1, or empty for all the data."
        unknown = sorted(set(self.sources) - set(SOURCES))
        if unknown:
            found["sources"] = f"Unknown sources {unknown}; choose from {', '.join(SOURCES)}."
        elif not self.sources:
            found["sources"] = "Choose at least one data source."
        elif "kaggle" in self.sources and not self.kaggle_csv:
            found["kaggle_csv"] = "The kaggle source needs the path of its CSV."
        if self.kaggle_csv:
            try:
                dataset_file(self.kaggle_csv)
            except ValueError as exc:
                found["kaggle_csv"] = str(exc)
        if "folder" in self.sources and not self.image_folder:
            found["image_folder"] = "The folder source needs the path of its folder."
        if self.image_folder:
            try:
                dataset_folder(self.image_folder)
            except ValueError as exc:
                found["image_folder"] = str(exc)
        return found

    @classmethod
    def from_run_fields(cls, **values) -> TrainConfig:
        """A configuration from a run's fields (``RUN_FIELDS``; missing ones default)."""
        values = {**run_fields(DEFAULTS), **values}
        unknown = set(values) - set(RUN_FIELDS)
        if unknown:
            raise ConfigError({name: "Not a run setting." for name in sorted(unknown)})
        sources = [source for switch, source in SOURCE_SWITCHES.items() if values.pop(switch)]
        if values.get("kaggle_csv"):
            sources.append("kaggle")
        if values.get("image_folder"):
            sources.append("folder")
        return cls(**values, sources=tuple(sources))

    def as_dict(self) -> dict:
        return {**asdict(self), "sources": list(self.sources)}


def _under_datasets(path: str | Path) -> Path:
    from django.conf import settings

    root = Path(settings.DIGITS_DATASETS_DIR)
    candidate = Path(path)
    try:
        resolved = (candidate if candidate.is_absolute() else root / candidate).resolve()
    except (OSError, RuntimeError):  # a name too long, a loop of links
        raise ValueError(f"{str(path)[:80]} cannot be a path under the datasets folder.") from None
    if not resolved.is_relative_to(root):
        raise ValueError(f"Only files under the datasets folder ({root}) can be used.")
    return resolved


def dataset_folder(path: str | Path) -> Path:
    """A folder staff named as training data: under ``DIGITS_DATASETS_DIR`` (after
    following links) and a folder. Its images are checked one by one when read."""
    from django.conf import settings

    resolved = _under_datasets(path)
    try:
        is_dir = resolved.is_dir()
    except OSError:  # a name too long for the file system
        is_dir = False
    if not is_dir:
        raise ValueError(
            f"{path} is not a folder under the datasets folder ({settings.DIGITS_DATASETS_DIR})."
        )
    return resolved


def dataset_file(path: str | Path) -> Path:
    """A file staff named as training data, if it may be opened: under
    ``DIGITS_DATASETS_DIR`` (after following links), a regular file (not a device
    such as /dev/zero, nor a FIFO) and at most ``DIGITS_MAX_DATASET_BYTES``.
    Checked when a run is configured and again when the worker opens it."""
    from django.conf import settings

    root = Path(settings.DIGITS_DATASETS_DIR)
    resolved = _under_datasets(path)
    try:
        info = resolved.stat()
    except OSError:
        raise ValueError(f"{path} was not found under the datasets folder ({root}).") from None
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{path} is not a regular file.")
    if info.st_size > settings.DIGITS_MAX_DATASET_BYTES:
        raise ValueError(
            f"{path} is {info.st_size:,} bytes; the limit is "
            f"{settings.DIGITS_MAX_DATASET_BYTES:,} (DIGITS_MAX_DATASET_BYTES)."
        )
    return resolved


def run_fields(config: TrainConfig) -> dict:
    """The row-shaped fields of a configuration (the inverse of ``from_run_fields``)."""
    values = {f.name: getattr(config, f.name) for f in fields(config) if f.name in RUN_FIELDS}
    values.update({switch: source in config.sources for switch, source in SOURCE_SWITCHES.items()})
    return values


DEFAULTS = TrainConfig()


def _recipe_preset(architecture: str, recipe_name: str) -> dict:
    """A preset that trains ``architecture`` with every setting of its recipe."""
    chosen = RECIPES[recipe_name]
    return {
        "architecture": architecture,
        "recipe": recipe_name,
        "epochs": chosen.epochs,
        "batch_size": chosen.batch_size,
        "learning_rate": chosen.learning_rate,
        "seed": chosen.seed,
        "augment": chosen.augmentation is not None,
    }


# Named configurations for the admin's Retrain form, the staff API and ``retrain``:
# each names only the run fields it changes from ``DEFAULTS``.
PRESETS: dict[str, dict] = {
    # Minutes on a CPU: a smoke test of the whole pipeline, not a better model.
    "quick": {"architecture": DEFAULTS.architecture, "epochs": 2, "limit": 4000},
    # A usable model in under a minute: our model, one epoch of every source with
    # a one-cycle rate (MNIST test ≥ 99 % after about 25 s on the 2-core CPU).
    "sprint": _recipe_preset(DEFAULTS.architecture, "sprint"),
    # The loop's own retrain: the active model's weights, a few short epochs on a
    # sample of every source with approved drawings at a quarter of each batch,
    # through the same gate. A few minutes on the 2-core CPU.
    "finetune": {
        "start_from_active": True,
        "epochs": 3,
        "limit": 15000,
        "learning_rate": 6e-4,
        "drawings_share": 0.25,
        # Four variants of each pen digit, not ten: three short epochs draw each
        # about twice, and a fresh instance renders them in a third of the time.
        "variants": 4,
        "use_mnist": True,
        "use_pendigits": True,
        "use_drawings": True,
    },
    # The bootstrap model's recipe: about 7 minutes on the 2-core CPU
    # (benchmarks/train_speed.py).
    "default": _recipe_preset(DEFAULTS.architecture, DEFAULTS.recipe),
    # The prior work's models, each trained with its own project's recipe, for
    # comparison on the same data and test sets.
    **{
        name: _recipe_preset(name, name)
        for name in ARCHITECTURE_NAMES
        if name != DEFAULTS.architecture
    },
}


# What each preset is for, in the words the admin's form shows.
PRESET_SUMMARIES: dict[str, str] = {
    "quick": "a smoke test of the whole pipeline (2 epochs on 4,000 images per source)",
    "sprint": "our model in one epoch with a one-cycle rate: MNIST ≥ 99 % in about half "
    "a minute on 2 cores",
    "finetune": "the serving model, 3 short epochs with the approved drawings in every "
    "batch, both views: about two minutes on 2 cores, the loop's retrain",
    "default": "the bootstrap recipe from new weights (14 epochs and the pen view: under 10 "
    "minutes on 2 cores)",
    **{
        name: f"the {RECIPES[name].project}'s model with its own recipe "
        f"({RECIPES[name].epochs} epochs, batch {RECIPES[name].batch_size})"
        for name in ARCHITECTURE_NAMES
        if name != DEFAULTS.architecture
    },
}


def preset_fields(name: str) -> dict:
    """The run fields a preset sets ({} for none); :class:`ConfigError` for an unknown one."""
    if not name:
        return {}
    if name not in PRESETS:
        raise ConfigError({"preset": f"Choose one of {', '.join(PRESETS)}."})
    return dict(PRESETS[name])


def preset_config(name: str, **overrides) -> TrainConfig:
    """The configuration a run of preset ``name`` trains with (``overrides`` on top):
    what the background warm-up and preparation build for."""
    return TrainConfig.from_run_fields(**{**preset_fields(name), **overrides})
