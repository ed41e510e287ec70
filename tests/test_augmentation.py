"""training.augmentation: tensor-op augmentation that keeps a digit a digit."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from training import augmentation
from training.sources import mnist as mnist_source


def digits(n: int = 64) -> np.ndarray:
    return (mnist_source.load_mnist().test.x[:n].astype(np.float32) / 255.0)[..., None]


def test_the_identity_warp_returns_the_image():
    x = digits(8)
    still = augmentation.AugmentConfig(
        rotation_degrees=0, shear=0, zoom=0, shift_pixels=0, elastic_pixels=0
    )
    np.testing.assert_allclose(augmentation.warp(tf.constant(x), still).numpy(), x, atol=1e-5)


def test_augmented_digits_keep_their_ink_and_place():
    x = digits()
    out = augmentation.augment(tf.constant(x)).numpy()
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert not np.allclose(out, x)
    mass_ratio = out.sum(axis=(1, 2, 3)) / x.sum(axis=(1, 2, 3))
    assert ((mass_ratio > 0.4) & (mass_ratio < 2.5)).all(), mass_ratio.max()
    rows = np.arange(28)[None, :, None, None]
    shift = (out * rows).sum((1, 2, 3)) / out.sum((1, 2, 3)) - (x * rows).sum((1, 2, 3)) / x.sum(
        (1, 2, 3)
    )
    assert np.abs(shift).max() < 5


def test_never_mirrors():
    # given an "L" (a vertical bar with a foot pointing right), augmented 256 times
    # by the full geometric part (rotation, shear, zoom) at its default strength;
    # translation and elastic wobble cannot mirror and only blur the measurement
    shape = np.zeros((28, 28), np.float32)
    shape[6:22, 9:12] = 1.0
    shape[19:22, 9:20] = 1.0
    batch = np.repeat(shape[None, :, :, None], 256, axis=0)
    config = augmentation.AugmentConfig(shift_pixels=0, elastic_pixels=0, thickness=0, noise=0)
    out = augmentation.augment(tf.constant(batch), config).numpy()

    # then every result is closer to the L than to its mirror image
    def similarity(a, b):
        a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
        return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)

    assert (similarity(out, batch) > similarity(out, batch[:, :, ::-1]) + 0.1).all()


def test_the_layer_is_identity_outside_training():
    x = digits(4)
    layer = augmentation.DigitAugment()
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
    assert not np.allclose(np.asarray(layer(x, training=True)), x)
