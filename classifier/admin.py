import io
import json

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from classifier import submissions
from classifier.models import ArtifactError, ModelVersion, Promotion
from classifier.runtime import NoActiveModel


class PromotionInline(admin.TabularInline):
    model = Promotion
    fk_name = "version"
    extra = 0
    can_delete = False
    readonly_fields = ("previous", "promoted_by", "reason", "created_at")

    def has_add_permission(self, request, obj=None):
        return False


class PredictCsvForm(forms.Form):
    """A Kaggle test.csv and the model to answer it with (empty: the active one)."""

    test_csv = forms.FileField(label="test.csv", help_text="Kaggle's pixel0..pixel783 rows")
    model = forms.IntegerField(
        required=False, min_value=1, help_text="a version number; empty for the active model"
    )

    MAX_BYTES = 64 * 1024 * 1024

    def clean(self):
        cleaned = super().clean()
        upload = cleaned.get("test_csv")
        if upload is None or self.errors:
            return cleaned
        if upload.size > self.MAX_BYTES:
            raise forms.ValidationError("The file is over 64 MB.")
        try:
            text = io.TextIOWrapper(upload.file, encoding="ascii", newline="")
            images = submissions.read_test(text, upload.name)
            predictor, _ = submissions.predictor_for(cleaned.get("model"))
            self.labels = submissions.predict(images, predictor)
        except UnicodeDecodeError:
            raise forms.ValidationError(f"{upload.name} is not a CSV of numbers.") from None
        except (submissions.NotATestCsv, LookupError, ArtifactError, NoActiveModel) as exc:
            raise forms.ValidationError(str(exc)) from None
        return cleaned


