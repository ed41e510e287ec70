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
    global average pooling instead of a big dense layer. The first convolution is
    already strided (28×28 → 14×14): on a CPU the full-size stage cost 40 % of a
    training step for a tenth of the arithmetic (BN and activations over 28×28
    maps are memory-bound), and dropping it made a step about 1.4× faster at the
    same accuracy (README, "Training speed"). Width goes where it is cheap (the 7×7
    stage): ~160k parameters and ~10 M multiply-adds per image, against
    canvas-cnn's 3.3 M parameters."""
    inputs = keras.Input(INPUT_SHAPE)
    x = _conv_bn(inputs, 32, strides=2)  # 14×14
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
    """The prior Kaggle CNN, exactly as that project's appendix lists it, the odd
    double pooling after the first convolution included: conv(32, 5×5) → pool →
    dropout → pool → dropout → conv(128, 6×6) ×2 → pool → dropout → dense 256."""
    inputs = keras.Input(INPUT_SHAPE)
    x = layers.Conv2D(32, 5, padding="same", activation="relu")(inputs)
    x = layers.MaxPooling2D()(x)  # 14×14
    x = layers.Dropout(0.15)(x)
    x = layers.MaxPooling2D()(x)  # 7×7
    x = layers.Dropout(0.15)(x)
    x = layers.Conv2D(128, 6, padding="same", activation="relu")(x)
    x = layers.Conv2D(128, 6, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)  # 3×3
    x = layers.Dropout(0.15)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(256, activation="relu")(x)
    return keras.Model(inputs, _head(x, 0.5), name="kaggle-cnn")


def _conv_bn_gelu(x, filters: int):
    x = layers.Conv2D(filters, 3, padding="same")(x)
    x = layers.BatchNormalization()(x)
    return layers.Activation("gelu")(x)


def vgg_bn() -> keras.Model:
    """The prior VGG-style PyTorch network: two conv(32)-BN-GELU, pool, Dropout2d(0.2);
    two conv(64)-BN-GELU, pool, Dropout2d(0.25); one conv(128)-BN-GELU without
    pooling, Dropout2d(0.3); flatten (7·7·128 = 6,272) → Dense(512)-BN-GELU →
    Dropout(0.35) → 10. PyTorch's Dropout2d is Keras' SpatialDropout2D; its 10
    logits end here in the softmax every model shares (cross-entropy on logits
    is the same loss). Its label smoothing (0.1) is in its recipe."""
    inputs = keras.Input(INPUT_SHAPE)
    x = inputs
    for filters, dropout in ((32, 0.2), (64, 0.25)):
        x = _conv_bn_gelu(x, filters)
        x = _conv_bn_gelu(x, filters)
        x = layers.MaxPooling2D()(x)
        x = layers.SpatialDropout2D(dropout)(x)
    x = _conv_bn_gelu(x, 128)  # 7×7, no pooling
    x = layers.SpatialDropout2D(0.3)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(512)(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("gelu")(x)
    return keras.Model(inputs, _head(x, 0.35), name="vgg-bn")


def deep_bn() -> keras.Model:
    """The prior multi-dataset CNN: blocks of two 3×3 convs (32, 96, 128 filters;
    the first two blocks unpadded, the third ``same``), BatchNorm after every conv,
    2×2 max-pool and SpatialDropout2D(0.2) per block; Dense(1050) with L2,
    BatchNorm, Dropout(0.5), softmax. 28 → 24 → 12 → 8 → 4 → 4 → 2: 512 features."""
    inputs = keras.Input(INPUT_SHAPE)
    x = inputs
    for filters, padding in ((32, "valid"), (96, "valid"), (128, "same")):
        for _ in range(2):
            x = layers.Conv2D(filters, 3, padding=padding, activation="relu")(x)
            x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D()(x)
        x = layers.SpatialDropout2D(0.2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(1050, activation="relu", kernel_regularizer=regularizers.l2(1e-4))(x)
    x = layers.BatchNormalization()(x)
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
