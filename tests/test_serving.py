"""classifier.serving: one path from an image to the model's answer, for every caller."""

from __future__ import annotations

import json

import numpy as np
import pytest

from classifier import calibration, preprocessing, runtime, serving
from classifier.predictor import Predictor
from classifier.registry import BOOTSTRAP_DIR

from .conftest import data_url


def test_the_active_model_answers_with_its_version(active_model, canvas_png):
    x = preprocessing.to_model_input(canvas_png(3))
    verdicts = serving.classify(x[None])
    assert verdicts.model_version == active_model.version
    assert verdicts.model_version_id == active_model.pk
    answer = verdicts.answer()
    assert answer["digit"] == 3 and answer["model_version"] == active_model.version
    assert answer["confidence"] == pytest.approx(float(verdicts.probabilities[0].max()), abs=1e-6)


def test_a_given_predictor_is_used_and_named_by_no_version(db, canvas_png):
    x = np.stack([preprocessing.to_model_input(canvas_png(d)) for d in (1, 7)])
    verdicts = serving.classify(x, Predictor(BOOTSTRAP_DIR / "model.tflite"))
    assert verdicts.model_version is None and verdicts.digits.tolist() == [1, 7]


def test_large_inputs_go_in_chunks_with_the_same_answers(db, monkeypatch):
    from training.sources import mnist as mnist_source

    images = mnist_source.load_mnist().test.as_inputs()[:250]
    predictor = Predictor(BOOTSTRAP_DIR / "model.tflite")
    whole = serving.classify(images, predictor).probabilities
    monkeypatch.setattr(serving, "CHUNK", 64)
    chunked = serving.classify(images, predictor).probabilities
    np.testing.assert_allclose(chunked, whole, atol=1e-6)
    assert serving.classify(images[:0], predictor).probabilities.shape == (0, 10)


def test_without_a_model_it_says_so(db):
    with pytest.raises(runtime.NoActiveModel):
        serving.classify(np.zeros((1, 28, 28), np.float32))


def test_sure_follows_the_versions_threshold_or_else_the_setting(settings):
    probabilities = np.array([[0.02] * 9 + [0.82]], np.float32)
    # a version with its own fitted threshold: the setting does not matter
    settings.DIGITS_CONFIDENCE_THRESHOLD = 0.99
    assert serving.Verdicts(probabilities, 3, threshold=0.81).answer()["sure"] is True
    assert serving.Verdicts(probabilities, 3, threshold=0.83).answer()["sure"] is False
    # a version trained before calibration: the setting decides
    settings.DIGITS_CONFIDENCE_THRESHOLD = 0.81
    assert serving.Verdicts(probabilities, 3, threshold=None).answer()["sure"] is True
    settings.DIGITS_CONFIDENCE_THRESHOLD = 0.83
    assert serving.Verdicts(probabilities, 3, threshold=None).answer()["sure"] is False


def test_the_served_version_answers_with_its_calibration(active_model, canvas_png):
    x = preprocessing.to_model_input(canvas_png(8))
    verdicts = serving.classify(x[None])
    assert verdicts.threshold == active_model.confidence_threshold
    raw = Predictor(active_model.load_artifact()).predict(x[None])
    temperature = active_model.calibration.get("temperature", 1.0)
    np.testing.assert_allclose(
        verdicts.probabilities, calibration.apply_temperature(raw, temperature), atol=1e-5
    )


@pytest.mark.parametrize("url", ["/api/predict/", "/api/drawings/"])
def test_a_request_is_preprocessed_once(client, active_model, canvas_png, monkeypatch, url):
    calls = []
    original = preprocessing.ink_to_model_input  # every path to a model input ends here

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(preprocessing, "ink_to_model_input", counted)
    body = {"image": data_url(canvas_png(4)), "label": 4}
    response = client.post(url, json.dumps(body), content_type="application/json")
    assert response.status_code in (200, 201), response.content
    assert len(calls) == 1
