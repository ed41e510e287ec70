from django.apps import AppConfig


class DigitsSiteConfig(AppConfig):
    """The site itself: holds the ``serve`` command that runs the whole app."""

    name = "digits_site"
    verbose_name = "Digits site"
