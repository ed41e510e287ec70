"""The drawing page."""

from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.views.decorators.csrf import ensure_csrf_cookie

from classifier import canvas
from classifier.models import ModelVersion
from digits_site.files import stored_file_response, stored_png_response


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
            **canvas.pad_settings(),
            "model_summary": summary,
        },
    )


@staff_member_required
def model_file(request, version: int, name: str):
    """A model version's report plot, or its artifact as a download (staff only:
    artifacts live in storage, which the web server does not serve directly)."""
    model_version = get_object_or_404(ModelVersion, version=version)
    artifacts = {"model.tflite": model_version.tflite, "model.keras": model_version.keras}
    if name in artifacts:
        if not artifacts[name]:
            raise Http404
        return stored_file_response(
            artifacts[name].name,
            "application/octet-stream",
            download_as=f"digits-v{version}-{name}",
        )
    stored = next((p for p in model_version.plots if p.rsplit("/", 1)[-1] == name), None)
    if stored is None:
        raise Http404
    return stored_png_response(stored)
