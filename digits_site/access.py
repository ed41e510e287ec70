"""Who may call what: the base of every staff-only API view."""

from __future__ import annotations

from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAdminUser
from rest_framework.views import APIView

from digits_site.attempts import TokenAuthentication


class StaffOnly(APIView):
    # Token first: an unauthenticated request then gets 401 with
    # ``WWW-Authenticate: Token`` (saying how to authenticate), not a bare 403.
    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [IsAdminUser]
