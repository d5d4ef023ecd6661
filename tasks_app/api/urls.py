from django.urls import re_path

from tasks_app.api.views import TaskDetailView, TaskListView

# Both /tasks and /tasks/ answer, without a redirect (the seed's curl has no slash).
urlpatterns = [
    re_path(r"^tasks/?$", TaskListView.as_view(), name="task-list"),
    re_path(r"^tasks/(?P<task_id>[^/]+)/?$", TaskDetailView.as_view(), name="task-detail"),
]
