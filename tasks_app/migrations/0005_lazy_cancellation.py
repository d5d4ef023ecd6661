import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tasks_app", "0004_workernode_from_cluster_app"),
    ]

    operations = [
        migrations.CreateModel(
            name="PendingCancellation",
            fields=[
                (
                    "task",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="pending_cancellation",
                        serialize=False,
                        to="tasks_app.task",
                    ),
                ),
            ],
        ),
        migrations.AddIndex(
            model_name="iteration",
            index=models.Index(fields=["task", "state", "due_at"], name="iteration_task_state_due"),
        ),
    ]
