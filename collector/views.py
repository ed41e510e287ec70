"""The contribute page, the public dataset page, one's own contributions, and
drawing images."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

from classifier import canvas
from collector import counts, dataset
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
            "total": counts.total(),
        },
    )


def dataset_page(request):
    stats = dataset.stats()
    largest = max([sum(s.values()) for s in stats["by_label_split"].values()] + [1])
    rows = []
    for label, per_split in stats["by_label_split"].items():
        total = sum(per_split.values())
        rows.append(
            {
                "label": label,
                "total": total,
                **per_split,
                **{f"{split}_pct": round(100 * n / largest, 2) for split, n in per_split.items()},
            }
        )
    # Approved drawings all have their approval time: newest first along its index.
    recent = Drawing.objects.filter(
        status=Drawing.Status.APPROVED, approved_at__isnull=False
    ).order_by("-approved_at", "-id")[:24]
    return render(
        request, "collector/dataset.html", {"stats": stats, "rows": rows, "recent": recent}
    )


def _mine(request):
    """The drawings this browser sent (its session: no account needed)."""
    key = request.session.session_key
    return Drawing.objects.filter(session_key=key) if key else Drawing.objects.none()


def my_contributions(request):
    """What this browser contributed and corrected, with its review status and the
    label kept; a drawing still waiting for review can be withdrawn."""
    drawings = list(_mine(request).order_by("-created_at", "-id")[:200])
    counts = {status: sum(d.status == status for d in drawings) for status in Drawing.Status}
    return render(request, "collector/my_contributions.html",
                  {"drawings": drawings, "counts": counts})  # fmt: skip


@require_POST
def withdraw(request, pk: int):
    """Withdraw one's own drawing while it waits for review (file and row go)."""
    drawing = get_object_or_404(_mine(request), pk=pk)
    if drawing.status != Drawing.Status.PENDING:
        messages.warning(request, "Only drawings waiting for review can be withdrawn.")
    else:
        drawing.delete()
        messages.success(request, f"Your {drawing.label} was withdrawn.")
    return redirect("my-contributions")


@require_GET
def drawing_image(request, sha256: str):
    """A drawing's PNG. Approved drawings are public; the rest are for staff and
    for the browser that sent them."""
    drawing = get_object_or_404(Drawing, sha256=sha256)
    own = bool(drawing.session_key) and drawing.session_key == request.session.session_key
    if drawing.status != Drawing.Status.APPROVED and not request.user.is_staff and not own:
        raise Http404
    response = stored_png_response(drawing.image.name)
    response["Cache-Control"] = "private, max-age=3600"
    return response
