"""WorkerNode moves from cluster_app to tasks_app (the domain); its table
stays cluster_app_workernode, so only Django's state changes."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tasks_app", "0003_task_succeeded_count"),
        ("cluster_app", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="WorkerNode",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("peer_id", models.CharField(max_length=80, unique=True)),
                        ("address", models.CharField(blank=True, default="", max_length=100)),
                        ("concurrency", models.PositiveIntegerField(default=1)),
                        ("in_flight", models.PositiveIntegerField(default=0)),
                        ("completed", models.PositiveIntegerField(default=0)),
                        ("failed", models.PositiveIntegerField(default=0)),
                        ("connected", models.BooleanField(default=False)),
                        ("first_seen", models.DateTimeField(auto_now_add=True)),
                        ("last_seen", models.DateTimeField()),
                    ],
                    options={
                        "db_table": "cluster_app_workernode",
                        "ordering": ["-connected", "peer_id"],
                    },
                ),
                migrations.AlterField(
                    model_name="attempt",
                    name="worker",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=models.deletion.SET_NULL,
                        related_name="attempts",
                        to="tasks_app.workernode",
                    ),
                ),
            ],
            database_operations=[],
        )
    ]
