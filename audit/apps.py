from django.apps import AppConfig


class AuditConfig(AppConfig):
    """The site's history: who changed what that matters, when and why. It sits
    just above ``digits_site`` so that every app can write to it, and it imports
    none of them (an event names what it mentions; it never points at its row)."""

    name = "audit"
    verbose_name = "History"
    default_auto_field = "django.db.models.BigAutoField"
