"""See the pen: a drawing's admin page replays its strokes, and the list filters
drawings with and without them."""

from __future__ import annotations

import html
import json

import pytest

from classifier import canvas
from collector.models import Drawing, NewDrawing


def _with_strokes(pen_digit) -> Drawing:
    strokes = canvas.fit_to_canvas(pen_digit.strokes)
    timed = canvas.parse_strokes(canvas.strokes_as_json(canvas.timed(strokes, 8.0)))
    png = canvas.render_canvas_png(timed)
    drawing, _ = Drawing.objects.add(NewDrawing(png, pen_digit.label, strokes=timed))
    return drawing


def test_the_list_filters_drawings_with_and_without_strokes(staff_client, canvas_png, pen_digits):
    drawn = _with_strokes(pen_digits[0])
    uploaded, _ = Drawing.objects.add(NewDrawing(canvas_png(5), 5))
    with_pen = staff_client.get("/admin/collector/drawing/?strokes=yes")
    without = staff_client.get("/admin/collector/drawing/?strokes=no")
    assert [d.pk for d in with_pen.context["cl"].result_list] == [drawn.pk]
    assert [d.pk for d in without.context["cl"].result_list] == [uploaded.pk]


def test_a_drawings_page_carries_its_strokes_for_the_replay(staff_client, canvas_png, pen_digits):
    drawn = _with_strokes(pen_digits[0])
    page = staff_client.get(f"/admin/collector/drawing/{drawn.pk}/change/").content.decode()
    assert 'class="pen-replay"' in page and "digits/admin-replay.js" in page
    start = page.index('data-strokes="') + len('data-strokes="')
    sent = json.loads(html.unescape(page[start : page.index('"', start)]))
    assert [len(s) for s in sent] == [len(s) for s in drawn.strokes]
    uploaded, _ = Drawing.objects.add(NewDrawing(canvas_png(5), 5))
    page = staff_client.get(f"/admin/collector/drawing/{uploaded.pk}/change/").content.decode()
    assert "No strokes" in page and "data-strokes" not in page


@pytest.mark.browser
def test_the_replay_draws_the_strokes_in_order(staff_browser, pen_digits):
    page, url = staff_browser
    digit = next(d for d in pen_digits if len(d.strokes) >= 2)
    drawn = _with_strokes(digit)
    page.goto(f"{url}/admin/collector/drawing/{drawn.pk}/change/")
    replay = page.locator(".pen-replay")

    def inked() -> int:
        return replay.locator("canvas").evaluate(
            "c => { const d = c.getContext('2d').getImageData(0, 0, 256, 256).data;"
            " let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n; }"
        )

    whole = inked()
    assert whole > 500  # the whole drawing at first
    slider = replay.locator("input[type=range]")
    slider.fill("0")
    assert inked() == 0
    first = len(drawn.strokes[0])
    slider.fill(str(first))
    assert 0 < inked() < whole and "stroke 1 of" in replay.locator("span").inner_text()
    from pathlib import Path

    from django.conf import settings

    shots = Path(settings.DIGITS_DATA_DIR) / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    replay.screenshot(path=shots / "admin-stroke-replay.png")  # stepped to the first stroke
    replay.get_by_role("button", name="Replay").click()
    page.wait_for_function(
        "() => document.querySelector('.pen-replay input').value"
        f" === '{sum(len(s) for s in drawn.strokes)}'"
    )
    assert inked() == pytest.approx(whole, rel=0.01)
