"""cluster_app keeps no models of its own: the registry of worker nodes is
the domain's (tasks_app.models.WorkerNode, still in the table
cluster_app_workernode)."""
