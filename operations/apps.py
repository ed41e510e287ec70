from django.apps import AppConfig


class OperationsConfig(AppConfig):
    """Running the site: serving its processes, the scale-out cluster, backups and the
    storage check. It sits above every app (it reads their models) so that
    ``digits_site``, the ground floor, imports none of them."""

    name = "operations"
    verbose_name = "Site operations"
