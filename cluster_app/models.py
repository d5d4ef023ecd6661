"""The cluster's view of the worker registry. The rows are the domain's
(tasks_app.models.WorkerNode, in the table cluster_app_workernode); the
admin lists them here, under "Cluster", through a proxy."""

from __future__ import annotations

from tasks_app.models import WorkerNode


class Worker(WorkerNode):
    class Meta:
        proxy = True
        verbose_name = "worker"
