"""Digit dataset file formats, one module each, each reading and writing its format.

They turn bytes into NumPy arrays (or pen strokes) and back, and know nothing of
Django, drawings or training runs: the collector's import/export and training's
data sources both use them.
"""


class DatasetError(RuntimeError):
    """A dataset is missing, corrupt or not what it claims to be."""
