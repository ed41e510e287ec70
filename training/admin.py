"""Retraining from the admin: a form with presets, a live run page, cancel."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from training import tasks
from training.config import (
    PRESET_SUMMARIES,
    PRESETS,
    RUN_FIELDS,
    ConfigError,
    TrainConfig,
    preset_fields,
)
from training.models import RunFinished, RunNotFinished, TrainingRun


class RetrainForm(forms.ModelForm):
    preset = forms.ChoiceField(
        choices=[
            ("", "custom: every field set by hand"),
            *((p, f"{p}: {PRESET_SUMMARIES[p]}") for p in PRESETS),
        ],
        required=False,
        initial="finetune",
        help_text=format_html(
            "A preset overrides the fields it names:<ul>{}</ul>",
            format_html_join(
                "",
                "<li><b>{}</b>: {}</li>",
                (
                    (name, ", ".join(f"{k}={v}" for k, v in cfg.items()))
                    for name, cfg in PRESETS.items()
                ),
            ),
        ),
    )

    class Meta:
        model = TrainingRun
        fields = ("preset", *RUN_FIELDS)

    def clean(self):
        """The fields, then the preset's over them, checked as one ``TrainConfig``."""
        cleaned = super().clean()
        if self.errors:
            return cleaned
        cleaned.update(preset_fields(cleaned.get("preset") or ""))
        for key in RUN_FIELDS:
            setattr(self.instance, key, cleaned.get(key))
        try:
            TrainConfig.from_run_fields(**{key: cleaned.get(key) for key in RUN_FIELDS})
        except ConfigError as exc:
            fields = [f for f in exc.problems if f in self.fields]
            for field in fields:
                self.add_error(field, exc.problems[field])
            others = [message for f, message in exc.problems.items() if f not in fields]
            if others:
                raise forms.ValidationError(others) from None
        return cleaned


class _NotQueued(Exception):
    pass


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    form = RetrainForm
    list_display = (
        "id",
        "preset",
        "architecture",
        "status",
        "progress_bar",
        "model_version",
        "started_by",
        "created_at",
    )
    list_filter = ("status", "architecture")
    change_form_template = "admin/training/trainingrun/change_form.html"

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [
                (None, {"fields": ("preset",)}),
                ("Advanced", {"classes": ("collapse",), "fields": RUN_FIELDS}),
            ]
        return [
            (
                "Run",
                {
                    "fields": (
                        "status",
                        "progress_bar",
                        "device",
                        "worker",
                        "started_by",
                        "created_at",
                        "started_at",
                        "finished_at",
                    )
                },
            ),
            ("Result", {"fields": ("model_version_link", "gate_summary", "error", "log_tail")}),
            ("Configuration", {"classes": ("collapse",), "fields": ("preset", *RUN_FIELDS)}),
            ("Dataset manifest", {"classes": ("collapse",), "fields": ("manifest",)}),
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return [f.name for f in TrainingRun._meta.fields] + [
            "progress_bar", "model_version_link", "gate_summary",
        ]  # fmt: skip

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) if obj is None else False

    def has_view_permission(self, request, obj=None):
        return request.user.is_staff

    @admin.display(description="progress")
    def progress_bar(self, obj: TrainingRun):
        """The bar and its line as the page opens; admin-run.js keeps them live."""
        percent = obj.progress_percent
        return format_html(
            '<progress class="run-progress" data-run="{}" max="100"{}'
            ' style="width:14rem">{}%</progress> <span class="run-progress-text">{}</span>',
            obj.pk,
            format_html(' value="{}"', percent) if percent is not None else "",
            percent or 0,
            obj.progress_text,
        )

    @admin.display(description="model version")
    def model_version_link(self, obj: TrainingRun):
        if obj.model_version is None:
            return "—"
        url = reverse("admin:classifier_modelversion_change", args=[obj.model_version.pk])
        version = obj.model_version
        return format_html('<a href="{}">v{} ({})</a>', url, version.version, version.status)

    @admin.display(description="gate")
    def gate_summary(self, obj: TrainingRun):
        """The verdict set by set (the same table as the promote confirmation)."""
        if not obj.gate:
            return "—"
        if "sets" not in obj.gate:  # a verdict from before the statistical gate
            verdict = "passed: promoted" if obj.gate.get("passed") else "failed: rejected"
            reasons = "; ".join(obj.gate.get("reasons", []))
            return f"{verdict}{' — ' + reasons if reasons else ''}"
        return render_to_string("includes/gate_verdict.html", {"verdict": obj.gate})

    def save_model(self, request, obj, form, change):
        obj.started_by = request.user
        super().save_model(request, obj, form, change)
        try:
            tasks.enqueue(obj)
        except tasks.BrokerUnavailable as exc:
            raise _NotQueued(str(exc)) from exc

    def changelist_view(self, request, extra_context=None):
        TrainingRun.objects.fail_orphaned()  # a vanished machine's run shows as failed, and why
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        TrainingRun.objects.fail_orphaned()
        return super().change_view(request, object_id, form_url, extra_context)

    def add_view(self, request, form_url="", extra_context=None):
        try:
            return super().add_view(request, form_url, extra_context)
        except _NotQueued as exc:  # the admin's transaction rolled the row back
            self.message_user(request, str(exc), level=messages.ERROR)
            return HttpResponseRedirect(reverse("admin:training_trainingrun_changelist"))

    def response_add(self, request, obj, post_url_continue=None):
        self.message_user(request, f"Run {obj.pk} is queued; this page follows its progress.")
        return HttpResponseRedirect(reverse("admin:training_trainingrun_change", args=[obj.pk]))

    def get_urls(self):
        return [
            path(
                "<int:pk>/cancel/",
                self.admin_site.admin_view(self.cancel_view),
                name="training_trainingrun_cancel",
            ),
            path(
                "<int:pk>/again/",
                self.admin_site.admin_view(self.again_view),
                name="training_trainingrun_again",
            ),
            *super().get_urls(),
        ]

    def cancel_view(self, request, pk: int):
        run = get_object_or_404(TrainingRun, pk=pk)
        if request.method == "POST":
            try:
                run.cancel()
                self.message_user(request, f"Run {pk}: cancellation requested.")
            except RunFinished as exc:
                self.message_user(request, str(exc), level=messages.WARNING)
        return HttpResponseRedirect(reverse("admin:training_trainingrun_change", args=[pk]))

    def again_view(self, request, pk: int):
        """A new run with this finished run's settings (POST only)."""
        run = get_object_or_404(TrainingRun, pk=pk)
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:training_trainingrun_change", args=[pk]))
        try:
            again = tasks.start_run(**run.settings_again(), started_by=request.user)
        except (RunNotFinished, tasks.BrokerUnavailable) as exc:
            self.message_user(request, str(exc), level=messages.ERROR)
            return HttpResponseRedirect(reverse("admin:training_trainingrun_change", args=[pk]))
        self.message_user(request, f"Run {again.pk} is queued with run {pk}'s settings.")
        return HttpResponseRedirect(reverse("admin:training_trainingrun_change", args=[again.pk]))
