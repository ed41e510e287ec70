"""Who may do what, for every endpoint and page: anonymous visitors, signed-in
people who are not staff, staff (session) and staff (API token).

Anyone may draw, predict and contribute; only staff see pending drawings, export
the dataset, download model artifacts and report plots, start and cancel runs,
and promote or roll back models. Staff rows use a request that passes the
permission check and then stops (a 400 for an invalid body), so the matrix
needs no broker and trains nothing.
"""

from __future__ import annotations

import json

import pytest
from rest_framework.authtoken.models import Token

from classifier.models import ModelVersion, Promotion
from collector.models import Drawing, NewDrawing
from training.models import TrainingRun

from .conftest import data_url

ANON, USER, STAFF, TOKEN = "anonymous", "user", "staff", "staff-token"
ROLES = (ANON, USER, STAFF, TOKEN)

LOGIN = "login"  # a redirect to the admin's sign-in page
API_REFUSED = "api-refused"  # 401/403 with a JSON error
HIDDEN = 404  # a pending drawing does not exist for those who may not see it


# (name, method, url, body, {role: expected}). "{...}" in urls is filled per test.
OPEN = {ANON: 200, USER: 200, STAFF: 200}
STAFF_PAGE = {ANON: LOGIN, USER: LOGIN, STAFF: 200}
STAFF_API_OK = {ANON: API_REFUSED, USER: API_REFUSED, STAFF: 200, TOKEN: 200}
MATRIX = [
    ("draw page", "get", "/", None, OPEN),
    ("contribute page", "get", "/contribute/", None, OPEN),
    ("dataset page", "get", "/dataset/", None, OPEN),
    ("my contributions", "get", "/contributions/", None, OPEN),
    ("api docs", "get", "/api/docs/", None, OPEN),
    ("api schema", "get", "/api/schema/", None, OPEN),
    ("dataset stats", "get", "/api/dataset/stats/", None, OPEN),
    ("predict", "post", "/api/predict/", "predict", OPEN),
    ("predict batch", "post", "/api/predict/batch/", "batch", OPEN),
    ("contribute", "post", "/api/drawings/", "contribution", {ANON: 201, USER: 201, STAFF: 201}),
    ("approved drawing", "get", "/drawings/{approved}.png", None, OPEN),
    (
        "pending drawing",
        "get",
        "/drawings/{pending}.png",
        None,
        {ANON: HIDDEN, USER: HIDDEN, STAFF: 200},
    ),
    ("report plot", "get", "/models/v1/learning-curves.png", None, STAFF_PAGE),
    ("model artifact", "get", "/models/v1/model.tflite", None, STAFF_PAGE),
    ("admin", "get", "/admin/", None, STAFF_PAGE),
    (
        "drawings admin (pending ones)",
        "get",
        "/admin/collector/drawing/?status__exact=pending",
        None,
        STAFF_PAGE,
    ),
    (
        "start a dataset export",
        "post",
        "/admin/collector/drawing/export/npz/",
        None,
        {ANON: LOGIN, USER: LOGIN, STAFF: 302},
    ),
    ("dataset exports", "get", "/admin/collector/datasetexport/", None, STAFF_PAGE),
    ("retrain form", "get", "/admin/training/trainingrun/add/", None, STAFF_PAGE),
    ("model versions admin", "get", "/admin/classifier/modelversion/", None, STAFF_PAGE),
    ("list runs", "get", "/api/training-runs/", None, STAFF_API_OK),
    ("one run", "get", "/api/training-runs/{run}/", None, STAFF_API_OK),
    (
        "start a run",
        "post",
        "/api/training-runs/",
        "bad-run",
        {**STAFF_API_OK, STAFF: 400, TOKEN: 400},
    ),
    # staff (session) cancel it; the token's cancel then finds it finished
    (
        "cancel a run",
        "post",
        "/api/training-runs/{run}/cancel/",
        None,
        {**STAFF_API_OK, TOKEN: 400},
    ),
    ("list models", "get", "/api/models/", None, STAFF_API_OK),
    ("promote a model", "post", "/api/models/1/promote/", "promote", STAFF_API_OK),
]


@pytest.fixture
def world(active_model, canvas_png, django_user_model, staff_user):
    approved, _ = Drawing.objects.add(
        NewDrawing(canvas_png(1, 0), 1, status=Drawing.Status.APPROVED)
    )
    pending, _ = Drawing.objects.add(NewDrawing(canvas_png(2, 0), 2, status=Drawing.Status.PENDING))
    run = TrainingRun.objects.create(architecture="mlp", epochs=1)
    django_user_model.objects.create_user("someone", password="a-password-for-tests")
    return {
        "approved": approved.sha256,
        "pending": pending.sha256,
        "run": run.pk,
        "token": Token.objects.create(user=staff_user).key,
        "bodies": {
            "predict": {"image": data_url(canvas_png(3, 0))},
            "batch": {"images": [data_url(canvas_png(4, 0))]},
            # a new drawing per request, so every 201 is a new row
            "contribution": lambda i: {"image": data_url(canvas_png(5, i)), "label": 5},
            "bad-run": {"epochs": 0},
            "promote": {"reason": "roll back"},
        },
    }


