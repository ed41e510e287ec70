"""Schemathesis against the project's own OpenAPI schema, over HTTP on a live server.

For every operation it generates requests from the schema — valid ones and ones
that break it — sends them as a staff API client would, and checks that no
answer is a server error, that every status code, content type and body is the
one the schema documents, and that invalid input is refused.
"""

from __future__ import annotations

import pytest
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings

pytestmark = pytest.mark.slow

schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))


@pytest.fixture
def staff_token(live_server, staff_user, active_model, tmp_path, settings):
    """A staff token, the bootstrap model serving, and a real Redis (no worker) so
    that starting a run queues it instead of answering 503."""
    from rest_framework.authtoken.models import Token

    from operations import services

    from .conftest import set_rates, use_broker

    socket = tmp_path / "redis.sock"
    redis = services.start_embedded_redis(socket, tmp_path / "logs")
    from digits_site.celery import app

    previous = app.conf.broker_url
    use_broker(f"redis+socket://{socket}")
    set_rates(settings, contribute="100000/min", predict="100000/min")
    try:
        yield Token.objects.create(user=staff_user).key
    finally:
        use_broker(previous)
        services.stop(redis)


@schema.parametrize()
@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_keeps_the_promises_of_its_schema(case, live_server, staff_token):
    case.call_and_validate(
        base_url=live_server.url,
        headers={"Authorization": f"Token {staff_token}"},
        # A string the schema accepts is almost never a PNG with a digit on it, so
        # "schema-valid input must be accepted" cannot hold for images; the
        # converse (schema-invalid input is refused) and every other check stay.
        excluded_checks=[schemathesis.checks.positive_data_acceptance],
    )
