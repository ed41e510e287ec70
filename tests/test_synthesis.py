"""Learning from strokes: stroke-space variants, scan-like uploads, allograph styles,
calibration and the drawings' share of each batch, on tiny data."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from classifier import calibration, canvas, preprocessing
from collector.models import Drawing, NewDrawing
from training import allographs, sources
from training import strokes as pen
from training.config import DRAWINGS_FOR_SHARE, PRESETS, TrainConfig
from training.sources import base as source_base
from training.sources import drawings as drawing_source


def on_canvas(digit) -> list[np.ndarray]:
    return canvas.fit_to_canvas(digit.strokes)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(np.corrcoef(a, b)[0, 1])


def test_a_variant_stays_on_the_canvas_in_a_line_width_people_use(pen_digits):
    rng = np.random.default_rng(0)
    widths = []
    for digit in pen_digits[:40]:
        varied, width = pen.vary(on_canvas(digit), rng)
        points = np.concatenate(varied)
        assert points.min() >= 0 and points.max() <= preprocessing.CANVAS_SIZE
        assert 6.0 <= width <= 28.0
        widths.append(width)
        assert len(varied) == len(digit.strokes)
    # both the page's own 16 px and other widths occur
    assert any(w == preprocessing.CANVAS_STROKE_WIDTH for w in widths)
    assert len({round(w, 3) for w in widths}) > 10


def test_variants_differ_but_stay_the_same_digit_to_the_eye(pen_digits):
    digit = pen_digits[7]
    x = pen.variants(on_canvas(digit), digit.label, 8, (1, 2))
    assert x.shape == (8, 28, 28) and x.dtype == np.uint8
    # the first is the drawing as the page draws it, exactly
    assert np.array_equal(x[0], pen.render(on_canvas(digit)))
    # the others differ from it, yet resemble it far more than another digit does
    other = next(d for d in pen_digits if d.label != digit.label)
    unlike = similarity(x[0], pen.render(on_canvas(other)))
    for variant in x[1:]:
        assert not np.array_equal(variant, x[0])
        assert similarity(variant, x[0]) > unlike
    # and the same seed gives the same variants (cached pools stay valid)
    assert np.array_equal(x, pen.variants(on_canvas(digit), digit.label, 8, (1, 2)))


def test_sampling_ranges_from_sparse_tablet_points_to_dense_jagged_mouse_points(pen_digits):
    rng = np.random.default_rng(5)
    counts = []
    base = on_canvas(pen_digits[0])
    for _ in range(60):
        varied, _ = pen.vary(base, rng)
        counts.append(sum(len(s) for s in varied))
    original = sum(len(s) for s in base)
    assert min(counts) < original / 2 and max(counts) > original * 2


def test_a_scan_like_upload_is_a_jpeg_or_png_that_preprocessing_reads(pen_digits):
    rng = np.random.default_rng(3)
    for digit in pen_digits[:12]:
        ink = canvas.render_ink(on_canvas(digit))
        data = pen.scan_like(ink, rng)
        picture = Image.open(io.BytesIO(data))
        assert picture.format in {"JPEG", "PNG"} and max(picture.size) <= 120
        # grey paper, not transparent: the upload path, not the canvas path
        assert "A" not in picture.mode
        scanned = preprocessing.to_model_input(data)
        clean = preprocessing.ink_to_model_input(ink)
        assert similarity(scanned, clean) > 0.6


def test_grey_paper_is_not_ink_after_the_stretch():
    # a dark digit on 190-grey paper: the paper must not count as ink
    grey = np.full((60, 60), 190, np.uint8)
    grey[15:45, 28:33] = 40
    out = io.BytesIO()
    Image.fromarray(grey).save(out, format="PNG")
    x = preprocessing.to_model_input(out.getvalue())
    assert x.max() > 0.9 and (x > 0.1).mean() < 0.3


@pytest.mark.parametrize("name", sorted(allographs.ALL_STYLES))
def test_every_style_makes_a_drawable_digit_of_its_kind(name, pen_digits):
    style = allographs.ALL_STYLES[name]
    rng = np.random.default_rng(11)
    digits = [d for d in pen_digits if d.label == style.digit][:6]
    for digit in digits:
        base = on_canvas(digit)
        made = style.make(base, rng)
        x = pen.render(made)  # through the real renderer and preprocessing
        assert x.shape == (28, 28) and x.max() > 200
        points = np.concatenate(made)
        assert np.isfinite(points).all()
        # in the writer's own box, give or take the style's overhang
        low, high = np.concatenate(base).min(axis=0), np.concatenate(base).max(axis=0)
        size = float(max(high - low))
        assert (points.min(axis=0) >= low - 0.6 * size).all()
        assert (points.max(axis=0) <= high + 0.6 * size).all()


def test_a_slashed_zero_adds_a_stroke_from_lower_left_to_upper_right(pen_digits):
    zero = next(d for d in pen_digits if d.label == 0)
    base = on_canvas(zero)
    made = allographs.slashed_zero(base, np.random.default_rng(0))
    assert len(made) == len(base) + 1
    slash = made[-1]
    assert slash[0][0] < slash[-1][0] and slash[0][1] > slash[-1][1]  # y grows downward


def test_a_crossed_seven_has_its_bar_across_the_stem(pen_digits):
    seven = next(d for d in pen_digits if d.label == 7)
    base = on_canvas(seven)
    bar = allographs.crossed_seven(base, np.random.default_rng(0))[-1]
    stem_x = allographs._stem_x(base, float(bar[:, 1].mean()))
    assert bar[:, 0].min() < stem_x < bar[:, 0].max()
    assert np.ptp(bar[:, 1]) < 0.2 * np.ptp(bar[:, 0])  # nearly horizontal


def test_a_continental_one_starts_with_its_flag(pen_digits):
    one = next(d for d in pen_digits if d.label == 1)
    base = on_canvas(one)
    made = allographs.continental_one_flag(base, np.random.default_rng(0))
    stroke = max(made, key=len)
    top = np.concatenate(base)[:, 1].min()
    # it starts left of and below the top, and rises to it
    assert stroke[0][1] > top and stroke[0][0] < stroke[:, 0].mean()


def test_styles_are_trained_on_a_share_of_variants_only(pen_digits):
    zero = next(d for d in pen_digits if d.label == 0)
    made = pen.variants(on_canvas(zero), 0, 40, (0, 1), style_share=0.0)
    styled = pen.variants(on_canvas(zero), 0, 40, (0, 1), style_share=1.0)
    # a slash crosses the empty middle of a zero: the centre gains ink
    centre = (slice(11, 17), slice(11, 17))
    assert styled[1:, centre[0], centre[1]].mean() > made[1:, centre[0], centre[1]].mean() + 10


def test_probes_are_kept_out_of_training():
    assert not set(allographs.PROBES) & set(allographs.STYLES)
    for digit in range(10):
        assert all(s.name not in allographs.PROBES for s in allographs.styles_of(digit))


# Calibration.


def test_temperature_scaling_recovers_a_known_temperature_and_keeps_the_answer():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (4000, 10))
    labels = np.array([rng.choice(10, p=np.exp(row) / np.exp(row).sum()) for row in logits])
    true = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    softened = calibration.apply_temperature(true, 2.5)  # an under-confident model
    fitted = calibration.fit_temperature(softened, labels)
    assert fitted == pytest.approx(1 / 2.5, rel=0.1)
    restored = calibration.apply_temperature(softened, fitted)
    assert (restored.argmax(1) == softened.argmax(1)).all()
    before = calibration.expected_calibration_error(softened, labels)
    after = calibration.expected_calibration_error(restored, labels)
    assert after < 0.02 < before


def test_the_not_sure_threshold_leaves_clear_answers_sure():
    rng = np.random.default_rng(1)
    n = 2000
    labels = rng.integers(0, 10, n)
    p = np.full((n, 10), 0.01)
    p[np.arange(n), labels] = rng.uniform(0.7, 1.0, n)
    wrong = rng.choice(n, 100, replace=False)
    p[wrong] = 0.05
    p[wrong, (labels[wrong] + 1) % 10] = 0.5
    p /= p.sum(axis=1, keepdims=True)
    chosen = calibration.choose_threshold(p, labels)
    assert chosen["correct_flagged"] <= calibration.SURE_MISS_RATE + 0.005
    assert chosen["misreads_flagged"] > 0.9


# Drawings' share of each batch.


def pool(name: str, n: int, share: float | None = None) -> source_base.Pool:
    return source_base.Pool(
        name,
        np.zeros((n, 2, 28, 28), np.uint8),
        np.zeros(n, np.uint8),
        np.ones(n),
        draws=n,
        share=share,
    )


def test_drawings_take_their_share_of_every_batch():
    from training.stream import mixture_weights

    data = sources.TrainingData(
        source_base.Images(np.zeros((60000, 28, 28), np.uint8), np.zeros(60000, np.uint8)),
        source_base.Images(np.zeros((1, 28, 28), np.uint8), np.zeros(1, np.uint8)),
        pools=[pool("pendigits", 15000), pool("drawings", 300, share=0.25)],
    )
    images, pendigits, drawings = mixture_weights(data)
    assert drawings == pytest.approx(0.25)
    assert images / pendigits == pytest.approx(60000 / 15000)
    assert images + pendigits + drawings == pytest.approx(1.0)


def test_the_stream_really_draws_that_share_and_weights_corrections():
    from training.stream import training_dataset

    base = source_base.Images(np.zeros((5000, 28, 28), np.uint8), np.full(5000, 1, np.uint8))
    drawings = source_base.Pool(
        "drawings",
        np.full((10, 2, 28, 28), 255, np.uint8),
        np.array([7] * 5 + [3] * 5, np.uint8),
        np.array([1.0] * 5 + [3.0] * 5),  # the 3s are corrections, weighted 3×
        draws=10,
        share=0.2,
    )
    data = sources.TrainingData(base, base, pools=[drawings])
    config = TrainConfig(sources=("drawings",), batch_size=500)
    labels = np.concatenate(
        [y.numpy().argmax(1) for _, y in training_dataset(data, config).take(20)]
    )
    assert (labels != 1).mean() == pytest.approx(0.2, abs=0.02)
    assert (labels == 3).sum() / (labels == 7).sum() == pytest.approx(3.0, rel=0.2)


@pytest.mark.django_db
def test_a_few_drawings_mix_in_naturally_and_enough_take_the_share(pen_digits, settings, tmp_path):

    settings.DIGITS_DATA_DIR = str(tmp_path)
    config = TrainConfig(sources=("drawings",), variants=3, correction_weight=2.0)
    for i, digit in enumerate(pen_digits[: DRAWINGS_FOR_SHARE + 5]):
        strokes = canvas.parse_strokes(
            canvas.strokes_as_json(canvas.timed(canvas.fit_to_canvas(digit.strokes)))
        )
        Drawing.objects.add(
            NewDrawing(
                canvas.render_canvas_png(strokes),
                digit.label,
                source="correction" if i % 2 else "canvas",
                status="approved",
                split="train",
                strokes=strokes if i % 3 else None,
            )
        )
        if i == 9:
            few = drawing_source.drawings_pool(config)
            assert few.share is None and len(few) == 10
    many = drawing_source.drawings_pool(config)
    assert many.share == config.drawings_share and len(many) == DRAWINGS_FOR_SHARE + 5
    inputs = many.inputs()
    assert inputs.shape[1] == 3
    # a drawing without strokes repeats its picture; one with strokes is varied
    assert np.array_equal(inputs[0, 0], inputs[0, 2])
    assert not np.array_equal(inputs[1, 0], inputs[1, 2])
    assert set(many.weight) == {1.0, 2.0}


def test_the_finetune_preset_starts_from_the_active_model_and_is_short():
    config = TrainConfig.from_run_fields(**PRESETS["finetune"])
    assert config.start_from_active and config.epochs <= 4
    assert config.drawings_share >= 0.2 and "drawings" in config.sources


@pytest.mark.django_db
def test_drawings_held_back_for_validation_are_not_also_trained_on(pen_digits, settings, tmp_path):

    # given approved drawings, all in the train split (none in val yet)
    settings.MEDIA_ROOT = tmp_path
    for digit in pen_digits[:20]:
        Drawing.objects.add(
            NewDrawing(
                canvas.render_strokes(digit.strokes), digit.label, status="approved", split="train"
            )
        )
    # when a drawings-only run is assembled
    data = sources.load_training_data(TrainConfig(sources=("drawings",), variants=2))
    # then a tenth is validation, and those drawings left the training pool
    (pool,) = data.pools
    assert len(data.val) == 2 and len(pool) == 18 and pool.draws == 18
    trained = {x.tobytes() for x in pool.inputs()[:, 0]}
    assert not trained & {x.tobytes() for x in data.val.x}
