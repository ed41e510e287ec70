"""Each drawing's model inputs and stroke variants are built once, when it arrives
(by the background worker), and every run reads them from the item cache instead
of decoding PNGs and rendering variants again."""

from __future__ import annotations

import numpy as np
import pytest

from classifier import canvas
from collector import dataset
from collector.models import Drawing, NewDrawing
from training.config import PRESETS, TrainConfig
from training.sources import drawings as drawing_source
from training.sources import variants as variant_source

pytestmark = pytest.mark.django_db


def page_strokes(digit) -> list:
    return canvas.parse_strokes(
        canvas.strokes_as_json(canvas.timed(canvas.fit_to_canvas(digit.strokes)))
    )


def add(digit, *, strokes: bool = True, split: str = "train") -> Drawing:
    pen = page_strokes(digit)
    drawing, created = Drawing.objects.add(
        NewDrawing(
            canvas.render_canvas_png(pen),
            digit.label,
            status="approved",
            split=split,
            strokes=pen if strokes else None,
        )
    )
    assert created
    return drawing


def test_a_second_run_reads_every_drawing_from_the_cache(pen_digits, monkeypatch):
    config = TrainConfig(sources=("drawings",), variants=4)
    for i, digit in enumerate(pen_digits[:12]):
        add(digit, strokes=i % 3 != 0)
    add(pen_digits[12], split="test")
    first = drawing_source.drawings_pool(config)
    tests = drawing_source.load_drawings(splits=("test",))

    # when nothing may be decoded or rendered any more
    def nothing(*args, **kwargs):
        raise AssertionError("built again")

    monkeypatch.setattr(drawing_source, "build_variants", nothing)
    monkeypatch.setattr(dataset, "read_model_input", nothing)
    again = drawing_source.drawings_pool(config)
    # then the pool and the test set are read back, identical
    assert np.array_equal(first.inputs(), again.inputs()) and np.array_equal(first.y, again.y)
    assert first.inputs().shape == (12, 4, 28, 28)
    assert np.array_equal(drawing_source.load_drawings(splits=("test",))["test"].x, tests["test"].x)


def test_other_synthesis_settings_or_another_label_are_other_entries(pen_digits):
    drawing = add(pen_digits[0])
    config = TrainConfig(sources=("drawings",), variants=4)
    names = {drawing_source.item_name(drawing)}
    four = drawing_source.item_key(4, config)
    assert drawing_source.item_key(4, TrainConfig(variants=4, seed=config.seed + 1)) != four
    assert drawing_source.item_key(6, config) != four
    drawing.label = (drawing.label + 1) % 10
    names.add(drawing_source.item_name(drawing))
    assert len(names) == 2
    # a version bump of the synthesis makes every entry new
    before = drawing_source.item_key(1, config)
    variant_source.SYNTHESIS_VERSION += 1
    try:
        assert drawing_source.item_key(1, config) != before
    finally:
        variant_source.SYNTHESIS_VERSION -= 1


def test_a_contribution_is_prepared_when_it_arrives(
    pen_digits, eager_celery, django_capture_on_commit_callbacks
):
    # given a contribution with its strokes, committed
    with django_capture_on_commit_callbacks(execute=True):
        drawing = add(pen_digits[3])
    # then the background task built its inputs as the fine-tune preset reads them
    config = TrainConfig.from_run_fields(**{k: v for k, v in PRESETS["finetune"].items()})
    count = drawing_source.variant_count(config)
    path = drawing_source.item_file(
        "drawings", drawing_source.item_key(count, config), drawing_source.item_name(drawing)
    )
    inputs = np.load(path)
    assert inputs.shape == (count, 28, 28) and inputs.dtype == np.uint8
    # the first is the stored picture as the model reads it; the others are varied
    picture = np.round(dataset.read_model_input(drawing) * 255).astype(np.uint8)
    assert np.abs(inputs[0].astype(int) - picture).max() <= 1
    assert not np.array_equal(inputs[0], inputs[1])
    assert drawing_source.prepare(config) == 0  # nothing left to build


