"""The model registry: every trained model version, and which one is serving."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models, transaction
from django.db.models import Max, Q
from django.dispatch import Signal
from django.utils import timezone

from audit.models import AuditEvent
from classifier.predictor import Predictor

# Sent (with ``version``) once a promotion has committed: other apps react to the
# new model without classifier importing them (collector re-scores its drawings).
promoted = Signal()


class ArtifactError(RuntimeError):
    """A version's served artifact is missing, altered or cannot be loaded."""


def artifact_path(instance: ModelVersion, filename: str) -> str:
    return f"models/v{instance.version:04d}/{filename}"


class ModelVersion(models.Model):
    class Status(models.TextChoices):
        CANDIDATE = "candidate"
        ACTIVE = "active"
        RETIRED = "retired"
        REJECTED = "rejected"
        # Deleted by staff: its files are gone, its record stays (its number is never
        # given to another version, its promotions and verdict stay in the history).
        DELETED = "deleted"

    version = models.PositiveIntegerField(unique=True)
    architecture = models.CharField(max_length=64)
    tflite = models.FileField(upload_to=artifact_path, max_length=255, help_text="served artifact")
    tflite_sha256 = models.CharField(
        max_length=64, blank=True, help_text="checksum of the served artifact when registered"
    )
    keras = models.FileField(upload_to=artifact_path, max_length=255, blank=True)
    # The pen view (``classifier.pen``, ``training.pen_view``): a second model that
    # reads the strokes, combined with the picture's as ``metrics["pen"]["combination"]``
    # says. Versions without one answer from the picture alone.
    pen_tflite = models.FileField(upload_to=artifact_path, max_length=255, blank=True)
    pen_tflite_sha256 = models.CharField(max_length=64, blank=True)
    pen_keras = models.FileField(upload_to=artifact_path, max_length=255, blank=True)
    plots = models.JSONField(default=list, blank=True, help_text="storage names of report plots")
    metrics = models.JSONField(default=dict, blank=True)
    note = models.CharField(max_length=255, blank=True)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.CANDIDATE, db_index=True
    )
    rejection_reasons = models.JSONField(default=list, blank=True)
    # The gate's verdict on it (``training.gate``): per test set, both accuracies,
    # the images that changed each way, the p-values, and whether the set judged.
    gate = models.JSONField(default=dict, blank=True)
    # Set by a web process that could not load this version (and cleared by one that
    # could), so the admin can say why the site still answers with an older model.
    serving_error = models.TextField(blank=True)
    serving_error_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-version"]
        constraints = [
            # At most one version serves at a time; the database enforces it.
            models.UniqueConstraint(
                fields=["status"], condition=Q(status="active"), name="one_active_model_version"
            )
        ]

    def __str__(self) -> str:
        return f"v{self.version} ({self.architecture}, {self.status})"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    def delete_keeping_record(self, *, by=None) -> None:
        """Delete this version as staff may: its files go (after the commit), its row
        stays, marked deleted with who and when, so its number is never given to
        another version and the history (promotions, overrides, the gate's verdict)
        keeps saying what "v3" was. The serving version cannot be deleted."""
        if self.is_active:
            raise ValueError(f"Version {self.version} is serving: promote another one first.")
        folder, names = artifact_path(self, "").rstrip("/"), self.artifact_names()
        fields = {"tflite": "", "keras": "", "pen_tflite": "", "pen_keras": "", "plots": []}
        with transaction.atomic():
            ModelVersion.objects.filter(pk=self.pk).update(
                status=self.Status.DELETED, deleted_at=timezone.now(),
                deleted_by=by if getattr(by, "is_authenticated", False) else None, **fields,
            )  # fmt: skip
            AuditEvent.record(
                AuditEvent.Action.VERSION_DELETED, f"model version {self.version}", by=by,
                version=self.version, status_before=self.status,
            )  # fmt: skip
            transaction.on_commit(lambda: remove_files(folder, names))
        self.refresh_from_db()

    def load_artifact(self) -> bytes:
        """The served artifact's bytes, checked against the checksum taken at registration.

        Raises :class:`ArtifactError` saying what is wrong, so web processes and the
        admin report the same reason.
        """
        try:
            with self.tflite.open("rb") as handle:
                data = handle.read()
        except (OSError, ValueError) as exc:
            raise ArtifactError(
                f"The artifact {self.tflite.name or '(none)'} cannot be read: {exc}"
            ) from exc
        if self.tflite_sha256 and hashlib.sha256(data).hexdigest() != self.tflite_sha256:
            raise ArtifactError(
                f"The artifact {self.tflite.name} has changed since it was registered "
                "(its checksum no longer matches)."
            )
        return data

    def load_predictor(self) -> Predictor:
        """The predictor for this version, or :class:`ArtifactError` saying why not:
        the file, its checksum, or the interpreter refusing it."""
        data = self.load_artifact()
        try:
            return Predictor(data, temperature=self.calibration.get("temperature", 1.0))
        except Exception as exc:  # the interpreter's own errors vary by cause
            raise ArtifactError(
                f"The artifact {self.tflite.name} is not a model the runtime can load: {exc}"
            ) from exc

    def artifact_names(self) -> set[str]:
        """Every stored file of this version (both views' models, the Keras files,
        the report's plots): what backups copy, deletions remove and
        ``check_storage`` counts as referenced."""
        files = (self.tflite, self.keras, self.pen_tflite, self.pen_keras)
        return {f.name for f in files if f.name} | {p for p in self.plots or [] if p}

    def load_pen_predictor(self) -> Predictor | None:
        """The pen view's predictor (None for a version without one), or
        :class:`ArtifactError` saying why it cannot be loaded."""
        if not self.pen_tflite:
            return None
        try:
            with self.pen_tflite.open("rb") as handle:
                data = handle.read()
        except (OSError, ValueError) as exc:
            message = f"The pen artifact {self.pen_tflite.name} cannot be read: {exc}"
            raise ArtifactError(message) from exc
        if self.pen_tflite_sha256 and hashlib.sha256(data).hexdigest() != self.pen_tflite_sha256:
            raise ArtifactError(
                f"The pen artifact {self.pen_tflite.name} has changed since it was registered "
                "(its checksum no longer matches)."
            )
        temperature = self.combination.get("pen_temperature", 1.0)
        try:
            predictor = Predictor(data, temperature=temperature)
        except Exception as exc:  # the interpreter's own errors vary by cause
            raise ArtifactError(
                f"The pen artifact {self.pen_tflite.name} is not a model the runtime can load: "
                f"{exc}"
            ) from exc
        if not predictor.reads_pen:
            raise ArtifactError(f"The pen artifact {self.pen_tflite.name} does not read strokes.")
        return predictor

    @property
    def combination(self) -> dict:
        """How the pen view's answer is combined with the picture's
        (``classifier.combination``; {} for a version without a pen view)."""
        return ((self.metrics or {}).get("pen") or {}).get("combination") or {}

    @property
    def calibration(self) -> dict:
        """The fitted temperature and "not sure" threshold ({} for older versions)."""
        return (self.metrics or {}).get("calibration") or {}

    @property
    def confidence_threshold(self) -> float | None:
        """Under this confidence the page says "not sure": the version's own, fitted
        on its validation data (None for versions trained before calibration, which
        use ``DIGITS_CONFIDENCE_THRESHOLD``)."""
        threshold = self.calibration.get("threshold")
        return float(threshold) if threshold is not None else None

    def artifact_problem(self) -> str:
        """Why this version cannot be served ('' when it can)."""
        try:
            self.load_predictor()
            self.load_pen_predictor()
        except ArtifactError as exc:
            return str(exc)
        return ""

    def record_serving_error(self, message: str) -> None:
        ModelVersion.objects.filter(pk=self.pk).update(
            serving_error=message[:2000], serving_error_at=timezone.now()
        )
        self.serving_error = message[:2000]

    def clear_serving_error(self) -> None:
        if self.serving_error:
            ModelVersion.objects.filter(pk=self.pk).update(serving_error="", serving_error_at=None)
            self.serving_error = ""

    @classmethod
    def previously_active(cls, *, exclude_id: int | None = None):
        """Versions that served before, the most recently promoted first: what to fall
        back to when the active one cannot be loaded."""
        return (
            cls.objects.exclude(pk=exclude_id)
            .exclude(status__in=[cls.Status.REJECTED, cls.Status.DELETED])
            .filter(promotions__isnull=False)
            .annotate(last_promoted=Max("promotions__created_at"))
            .order_by("-last_promoted")
        )

    @classmethod
    def rollback_target(cls) -> ModelVersion | None:
        """The version that served before the active one: what a rollback promotes."""
        active = cls.active()
        return cls.previously_active(exclude_id=active.pk if active else None).first()

    def promote(self, *, by=None, reason: str = "") -> Promotion:
        """Make this the serving version (the previous one retires) and record who and why.

        Web processes notice within ``DIGITS_MODEL_CHECK_SECONDS`` and swap. A version
        whose artifact cannot be served is refused (:class:`ArtifactError`), so a
        promotion never leaves the site answering with something else.
        """
        problem = self.artifact_problem()
        if problem:
            raise ArtifactError(f"Version {self.version} cannot be served: {problem}")
        with transaction.atomic():
            ModelVersion.lock_all()
            serving = list(
                ModelVersion.objects.filter(status=self.Status.ACTIVE).exclude(pk=self.pk)
            )
            previous = serving[0] if serving else None
            if serving:
                ModelVersion.objects.filter(pk__in=[v.pk for v in serving]).update(
                    status=self.Status.RETIRED
                )
            ModelVersion.objects.filter(pk=self.pk).update(
                status=self.Status.ACTIVE, serving_error="", serving_error_at=None
            )
            overridden = self.status == self.Status.REJECTED
            served_before = self.promotions.exists()
            self.status = self.Status.ACTIVE
            self.serving_error = ""
            transaction.on_commit(lambda: promoted.send(sender=ModelVersion, version=self))
            action = (
                AuditEvent.Action.GATE_OVERRIDDEN
                if overridden
                else AuditEvent.Action.ROLLED_BACK
                if served_before
                else AuditEvent.Action.PROMOTED
            )
            AuditEvent.record(
                action, f"model version {self.version}", by=by, reason=reason,
                version=self.version, previous=previous.version if previous else None,
            )  # fmt: skip
            return Promotion.objects.create(
                version=self,
                previous=previous,
                promoted_by=by if getattr(by, "is_authenticated", False) else None,
                reason=reason,
            )

    def record_verdict(self, verdict: dict) -> None:
        self.gate = verdict
        self.save(update_fields=["gate"])

    def reject(self, reasons: list[str]) -> None:
        self.status = self.Status.REJECTED
        self.rejection_reasons = list(reasons)
        self.save(update_fields=["status", "rejection_reasons"])

    def test_accuracy(self, name: str) -> float | None:
        report = (self.metrics or {}).get("tests", {}).get(name)
        return None if report is None else report.get("accuracy")

    @classmethod
    def active(cls) -> ModelVersion | None:
        return cls.objects.filter(status=cls.Status.ACTIVE).first()

    @classmethod
    def serving_problem(cls) -> str:
        """What staff should know about the active model ('' when all is well): checked
        now, plus what web processes reported when they tried to load it."""
        active = cls.active()
        if active is None:
            return "No model version is active: predictions answer 503 until one is promoted."
        problem = active.artifact_problem() or active.serving_error
        if not problem:
            return ""
        return (
            f"Version {active.version} is active but cannot be served: {problem} "
            "Web processes keep answering with the previously active version. "
            "Restore the artifact (manage.py restore) or promote another version."
        )

    @classmethod
    def lock_all(cls) -> None:
        """Lock every version row, in one order, until the transaction ends: two
        promotions at once (a promotion racing a rollback), or two runs registering
        at once, then take turns. Locking only the active row is not enough on
        PostgreSQL: the second promotion waits on that row, finds it no longer
        active once the first commits, and would leave two versions active; two
        registrations would both number themselves ``max + 1``."""
        list(cls.objects.select_for_update().order_by("pk").values_list("pk"))

    @classmethod
    def next_version(cls) -> int:
        return (cls.objects.aggregate(m=models.Max("version"))["m"] or 0) + 1


class Promotion(models.Model):
    """The audit trail: every change of the serving version."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="promotions")
    previous = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    promoted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        before = f"v{self.previous.version}" if self.previous else "nothing"
        return f"{before} → v{self.version.version}: {self.reason}"


def remove_files(folder: str, names: set[str]) -> None:
    """Remove a version's stored files: ``names`` and whatever else is in its folder
    (named by version number, which no other version shares)."""
    import logging

    from django.core.files.storage import default_storage

    names = set(names)
    try:
        _, files = default_storage.listdir(folder)
        names.update(f"{folder}/{name}" for name in files)
    except (FileNotFoundError, NotADirectoryError):
        pass
    for name in sorted(n for n in names if n):
        try:
            default_storage.delete(name)
        except OSError:
            logging.getLogger(__name__).exception("Could not remove %s of a model version", name)
