# What a worker serves (runworker --labels, --queues), as it offered it.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tasks_app", "0007_schedules"),
    ]

    operations = [
        migrations.AddField(
            model_name="workernode",
            name="labels",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="workernode",
            name="queues",
            field=models.JSONField(blank=True, default=list),
        ),
    ]
