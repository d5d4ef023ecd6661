from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from tasks_app import metrics_view, pages

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("tasks_app.api.urls")),
    path("", pages.status_page, name="status"),
    path("api/status", pages.status_json, name="status-json"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("metrics", metrics_view.metrics, name="metrics"),
]
