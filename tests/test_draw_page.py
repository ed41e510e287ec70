"""The drawing page in real Chromium: real pen strokes replayed as pointer moves."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings

from classifier import canvas

from .conftest import launched_chromium

pytestmark = pytest.mark.browser

ANSWERED = """() => {
  const result = document.getElementById('result');
  return result.dataset.state !== 'pending'
      && result.dataset.version === document.getElementById('pad').dataset.version;
}"""


@pytest.fixture
def served(transactional_db, live_server):
    from classifier.registry import ensure_active_model

    ensure_active_model()
    return live_server.url


@pytest.fixture
def page(served, sync_browser_thread):
    with launched_chromium() as browser:
        page = browser.new_page(viewport={"width": 1100, "height": 800}, device_scale_factor=2)
        page.goto(served + "/")
        yield page


def draw(page, strokes) -> None:
    """Replay canvas-space strokes as real mouse pointer moves over the pad."""
    box = page.locator("#pad").bounding_box()
    scale = box["width"] / 256
    for stroke in strokes:
        points = [(box["x"] + float(x) * scale, box["y"] + float(y) * scale) for x, y in stroke]
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point)
        page.mouse.up()
    page.wait_for_function(ANSWERED)


def shown_digit(page) -> int | None:
    value = page.locator("#result").get_attribute("data-digit")
    return int(value) if value else None


def test_replayed_pen_digits_of_unseen_writers_are_recognised(page, unseen_pen_digits):
    # given 30 digits (3 per class) by writers the bootstrap model never trained on
    chosen = []
    for label in range(10):
        chosen += [d for d in unseen_pen_digits if d.label == label][:3]
    assert len(chosen) == 30 and len({d.writer for d in chosen}) >= 3
    wrong = []
    for digit in chosen:
        # when each is drawn on the page
        page.keyboard.press("Escape")
        draw(page, canvas.fit_to_canvas(digit.strokes))
        # then the page shows the right answer
        if shown_digit(page) != digit.label:
            wrong.append((digit.writer, digit.sample, digit.label, shown_digit(page)))
    screenshots = Path(settings.DIGITS_DATA_DIR) / "screenshots"
    screenshots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=screenshots / "draw-page.png")
    assert len(wrong) <= 1, wrong
    assert page.locator("#prediction-text").inner_text().startswith(("It's a", "Not sure"))
    assert page.locator("#model-input").is_visible()
    assert page.locator("#bars li.top").count() == 1


def test_blank_page_prompts_and_undo_clear_work_from_the_keyboard(page, unseen_pen_digits):
    # a blank canvas asks for a drawing
    assert "Draw a digit" in page.locator("#prediction-text").inner_text()
    assert page.locator("#undo").is_disabled() and page.locator("#clear").is_disabled()
    # a seven in two strokes, then undo removes the last stroke only
    seven = next(d for d in unseen_pen_digits if d.label == 7)
    draw(page, canvas.fit_to_canvas(seven.strokes))
    assert shown_digit(page) == 7
    draw(page, [[(40, 200), (60, 200)]])  # a stray dash
    page.keyboard.press("Control+z")
    page.wait_for_function(ANSWERED)
    assert shown_digit(page) == 7
    # the clear button is reachable by keyboard and labelled
    page.locator("#clear").focus()
    page.keyboard.press("Enter")
    page.wait_for_function(ANSWERED)
    assert page.locator("#result").get_attribute("data-state") == "idle"
    assert shown_digit(page) is None
    assert page.get_by_role("button", name="Clear").count() == 1


def test_touch_drawing_does_not_scroll_the_page(page):
    assert page.locator("#pad").evaluate("el => getComputedStyle(el).touchAction") == "none"


def test_wrong_answers_can_be_corrected_from_the_draw_page(page, unseen_pen_digits):
    from collector.models import Drawing

    three = next(d for d in unseen_pen_digits if d.label == 3)
    draw(page, canvas.fit_to_canvas(three.strokes))
    page.locator("#correction").get_by_role("button", name="It's an 8").click()
    page.wait_for_function(
        "() => document.getElementById('correction-note').textContent.startsWith('Thanks')"
    )
    note = page.locator("#correction-note").inner_text()
    assert "Saved as an 8" in note
    drawing = Drawing.objects.get()
    # it waits for review: the note does not promise that the next model learns from it
    assert drawing.status == "pending" and "Once staff approve it" in note
    assert (drawing.label, drawing.source) == (8, "correction")
    # the correction keeps the pen: one recorded stroke per replayed stroke, every
    # pointer move a timed point on the canvas, in the drawing's own row
    recorded = canvas.parse_strokes(drawing.strokes)
    assert len(recorded) == len(three.strokes)
    for sent, kept in zip(canvas.fit_to_canvas(three.strokes), recorded, strict=True):
        assert len(kept) >= len(sent)
        assert np.abs(kept[0, :2] - sent[0]).max() < 2.0  # where the stroke began
    times = np.concatenate([s[:, 2] for s in recorded])
    assert times[0] == 0 and (np.diff(times) >= 0).all() and times[-1] > 0


def test_contribute_page_asks_for_a_digit_and_the_dataset_grows(served, page, unseen_pen_digits):
    # given the contribute page, which asks for the digit the dataset needs most
    page.goto(served + "/contribute/")
    asked = int(page.locator("#target-digit").inner_text())
    total_before = int(page.locator("#dataset-total").inner_text())
    # when a person draws that digit with real pen strokes and adds it
    digit = next(d for d in unseen_pen_digits if d.label == asked)
    draw(page, canvas.fit_to_canvas(digit.strokes))
    page.get_by_role("button", name="Add to the dataset").click()
    page.wait_for_function(
        "() => document.getElementById('thanks').textContent.startsWith('Thank')"
    )
    # then they are thanked with the new count, and the dataset page shows one more
    assert int(page.locator("#dataset-total").inner_text()) == total_before + 1
    # and the strokes the page recorded agree with the picture it sent: both kept
    from collector.models import Drawing

    assert Drawing.objects.latest("id").strokes
    assert int(page.locator("#target-digit").inner_text()) != asked
    page.goto(served + "/dataset/")
    assert int(page.locator("#dataset-total").inner_text()) == total_before + 1
    screenshots = Path(settings.DIGITS_DATA_DIR) / "screenshots"
    page.screenshot(path=screenshots / "dataset-page.png", full_page=True)


def test_a_slow_stroke_is_answered_before_pen_up(page):
    """One continuous stroke for about two seconds: answers arrive while the pen moves."""
    box = page.locator("#pad").bounding_box()
    scale = box["width"] / 256
    corners = [(60, 60), (200, 60), (110, 220)]  # a seven, one stroke
    path = []
    for (x0, y0), (x1, y1) in itertools.pairwise(corners):
        path += [(x0 + (x1 - x0) * t / 40, y0 + (y1 - y0) * t / 40) for t in range(40)]
    page.mouse.move(box["x"] + path[0][0] * scale, box["y"] + path[0][1] * scale)
    page.mouse.down()
    answers = set()
    for x, y in path[1:]:
        page.mouse.move(box["x"] + x * scale, box["y"] + y * scale)
        page.wait_for_timeout(25)
        answers.add(page.locator("#result").get_attribute("data-version"))
    # still drawing: the pen has not left the canvas
    answers.discard(None)
    assert len(answers) >= 3, f"answered drawing versions while the pen moved: {answers}"
    assert page.locator("#prediction-text").inner_text() != ""
    assert "Draw a digit" not in page.locator("#prediction-text").inner_text()
    screenshots = Path(settings.DIGITS_DATA_DIR) / "screenshots"
    screenshots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=screenshots / "draw-page-mid-stroke.png")
    page.mouse.up()
    page.wait_for_function(ANSWERED)
    assert shown_digit(page) == 7


def test_a_dot_says_it_is_too_small(page):
    box = page.locator("#pad").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_function(ANSWERED)
    assert page.locator("#result").get_attribute("data-state") == "idle"
    assert "Keep drawing" in page.locator("#prediction-text").inner_text()
    assert shown_digit(page) is None


def test_a_correction_can_be_corrected_and_shows_what_was_kept(page, unseen_pen_digits):
    from collector.models import Drawing

    six = next(d for d in unseen_pen_digits if d.label == 6)
    draw(page, canvas.fit_to_canvas(six.strokes))
    note = page.locator("#correction-note")
    page.locator("#correction").get_by_role("button", name="It's a 5").click()
    page.wait_for_function(
        "() => document.getElementById('correction-note').textContent.includes('a 5')"
    )
    page.locator("#correction").get_by_role("button", name="It's a 6").click()
    page.wait_for_function(
        "() => document.getElementById('correction-note').textContent.startsWith('Changed')"
    )
    assert "saved as a 6" in note.inner_text()
    assert Drawing.objects.get().label == 6
    # someone else's label is shown as kept, not as the button pressed
    Drawing.objects.update(status="approved")
    page.locator("#correction").get_by_role("button", name="It's a 0").click()
    page.wait_for_function(
        "() => document.getElementById('correction-note').textContent.includes('already in the dataset')"
    )
    assert "as a 6" in note.inner_text() and Drawing.objects.get().label == 6


def test_contribute_feedback_stays_in_view_on_a_phone(
    served, unseen_pen_digits, sync_browser_thread
):
    with launched_chromium() as browser:
        phone = browser.new_page(
            viewport={"width": 390, "height": 844}, device_scale_factor=3, has_touch=True
        )
        phone.goto(served + "/contribute/")
        asked = int(phone.locator("#target-digit").inner_text())
        digit = next(d for d in unseen_pen_digits if d.label == asked)
        draw(phone, canvas.fit_to_canvas(digit.strokes))
        guess = phone.locator("#guess")
        assert guess.bounding_box()["y"] + guess.bounding_box()["height"] <= 844, (
            "guess below the fold"
        )
        phone.get_by_role("button", name="Add to the dataset").click()
        phone.wait_for_function(
            "() => document.getElementById('thanks').textContent.startsWith('Thank')"
        )
        phone.wait_for_timeout(400)  # a smooth scroll, if one was needed, has ended
        box = phone.locator("#thanks").bounding_box()
        scrolled = phone.evaluate("() => window.scrollY")
        assert box["y"] >= 0 and box["y"] + box["height"] <= 844, (box, scrolled)
        screenshots = Path(settings.DIGITS_DATA_DIR) / "screenshots"
        screenshots.mkdir(parents=True, exist_ok=True)
        phone.screenshot(path=screenshots / "contribute-phone-after-submit.png")


def test_the_pad_takes_the_stroke_limits_from_the_server(served, page, monkeypatch):
    # given a server that accepts at most two strokes (the pad reads its limits from
    # the page, never from a copy of its own)
    from collector.models import Drawing

    monkeypatch.setattr(canvas, "MAX_STROKES", 2)
    page.goto(served + "/contribute/")
    assert page.locator("#pad").get_attribute("data-max-strokes") == "2"
    asked = int(page.locator("#target-digit").inner_text())
    # when a person draws three strokes and adds the drawing
    draw(page, [[(60, 60), (190, 60)], [(190, 60), (100, 200)], [(90, 130), (170, 130)]])
    page.get_by_role("button", name="Add to the dataset").click()
    page.wait_for_function(
        "() => document.getElementById('thanks').textContent.startsWith('Thank')"
    )
    # then the page sent it as a picture only, which the server took
    drawing = Drawing.objects.get()
    assert drawing.label == asked and drawing.strokes is None


def test_live_predictions_carry_the_strokes_mid_stroke_and_at_pen_up(page, unseen_pen_digits):
    """Every live prediction sends the pen as well as the picture, as the page
    records it, so a version with a pen view reads both; the picture is the part of
    the pad with ink, with its place on the pad."""
    import base64
    import json

    from classifier import preprocessing

    sent: list[dict] = []
    page.on(
        "request",
        lambda request: (
            sent.append(json.loads(request.post_data))
            if request.url.endswith("/api/predict/")
            else None
        ),
    )
    # two strokes, the first long enough alone to be asked about (a shorter one is
    # not sent: the page asks nothing of ink too small to read)
    digit = next(
        d for d in unseen_pen_digits
        if len(d.strokes) == 2 and np.ptp(canvas.fit_to_canvas(d.strokes)[0], 0).max() > 120
    )  # fmt: skip
    drawn = canvas.fit_to_canvas(digit.strokes)
    box = page.locator("#pad").bounding_box()
    scale = box["width"] / 256
    first = [(box["x"] + x * scale, box["y"] + y * scale) for x, y in drawn[0][:, :2]]
    page.mouse.move(*first[0])
    page.mouse.down()
    for point in first[1:]:
        page.mouse.move(*point)
        page.wait_for_timeout(15)
    page.mouse.up()
    draw(page, [drawn[1][:, :2]])
    assert sent, "no live prediction was sent"
    assert all("strokes" in body and "image" in body for body in sent)
    # mid-stroke requests carry the stroke so far; the last one both strokes
    assert any(len(body["strokes"]) == 1 for body in sent)
    last = sent[-1]["strokes"]
    assert len(last) == 2 and canvas.parse_strokes(last)
    # each sends only the part of the pad with ink, and where it lies on the pad
    for body in sent:
        piece = preprocessing.decode_ink(base64.b64decode(body["image"].split(",", 1)[1]))
        where = body["canvas"]
        assert (where["width"], where["height"]) == (256, 256)
        assert piece.shape[0] < 256 or piece.shape[1] < 256
        assert where["left"] + piece.shape[1] <= 256 and where["top"] + piece.shape[0] <= 256
        # no ink was cut off: the piece's edges are blank wherever they are not the pad's
        edges = {
            "top": (piece[0], where["top"] > 0),
            "bottom": (piece[-1], where["top"] + piece.shape[0] < 256),
            "left": (piece[:, 0], where["left"] > 0),
            "right": (piece[:, -1], where["left"] + piece.shape[1] < 256),
        }
        for side, (line, inside) in edges.items():
            assert not inside or line.max() < preprocessing.INK_THRESHOLD, side
    assert page.locator("#result").get_attribute("data-state") == "ready"
    # the bootstrap version read both views (the piece, put back, agreed with the
    # strokes), and the page says so too
    assert page.locator("#result").get_attribute("data-views") == "image pen"
    assert "picture and pen" in page.locator("#prediction-confidence").inner_text()


def test_the_digit_picker_is_a_radio_group_the_arrow_keys_move(page, served, unseen_pen_digits):
    page.goto(served + "/contribute/")
    asked = int(page.locator("#target-digit").inner_text())
    picker = page.locator("#picker")
    # one tab stop: the checked digit
    assert picker.locator('button[tabindex="0"]').count() == 1
    picker.locator(f'button[data-digit="{asked}"]').focus()
    page.keyboard.press("ArrowRight")
    moved = (asked + 1) % 10
    assert int(page.locator("#target-digit").inner_text()) == moved
    checked = picker.locator('button[aria-checked="true"]')
    assert checked.count() == 1 and checked.get_attribute("data-digit") == str(moved)
    assert page.evaluate("document.activeElement.dataset.digit") == str(moved)
    page.keyboard.press("End")
    assert page.locator("#target-digit").inner_text() == "9"


def test_picking_the_digit_the_model_saw_drops_the_stale_hint(page, served, unseen_pen_digits):
    page.goto(served + "/contribute/")
    four = next(d for d in unseen_pen_digits if d.label == 4)
    page.locator('#picker button[data-digit="9"]').click()
    draw(page, canvas.fit_to_canvas(four.strokes))
    page.wait_for_function("() => /anyway/.test(document.getElementById('guess').textContent)")
    # "A 4? (97%) — if you drew a 9, add it anyway…"
    seen = int(page.locator("#guess").inner_text().split("?")[0].split()[-1])
    page.locator(f'#picker button[data-digit="{seen}"]').click()
    text = page.locator("#guess").inner_text()
    assert "looks right" in text and "anyway" not in text


def test_a_smaller_copy_of_ones_own_drawing_is_called_a_near_copy(page, served, unseen_pen_digits):
    page.goto(served + "/contribute/")
    six = canvas.fit_to_canvas(next(d for d in unseen_pen_digits if d.label == 6).strokes)
    page.locator('#picker button[data-digit="6"]').click()
    draw(page, six)
    page.get_by_role("button", name="Add to the dataset").click()
    page.wait_for_function("() => /^Thank you/.test(document.getElementById('thanks').textContent)")
    # the thanks scrolls into view smoothly: draw once the pad has stopped moving
    page.wait_for_function(
        """() => new Promise((done) => {
          const top = () => document.getElementById('pad').getBoundingClientRect().top;
          const first = top();
          setTimeout(() => done(top() === first), 300);
        })"""
    )
    page.locator('#picker button[data-digit="6"]').click()
    smaller = [(s[:, :2] - 128) * 0.75 + 128 for s in six]  # the same 6, drawn smaller
    draw(page, smaller)
    page.get_by_role("button", name="Add to the dataset").click()
    page.wait_for_function("() => /moment ago/.test(document.getElementById('thanks').textContent)")
    assert "exactly" not in page.locator("#thanks").inner_text()


def test_pages_follow_the_systems_dark_mode_and_the_pad_stays_paper(served, sync_browser_thread):
    def luminance(rgb: str) -> float:
        r, g, b = (int(v) for v in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3])
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    with launched_chromium() as browser:
        for scheme, dark in (("dark", True), ("light", False)):
            page = browser.new_page(color_scheme=scheme)
            page.goto(served + "/")
            body = page.evaluate("getComputedStyle(document.body).backgroundColor")
            pad = page.evaluate("getComputedStyle(document.getElementById('pad')).backgroundColor")
            assert (luminance(body) < 60) is dark
            assert luminance(pad) > 240  # people draw dark ink on paper either way
            if dark:  # to look at: the draw page and the 404 page, dark, on a phone too
                shots = Path(settings.DIGITS_DATA_DIR) / "screenshots"
                shots.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=shots / "draw-page-dark.png")
                page.set_viewport_size({"width": 390, "height": 844})
                page.goto(served + "/no-such-page/")
                page.screenshot(path=shots / "not-found-dark-phone.png")
            page.close()


def _shrunk(strokes, fraction: float) -> list[np.ndarray]:
    """The drawing scaled about the pad's centre so its points span ``fraction``."""
    points = np.concatenate(strokes)[:, :2]
    centre, span = (points.min(0) + points.max(0)) / 2, float(np.ptp(points, 0).max())
    return [(s[:, :2] - centre) * (fraction * 256 / span) + 128 for s in strokes]


