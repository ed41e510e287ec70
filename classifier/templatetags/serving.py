"""The admin's front page warns staff when the active model cannot be served."""

from django import template

from classifier.models import ModelVersion

register = template.Library()


@register.simple_tag
def serving_problem() -> str:
    return ModelVersion.serving_problem()


@register.filter
def percent(value, places: int = 2) -> str:
    """0.99473 → "99.47 %" (accuracies are stored as fractions); "—" for none."""
    if value is None or value == "":
        return "—"
    return f"{float(value) * 100:.{int(places)}f} %"


@register.filter
def p_value(value) -> str:
    """A p-value as people read it: "< 0.0001", "0.023", "1"."""
    if value is None or value == "":
        return "—"
    value = float(value)
    return "< 0.0001" if value < 1e-4 else f"{value:.2g}"
