"""training.architectures: every named model builds and runs one batch."""

from __future__ import annotations

import numpy as np
import pytest

from training import architectures
from training.config import DEFAULTS


@pytest.mark.parametrize("name", sorted(architectures.ARCHITECTURES))
def test_each_architecture_builds_and_answers_a_batch(name):
    model = architectures.build(name)
    probabilities = np.asarray(
        model(np.random.rand(4, 28, 28, 1).astype("float32"), training=False)
    )
    assert probabilities.shape == (4, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_the_default_is_much_cheaper_than_the_prior_cnns():
    ours = architectures.build(DEFAULTS.architecture).count_params()
    assert ours * 10 < architectures.build("canvas-cnn").count_params()
    assert ours * 3 < architectures.build("kaggle-cnn").count_params()


def test_unknown_architecture_names_the_choices():
    with pytest.raises(ValueError, match="digitnet"):
        architectures.build("resnet-9000")


def test_the_run_form_offers_exactly_the_registered_architectures():
    from training.config import ARCHITECTURE_NAMES

    assert set(ARCHITECTURE_NAMES) == set(architectures.ARCHITECTURES)
    assert DEFAULTS.architecture in architectures.ARCHITECTURES
