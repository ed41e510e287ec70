"""training.recipes: each project trains the way it did (optimizer, schedule,
callbacks, augmentation ranges, split, seed), and the trainer really uses it."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from training import augmentation
from training.config import PRESETS, TrainConfig, preset_fields
from training.recipes import RECIPES, AugmentConfig, Recipe
from training.sources import load_training_data
from training.trainer import build_model, optimizer, recipe_callbacks, train

PRIOR = ("canvas-cnn", "deep-bn", "vgg-bn", "mlp", "kaggle-cnn")


def test_each_prior_work_preset_names_its_own_architecture_and_recipe():
    for name in PRIOR:
        recipe = RECIPES[name]
        config = TrainConfig.from_run_fields(**preset_fields(name))
        assert (config.architecture, config.recipe) == (name, name)
        assert (config.epochs, config.batch_size, config.learning_rate, config.seed) == (
            recipe.epochs,
            recipe.batch_size,
            recipe.learning_rate,
            recipe.seed,
        )
        assert config.augment == (recipe.augmentation is not None)
    # the default preset puts every recipe setting back to ours
    mixed = {**preset_fields("kaggle-cnn"), **preset_fields("default")}
    assert TrainConfig.from_run_fields(**mixed) == TrainConfig.from_run_fields(
        **{k: v for k, v in PRESETS["default"].items()}
    )
    assert TrainConfig.from_run_fields(**mixed).recipe == "digitnet"


def test_the_recipes_say_what_their_projects_described():
    deep, vgg, kaggle, mlp = (RECIPES[n] for n in ("deep-bn", "vgg-bn", "kaggle-cnn", "mlp"))
    # the multi-dataset CNN: batch 384 with gradient clipping, plateau, early stop, checkpoint
    assert deep.batch_size == 384 and deep.clipnorm and deep.plateau and deep.early_stopping
    assert deep.keep_best
    aug = deep.augmentation
    assert aug.elastic_pixels and aug.noise and aug.cutout_pixels and aug.brightness
    assert aug.invert_probability
    # the VGG-style CNN: StepLR halving every 10 epochs, label smoothing 0.1,
    # rotation ±10°, shift 10 %, one scale 0.9 to 1.1
    assert (vgg.schedule, vgg.step_epochs, vgg.step_factor) == ("step", 10, 0.5)
    assert vgg.label_smoothing == 0.1
    assert vgg.augmentation.rotation_degrees == 10 and vgg.augmentation.isotropic_zoom
    assert vgg.augmentation.shift_pixels == pytest.approx(2.8)
    assert vgg.augmentation.zoom == pytest.approx(0.1)
    # the Kaggle CNN: rotation 15°, zoom 0.15, shifts 0.15 of the image; flip off
    assert kaggle.augmentation.rotation_degrees == 15 and kaggle.augmentation.zoom == 0.15
    assert kaggle.augmentation.shift_pixels == pytest.approx(0.15 * 28)
    assert kaggle.plateau.monitor == "val_accuracy"
    # the MLP had no augmentation
    assert mlp.augmentation is None
    # nobody flips, and every prior project held out 10 % of MNIST; ours 5,000
    assert not any(r.augmentation and r.augmentation.horizontal_flip for r in RECIPES.values())
    assert {RECIPES[n].mnist_val for n in PRIOR} == {6000}
    assert RECIPES["digitnet"].mnist_val == 5000
    # each says which of its values its description does not give
    assert all(RECIPES[n].assumed for n in PRIOR)


def test_a_recipe_cannot_combine_a_plateau_with_a_schedule():
    from training.recipes import Plateau

    with pytest.raises(ValueError, match="plateau"):
        Recipe("x", "adam", 1e-3, 32, 1, 0, schedule="step", plateau=Plateau("val_loss", 0.5, 2, 0))
    with pytest.raises(ValueError, match="optimizer"):
        Recipe("x", "sgd", 1e-3, 32, 1, 0)


def test_an_unknown_recipe_is_a_configuration_error():
    with pytest.raises(ValueError, match="recipe"):
        TrainConfig(recipe="lenet")


def _rate(opt, step: int) -> float:
    rate = opt.learning_rate if not callable(opt._learning_rate) else opt._learning_rate(step)
    return float(keras.ops.convert_to_numpy(rate))


def test_the_optimizers_and_schedules_are_the_recipes():
    # StepLR: halved after 10 epochs, quartered after 20, constant within an epoch run
    vgg = optimizer(RECIPES["vgg-bn"], 1e-3, steps_per_epoch=100, epochs=30)
    assert isinstance(vgg, keras.optimizers.Adam) and not isinstance(vgg, keras.optimizers.AdamW)
    assert [_rate(vgg, s) for s in (0, 999, 1000, 1999, 2000)] == pytest.approx(
        [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4]
    )
    # RMSprop at a constant rate that ReduceLROnPlateau may lower
    kaggle = optimizer(RECIPES["kaggle-cnn"], 1e-3, steps_per_epoch=100, epochs=30)
    assert isinstance(kaggle, keras.optimizers.RMSprop) and kaggle.rho == 0.9
    assert _rate(kaggle, 0) == pytest.approx(1e-3) and kaggle.clipnorm is None
    # Adam with gradient clipping for the multi-dataset CNN
    deep = optimizer(RECIPES["deep-bn"], 1e-3, steps_per_epoch=10, epochs=5)
    assert deep.clipnorm == 1.0
    # ours: AdamW, warm-up then cosine decay to 1 %
    ours = optimizer(RECIPES["digitnet"], 3e-3, steps_per_epoch=100, epochs=10)
    assert isinstance(ours, keras.optimizers.AdamW) and ours.weight_decay == 1e-4
    assert _rate(ours, 0) == pytest.approx(3e-4)
    assert _rate(ours, 50) == pytest.approx(3e-3)
    assert _rate(ours, 1000) == pytest.approx(3e-5, rel=0.05)
    # and a moving average of the weights over the last tenth of the 1,000 steps
    assert ours.use_ema and ours.ema_momentum == pytest.approx(1 - 1 / 100)
    assert not vgg.use_ema and not kaggle.use_ema


def test_the_callbacks_are_the_recipes():
    kaggle = recipe_callbacks(RECIPES["kaggle-cnn"], epochs=30)
    assert [type(c).__name__ for c in kaggle] == ["ReduceLROnPlateau"]
    plateau = kaggle[0]
    assert (plateau.monitor, plateau.factor, plateau.patience, plateau.min_lr) == (
        "val_accuracy",
        0.5,
        3,
        1e-5,
    )
    deep = recipe_callbacks(RECIPES["deep-bn"], epochs=50)
    assert [type(c).__name__ for c in deep] == ["ReduceLROnPlateau", "EarlyStopping"]
    assert deep[1].patience == 10 and deep[1].restore_best_weights
    # the MLP and the VGG network ended with their last epoch's weights
    assert recipe_callbacks(RECIPES["mlp"], epochs=20) == []
    assert recipe_callbacks(RECIPES["vgg-bn"], epochs=30) == []
    ours = recipe_callbacks(RECIPES["digitnet"], epochs=22)
    # the weights' moving average is swapped in before the best epoch is chosen
    assert [type(c).__name__ for c in ours] == ["SwapEMAWeights", "EarlyStopping"]
    assert ours[0].swap_on_epoch
    assert ours[1].patience == 8 and ours[1].restore_best_weights


def test_ours_validates_keeps_and_ends_with_the_weights_moving_average():
    """Each epoch is validated with the average swapped in, and the run ends with the
    average of its best epoch: not the weights of that epoch's last step."""
    keras.utils.set_random_seed(3)
    x = np.random.default_rng(3).normal(size=(256, 8)).astype("float32")
    y = keras.utils.to_categorical((x[:, 0] > 0).astype(int), 10)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer(RECIPES["digitnet"], 3e-2, steps_per_epoch=8, epochs=4),
                  loss="categorical_crossentropy", metrics=["accuracy"])  # fmt: skip
    raw, kept = [], []

    class Watch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 7:  # the epoch's last step, before the average is swapped in
                raw.append([w.copy() for w in self.model.get_weights()])

        def on_epoch_end(self, epoch, logs=None):
            kept.append(([w.copy() for w in self.model.get_weights()], logs["val_accuracy"]))

    callbacks = recipe_callbacks(RECIPES["digitnet"], epochs=4)
    model.fit(x, y, batch_size=32, epochs=4, validation_data=(x, y), verbose=0,
              callbacks=[*callbacks, Watch()])  # fmt: skip
    best = int(np.argmax([accuracy for _, accuracy in kept]))
    final = model.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(final, kept[best][0], strict=True))
    assert not all(np.allclose(a, b) for a, b in zip(final, raw[best], strict=True))
    assert model.evaluate(x, y, verbose=0)[1] == pytest.approx(kept[best][1])


