from django.apps import AppConfig


class CollectorConfig(AppConfig):
    name = "collector"
    verbose_name = "Collector (contributed drawings)"

    def ready(self) -> None:
        from collector import signals  # noqa: F401
