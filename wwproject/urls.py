from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from tasks_app import charts_view, metrics_view, pages

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("tasks_app.api.urls")),
    path("", pages.status_page, name="status"),
    path("api/status", pages.status_json, name="status-json"),
    path("api/charts", charts_view.charts_json, name="charts-json"),
    re_path(r"^status/tasks/(?P<task_id>[^/]+)/$", pages.task_page, name="status-task"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("metrics", metrics_view.metrics, name="metrics"),
    # Browsers ask for /favicon.ico on pages that name no icon (the admin's).
    path("favicon.ico", RedirectView.as_view(url=static("tasks_app/favicon.svg"))),
]
