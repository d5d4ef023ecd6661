from django.db import migrations, models
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce


def count_successes(apps, schema_editor):
    Task = apps.get_model("tasks_app", "Task")
    Iteration = apps.get_model("tasks_app", "Iteration")
    succeeded = (
        Iteration.objects.filter(task_id=OuterRef("pk"), state="succeeded")
        .values("task_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    Task.objects.update(succeeded_count=Coalesce(Subquery(succeeded), 0))


class Migration(migrations.Migration):
    dependencies = [
        ("tasks_app", "0002_retries_and_cancellation"),
    ]

    operations = [
        migrations.AddField(
            model_name="task",
            name="succeeded_count",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.RunPython(count_successes, migrations.RunPython.noop),
    ]
