"""The contribute page, the public dataset page, and drawing images."""

from __future__ import annotations

from django.db.models import F
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET

from classifier import canvas
from collector import dataset
from collector.models import Drawing
from digits_site.files import stored_png_response


@ensure_csrf_cookie  # signed-in contributors post with the CSRF token
def contribute(request):
    needed = dataset.digits_most_needed()
    return render(
        request,
        "collector/contribute.html",
        {
            **canvas.pad_settings(),
            "target": needed[0],
            "target_str": str(needed[0]),
            "needed": needed,
            "total": Drawing.objects.count(),
        },
    )


def dataset_page(request):
    stats = dataset.stats()
    largest = max([sum(s.values()) for s in stats["by_label_split"].values()] + [1])
    rows = []
    for label, counts in stats["by_label_split"].items():
        total = sum(counts.values())
        rows.append(
            {
                "label": label,
                "total": total,
                **counts,
                **{f"{split}_pct": round(100 * n / largest, 2) for split, n in counts.items()},
            }
        )
    recent = Drawing.objects.filter(status=Drawing.Status.APPROVED).order_by(
        F("approved_at").desc(nulls_last=True), "-id"
    )[:24]
    return render(
        request, "collector/dataset.html", {"stats": stats, "rows": rows, "recent": recent}
    )


@require_GET
def drawing_image(request, sha256: str):
    """A drawing's PNG. Approved drawings are public; the rest are for staff."""
    drawing = get_object_or_404(Drawing, sha256=sha256)
    if drawing.status != Drawing.Status.APPROVED and not request.user.is_staff:
        raise Http404
    response = stored_png_response(drawing.image.name)
    response["Cache-Control"] = "private, max-age=3600"
    return response
