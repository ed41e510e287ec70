"""An index for "is a drawing with exactly these strokes stored already?", which an
ndjson import asks of every line (``collector.imports.already_stored``): without
it, each line read the whole drawings table (a second a line at a million).

PostgreSQL only: an expression index on the strokes' hash, partial to drawings
that have strokes. SQLite's datasets are small enough to read."""

from django.db import migrations

CREATE = (
    "CREATE INDEX drawing_strokes_md5 ON collector_drawing (md5(strokes::text)) "
    "WHERE strokes IS NOT NULL"
)
DROP = "DROP INDEX IF EXISTS drawing_strokes_md5"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("collector", "0012_model_inputs"),
    ]

    operations = [migrations.RunPython(create, drop)]