def test_a_cache_that_cannot_be_written_costs_the_next_run_time_not_this_one(
    pen_digits, settings, tmp_path
):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache's folder should be")
    settings.DIGITS_ITEM_CACHE_DIR = blocked
    add(pen_digits[5])
    pool = drawing_source.drawings_pool(TrainConfig(sources=("drawings",), variants=3))
    assert pool.inputs().shape == (1, 3, 28, 28) and pool.rows is None  # in memory
    assert not np.array_equal(pool.inputs()[0, 0], pool.inputs()[0, 1])  # varied all the same


def test_a_run_with_a_limit_reads_the_same_number_of_drawings_whatever_the_dataset(pen_digits):
    """``finetune`` reads at most its ``limit`` of training (and of validation)
    drawings: the newest half of it and a seeded sample of the older ones, the same
    drawings for both views; every test drawing still (the gate's); no limit: all."""
    from training import pen_data

    for digit in pen_digits[:14]:
        add(digit)
    for digit in pen_digits[14:17]:
        add(digit, split="test")
    limited = TrainConfig(sources=("drawings",), variants=1, limit=6)
    ids = sorted(Drawing.objects.filter(split="train").values_list("id", flat=True))
    chosen = sorted(
        drawing_source.sampled(Drawing.objects.filter(split="train"), 6, limited.seed).values_list(
            "id", flat=True
        )
    )
    assert len(chosen) == 6 and chosen[-3:] == ids[-3:]  # the newest three, three older
    assert chosen == sorted(
        drawing_source.sampled(Drawing.objects.filter(split="train"), 6, limited.seed).values_list(
            "id", flat=True
        )
    )  # seeded: the same sample every time
    pool = drawing_source.drawings_pool(limited)
    labels = dict(Drawing.objects.values_list("id", "label"))
    assert sorted(pool.y.tolist()) == sorted(labels[i] for i in chosen)
    pen = pen_data.load_pen_data(limited)
    assert len(pen.train) == 6 and len(pen.tests["drawings-test"]) == 3
    assert (
        len(
            drawing_source.part(limited, np.random.default_rng(0), lambda *a: None).tests[
                "drawings-test"
            ]
        )
        == 3
    )
    everything = TrainConfig(sources=("drawings",), variants=1)
    assert len(drawing_source.drawings_pool(everything)) == 14
    assert len(pen_data.load_pen_data(everything).train) == 14


def test_a_run_reads_its_pool_from_the_pack_and_only_what_changed_from_anywhere_else(
    pen_digits, monkeypatch
):
    from training.sources import cache

    config = TrainConfig(sources=("drawings",), variants=3)
    drawings = [add(digit, strokes=i % 4 != 0) for i, digit in enumerate(pen_digits[:10])]
    first = drawing_source.drawings_pool(config)
    assert isinstance(first.x, np.memmap) and first.rows is not None  # not held in memory
    reads = []
    real = drawing_source.prepared_inputs

    def counted(chunk, *args, **kwargs):
        reads.extend(d.pk for d in chunk)
        return real(chunk, *args, **kwargs)

    monkeypatch.setattr(drawing_source, "prepared_inputs", counted)
    again = drawing_source.drawings_pool(config)
    assert reads == []  # nothing read but the pack
    assert np.array_equal(again.inputs(), first.inputs())
    # one drawing relabelled, one new, one rejected: only the first two are read
    Drawing.objects.filter(pk=drawings[2].pk).update(label=(drawings[2].label + 1) % 10)
    Drawing.objects.filter(pk=drawings[5].pk).update(status="rejected")
    new = add(pen_digits[20])
    third = drawing_source.drawings_pool(config)
    assert sorted(reads) == sorted([drawings[2].pk, new.pk])
    assert len(third) == 10 and third.y[2] == (drawings[2].label + 1) % 10
    kept = [0, 1, 3, 4, 6, 7, 8, 9]  # by id: third's 0, 1, 3, 4, 5, 6, 7, 8
    assert np.array_equal(third.inputs()[[0, 1, 3, 4, 5, 6, 7, 8]], first.inputs()[kept])
    # the relabelled drawing's variants are its new label's (another record)
    assert third.rows[2] not in set(first.rows.tolist())
    pack = cache.Pack("drawings", drawing_source.item_key(3, config), (3, 28, 28))
    assert pack.data.stat().st_size == 12 * 3 * 28 * 28


