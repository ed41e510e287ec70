"""What the layers below the web refuse, in words a client can be shown.

Preprocessing, stroke checks and the model registry know nothing of HTTP, yet
their refusals (an unreadable image, strokes that are not strokes, no model to
answer with) must reach a client as a clear 4xx or 503, never a 500. They raise
a :class:`Refused`; every API view answers it as JSON with its ``status`` and
``code`` (``digits_site.errors``). Plain Python on purpose: training's worker
processes import the modules that raise it without loading the web stack.
"""


class Refused(Exception):
    """A request that cannot be answered as asked, and why."""

    status = 400
    code = "bad_input"
