"""The admin's front page warns staff when the active model cannot be served."""

from django import template

from classifier.models import ModelVersion

register = template.Library()


@register.simple_tag
def serving_problem() -> str:
    return ModelVersion.serving_problem()