def test_drawing_a_digit_logs_no_errors_and_is_announced_once_it_settles(page, unseen_pen_digits):
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.evaluate(
        """() => { window.announced = [];
        const region = document.getElementById('announce');
        new MutationObserver(() => window.announced.push(region.textContent))
          .observe(region, {childList: true, characterData: true, subtree: true}); }"""
    )
    eight = next(d for d in unseen_pen_digits if d.label == 8)
    page.mouse.click(300, 300)  # a stray dot on the page, then the digit, slowly
    draw(page, canvas.fit_to_canvas(eight.strokes))
    page.wait_for_function("() => window.announced.length > 0")
    page.wait_for_timeout(900)
    assert errors == []  # no "400 Bad Request" at the stroke's start
    assert len(page.evaluate("window.announced")) == 1  # not at every frame
    assert page.locator("#result").get_attribute("aria-live") is None


def test_a_digit_too_small_for_the_pen_is_not_guessed(page, unseen_pen_digits):
    three = canvas.fit_to_canvas(next(d for d in unseen_pen_digits if d.label == 3).strokes)
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.url.endswith("/api/predict/") else None)
    draw(page, _shrunk(three, 0.13))  # 13 % of the pad: a blob with this pen
    assert page.locator("#result").get_attribute("data-state") == "idle"
    assert "draw bigger" in page.locator("#prediction-text").inner_text()
    assert shown_digit(page) is None and sent == []  # not asked: it would be refused
