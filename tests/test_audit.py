"""The site's history (``audit.AuditEvent``): promotions, rollbacks, gate
overrides, version deletions, relabels and bulk curation are recorded with who,
when and why; the record is append-only and outlives what it mentions."""

from __future__ import annotations

import pytest

from audit.models import AppendOnly, AuditEvent
from classifier.models import ModelVersion
from classifier.registry import BOOTSTRAP_DIR, register_directory
from collector.models import Drawing, NewDrawing, SplitCounter


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def test_promotion_rollback_override_and_deletion_are_recorded_with_who_and_why(
    staff_client, staff_user, active_model, django_capture_on_commit_callbacks
):
    rejected = register_directory(BOOTSTRAP_DIR, activate=False, note="another")
    rejected.reject(["MNIST test 39.00% < 99.00%"])
    staff_client.post(
        "/admin/classifier/modelversion/",
        {"action": "promote_selected", "_selected_action": [rejected.pk], "post": "yes",
         "reason": "the gate was wrong about this one", "override_gate": "on"},
    )  # fmt: skip
    active_model.promote(by=staff_user, reason="roll back: users saw worse answers")
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(f"/admin/classifier/modelversion/{rejected.pk}/delete/", {"post": "yes"})

    [override] = _events("gate_overridden")
    assert override.subject == f"model version {rejected.version}"
    assert override.actor_name == "admin" and override.reason == "the gate was wrong about this one"
    assert override.details == {"version": rejected.version, "previous": active_model.version}
    [rollback] = _events("rolled_back")
    assert rollback.details["version"] == active_model.version
    assert rollback.reason == "roll back: users saw worse answers"
    [deleted] = _events("version_deleted")
    assert deleted.details == {"version": rejected.version, "status_before": "retired"}
    # the version is gone as a model; its history is not, nor is the account's name
    staff_user.delete()
    assert ModelVersion.objects.get(pk=rejected.pk).status == "deleted"
    by_staff = AuditEvent.objects.exclude(action="promoted")  # the fixture's own, by the system
    assert by_staff.count() == 3 and {e.actor_name for e in by_staff} == {"admin"}
    assert all(e.actor is None for e in AuditEvent.objects.all())


def test_a_first_promotion_by_the_system_is_recorded_as_such(db):
    version = register_directory(BOOTSTRAP_DIR, activate=True, note="first")
    [event] = _events("promoted")
    assert event.subject == f"model version {version.version}"
    assert event.actor is None and event.actor_name == "" and "the system" in str(event)


def test_the_history_cannot_be_changed_or_deleted(db):
    event = AuditEvent.record(AuditEvent.Action.APPROVED, "drawing 1", ids=[1])
    event.reason = "rewritten"
    with pytest.raises(AppendOnly):
        event.save()
    with pytest.raises(AppendOnly):
        event.delete()
    with pytest.raises(AppendOnly):
        AuditEvent.objects.filter(pk=event.pk).update(reason="rewritten")
    with pytest.raises(AppendOnly):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get(pk=event.pk).reason == ""


def test_staff_read_the_history_in_the_admin_and_cannot_edit_it(staff_client, db):
    event = AuditEvent.record(AuditEvent.Action.REJECTED, "3 drawings", ids=[4, 5, 6])
    listing = staff_client.get("/admin/audit/auditevent/")
    assert listing.status_code == 200 and b"3 drawings" in listing.content
    assert b"delete_selected" not in listing.content  # no bulk delete action
    page = staff_client.get(f"/admin/audit/auditevent/{event.pk}/change/")
    assert page.status_code == 200 and b"3 drawings" in page.content
    assert b'name="_save"' not in page.content  # shown, not a form to save
    assert staff_client.get("/admin/audit/auditevent/add/").status_code == 403
    assert (
        staff_client.post(
            f"/admin/audit/auditevent/{event.pk}/delete/", {"post": "yes"}
        ).status_code
        == 403
    )
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_bulk_curation_is_recorded_with_the_drawings_and_the_filters(staff_client, canvas_png):
    one, _ = Drawing.objects.add(NewDrawing(canvas_png(7), 1))
    two, _ = Drawing.objects.add(NewDrawing(canvas_png(3), 3))
    listing = "/admin/collector/drawing/?status__exact=pending"
    staff_client.post(listing, {"action": "relabel_as_7", "_selected_action": [one.pk, two.pk]})
    staff_client.post(listing, {"action": "approve", "_selected_action": [one.pk, two.pk]})
    staff_client.post(listing, {"action": "approve", "_selected_action": [one.pk]})  # no change
    staff_client.post(
        "/admin/collector/drawing/", {"action": "reject", "_selected_action": [two.pk]}
    )

    [relabel] = _events("relabelled")
    assert relabel.subject == "2 drawings" and relabel.details["ids"] == [one.pk, two.pk]
    assert relabel.details["label"] == 7 and relabel.details["filters"] == "status__exact=pending"
    [approved] = _events("approved")  # the second approval changed nothing: no event
    assert approved.details["count"] == 2 and approved.actor_name == "admin"
    [rejected] = _events("rejected")
    assert rejected.subject == f"drawing {two.pk}" and "filters" not in rejected.details


def test_a_relabel_in_the_change_form_moves_the_split_counts_and_is_recorded(
    staff_client, canvas_png
):
    drawing, _ = Drawing.objects.add(NewDrawing(canvas_png(4), 9))
    split = drawing.split
    response = staff_client.post(
        f"/admin/collector/drawing/{drawing.pk}/change/", {"label": 4, "status": "approved"}
    )
    assert response.status_code == 302
    drawing.refresh_from_db()
    assert (drawing.label, drawing.split, drawing.status) == (4, split, "approved")
    assert getattr(SplitCounter.objects.get(label=4), split) == 1
    assert getattr(SplitCounter.objects.get(label=9), split) == 0
    [relabel] = _events("relabelled")
    assert relabel.details["was"] == 9 and relabel.details["label"] == 4
    assert _events("approved")[0].subject == f"drawing {drawing.pk}"


def test_deleting_drawings_in_the_admin_is_recorded(staff_client, canvas_png):
    drawing, _ = Drawing.objects.add(NewDrawing(canvas_png(2), 2))
    staff_client.post(f"/admin/collector/drawing/{drawing.pk}/delete/", {"post": "yes"})
    assert not Drawing.objects.filter(pk=drawing.pk).exists()
    [event] = _events("drawings_deleted")
    assert event.details["ids"] == [drawing.pk] and event.details["labels"] == {str(drawing.pk): 2}
