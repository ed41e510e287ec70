"""The contribute API and the dataset statistics."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.response import Response
from rest_framework.views import APIView

from classifier import canvas, preprocessing
from collector import abuse, counts, dataset
from collector.models import (
    Drawing,
    InvalidDrawing,
    NewDrawing,
    StorageUnavailable,
    require_canvas_png,
    validate_label,
)
from digits_site import bodies, limits
from digits_site.clients import client_key
from digits_site.errors import (
    BadInput,
    QuotaExceeded,
    ServiceUnavailable,
    StorageFull,
    disk_full,
)
from digits_site.schema import IMAGE_DATA_URL, STROKES, errors

SOURCES_FROM_API = {"canvas", "correction"}

_DRAWING = inline_serializer(
    "StoredDrawing",
    {
        "id": serializers.IntegerField(),
        "label": serializers.IntegerField(min_value=0, max_value=9),
        "split": serializers.ChoiceField(choices=Drawing.Split.choices),
        "status": serializers.ChoiceField(choices=Drawing.Status.choices),
        "duplicate": serializers.BooleanField(
            help_text="already in the dataset: this picture, or your near-copy of it"
        ),
        "duplicate_of": serializers.ChoiceField(
            choices=["same_picture", "your_near_copy"],
            allow_null=True,
            help_text="what the check found: exactly this picture already stored, or one "
            "you sent moments ago that it is very like (null: a new drawing)",
        ),
        "relabelled": serializers.BooleanField(
            help_text="it was your own correction, not yet reviewed, and now has this label"
        ),
        "total": serializers.IntegerField(help_text="drawings in the dataset now"),
    },
)


class DrawingsView(APIView):
    """Anonymous contributors are allowed (throttled); signed-in ones are credited."""

    authentication_classes = [SessionAuthentication]  # enforces CSRF for signed-in users
    permission_classes: list = []
    throttle_classes = [limits.ScopedLimit]
    throttle_scope = "contribute"

    @extend_schema(
        summary="Contribute a labelled drawing",
        request={
            "application/json": inline_serializer(
                "DrawingUpload",
                {
                    "image": IMAGE_DATA_URL,
                    "strokes": STROKES,
                    "label": serializers.IntegerField(min_value=0, max_value=9),
                    "source": serializers.ChoiceField(
                        choices=sorted(SOURCES_FROM_API), required=False, default="canvas"
                    ),
                },
            ),
            "multipart/form-data": inline_serializer(
                "DrawingFile",
                {
                    "image": serializers.FileField(),
                    "label": serializers.IntegerField(),
                    "strokes": serializers.CharField(required=False, help_text="JSON"),
                },
            ),
        },
        responses={
            201: _DRAWING,
            200: _DRAWING,
            **errors(400, 403, 413, 415, 429, 503),
        },
    )
    def post(self, request):
        data = bodies.image_from_request(request)
        try:
            require_canvas_png(data)  # what is stored is the pad's PNG: nothing else is opened
        except InvalidDrawing as exc:
            raise BadInput(str(exc)) from None
        limits.charge_for_image(request, self.throttle_scope, preprocessing.header_pixels(data))
        strokes = bodies.strokes_from_request(request)
        if strokes is not None:
            strokes = canvas.parse_strokes(strokes)
        label = request.data.get("label")
        if label is None:
            raise BadInput('The field "label" is missing.')
        source = request.data.get("source", "canvas")
        if not isinstance(source, str) or source not in SOURCES_FROM_API:
            raise BadInput(f'"source" must be one of {", ".join(sorted(SOURCES_FROM_API))}.')
        client = client_key(request)
        try:
            label = validate_label(label)  # before any work on the image
            abuse.check_allowed(client)
            # Preprocessed once: for the model's opinion and for the store's own check.
            with limits.charged_by_cpu(request, self.throttle_scope):
                model_input = preprocessing.to_model_input(data)
            ink = preprocessing.decode_ink(data)
            if not request.user.is_authenticated and request.session.session_key is None:
                request.session.save()  # an anonymous contributor is their session
            drawing, created = Drawing.objects.add(
                NewDrawing(
                    data,
                    label,
                    source=source,
                    prediction=dataset.predict_quietly(model_input),
                    contributor=request.user,
                    session_key=request.session.session_key or "",
                    client=client,
                    model_input=model_input,
                    ink=ink,
                    strokes=strokes,
                    # near-copies and quotas, under the client's lock in the insert
                    admit=abuse.admission(client, ink, model_input),
                )
            )
            relabelled = not created and dataset.relabel_own(drawing, label, client, source)
        except abuse.NearCopy as found:
            relabelled = dataset.relabel_own(found.drawing, label, client, source)
            return self._answer(found.drawing, False, relabelled, near_copy=True)
        except InvalidDrawing as exc:
            raise BadInput(str(exc)) from None
        except abuse.QuotaExceeded as exc:
            raise QuotaExceeded(str(exc)) from None
        except StorageUnavailable as exc:
            if disk_full(exc):
                raise StorageFull() from None
            raise ServiceUnavailable(str(exc)) from None
        return self._answer(drawing, created, relabelled)

    @staticmethod
    def _answer(
        drawing: Drawing, created: bool, relabelled: bool = False, near_copy: bool = False
    ) -> Response:
        """201 with a new drawing; 200 with the one already stored (the same picture,
        or the same client's near-copy of it), which is what the dataset keeps: its
        label is the stored one, which the page shows rather than the one sent."""
        found = None if created else ("your_near_copy" if near_copy else "same_picture")
        return Response(
            {
                "id": drawing.id,
                "label": drawing.label,
                "split": drawing.split,
                "status": drawing.status,
                "duplicate": not created,
                "duplicate_of": found,
                "relabelled": relabelled,
                "total": counts.total(),  # kept by the database: no count of the table
            },
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class DatasetStatsView(APIView):
    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(
        summary="Dataset counts",
        responses={
            200: inline_serializer(
                "DatasetStats",
                {
                    "total": serializers.IntegerField(),
                    "contributed": serializers.IntegerField(help_text="drawn on this site"),
                    "imported": serializers.IntegerField(help_text="from pen-digit datasets"),
                    "by_label": serializers.DictField(child=serializers.IntegerField()),
                    "by_split": serializers.DictField(child=serializers.IntegerField()),
                    "by_status": serializers.DictField(child=serializers.IntegerField()),
                    "by_source": serializers.DictField(child=serializers.IntegerField()),
                },
            )
        },
    )
    def get(self, request):
        return Response(dataset.stats())
