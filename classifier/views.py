"""The drawing page."""

from django.conf import settings
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from classifier import preprocessing
from classifier.models import ModelVersion


@ensure_csrf_cookie  # the page posts corrections to a session-authenticated API
def draw(request):
    active = ModelVersion.active()
    if active is None:
        summary = "No model is active yet."
    else:
        parts = [f"Model v{active.version}", active.architecture]
        for name, label in (("mnist-test", "MNIST test"), ("pendigits", "unseen pen writers")):
            accuracy = active.test_accuracy(name)
            if accuracy is not None:
                parts.append(f"{label} {accuracy * 100:.2f}%")
        summary = " · ".join(parts)
    return render(
        request,
        "classifier/draw.html",
        {
            "canvas_size": preprocessing.CANVAS_SIZE,
            "stroke_width": preprocessing.CANVAS_STROKE_WIDTH,
            "threshold": settings.DIGITS_CONFIDENCE_THRESHOLD,
            "model_summary": summary,
        },
    )
