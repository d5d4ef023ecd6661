from django.apps import AppConfig


class ClusterAppConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "cluster_app"
    verbose_name = "Cluster"  # what the admin shows for the app
