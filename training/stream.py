"""The input stream a model trains on: batches mixed from the fixed images and the
variant pools, in the shares :func:`mixture_weights` gives them."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from training.config import TrainConfig
from training.sources import TrainingData
from training.sources.synthetic import NO_DIGIT


def mixture_weights(data: TrainingData) -> list[float]:
    """Each part's share of a batch: the fixed images and every pool at their
    natural size, except pools with a fixed share (approved drawings), which
    take it and leave the rest to the others in proportion."""
    natural = [float(len(data.train))] + [
        0.0 if pool.share is not None else float(pool.draws) for pool in data.pools
    ]
    fixed = [0.0] + [pool.share or 0.0 for pool in data.pools]
    rest = max(0.0, 1.0 - sum(fixed))
    total = sum(natural) or 1.0
    weights = [f + rest * n / total for n, f in zip(natural, fixed, strict=True)]
    scale = sum(weights) or 1.0
    return [w / scale for w in weights]


def training_dataset(data: TrainingData, config: TrainConfig) -> tf.data.Dataset:
    """The endless training stream of one-hot-labelled float batches (fit reads
    ``len(data)`` images an epoch), built a whole batch at a time, with no
    per-image step:

    - the fixed images take their share (:func:`mixture_weights`) of every batch,
      in a new random order each pass, every image once a pass
      (``tf.random.experimental.index_shuffle``: no shuffle buffer);
    - the rest of the batch is drawn from the pools: a drawing by its pool's share
      and its own weight (corrections count more), then one of its variants (one
      inverse-CDF lookup over every pool's variants together).

    Batches depend only on the seed and their number, never on timing. The stream
    costs about 1 % of a training step on the CPU (it was 11 % when it drew and
    mixed image by image). Augmentation is not here: it is the fitted model's
    first layer, so on a GPU it runs on the device (on the CPU, measured, running it
    here in parallel was no faster).
    """
    weights = mixture_weights(data)
    batch = config.batch_size
    seed = tf.constant(config.seed, tf.int64)
    fixed_x, fixed_y = tf.constant(data.train.x), tf.constant(data.train.y)
    n_fixed = len(data.train)
    period = max(n_fixed, 1)  # stream positions in one pass over the fixed images
    fixed_share = weights[0] if n_fixed else 0.0
    # Every pool's variants as rows of one table, with each row's chance of a draw.
    # A pool held in memory is part of one constant; a pool read from a pack's memory
    # map (the contributed drawings) is read a batch's rows at a time.
    rows_x, rows_y, chances, mapped = [], [], [], []
    starts, offsets = [], []  # each pool's first table row, and its first constant row
    table = in_memory = 0
    for pool, share in zip(data.pools, weights[1:], strict=True):
        if share <= 0 or not len(pool):
            continue
        variants = pool.x.shape[1]
        starts.append(table)
        if pool.rows is None:
            offsets.append(in_memory)
            rows_x.append(pool.x.reshape(-1, *pool.x.shape[2:]))
            in_memory += len(rows_x[-1])
        else:
            offsets.append(-1)
            mapped.append((table, pool))
        table += len(pool) * variants
        rows_y.append(np.repeat(pool.y, variants))
        chances.append(np.repeat(share * pool.weight / pool.weight.sum() / variants, variants))
    if not rows_y:
        fixed_share = 1.0
    pool_x = tf.constant(np.concatenate(rows_x) if rows_x else np.zeros((1, 28, 28), np.uint8))
    pool_y = tf.constant(np.concatenate(rows_y) if rows_y else np.zeros(1, np.uint8))
    cdf = np.cumsum(np.concatenate(chances)) if chances else np.ones(1)
    cdf = tf.constant(cdf / cdf[-1], tf.float64)
    starts_t = tf.constant(starts or [0], tf.int32)
    offsets_t = tf.constant(offsets or [0], tf.int32)

    def read_mapped(rows: np.ndarray) -> np.ndarray:
        """The mapped pools' table rows among ``rows`` (zeros elsewhere)."""
        out = np.zeros((len(rows), 28, 28), np.uint8)
        for first, pool in mapped:
            variants = pool.x.shape[1]
            mine = (rows >= first) & (rows < first + len(pool) * variants)
            if mine.any():
                drawing, variant = np.divmod(rows[mine] - first, variants)
                out[mine] = pool.x[pool.rows[drawing], variant]
        return out

    def pool_inputs(rows):
        if not mapped:
            return tf.gather(pool_x, rows)
        segment = tf.searchsorted(starts_t, rows, side="right") - 1
        offset = tf.gather(offsets_t, segment)
        constant_row = tf.maximum(rows - tf.gather(starts_t, segment) + offset, 0)
        held = tf.gather(pool_x, tf.minimum(constant_row, max(in_memory, 1) - 1))
        read = tf.numpy_function(read_mapped, [rows], tf.uint8, stateful=False)
        read = tf.ensure_shape(read, [None, 28, 28])
        return tf.where((offset >= 0)[:, None, None], held, read)

    def make_batch(number):
        # The fixed images' stream positions this batch covers: its share, rounded
        # so that every pass takes each image once.
        first = tf.cast(tf.round(tf.cast(number, tf.float64) * batch * fixed_share), tf.int64)
        last = tf.cast(tf.round(tf.cast(number + 1, tf.float64) * batch * fixed_share), tf.int64)
        position = tf.range(first, last)
        passes = position // period  # a batch spans at most two passes

        def shuffled(pass_number):
            return tf.random.experimental.index_shuffle(
                position % period, tf.stack([seed, pass_number]), period - 1
            )

        first_pass = first // period
        index = tf.where(passes == first_pass, shuffled(first_pass), shuffled(first_pass + 1))
        draws = batch - tf.cast(last - first, tf.int32)
        u = tf.random.stateless_uniform([draws], tf.stack([seed + 1, number]), dtype=tf.float64)
        rows = tf.minimum(tf.searchsorted(cdf, u, side="right"), tf.shape(cdf, tf.int32)[0] - 1)
        x = tf.concat([tf.gather(fixed_x, index), pool_inputs(rows)], 0)
        y = tf.concat([tf.gather(fixed_y, index), tf.gather(pool_y, rows)], 0)
        x = tf.cast(x, tf.float32)[..., None] / 255.0
        # A pool's NO_DIGIT (ink that is no digit) is every digit equally.
        y = tf.cast(y, tf.int32)
        targets = tf.where((y == NO_DIGIT)[:, None], 0.1, tf.one_hot(y, 10))
        return x, targets

    return (
        tf.data.Dataset.range(2**62)
        .map(make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )
