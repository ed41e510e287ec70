"""``manage.py predict_csv`` and the admin's upload: a Kaggle test.csv answered as
a submission, every bad input refused with nothing written."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from classifier import submissions


@pytest.fixture(scope="module")
def mnist_sample():
    from training.sources import mnist as mnist_source

    mnist = mnist_source.load_mnist()
    return mnist.test.x[:60], mnist.test.y[:60]


def kaggle_test_csv(images: np.ndarray) -> str:
    """Exactly Kaggle's test.csv: a pixel header, then 784 numbers a row."""
    rows = [",".join(submissions.PIXELS)]
    rows += [",".join(str(v) for v in image.ravel()) for image in images]
    return "\n".join(rows) + "\n"


def read_submission(text: str) -> list[tuple[int, int]]:
    lines = text.strip().splitlines()
    assert lines[0] == "ImageId,Label"
    return [tuple(int(v) for v in line.split(",")) for line in lines[1:]]


def test_a_test_csv_becomes_a_submission(active_model, mnist_sample, tmp_path):
    images, labels = mnist_sample
    source = tmp_path / "test.csv"
    source.write_text(kaggle_test_csv(images))
    out = io.StringIO()
    call_command("predict_csv", str(source), "--out", str(tmp_path / "sub.csv"), stdout=out)
    rows = read_submission((tmp_path / "sub.csv").read_text())
    assert [image_id for image_id, _ in rows] == list(range(1, 61))
    right = sum(label == int(y) for (_, label), y in zip(rows, labels, strict=True))
    assert right >= 58, "MNIST's own test digits, read as a run scores them"
    assert "60 predictions by the active model (v1)" in out.getvalue()
    # an explicit version gives the same answers here (it is the same model)
    call_command("predict_csv", str(source), "--out", str(tmp_path / "v1.csv"), "--model", "1",
                 stdout=io.StringIO())  # fmt: skip
    assert (tmp_path / "v1.csv").read_text() == (tmp_path / "sub.csv").read_text()


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("label," + ",".join(submissions.PIXELS) + "\n", "train CSV"),
        ("a,b,c\n1,2,3\n", "header must be pixel0"),
        (",".join(submissions.PIXELS) + "\n", "no rows"),
        (",".join(submissions.PIXELS) + "\n" + ",".join(["0"] * 783) + "\n", "783 values"),
        (",".join(submissions.PIXELS) + "\n" + ",".join(["300"] * 784) + "\n", "0-255"),
        (",".join(submissions.PIXELS) + "\n" + ",".join(["x"] * 784) + "\n", "whole numbers"),
    ],
    ids=["train-csv", "header", "empty", "short-row", "out-of-range", "not-numbers"],
)
def test_bad_csvs_are_refused_and_nothing_is_written(active_model, tmp_path, content, fragment):
    tmp_path = tmp_path / "work"
    tmp_path.mkdir()
    source = tmp_path / "test.csv"
    source.write_text(content)
    with pytest.raises(CommandError, match=fragment):
        call_command("predict_csv", str(source), "--out", str(tmp_path / "sub.csv"))
    assert list(tmp_path.iterdir()) == [source], "no submission, no partial file"


def test_unknown_model_and_missing_file(active_model, mnist_sample, tmp_path):
    source = tmp_path / "test.csv"
    source.write_text(kaggle_test_csv(mnist_sample[0][:2]))
    with pytest.raises(CommandError, match="no model version 7"):
        call_command("predict_csv", str(source), "--out", str(tmp_path / "s.csv"), "--model", "7")
    with pytest.raises(CommandError, match="does not exist"):
        call_command("predict_csv", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "s.csv"))
    (tmp_path / "latin.csv").write_bytes("pixel0é\n".encode("latin-1"))
    with pytest.raises(CommandError, match="not a CSV of numbers"):
        call_command("predict_csv", str(tmp_path / "latin.csv"), "--out", str(tmp_path / "s.csv"))
    assert not (tmp_path / "s.csv").exists()


def test_staff_upload_in_the_admin_returns_the_submission(staff_client, active_model, mnist_sample):
    page = staff_client.get("/admin/classifier/modelversion/predict-csv/")
    assert page.status_code == 200 and b'name="test_csv"' in page.content
    upload = SimpleUploadedFile(
        "test.csv", kaggle_test_csv(mnist_sample[0][:5]).encode(), "text/csv"
    )
    response = staff_client.post(
        "/admin/classifier/modelversion/predict-csv/", {"test_csv": upload}
    )
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert 'filename="submission.csv"' in response["Content-Disposition"]
    assert [i for i, _ in read_submission(response.content.decode())] == [1, 2, 3, 4, 5]
    bad = SimpleUploadedFile("test.csv", b"label,pixel0\n1,2\n", "text/csv")
    refused = staff_client.post("/admin/classifier/modelversion/predict-csv/", {"test_csv": bad})
    assert refused.status_code == 200 and b"not a Kaggle test CSV" in refused.content
    listing = staff_client.get("/admin/classifier/modelversion/")
    assert b"/admin/classifier/modelversion/predict-csv/" in listing.content


def test_predict_csv_is_for_staff_only(client, db):
    response = client.get("/admin/classifier/modelversion/predict-csv/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_a_test_csv_over_the_public_body_limit_is_read_for_staff_only(
    staff_client, active_model, mnist_sample, settings
):
    from django.test import Client

    # Over twice the public limit: staff's upload is read; anyone else's is not.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100_000
    text = kaggle_test_csv(np.repeat(mnist_sample[0], 3, axis=0)[:150])
    assert len(text) > 2 * settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    url = "/admin/classifier/modelversion/predict-csv/"
    response = staff_client.post(url, {"test_csv": SimpleUploadedFile("test.csv", text.encode())})
    assert response.status_code == 200 and len(read_submission(response.content.decode())) == 150
    for path in (url, "/admin/login/"):
        refused = Client().post(path, {"test_csv": SimpleUploadedFile("test.csv", text.encode())})
        assert refused.status_code == 413 and refused.json()["code"] == "too_large"
