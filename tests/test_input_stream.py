"""The input stream a model trains on (``training.stream``): every fixed image once a
pass in a new order, the same stream for the same seed, pools at their share."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from training.config import TrainConfig
from training.sources import Images, TrainingData
from training.sources import base as source_base
from training.stream import training_dataset


def numbered(n: int) -> Images:
    """n images whose first two pixels spell their own index."""
    x = np.zeros((n, 28, 28), np.uint8)
    x[:, 0, 0], x[:, 0, 1] = np.arange(n) // 256, np.arange(n) % 256
    return Images(x, (np.arange(n) % 10).astype(np.uint8))


def indices(batch_x: np.ndarray) -> np.ndarray:
    pixels = np.rint(batch_x[:, 0, :2, 0] * 255).astype(int)
    return pixels[:, 0] * 256 + pixels[:, 1]


def test_the_stream_takes_every_image_once_a_pass_in_a_new_order_each_pass():
    data = TrainingData(numbered(1000), numbered(10))
    config = TrainConfig(sources=("mnist",), batch_size=64)
    seen = np.concatenate([indices(x.numpy()) for x, _ in training_dataset(data, config).take(32)])
    first, second = seen[:1000], seen[1000:2000]
    assert sorted(first) == list(range(1000))  # every image once, none twice
    assert sorted(second) == list(range(1000))
    assert not np.array_equal(first, second) and not np.array_equal(first, np.arange(1000))
    # and the labels travel with their images, one-hot
    x, y = next(iter(training_dataset(data, config)))
    assert x.shape == (64, 28, 28, 1) and x.dtype == tf.float32 and y.shape == (64, 10)
    assert np.array_equal(y.numpy().argmax(1), indices(x.numpy()) % 10)


def test_the_same_seed_gives_the_same_stream_and_another_seed_another():
    data = TrainingData(numbered(500), numbered(10))

    def stream(seed):
        config = TrainConfig(sources=("mnist",), batch_size=50, seed=seed)
        return np.concatenate(
            [indices(x.numpy()) for x, _ in training_dataset(data, config).take(4)]
        )

    assert np.array_equal(stream(1), stream(1))
    assert not np.array_equal(stream(1), stream(2))


def test_pools_fill_their_share_of_every_batch_with_all_their_variants():
    pool = source_base.Pool(
        "pendigits",
        np.stack([numbered(300).x + 0, numbered(300).x + 0], axis=1),  # 2 variants each
        np.full(300, 3, np.uint8),
        np.ones(300),
        draws=1000,
    )
    pool.x[:, 1, 5, 5] = 255  # the second variant is marked
    data = TrainingData(Images(np.zeros((3000, 28, 28), np.uint8), np.ones(3000, np.uint8)),
                        numbered(10), pools=[pool])  # fmt: skip
    config = TrainConfig(sources=("mnist", "pendigits"), batch_size=100)
    batches = [(x.numpy(), y.numpy().argmax(1)) for x, y in training_dataset(data, config).take(40)]
    from_pool = np.concatenate([(y == 3) for _, y in batches])
    assert from_pool.mean() == pytest.approx(1000 / 4000, abs=0.03)  # its natural share
    # each batch holds its share, not a random count
    assert all(abs((y == 3).mean() - 0.25) <= 0.06 for _, y in batches)
    pooled = np.concatenate([x[y == 3] for x, y in batches])
    assert 0.4 < (pooled[:, 5, 5, 0] > 0.5).mean() < 0.6  # both variants drawn
    assert len(np.unique(indices(pooled))) > 200  # across the pool's drawings


def test_a_pool_read_from_a_memory_map_streams_exactly_as_one_in_memory(tmp_path):
    """The contributed drawings' pool is a pack read as a memory map (``Pool.rows``:
    drawing i's variants are record rows[i], in any order, among records of no one);
    the batches are the very ones the same pool held in memory gives."""

    def marked(n: int, variants: int, first: int) -> np.ndarray:
        x = np.stack([numbered(n).x] * variants, axis=1)
        x[:, :, 1, 0] = np.arange(variants)  # which variant
        x[:, :, 1, 1] = first  # which pool
        return x

    pen = source_base.Pool("pen", marked(200, 2, 1), np.full(200, 3, np.uint8), np.ones(200), 400)
    drawings = marked(300, 3, 2)
    weights = np.where(np.arange(300) % 4 == 0, 2.0, 1.0)  # corrections count twice
    labels = (np.arange(300) % 10).astype(np.uint8)
    held = source_base.Pool("drawings", drawings, labels, weights, draws=300, share=0.3)
    # the pack: the records shuffled among 100 others, written to a file, mapped
    order = np.random.default_rng(0).permutation(400)
    records = np.zeros((400, 3, 28, 28), np.uint8)
    records[order[:300]] = drawings
    path = tmp_path / "items.u8"
    records.tofile(path)
    mapped_x = np.memmap(path, np.uint8, "r", shape=(400, 3, 28, 28))
    mapped = source_base.Pool("drawings", mapped_x, labels, weights, draws=300, share=0.3,
                              rows=order[:300])  # fmt: skip
    assert np.array_equal(mapped.inputs(np.arange(5)), drawings[:5])
    junk = source_base.Pool("junk", marked(50, 1, 3), np.full(50, 7, np.uint8), np.ones(50), 50)

    def stream(pools):
        data = TrainingData(numbered(1000), numbered(10), pools=pools)
        config = TrainConfig(sources=("mnist", "drawings"), batch_size=64, seed=5)
        return [(x.numpy(), y.numpy()) for x, y in training_dataset(data, config).take(30)]

    for pools_held, pools_mapped in (
        ([pen, held, junk], [pen, mapped, junk]),  # mapped between two held in memory
        ([held], [mapped]),  # the only pool
    ):
        expected, got = stream(pools_held), stream(pools_mapped)
        assert all(
            np.array_equal(ex, gx) and np.array_equal(ey, gy)
            for (ex, ey), (gx, gy) in zip(expected, got, strict=True)
        )
    # and the drawings were drawn, every variant of them
    x = np.concatenate([bx for bx, _ in got])
    pixels = np.rint(x[:, 1, :2, 0] * 255).astype(int)
    assert set(pixels[pixels[:, 1] == 2, 0]) == {0, 1, 2}
