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


def structure(model) -> list[tuple]:
    """Each layer as (kind, what defines it), in order: what a description lists."""
    described = []
    for layer in model.layers:
        kind = type(layer).__name__
        config = layer.get_config()
        if kind == "InputLayer":
            continue
        if kind == "Conv2D":
            described.append((kind, config["filters"], tuple(config["kernel_size"]),
                              config["padding"], config["activation"]))  # fmt: skip
        elif kind == "Dense":
            described.append((kind, config["units"], config["activation"]))
        elif kind in ("Dropout", "SpatialDropout2D"):
            described.append((kind, config["rate"]))
        elif kind == "MaxPooling2D":
            described.append((kind, tuple(config["pool_size"])))
        elif kind == "Activation":
            described.append((kind, config["activation"]))
        elif kind == "Flatten":
            described.append((kind, int(layer.output.shape[-1])))
        else:
            described.append((kind,))
    return described


C, D, P, B = "Conv2D", "Dense", ("MaxPooling2D", (2, 2)), ("BatchNormalization",)


def test_multi_dataset_cnn_is_as_described():
    relu_bn = lambda f, pad: [(C, f, (3, 3), pad, "relu"), B]  # noqa: E731
    block = lambda f, pad: [*relu_bn(f, pad), *relu_bn(f, pad), P, ("SpatialDropout2D", 0.2)]  # noqa: E731
    assert structure(architectures.build("deep-bn")) == [
        *block(32, "valid"), *block(96, "valid"), *block(128, "same"),
        ("Flatten", 512), (D, 1050, "relu"), B, ("Dropout", 0.5), (D, 10, "softmax"),
    ]  # fmt: skip
    dense = architectures.build("deep-bn").get_layer(index=-4)
    assert dense.get_config()["kernel_regularizer"]["class_name"] == "L2"


def test_vgg_style_cnn_is_as_described():
    gelu = lambda f: [(C, f, (3, 3), "same", "linear"), B, ("Activation", "gelu")]  # noqa: E731
    assert structure(architectures.build("vgg-bn")) == [
        *gelu(32), *gelu(32), P, ("SpatialDropout2D", 0.2),
        *gelu(64), *gelu(64), P, ("SpatialDropout2D", 0.25),
        *gelu(128), ("SpatialDropout2D", 0.3),  # one conv, no pooling
        ("Flatten", 6272), (D, 512, "linear"), B, ("Activation", "gelu"),
        ("Dropout", 0.35), (D, 10, "softmax"),
    ]  # fmt: skip


def test_kaggle_cnn_is_as_its_appendix_lists_it():
    assert structure(architectures.build("kaggle-cnn")) == [
        (C, 32, (5, 5), "same", "relu"), P, ("Dropout", 0.15), P, ("Dropout", 0.15),
        (C, 128, (6, 6), "same", "relu"), (C, 128, (6, 6), "same", "relu"), P,
        ("Dropout", 0.15), ("Flatten", 1152), (D, 256, "relu"), ("Dropout", 0.5),
        (D, 10, "softmax"),
    ]  # fmt: skip


def test_canvas_cnn_and_mlp_are_as_described():
    assert structure(architectures.build("canvas-cnn")) == [
        (C, 32, (5, 5), "same", "relu"), P, (C, 64, (5, 5), "same", "relu"), P,
        ("Flatten", 3136), (D, 1024, "relu"), ("Dropout", 0.5), (D, 10, "softmax"),
    ]  # fmt: skip
    assert structure(architectures.build("mlp")) == [
        ("Flatten", 784), (D, 128, "relu"), ("Dropout", 0.3), (D, 64, "relu"),
        ("Dropout", 0.3), (D, 10, "softmax"),
    ]  # fmt: skip
