"""Named Keras models, one plain function each, in one registry.

The prior work's models are here so users can compare them with ours on the
same data and the same test sets (see ``../shared/DESIGN.md``); ``digitnet``
is the default: more accurate than any of them and a fraction of their cost.
All take a (28, 28, 1) float input in [0, 1] and end in a softmax.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers, regularizers

INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10


def _conv_bn(x, filters: int, kernel: int = 3, strides: int = 1, activation: str = "relu"):
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.Activation(activation)(x)


def _head(x, dropout: float = 0.0):
    if dropout:
        x = layers.Dropout(dropout)(x)
    # Softmax in float32 even under mixed precision, for stable probabilities.
    return layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32", name="probabilities")(x)


def digitnet() -> keras.Model:
    """Ours: all-convolutional, BN everywhere, strided convs instead of pooling,
    global average pooling instead of a big dense layer. Width goes where it is
    cheap (the 7×7 stage): ~160k parameters and ~10 M multiply-adds per image,
    against canvas-cnn's 3.3 M parameters. Chosen by timing candidates with the
    real augmentation on the 2-core machine (README, "The model")."""
    inputs = keras.Input(INPUT_SHAPE)
    x = _conv_bn(inputs, 24)
    x = _conv_bn(x, 24, strides=2)  # 14×14
    x = _conv_bn(x, 48)
    x = _conv_bn(x, 48, strides=2)  # 7×7
    x = _conv_bn(x, 96)
    x = _conv_bn(x, 96)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, _head(x, 0.2), name="digitnet")


def canvas_cnn() -> keras.Model:
    """The prior canvas classifier: 2 conv 5×5 (32/64) + dense 1024 + dropout."""
    inputs = keras.Input(INPUT_SHAPE)
    x = layers.Conv2D(32, 5, padding="same", activation="relu")(inputs)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(64, 5, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dense(1024, activation="relu")(x)
    return keras.Model(inputs, _head(x, 0.5), name="canvas-cnn")


def mlp() -> keras.Model:
    """The prior Keras MLP baseline: 784-128-64-10 with dropout 0.3."""
    inputs = keras.Input(INPUT_SHAPE)
    x = layers.Flatten()(inputs)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.3)(x)
    x = layers.Dense(64, activation="relu")(x)
    return keras.Model(inputs, _head(x, 0.3), name="mlp")


def kaggle_cnn() -> keras.Model:
    """The prior Kaggle CNN: two (conv, conv, pool, dropout) blocks + dense 256."""
    inputs = keras.Input(INPUT_SHAPE)
    x = layers.Conv2D(32, 5, padding="same", activation="relu")(inputs)
    x = layers.Conv2D(32, 5, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Dropout(0.25)(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Dropout(0.25)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(256, activation="relu")(x)
    return keras.Model(inputs, _head(x, 0.5), name="kaggle-cnn")


def vgg_bn() -> keras.Model:
    """The prior VGG-style network: conv-BN-GELU blocks with staggered dropout."""
    inputs = keras.Input(INPUT_SHAPE)
    x = inputs
    for filters, dropout in ((32, 0.1), (64, 0.2), (128, 0.3)):
        x = _conv_bn(x, filters, activation="gelu")
        x = _conv_bn(x, filters, activation="gelu")
        x = layers.MaxPooling2D()(x)
        x = layers.Dropout(dropout)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(256, activation="gelu")(x)
    return keras.Model(inputs, _head(x, 0.4), name="vgg-bn")


def deep_bn() -> keras.Model:
    """The prior multi-dataset CNN: 3 conv blocks with BN + SpatialDropout,
    dense 1050 with L2."""
    inputs = keras.Input(INPUT_SHAPE)
    x = inputs
    for filters in (32, 64, 128):
        x = _conv_bn(x, filters)
        x = _conv_bn(x, filters)
        x = layers.MaxPooling2D()(x)
        x = layers.SpatialDropout2D(0.2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(1050, activation="relu", kernel_regularizer=regularizers.l2(1e-4))(x)
    return keras.Model(inputs, _head(x, 0.5), name="deep-bn")


ARCHITECTURES: dict[str, Callable[[], keras.Model]] = {
    "digitnet": digitnet,
    "canvas-cnn": canvas_cnn,
    "mlp": mlp,
    "kaggle-cnn": kaggle_cnn,
    "vgg-bn": vgg_bn,
    "deep-bn": deep_bn,
}


def build(name: str) -> keras.Model:
    try:
        factory = ARCHITECTURES[name]
    except KeyError:
        raise ValueError(
            f"Unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}."
        ) from None
    return factory()