def test_a_pack_left_half_written_is_cut_back_to_its_whole_records(pen_digits):
    from training.sources import cache

    config = TrainConfig(sources=("drawings",), variants=2)
    for digit in pen_digits[:4]:
        add(digit)
    first = drawing_source.drawings_pool(config)
    pack = cache.Pack("drawings", drawing_source.item_key(2, config), (2, 28, 28))
    # a process died appending: half a record, and a name without its line's end
    with open(pack.data, "ab") as handle:
        handle.write(b"\xff" * 1000)
    with open(pack.names, "a") as handle:
        handle.write("f" * 64 + "-3")
    add(pen_digits[4])
    second = drawing_source.drawings_pool(config)
    assert np.array_equal(second.inputs()[:4], first.inputs())
    assert pack.data.stat().st_size == 5 * 2 * 28 * 28
    assert len(pack.names.read_text().splitlines()) == 5 and second.rows[4] == 4
    fresh = drawing_source.prepared_inputs([Drawing.objects.latest("id")], 2, config)[0]
    assert np.array_equal(second.inputs()[4], fresh)


def test_a_full_disk_while_packing_keeps_the_inputs_in_memory_and_loses_none(
    pen_digits, monkeypatch
):
    from training.sources import cache

    config = TrainConfig(sources=("drawings",), variants=2)
    for digit in pen_digits[:6]:
        add(digit)
    expected = drawing_source.drawings_pool(config).inputs()
    pack = cache.Pack("drawings", drawing_source.item_key(2, config), (2, 28, 28))
    pack.data.unlink()
    pack.names.unlink()
    real_open = open

    def full(path, mode="r", *args, **kwargs):
        if str(path) == str(pack.data) and "a" in mode:
            raise OSError(28, "No space left on device")
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", full)
    pool = drawing_source.drawings_pool(config)
    monkeypatch.undo()
    assert pool.rows is None and np.array_equal(pool.inputs(), expected)
    assert not pack.data.exists() or pack.data.stat().st_size == 0


def test_the_pen_view_varies_contributed_strokes_in_every_style_as_it_varies_pen_digits(
    pen_digits,
):
    """The page's strokes are ``[x, y, t]``; the pen view keeps x and y (float32: a
    third of the memory at a million drawings). Kept with their times, every
    allograph failed on them (``box`` unpacked three columns into two), and the pen
    view silently trained on those drawings as drawn, unvaried."""
    from training import allographs, pen_data
    from training import strokes as stroke_space

    ones = [d for d in pen_digits if d.label == 1][:2]
    zeros = [d for d in pen_digits if d.label == 0][:2]
    for digit in ones + zeros:
        add(digit)
    data = pen_data.load_pen_data(TrainConfig(sources=("drawings",), variants=1))
    assert len(data.train) == 4
    rng = np.random.default_rng(0)
    tried = 0
    for strokes, label in zip(data.train.strokes, data.train.y, strict=True):
        assert all(s.shape[1] == 2 and s.dtype == np.float32 for s in strokes)
        for style in allographs.styles_of(label):
            varied, _ = stroke_space.vary(style.make(list(strokes), rng), rng)
            assert len(varied) >= len(strokes)
            tried += 1
    assert tried >= 4
    # what the pen view reads is the strokes' geometry, as before (no timing)
    stored = Drawing.objects.order_by("id").first()
    from classifier import pen

    assert np.allclose(
        pen.features(canvas.parse_strokes(stored.strokes)), pen.features(data.train.strokes[0]),
        atol=1e-4,
    )  # fmt: skip
