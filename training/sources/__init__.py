"""Where a run's data comes from: one module per source, each returning a
:class:`~training.sources.base.Part` (train, val, tests, pools, manifest).

Every source makes 28×28 uint8 model inputs (ink bright on dark) through
``classifier.preprocessing``, the function serving uses, so there is no
train/serve skew; pen strokes are drawn by ``classifier.canvas`` first.
``load_training_data`` asks each enabled source for its part and puts the
parts together.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from collector.formats import DatasetError
from training.config import TrainConfig
from training.sources import (
    drawings,
    emnist,
    image_folder,
    kaggle,
    mnist,
    pendigits,
    synthetic,
    ujipen,
    usps,
)
from training.sources.base import (
    Images,
    Part,
    Pool,
    Report,
    held_out_order,
    hold_out,
    quiet,
    take,
)

# Each source's parts, in the order they are asked (their random draws follow it).
PARTS = {
    "mnist": (mnist.part,),
    "pendigits": (pendigits.part, synthetic.part),
    "ujipen": (ujipen.part,),
    "drawings": (drawings.part,),
    "kaggle": (kaggle.part,),
    "emnist": (emnist.part,),
    "usps": (usps.part,),
    "folder": (image_folder.part,),
}


@dataclass
class TrainingData:
    train: Images
    val: Images
    tests: dict[str, Images] = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)
    pools: list[Pool] = field(default_factory=list)

    def __len__(self) -> int:
        """Images per epoch: the fixed ones plus every pool's draws."""
        return len(self.train) + sum(pool.draws for pool in self.pools)


def load_training_data(config: TrainConfig, report: Report = quiet) -> TrainingData:
    """Each enabled source's train, validation and test parts; tests are kept per
    source so a model is judged separately on each kind of writing. ``report``
    hears each step, with counts where a step is long."""
    rng = np.random.default_rng(config.seed)
    whole = Part()
    for source, parts in PARTS.items():
        if source not in config.sources:
            continue
        for ask in parts:
            part = ask(config, rng, report)
            whole.train += part.train
            whole.val += part.val
            whole.tests.update(part.tests)
            whole.pools += part.pools
            whole.manifest.setdefault(source, {}).update(part.manifest)
    if not whole.train and not whole.pools:
        raise DatasetError("The chosen sources hold no training data.")
    if "ujipen" not in whole.tests and ujipen.ujipen_path().exists():
        # The held-out continental writers judge every run (training.gate), whether
        # or not the run trains on the other UJI writers.
        whole.tests["ujipen"] = take(ujipen.ujipen_test_set(), config.limit, rng)
    train = Images.concat(whole.train) if whole.train else Images.empty()
    val, pools = whole.val, whole.pools
    if not val and len(train):  # no validation data: hold some training images back
        train, held = hold_out(train, rng)
        val = [held]
    elif not val:  # only a pool (drawings only): some of its drawings, out of it
        held, kept = held_out_order(len(pools[0]), rng)
        val = [Images(pools[0].inputs(held)[:, 0], pools[0].y[held])]
        pools[0] = pools[0].select(kept)
    return TrainingData(train, Images.concat(val), whole.tests, whole.manifest, pools)


__all__ = ["Images", "Pool", "TrainingData", "load_training_data"]
