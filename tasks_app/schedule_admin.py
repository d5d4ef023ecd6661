"""The Schedule admin (registered by tasks_app/admin.py): schedules are
edited here (saved through tasks_app.schedule_services, so a change moves
the next firing as a PATCH does), paused, resumed and triggered by actions;
each page shows the next fire times, the last firings with their state and
the fire times missed while no gateway ran."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from tasks_app import schedule_services
from tasks_app.exceptions import InvalidField, TaskError
from tasks_app.models import Schedule

_EDITED = (
    "module",
    "template",
    "every",
    "cron",
    "timezone",
    "start_at",
    "end_at",
    "max_runs",
    "jitter",
    "overlap",
    "catchup_window",
    "paused",
)


_BR = mark_safe("<br>")  # a constant


class ScheduleForm(forms.ModelForm):
    class Meta:
        model = Schedule
        fields = ("name", *_EDITED)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        module = data.get("module")
        if module is not None:
            from tasks_app.api.schedules import template_of  # the JSON task rules

            try:
                raw = data.get("template") or {}
                data["template"] = template_of(module.pk, dict(raw))
            except InvalidField as exc:
                raise ValidationError({"template": f"{exc.field}: {exc.problem}"}) from None
            except Exception as exc:  # noqa: BLE001 - the serializer's ValidationError, shown
                raise ValidationError({"template": str(exc)}) from None
        return data


class ScheduleAdmin(admin.ModelAdmin):
    form = ScheduleForm
    list_display = (
        "name",
        "when",
        "timezone",
        "overlap",
        "paused",
        "next_fire_at",
        "fired_count",
        "skipped_count",
    )
    list_filter = ("paused", "overlap")
    search_fields = ("name",)
    actions = ("pause", "resume", "trigger")
    readonly_fields = (
        "next_fire_times",
        "last_firings",
        "missed_fire_times",
        "fired_count",
        "skipped_count",
        "created_at",
        "updated_at",
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ("name", *self.readonly_fields) if obj is not None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Schedule, form: Any, change: bool) -> None:
        """Through the services: a new schedule gets its first firing, a
        change moves the next one."""
        values = {field: form.cleaned_data[field] for field in _EDITED}
        values["module_id"] = values.pop("module").pk
        values["cron"] = values["cron"] or ""
        try:
            if change:
                module = values.pop("module_id")
                saved = schedule_services.update_schedule(obj.name, module=module, **values)
            else:
                saved = schedule_services.create_schedule(name=obj.name, **values)
        except TaskError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        obj.pk = saved.pk

    def delete_model(self, request: HttpRequest, obj: Schedule) -> None:
        schedule_services.delete_schedule(obj.name)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        for schedule in queryset:
            schedule_services.delete_schedule(schedule.name)

    @admin.display(description="every / cron")
    def when(self, schedule: Schedule) -> str:
        return schedule.cron or f"every {schedule.every:g} s"

    @admin.action(description="Pause the selected schedules")
    def pause(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        for schedule in queryset:
            schedule_services.update_schedule(schedule.name, paused=True)
        self.message_user(request, f"{queryset.count()} schedules paused.")

    @admin.action(description="Resume the selected schedules")
    def resume(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        for schedule in queryset:
            schedule_services.update_schedule(schedule.name, paused=False)
        self.message_user(request, f"{queryset.count()} schedules resumed.")

    @admin.action(description="Fire the selected schedules now")
    def trigger(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        ids = [schedule_services.trigger_schedule(s.name).pk for s in queryset]
        self.message_user(request, f"Fired: {', '.join(ids)}.")

    @admin.display(description="next fire times")
    def next_fire_times(self, schedule: Schedule) -> str:
        if schedule.pk is None:
            return "-"
        times = schedule_services.next_fire_times(schedule, 5)
        if not times:
            return "none (paused or ended)"
        return format_html_join(_BR, "{}", ((t.isoformat(),) for t in times))

    @admin.display(description="last firings")
    def last_firings(self, schedule: Schedule) -> str:
        if schedule.pk is None:
            return "-"
        rows = schedule_services.last_firings(schedule, 10)
        if not rows:
            return "none yet"
        return format_html_join(
            _BR,
            '<a href="{}">{}</a>: {} {}',
            (
                (
                    reverse("admin:tasks_app_task_change", args=[quote(row.task_id)]),
                    row.task_id,
                    row.state,
                    row.error,
                )
                for row in rows
            ),
        )

    @admin.display(description="missed while no gateway ran")
    def missed_fire_times(self, schedule: Schedule) -> str:
        if schedule.pk is None:
            return "-"
        gaps = schedule_services.missed(schedule)
        if not gaps:
            return "none"
        return format_html_join(
            _BR,
            "{}{} skipped, {} to {}",
            (
                (m.count, "" if m.exact else "+", m.first_fire_at.isoformat(), m.last_fire_at)
                for m in gaps
            ),
        )
