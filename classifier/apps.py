from django.apps import AppConfig


class ClassifierConfig(AppConfig):
    name = "classifier"
    verbose_name = "Classifier (model versions and prediction)"

    def ready(self) -> None:
        from classifier import signals  # noqa: F401
