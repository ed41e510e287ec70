"""Data augmentation as tensor ops, so it runs on the GPU when there is one.

One random geometric warp per image (rotation, shear, zoom, translation and a
smooth elastic field, composed into a single sampling grid and applied with one
bilinear lookup), then stroke-thickness jitter and a little noise. The ranges
are a recipe's (``training.recipes.AugmentConfig``); ours never flips, since a
mirrored 2 is not a 2. The prior work's extras (a mirror, coarse dropout,
brightness, inversion) are here so their recipes run as they did.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from training.recipes import AugmentConfig

__all__ = ["AugmentConfig", "DigitAugment", "augment", "warp"]


def _bilinear_sample(images: tf.Tensor, rows: tf.Tensor, cols: tf.Tensor) -> tf.Tensor:
    """Sample (b, h, w, 1) images at float coordinates, zero outside the frame."""
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    padded = tf.pad(images[..., 0], [[0, 0], [1, 1], [1, 1]])
    rows = tf.clip_by_value(rows + 1.0, 0.0, tf.cast(height, tf.float32) + 1.0)
    cols = tf.clip_by_value(cols + 1.0, 0.0, tf.cast(width, tf.float32) + 1.0)
    r0 = tf.floor(rows)
    c0 = tf.floor(cols)
    fr = rows - r0
    fc = cols - c0
    r0 = tf.cast(r0, tf.int32)
    c0 = tf.cast(c0, tf.int32)
    r1 = tf.minimum(r0 + 1, height + 1)
    c1 = tf.minimum(c0 + 1, width + 1)
    flat = tf.reshape(padded, [batch, -1])
    stride = width + 2

    def gather(r: tf.Tensor, c: tf.Tensor) -> tf.Tensor:
        index = tf.reshape(r * stride + c, [batch, -1])
        return tf.reshape(tf.gather(flat, index, batch_dims=1), tf.shape(rows))

    top = gather(r0, c0) * (1 - fc) + gather(r0, c1) * fc
    bottom = gather(r1, c0) * (1 - fc) + gather(r1, c1) * fc
    return (top * (1 - fr) + bottom * fr)[..., None]


def warp(images: tf.Tensor, config: AugmentConfig, seed: tf.Tensor | None = None) -> tf.Tensor:
    """Apply one random affine + elastic warp per image."""
    batch = tf.shape(images)[0]
    size = tf.shape(images)[1]
    n = tf.cast(size, tf.float32)

    def uniform(limit: float, shape=None) -> tf.Tensor:
        return tf.random.uniform(shape if shape is not None else [batch], -limit, limit)

    angle = uniform(math.radians(config.rotation_degrees))
    shear = uniform(config.shear)

    def scale() -> tf.Tensor:
        if config.zoom_out_only:  # in [1 − zoom, 1]: the digit only ever shrinks
            return 1.0 - config.zoom / 2 + uniform(config.zoom / 2)
        return 1.0 + uniform(config.zoom)

    zoom_r = scale()
    zoom_c = zoom_r if config.isotropic_zoom else scale()
    shift_r = uniform(config.shift_pixels)
    shift_c = uniform(config.shift_pixels)

    # Output pixel → source pixel (inverse map), about the image centre.
    centre = (n - 1.0) / 2.0
    grid = tf.range(n) - centre
    out_r, out_c = tf.meshgrid(grid, grid, indexing="ij")
    out_r = out_r[None] - shift_r[:, None, None]
    out_c = out_c[None] - shift_c[:, None, None]
    cos, sin = tf.cos(angle)[:, None, None], tf.sin(angle)[:, None, None]
    rot_r = cos * out_r - sin * out_c
    rot_c = sin * out_r + cos * out_c
    rot_c = rot_c + shear[:, None, None] * rot_r
    src_r = rot_r / zoom_r[:, None, None] + centre
    src_c = rot_c / zoom_c[:, None, None] + centre

    if config.elastic_pixels > 0:
        coarse = tf.random.uniform([batch, config.elastic_grid, config.elastic_grid, 2], -1.0, 1.0)
        field = tf.image.resize(coarse, [size, size], method="bicubic") * config.elastic_pixels
        src_r = src_r + field[..., 0]
        src_c = src_c + field[..., 1]
    return _bilinear_sample(images, src_r, src_c)


def jitter_thickness(images: tf.Tensor, amount: float) -> tf.Tensor:
    """Blend each image towards its dilation or erosion: pens vary in width."""
    batch = tf.shape(images)[0]
    t = tf.random.uniform([batch, 1, 1, 1], -amount, amount)
    dilated = tf.nn.max_pool2d(images, 3, 1, "SAME")
    eroded = -tf.nn.max_pool2d(-images, 3, 1, "SAME")
    return tf.where(t >= 0, images + t * (dilated - images), images - t * (eroded - images))


def _chosen(images: tf.Tensor, probability: float) -> tf.Tensor:
    """A (b, 1, 1, 1) mask choosing each image with ``probability``."""
    return tf.random.uniform([tf.shape(images)[0], 1, 1, 1]) < probability


def cutout(images: tf.Tensor, side: int) -> tf.Tensor:
    """Coarse dropout: blank one ``side``×``side`` square per image, anywhere on it."""
    shape = tf.shape(images)
    batch, size = shape[0], shape[1]
    top = tf.random.uniform([batch, 1, 1], 0, size - side + 1, tf.int32)
    left = tf.random.uniform([batch, 1, 1], 0, size - side + 1, tf.int32)
    rows = tf.range(size)[None, :, None]
    cols = tf.range(size)[None, None, :]
    hole = (rows >= top) & (rows < top + side) & (cols >= left) & (cols < left + side)
    return tf.where(hole[..., None], tf.zeros_like(images), images)


def augment(images: tf.Tensor, config: AugmentConfig | None = None) -> tf.Tensor:
    """One random augmentation per image, with ``config``'s ranges (ours by default)."""
    config = config or AugmentConfig()
    if config.horizontal_flip:
        images = tf.where(_chosen(images, 0.5), tf.reverse(images, axis=[2]), images)
    images = warp(images, config)
    if config.thickness > 0:
        images = jitter_thickness(images, config.thickness)
    if config.cutout_pixels > 0:
        images = cutout(images, config.cutout_pixels)
    if config.brightness > 0:
        batch = tf.shape(images)[0]
        images = images * (1.0 + tf.random.uniform([batch, 1, 1, 1], -1, 1) * config.brightness)
    if config.noise > 0:
        images = images + tf.random.normal(tf.shape(images), stddev=config.noise)
    images = tf.clip_by_value(images, 0.0, 1.0)
    if config.invert_probability > 0:
        images = tf.where(_chosen(images, config.invert_probability), 1.0 - images, images)
    return images


@keras.saving.register_keras_serializable(package="digits")
class DigitAugment(keras.layers.Layer):
    """The augmentation as a layer: active only while training, identity otherwise.

    It sits in front of the model during ``fit`` and is not part of the saved
    inference model, so exported artifacts carry no training-only ops.
    """

    def __init__(self, config: AugmentConfig | None = None, **kwargs):
        super().__init__(**kwargs)
        self.config = config or AugmentConfig()

    def call(self, inputs, training=None):
        if not training:
            return inputs
        return augment(tf.cast(inputs, tf.float32), self.config)

    def get_config(self) -> dict:
        return {**super().get_config(), **self.config.__dict__}

    @classmethod
    def from_config(cls, config: dict):
        fields = {k: config.pop(k) for k in list(config) if k in AugmentConfig.__dataclass_fields__}
        return cls(AugmentConfig(**fields), **config)
