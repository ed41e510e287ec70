"""Styles as continuous families: each family's main parameters have a band that
training never draws from and the disjoint style test draws only from."""

from __future__ import annotations

import numpy as np
import pytest

from classifier import canvas
from training import allographs
from training.shapes import Span


def test_a_span_keeps_its_held_out_band_for_the_disjoint_test():
    span = Span(0.0, 1.0, 0.4, 0.5)
    rng = np.random.default_rng(0)
    taught = np.array([span.draw(rng, held_out=False) for _ in range(4000)])
    held = np.array([span.draw(rng, held_out=True) for _ in range(500)])
    assert not ((taught > 0.4) & (taught < 0.5)).any()
    assert (taught < 0.4).any() and (taught > 0.5).any()  # both sides of the band
    assert taught.min() >= 0.0 and taught.max() <= 1.0
    assert ((held >= 0.4) & (held <= 0.5)).all()


def _flag(digit_strokes, rng, held_out):
    made = allographs.continental_one_flag(digit_strokes, rng, held_out=held_out)
    stroke = max(made, key=len)
    height = np.ptp(np.concatenate(digit_strokes)[:, 1])
    start, top = stroke[0], stroke[13]  # the up-stroke is the first 13 points
    length = np.hypot(*(top - start)) / height
    angle = np.degrees(np.arctan2(start[1] - top[1], top[0] - start[0]))
    return length, angle


def test_the_ones_flag_is_a_family_from_short_and_steep_to_long_and_flat(pen_digits):
    one = canvas.fit_to_canvas(next(d for d in pen_digits if d.label == 1).strokes)
    rng = np.random.default_rng(1)
    taught = np.array([_flag(one, rng, False) for _ in range(300)])
    held = np.array([_flag(one, rng, True) for _ in range(100)])
    length, angle = allographs.FLAG_LENGTH, allographs.FLAG_ANGLE
    assert taught[:, 1].min() < 12 and taught[:, 1].max() > 55  # flat to steep
    assert taught[:, 0].max() > 0.55  # up to more than half the stem
    in_band = lambda v, s: (v > s.held_low + 1e-6) & (v < s.held_high - 1e-6)  # noqa: E731
    assert not (in_band(taught[:, 0], length) & in_band(taught[:, 1], angle)).any()
    assert np.allclose(held[:, 0].clip(length.held_low, length.held_high), held[:, 0], atol=1e-6)
    assert np.allclose(held[:, 1].clip(angle.held_low, angle.held_high), held[:, 1], atol=1e-4)


def test_a_slash_reaches_from_inside_the_zero_to_far_past_it(pen_digits):
    zero = canvas.fit_to_canvas(next(d for d in pen_digits if d.label == 0).strokes)
    height = np.ptp(np.concatenate(zero)[:, 1])
    rng = np.random.default_rng(2)
    spans = [np.ptp(allographs.slashed_zero(zero, rng)[-1][:, 1]) / height for _ in range(300)]
    assert min(spans) < 0.9 and max(spans) > 1.8  # inside the oval to φ


@pytest.mark.parametrize("name", [n for n, s in allographs.STYLES.items() if s.disjoint])
def test_every_family_with_held_out_bands_draws_from_them(name, pen_digits):
    style = allographs.STYLES[name]
    digit = next(d for d in pen_digits if d.label == style.digit)
    base = canvas.fit_to_canvas(digit.strokes)
    taught = style.make(base, np.random.default_rng(3))
    held = style.make(base, np.random.default_rng(3), held_out=True)
    assert all(np.isfinite(s).all() for s in held)
    assert not all(
        a.shape == b.shape and np.allclose(a, b) for a, b in zip(taught, held, strict=False)
    )


def test_the_style_test_has_a_disjoint_set_for_every_family(pen_digits):
    from training.sources.synthetic import style_test_sets

    sets = style_test_sets()
    families = [n for n, s in allographs.STYLES.items() if s.disjoint]
    assert {f"disjoint:{n}" for n in families} <= set(sets)
    assert {f"style:{n}" for n in allographs.STYLES} <= set(sets)
    assert {f"probe:{n}" for n in allographs.PROBES} <= set(sets)
    for name in families:
        taught, held = sets[f"style:{name}"], sets[f"disjoint:{name}"]
        assert len(taught) == len(held) and (held.y == allographs.STYLES[name].digit).all()
        assert not np.array_equal(taught.x, held.x)


def test_ink_that_is_no_digit_is_trained_towards_every_digit_equally():
    from training import sources
    from training.config import TrainConfig
    from training.sources import base as source_base
    from training.sources.synthetic import NO_DIGIT
    from training.stream import training_dataset

    base = source_base.Images(np.zeros((2000, 28, 28), np.uint8), np.full(2000, 4, np.uint8))
    junk = source_base.Pool("no-digit", np.full((50, 1, 28, 28), 255, np.uint8),
                            np.full(50, NO_DIGIT, np.uint8), np.ones(50), draws=0, share=0.1)  # fmt: skip
    data = sources.TrainingData(base, base, pools=[junk])
    config = TrainConfig(sources=("pendigits",), batch_size=400)
    x, y = next(iter(training_dataset(data, config)))
    y, inked = y.numpy(), x.numpy().reshape(400, -1).max(1) > 0
    assert inked.mean() == pytest.approx(0.1, abs=0.02)  # the pool's share
    assert np.allclose(y[inked], 0.1)  # every digit equally
    assert (y[~inked].argmax(1) == 4).all() and np.allclose(y[~inked].sum(1), 1.0)


def test_the_junk_pool_is_ink_the_server_would_read(pen_digits):
    from training.sources.synthetic import JUNK_IMAGES, NO_DIGIT, junk_pool

    pool = junk_pool()
    assert pool.x.shape == (JUNK_IMAGES, 1, 28, 28) and (pool.y == NO_DIGIT).all()
    assert (pool.x.reshape(JUNK_IMAGES, -1).max(1) > 0).all()  # none blank
    assert pool.share and pool.draws == 0  # a share of every batch, not more of an epoch
