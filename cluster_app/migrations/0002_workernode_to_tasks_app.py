"""WorkerNode is tasks_app's now (tasks_app 0004); its table stays."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("cluster_app", "0001_initial"),
        ("tasks_app", "0004_workernode_from_cluster_app"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="WorkerNode")],
            database_operations=[],
        )
    ]