def test_the_fitted_model_uses_the_recipes_loss_and_augmentation():
    model, fitted = build_model(TrainConfig.from_run_fields(**preset_fields("vgg-bn")), 10)
    assert fitted.loss.get_config()["label_smoothing"] == 0.1
    layer = next(x for x in fitted.layers if isinstance(x, augmentation.DigitAugment))
    assert layer.config == RECIPES["vgg-bn"].augmentation
    # the MLP's preset has none, and the exported model never carries it
    _, mlp = build_model(TrainConfig.from_run_fields(**preset_fields("mlp")), 10)
    assert not any(isinstance(x, augmentation.DigitAugment) for x in mlp.layers)
    assert not any(isinstance(x, augmentation.DigitAugment) for x in model.layers)


def test_prior_recipes_hold_out_ten_percent_of_mnist_and_ours_five_thousand():
    ours = load_training_data(TrainConfig(sources=("mnist",)))
    kaggle = load_training_data(TrainConfig(sources=("mnist",), recipe="kaggle-cnn"))
    assert (len(ours.train), len(ours.val)) == (55_000, 5_000)
    assert (len(kaggle.train), len(kaggle.val)) == (54_000, 6_000)


# --- the prior work's augmentations -------------------------------------------------


def _shape_l(n: int = 128) -> np.ndarray:
    shape = np.zeros((28, 28), np.float32)
    shape[6:22, 9:12] = 1.0
    shape[19:22, 9:20] = 1.0
    return np.repeat(shape[None, :, :, None], n, axis=0)


