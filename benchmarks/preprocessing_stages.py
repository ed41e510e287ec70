"""Where the time of one prediction goes, stage by stage, in the web process.

    .venv/bin/python benchmarks/preprocessing_stages.py [--images 300]

Real canvas PNGs (pen digits by unseen writers): base64 decode, PNG decode to
ink, crop + resize to the working size, stroke normalisation, resize to 20 px
+ centre of mass, and the LiteRT invoke. Everything is NumPy/Pillow, no Python
loop over pixels.
"""

from __future__ import annotations

import argparse
import base64
import time

import _django  # noqa: F401
import numpy as np

from classifier import canvas
from classifier import preprocessing as pp
from classifier.predictor import Predictor
from classifier.registry import BOOTSTRAP_DIR
from training.sources import pendigits as pen_source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    args = parser.parse_args()
    digits = [
        d
        for d in pen_source.load_pendigit_strokes()
        if d.writer in pen_source.PENDIGITS_TEST_WRITERS
    ]
    encoded = [
        base64.b64encode(canvas.render_strokes(d.strokes)).decode() for d in digits[: args.images]
    ]
    predictor = Predictor(BOOTSTRAP_DIR / "model.tflite")
    stages: dict[str, list[float]] = {
        k: []
        for k in ("base64", "png→ink", "crop+resize", "stroke", "20px+centre", "LiteRT", "total")
    }
    for text in encoded * 2:  # the first pass warms caches; both are measured
        t0 = time.perf_counter()
        data = base64.b64decode(text, validate=True)
        t1 = time.perf_counter()
        ink = pp.decode_ink(data)
        t2 = time.perf_counter()
        work = pp._resize_longer_side(pp._crop_to_ink(ink), pp._WORK_SIDE)
        t3 = time.perf_counter()
        # thinning or thickening, then crop and scale again (preprocessing version 3)
        work = pp._resize_longer_side(
            pp._crop_to_ink(pp._normalise_stroke(work, pp.stroke_thickness(work))), pp._WORK_SIDE
        )
        t4 = time.perf_counter()
        x = pp._place_by_centre_of_mass(
            pp._resize_longer_side(work, pp.DIGIT_BOX).astype(np.float32) / 255.0
        )
        t5 = time.perf_counter()
        predictor.predict(x[None])
        t6 = time.perf_counter()
        for key, value in zip(
            stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5, t6 - t0), strict=True
        ):
            stages[key].append(value * 1000)
    # the stages above must be exactly what the one public function does
    assert np.array_equal(x, pp.to_model_input(data))
    print(f"{len(encoded)} canvas PNGs × 2 passes; milliseconds per image")
    print("stage          p50     p95    mean")
    for key, values in stages.items():
        print(
            f"{key:<12} {np.percentile(values, 50):6.3f}  {np.percentile(values, 95):6.3f}  {np.mean(values):6.3f}"
        )


if __name__ == "__main__":
    main()
