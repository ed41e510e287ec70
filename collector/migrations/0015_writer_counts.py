"""Writers per split, kept (``collector.counts.WriterCount``) instead of counted from
the writers' table on every new writer's first drawing; filled here from it."""

from django.db import migrations, models


def count_existing(apps, schema_editor):
    WriterSplit = apps.get_model("collector", "WriterSplit")
    WriterCount = apps.get_model("collector", "WriterCount")
    rows = WriterSplit.objects.values_list("split").annotate(n=models.Count("pk"))
    WriterCount.objects.bulk_create(WriterCount(split=split, writers=n) for split, n in rows)


def forget(apps, schema_editor):
    apps.get_model("collector", "WriterCount").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("collector", "0014_approvals_in_order"),
    ]

    operations = [
        migrations.CreateModel(
            name="WriterCount",
            fields=[
                ("split", models.CharField(max_length=5, primary_key=True, serialize=False)),
                ("writers", models.PositiveIntegerField(default=0)),
            ],
        ),
        migrations.RunPython(count_existing, forget),
    ]