def sign_in(client, role: str, staff_user, django_user_model, token: str) -> dict:
    client.logout()
    if role == USER:
        client.force_login(django_user_model.objects.get(username="someone"))
    elif role == STAFF:
        client.force_login(staff_user)
    elif role == TOKEN:
        return {"HTTP_AUTHORIZATION": f"Token {token}"}
    return {}


@pytest.mark.parametrize(
    ("name", "method", "url", "body", "expected"), MATRIX, ids=[m[0] for m in MATRIX]
)
def test_each_role_on_each_endpoint(
    client, world, staff_user, django_user_model, name, method, url, body, expected
):
    url = url.format(**world)
    drawings_before = Drawing.objects.count()
    for i, role in enumerate(ROLES):
        if role not in expected:
            continue
        headers = sign_in(client, role, staff_user, django_user_model, world["token"])
        payload = world["bodies"].get(body)
        payload = payload(i) if callable(payload) else payload
        if method == "get":
            response = client.get(url, **headers)
        else:
            response = client.post(
                url, json.dumps(payload or {}), content_type="application/json", **headers
            )
        want = expected[role]
        shown = b"(a file)" if response.streaming else response.content[:200]
        where = f"{name} as {role}: {response.status_code} {shown!r}"
        if want == LOGIN:
            assert response.status_code == 302 and "/admin/login/" in response["Location"], where
        elif want == API_REFUSED:
            assert response.status_code == (401 if role == ANON else 403), where
            assert response.json()["error"], where
            if role == ANON:
                assert "Token" in response["WWW-Authenticate"], where
        else:
            assert response.status_code == want, where
    if body == "contribution":
        assert Drawing.objects.count() == drawings_before + 3
    else:
        assert Drawing.objects.count() == drawings_before  # nobody else writes drawings


def test_refused_staff_actions_change_nothing(client, world, django_user_model):
    """The refusals above are refusals: no run started or cancelled, no promotion."""
    promotions = Promotion.objects.count()
    for role in (ANON, USER):
        if role == USER:
            client.force_login(django_user_model.objects.get(username="someone"))
        client.post(
            "/api/training-runs/", json.dumps({"preset": "quick"}), content_type="application/json"
        )
        client.post(f"/api/training-runs/{world['run']}/cancel/", content_type="application/json")
        client.post(
            "/api/models/1/promote/", json.dumps({"reason": "x"}), content_type="application/json"
        )
    assert TrainingRun.objects.count() == 1
    assert not TrainingRun.objects.get().cancel_requested
    assert Promotion.objects.count() == promotions and ModelVersion.active().version == 1


def test_stored_files_are_never_served_as_html(client, world, staff_user):
    """Drawings and artifacts come with their real type, nosniff and a sandbox, so a
    PNG that is secretly HTML cannot run in the site's origin."""
    client.force_login(staff_user)
    for url, content_type in [
        (f"/drawings/{world['approved']}.png", "image/png"),
        (f"/drawings/{world['pending']}.png", "image/png"),
        ("/models/v1/learning-curves.png", "image/png"),
        ("/models/v1/model.tflite", "application/octet-stream"),
        ("/models/v1/model.keras", "application/octet-stream"),
    ]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert response["Content-Type"] == content_type, url
        assert response["X-Content-Type-Options"] == "nosniff", url
        assert "sandbox" in response["Content-Security-Policy"], url
    download = client.get("/models/v1/model.tflite")
    assert download["Content-Disposition"] == 'attachment; filename="digits-v1-model.tflite"'
    assert b"".join(download.streaming_content)[4:8] == b"TFL3"


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/api/drawings/", "contribution"),
        ("/api/training-runs/", "bad-run"),
        ("/api/training-runs/{run}/cancel/", None),
        ("/api/models/1/promote/", "promote"),
    ],
)
def test_session_writes_need_the_csrf_token(world, staff_user, url, body):
    """A signed-in browser's cookie alone cannot write: another site could send it."""
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(staff_user)
    payload = world["bodies"].get(body)
    payload = payload(7) if callable(payload) else payload
    url = url.format(**world)
    refused = browser.post(url, json.dumps(payload or {}), content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
    assert not TrainingRun.objects.get().cancel_requested
    assert Drawing.objects.count() == 2

    browser.get("/")  # the page sets the CSRF cookie, as in a real visit
    token = browser.cookies["csrftoken"].value
    allowed = browser.post(
        url, json.dumps(payload or {}), content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert allowed.status_code in (200, 201, 400), allowed.content  # past the CSRF check
    assert "CSRF" not in allowed.content.decode()


def test_admin_forms_need_the_csrf_token(world, staff_user):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(staff_user)
    response = browser.post(
        "/admin/training/trainingrun/add/", {"preset": "quick", "architecture": "mlp", "epochs": 1}
    )
    assert response.status_code == 403
    assert TrainingRun.objects.count() == 1