STILL = {"rotation_degrees": 0, "shear": 0, "zoom": 0, "shift_pixels": 0, "elastic_pixels": 0}
STILL_ALL = {**STILL, "thickness": 0, "noise": 0}


def test_the_kaggle_flip_is_available_and_mirrors_about_half():
    batch = _shape_l(256)
    out = augmentation.augment(
        tf.constant(batch), AugmentConfig(**STILL_ALL, horizontal_flip=True)
    ).numpy()
    mirrored = np.all(np.isclose(out, batch[:, :, ::-1]), axis=(1, 2, 3))
    kept = np.all(np.isclose(out, batch), axis=(1, 2, 3))
    assert (mirrored | kept).all() and 0.3 < mirrored.mean() < 0.7


def test_isotropic_and_zoom_out_only_scales():
    batch = _shape_l(256)
    config = AugmentConfig(**{**STILL_ALL, "zoom": 0.3}, isotropic_zoom=True, zoom_out_only=True)
    out = augmentation.augment(tf.constant(batch), config).numpy()
    # zoom-out only: never more ink than the original, most of them less
    ink = out.sum((1, 2, 3)) / batch.sum((1, 2, 3))
    assert (ink <= 1.01).all() and (ink < 0.95).mean() > 0.5
    # one scale for both axes: the bar's height and the foot's width shrink together
    rows = (out.max(axis=2)[..., 0] > 0.5).sum(1)
    cols = (out.max(axis=1)[..., 0] > 0.5).sum(1)
    ratio = rows / np.maximum(cols, 1)
    assert np.std(ratio) < 0.12, np.std(ratio)


def test_cutout_blanks_one_square_and_invert_turns_images_over():
    ones = np.ones((64, 28, 28, 1), np.float32)
    holes = augmentation.augment(
        tf.constant(ones), AugmentConfig(**STILL_ALL, cutout_pixels=8)
    ).numpy()
    # the warp's border may blur the edge by a pixel: count the blank pixels inside
    blank = (holes[:, 1:-1, 1:-1, 0] < 0.5).sum((1, 2))
    assert (blank >= 36).all() and (blank <= 64).all()
    x = _shape_l(512)
    turned = augmentation.augment(
        tf.constant(x), AugmentConfig(**STILL_ALL, invert_probability=0.25)
    ).numpy()
    inverted = np.all(np.isclose(turned, 1 - x, atol=1e-5), axis=(1, 2, 3))
    assert 0.15 < inverted.mean() < 0.35


def test_brightness_scales_the_ink():
    x = _shape_l(256)
    out = augmentation.augment(tf.constant(x), AugmentConfig(**STILL_ALL, brightness=0.3)).numpy()
    peak = out.max((1, 2, 3))
    assert peak.min() < 0.85 and np.isclose(peak, 1.0).mean() > 0.3  # brighter ones clip at 1


# --- end to end ---------------------------------------------------------------------


@pytest.mark.slow
def test_a_prior_recipe_trains_end_to_end_and_says_so_in_its_metrics(tmp_path, tiny_mnist):
    # the Kaggle recipe (RMSprop, plateau, its augmentation) on a tiny run of the MLP
    fields = {**preset_fields("kaggle-cnn"), "architecture": "mlp", "epochs": 2}
    config = TrainConfig.from_run_fields(**fields)
    result = train(config, tmp_path / "run", verbose=0, data=tiny_mnist)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["recipe"]["optimizer"] == "rmsprop"
    assert metrics["recipe"]["augmentation"]["rotation_degrees"] == 15
    assert metrics["config"]["recipe"] == "kaggle-cnn"
    # ReduceLROnPlateau reports the rate it used each epoch
    assert metrics["history"]["learning_rate"] == pytest.approx([1e-3, 1e-3])
    assert result.metrics["tests"]["mnist-test"]["accuracy"] > 0.5


def test_the_train_command_starts_from_a_preset_and_takes_overrides(monkeypatch, tmp_path):
    from django.core.management import CommandError, call_command

    from collector.formats import DatasetError

    seen = {}

    def stop_before_training(config, out, verbose, **more):
        seen["config"] = config
        raise DatasetError("stopped before training")

    monkeypatch.setattr("training.trainer.train", stop_before_training)
    with pytest.raises(CommandError, match="stopped before training"):
        call_command("train", "--preset", "kaggle-cnn", "--epochs", "3", "--out", str(tmp_path))
    config = seen["config"]
    assert (config.architecture, config.recipe, config.epochs) == ("kaggle-cnn", "kaggle-cnn", 3)
    assert (config.batch_size, config.seed) == (86, 2)
    with pytest.raises(CommandError, match="stopped before training"):
        call_command("train", "--recipe", "vgg-bn", "--no-augment", "--out", str(tmp_path))
    config = seen["config"]
    assert (config.architecture, config.recipe, config.augment) == ("digitnet", "vgg-bn", False)
    assert config.epochs == RECIPES["digitnet"].epochs
