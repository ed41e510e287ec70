"""Each stored drawing's 28×28 model input, kept beside it: made once, read many times.

Scoring after a promotion, the model-input exports and anything else that reads
the dataset as the model does would otherwise decode every drawing's PNG and
preprocess it again (about a millisecond each: a quarter of an hour at a
million drawings, every time). A contribution's input is kept as it arrives
(the API preprocessed it already, for the model's opinion); other drawings'
(imports, drawings from before this table) are made the first time something
reads them, and kept.

An input belongs to one ``preprocessing.PREPROCESSING_VERSION``: one kept by
another version is made again and replaced. Stored as 784 unsigned bytes
(``preprocessing.as_bytes``, as training reads inputs): 0.8 GB at a million
drawings. Backups leave the table out (it follows from the pictures).
"""

from __future__ import annotations

import numpy as np
from django.db import models

from classifier import preprocessing

SIDE = preprocessing.MODEL_SIDE


class ModelInput(models.Model):
    drawing = models.OneToOneField(
        "collector.Drawing", primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    version = models.PositiveSmallIntegerField()  # the preprocessing version that made it
    pixels = models.BinaryField()  # SIDE × SIDE unsigned bytes, row by row

    class Meta:
        verbose_name = "model input"

    def __str__(self) -> str:
        return f"drawing {self.drawing_id}'s input (preprocessing {self.version})"


def keep(drawing_id: int, model_input: np.ndarray) -> None:
    """Keep a new drawing's input as it arrives (its own preprocessing of the picture),
    in the transaction that stores the drawing: one INSERT."""
    keep_many([(drawing_id, model_input)])


def keep_many(inputs: list[tuple[int, np.ndarray]]) -> None:
    """:func:`keep` for many new drawings, ``(drawing id, model input)``: one INSERT."""
    version = preprocessing.PREPROCESSING_VERSION
    ModelInput.objects.bulk_create(
        ModelInput(drawing_id=pk, version=version, pixels=preprocessing.as_bytes(x).tobytes())
        for pk, x in inputs
    )