class PromoteForm(forms.Form):
    """Promoting in the admin asks what the API asks (a reason), and a version the
    gate rejected needs an explicit yes."""

    reason = forms.CharField(
        max_length=500, strip=True, widget=forms.Textarea(attrs={"rows": 3, "cols": 70})
    )
    override_gate = forms.BooleanField(required=False)

    def __init__(self, *args, version: ModelVersion, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.version = version

    def clean(self):
        cleaned = super().clean()
        if self.version.status == ModelVersion.Status.REJECTED and not cleaned.get("override_gate"):
            self.add_error(
                "override_gate", "The gate rejected this version: tick the box to serve it anyway."
            )
        return cleaned


def _tests(version: ModelVersion | None) -> dict:
    return ((version.metrics if version else None) or {}).get("tests", {})


def _accuracy(version: ModelVersion | None, name: str) -> str:
    """An accuracy and how many images it was measured on (a quick run's 4,000 is not
    a full test set's 10,000)."""
    report = _tests(version).get(name) or {}
    if "accuracy" not in report:
        return "—"
    count = report.get("n")
    return f"{report['accuracy'] * 100:.2f}%" + (f" of {count:,}" if count else "")


def _per_class_rows(report: dict) -> list[dict]:
    return [
        {
            "digit": digit,
            **{k: row.get(k) for k in ("precision", "recall", "f1")},
            "support": f"{row.get('support', 0):,}",
        }
        for digit, row in sorted(report.get("per_class", {}).items(), key=lambda kv: int(kv[0]))
    ]


def _comparison(version: ModelVersion, active: ModelVersion | None) -> list[dict]:
    """Each test's accuracy for the version and the one serving, side by side."""

    names = sorted({*_tests(version), *_tests(active)})
    return [{"name": n, "candidate": _accuracy(version, n), "active": _accuracy(active, n)}
            for n in names]  # fmt: skip


STYLE_KINDS = {"style": "as trained", "disjoint": "held-out band", "probe": "probe, never trained"}


def _style_rows(styles: dict) -> list[dict]:
    """The style sets' rows for the version page: each family beside its held-out
    band ("style:barred-zero", then "disjoint:barred-zero"), each view's accuracy."""

    def order(name: str) -> tuple[str, int]:
        kind, family = name.split(":", 1)
        return family, list(STYLE_KINDS).index(kind) if kind in STYLE_KINDS else len(STYLE_KINDS)

    return [
        {
            "name": name,
            "family": name.split(":", 1)[1],
            "kind": STYLE_KINDS.get(name.split(":", 1)[0], ""),
            "n": styles[name]["n"],
            **{view: styles[name][view]["accuracy"] for view in ("image", "pen", "combined")},
        }
        for name in sorted(styles, key=order)
    ]


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = (
        "version",
        "status",
        "serving",
        "architecture",
        "mnist_accuracy",
        "pendigits_accuracy",
        "created_at",
    )
    list_filter = ("status", "architecture")
    readonly_fields = (
        "version",
        "architecture",
        "status",
        "serving",
        "serving_error",
        "serving_error_at",
        "downloads",
        "tflite_sha256",
        "report_plots",
        "per_class_tables",
        "two_views",
        "rejection_reasons",
        "metrics_json",
        "created_at",
    )
    exclude = ("plots", "tflite", "keras", "metrics", "pen_tflite", "pen_keras")
    inlines = [PromotionInline]
    actions = ["promote_selected"]

    def has_add_permission(self, request):
        return False  # versions come from training runs and the registry, not forms

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.status == ModelVersion.Status.DELETED:
            return False  # its files are gone already; its record stays
        return super().has_delete_permission(request, obj)

    def delete_model(self, request, obj):
        """Its files go; its record stays (:meth:`ModelVersion.delete_keeping_record`)."""
        obj.delete_keeping_record(by=request.user)

    def delete_queryset(self, request, queryset):
        for version in queryset.exclude(status=ModelVersion.Status.DELETED):
            version.delete_keeping_record(by=request.user)

    def get_deleted_objects(self, objs, request):
        """What goes is the version's files, never its record: the page lists those,
        not the promotions Django would cascade to. The serving version is
        protected (a fresh web process would have nothing to answer with); the
        version a rollback would go back to needs a second look, which the
        confirmation page asks for."""
        _, _, perms, protected = super().get_deleted_objects(objs, request)
        objs = list(objs)
        deleted = [
            f"The files of v{v.version} ({len(v.artifact_names())}: models and report); "
            "its number, promotions and verdict stay in the record, marked deleted"
            for v in objs
        ]
        counts = {"model version files": sum(len(v.artifact_names()) for v in objs)}
        rollback = ModelVersion.rollback_target()
        for version in objs:
            if version.is_active:
                protected.append(
                    f"Version {version.version} is serving: promote another version first."
                )
            elif rollback is not None and version.pk == rollback.pk and request.method == "GET":
                self.message_user(
                    request,
                    f"Version {version.version} is what a rollback would go back to (it served "
                    "before the active one). Deleting it leaves no earlier model to fall back on.",
                    level=messages.WARNING,
                )
        return deleted, counts, perms, protected

    @admin.display(description="MNIST test")
    def mnist_accuracy(self, obj: ModelVersion) -> str:
        return _accuracy(obj, "mnist-test")

    @admin.display(description="pen digits (unseen writers)")
    def pendigits_accuracy(self, obj: ModelVersion) -> str:
        return _accuracy(obj, "pendigits")

    @admin.display(description="per class")
    def per_class_tables(self, obj: ModelVersion):
        """Precision, recall and F1 of each digit on each test set (metrics.json, readable)."""
        tests = _tests(obj)
        if not tests:
            return "—"
        full, single = [], []
        for name, report in sorted(tests.items()):
            present = [d for d, row in report.get("per_class", {}).items() if row.get("support")]
            if len(present) == 1:  # a style set: one digit written one way
                single.append({"name": name, "digit": present[0], "accuracy": _accuracy(obj, name)})
            else:
                full.append((name, _per_class_rows(report)))
        return render_to_string(
            "admin/classifier/modelversion/per_class.html", {"tests": full, "single": single}
        )

    @admin.display(description="two views")
    def two_views(self, obj: ModelVersion):
        """The picture alone, the pen alone and both combined on each test set with
        strokes, and how the combination was fitted."""
        pen = (obj.metrics or {}).get("pen") or {}
        if not obj.pen_tflite:
            return "No pen view: every answer comes from the picture."
        if not pen.get("tests"):
            return "A pen view, registered without its scores."
        rows = [
            {"name": name, "n": scores["n"],
             **{view: scores[view] for view in ("image", "pen", "combined")}}
            for name, scores in sorted(pen["tests"].items())
        ]  # fmt: skip
        styles = _style_rows(pen.get("styles") or {})
        return render_to_string(
            "admin/classifier/modelversion/two_views.html",
            {"rows": rows, "styles": styles, "combination": pen.get("combination", {}), "pen": pen},
        )

    @admin.display(description="serving")
    def serving(self, obj: ModelVersion):
        if obj.serving_error:  # the reason is in the banner, the tooltip and the version's page
            return format_html(
                '<strong style="color:#ba2121;white-space:nowrap" title="{}">⚠ cannot be served'
                "</strong>",
                obj.serving_error,
            )
        return "serving" if obj.is_active else "—"

    def get_urls(self):
        return [
            path(
                "predict-csv/",
                self.admin_site.admin_view(self.predict_csv_view),
                name="classifier_predict_csv",
            ),
            *super().get_urls(),
        ]

    def predict_csv_view(self, request):
        """A Kaggle test.csv in, its submission (ImageId,Label) out: what
        ``manage.py predict_csv`` does, for staff without a shell."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = PredictCsvForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            response = HttpResponse(
                submissions.submission(form.labels), content_type="text/csv; charset=ascii"
            )
            response["Content-Disposition"] = 'attachment; filename="submission.csv"'
            return response
        return TemplateResponse(
            request,
            "admin/classifier/predict_csv.html",
            {**self.admin_site.each_context(request), "form": form,
             "title": "Predict a Kaggle test CSV", "opts": self.model._meta},
        )  # fmt: skip

    def changelist_view(self, request, extra_context=None):
        problem = ModelVersion.serving_problem()
        if problem:
            self.message_user(request, problem, level=messages.ERROR)
        return super().changelist_view(request, extra_context)

    @admin.display(description="metrics")
    def metrics_json(self, obj: ModelVersion):
        return format_html(
            "<details><summary>metrics.json ({} keys)</summary>"
            '<pre style="max-height:40em;overflow:auto">{}</pre></details>',
            len(obj.metrics or {}),
            json.dumps(obj.metrics, indent=2),
        )

    @admin.display(description="artifacts")
    def downloads(self, obj: ModelVersion):
        links = [(reverse("model-file", args=[obj.version, "model.tflite"]), "model.tflite")]
        if obj.keras:
            links.append((reverse("model-file", args=[obj.version, "model.keras"]), "model.keras"))
        return format_html_join(" · ", '<a href="{}">{}</a>', links)

    @admin.display(description="report")
    def report_plots(self, obj: ModelVersion):
        if not obj.plots:
            return "—"
        return format_html_join(
            "",
            '<figure style="margin:0 0 1rem"><img src="{}" style="max-width:720px;'
            'border:1px solid #ddd"><figcaption>{}</figcaption></figure>',
            (
                (
                    reverse("model-file", args=[obj.version, name.rsplit("/", 1)[-1]]),
                    name.rsplit("/", 1)[-1],
                )
                for name in obj.plots
            ),
        ) or format_html("—")

    @admin.action(description="Make the selected version active (asks why)")
    def promote_selected(self, request, queryset):
        """A confirmation page first: the gate's verdict, the tests side by side with
        the serving version, a reason, and an explicit yes for a rejected version."""
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to make active.", level="error")
            return None
        version = queryset.get()
        problem = version.artifact_problem()
        if problem:  # no point asking why: it cannot be served
            message = f"Nothing changed. Version {version.version} cannot be served: {problem}"
            self.message_user(request, message, level=messages.ERROR)
            return None
        form = PromoteForm(request.POST if "post" in request.POST else None, version=version)
        if form.is_valid():
            try:
                version.promote(by=request.user, reason=form.cleaned_data["reason"])
            except ArtifactError as exc:
                self.message_user(request, f"Nothing changed. {exc}", level=messages.ERROR)
                return None
            self.message_user(request, f"Version {version.version} is now active.")
            return None
        active = ModelVersion.active()
        active = None if active is None or active.pk == version.pk else active
        return TemplateResponse(
            request,
            "admin/classifier/modelversion/promote_confirmation.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Promote version {version.version}",
                "opts": self.model._meta,
                "version": version,
                "active": active,
                "comparison": _comparison(version, active),
                "form": form,
                "check_seconds": f"{settings.DIGITS_MODEL_CHECK_SECONDS:g}",
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
        )
