"""The submission lane (tasks_app/api/lane.py): a plain `POST /tasks` is
answered without Django's request machinery, with the same 201 Django gives;
every request it does not take reaches Django whole, body included, and gets
Django's answer. Its admission is worked out at start-up from what is
configured (tasks_app/api/lane_admission.py): a middleware, throttle,
permission, parser or authentication class it does not know turns it off,
logged, and Django then applies it."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.cache import cache
from django.core.signals import request_started
from django.http import HttpRequest, HttpResponseBase
from django.test import override_settings
from rest_framework.authentication import TokenAuthentication
from rest_framework.parsers import FileUploadParser, MultiPartParser
from rest_framework.permissions import BasePermission
from rest_framework.throttling import AnonRateThrottle

from tasks_app.api.lane import SubmissionLane, submission_lane
from tasks_app.api.lane_admission import admission
from tasks_app.api.permissions import TaskAPIPermission
from tasks_app.api.views import TaskListView
from tasks_app.conf import WriteAuth
from tasks_app.models import Iteration, Task
from tasks_app.notify import GATEWAY_CHANNEL, run_from_message
from tests.api.asgi import asgi_request
from tests.api.forms import HASH_WASM
from tests.e2e.cluster import seed_form
from wwproject.asgi import application, django_application
from wwproject.compat_django import ThreadedDjangoHandler

FILES = {"wasm": ("hash.wasm", HASH_WASM)}
# What differs between two submissions of the same form: who and when.
PER_TASK = {"id", "received_at", "next_due_at"}


@pytest.fixture
def django_requests() -> Iterator[list[object]]:
    """Requests that went through Django's handler (its request_started)."""
    seen: list[object] = []

    def count(sender: object, **kwargs: object) -> None:
        seen.append(sender)

    request_started.connect(count)
    yield seen
    request_started.disconnect(count)


def post(app: Any, task_id: str, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
    data = kwargs.pop("data", None) or seed_form(id=task_id)
    status, headers, content = asgi_request(app, "POST", "/tasks", data=data, files=FILES, **kwargs)
    return status, headers, httpx.Response(status, content=content).json()


@pytest.mark.django_db(transaction=True)
def test_a_plain_post_skips_django_and_gets_the_answer_django_gives(
    django_requests: list[object], layer: Any
) -> None:
    status, headers, body = post(application, "lane")
    assert django_requests == []  # the lane answered
    assert status == 201
    django_status, django_headers, django_body = post(django_application, "django")
    assert len(django_requests) == 1
    assert status == django_status
    assert headers.keys() == django_headers.keys()
    for name in headers.keys() - {"location", "content-length"}:
        assert headers[name] == django_headers[name], name
    assert headers["location"] == "/tasks/lane"
    assert body.keys() == django_body.keys()
    assert {k: v for k, v in body.items() if k not in PER_TASK} == {
        k: v for k, v in django_body.items() if k not in PER_TASK
    }
    task = Task.objects.get(pk="lane")
    assert task.received_at.isoformat().replace("+00:00", "Z") == body["received_at"]
    stored = list(Iteration.objects.filter(task_id="lane").order_by("index"))
    assert len(stored) == 3
    # The scheduler was told, with the runs (no gateway in this process: the layer).
    message = async_to_sync(layer.receive)(GATEWAY_CHANNEL)
    assert message["task"] == "lane"
    assert [run_from_message(f).iteration_id for f in message["runs"]] == [r.pk for r in stored]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("why", "headers", "expected"),
    [
        ("a session cookie", {"Cookie": "sessionid=x"}, 201),
        ("a token", {"Authorization": "Token nope"}, 401),
        ("a browser", {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}, 201),
    ],
)
def test_requests_with_credentials_or_other_wishes_go_to_django(
    why: str, headers: dict[str, str], expected: int, django_requests: list[object]
) -> None:
    status, answer, _ = asgi_request(
        application, "POST", "/tasks", data=seed_form(id="t"), files=FILES, headers=headers
    )
    assert len(django_requests) == 1, why
    assert status == expected, why
    if why == "a browser":
        assert answer["content-type"].startswith("text/html")  # DRF's browsable API


@pytest.mark.django_db(transaction=True)
def test_a_query_string_goes_to_django(django_requests: list[object]) -> None:
    status, _, _ = asgi_request(
        application, "POST", "/tasks?format=json", data=seed_form(id="q"), files=FILES
    )
    assert len(django_requests) == 1 and status == 201
    assert Task.objects.filter(pk="q").exists()


@pytest.mark.django_db(transaction=True)
def test_an_invalid_form_reaches_django_whole_and_gets_its_error(
    django_requests: list[object],
) -> None:
    status, _, body = post(application, "bad", data=seed_form(id="bad", repeats="-1"))
    assert len(django_requests) == 1  # the body was replayed to Django
    assert status == 400 and body["field"] == "repeats"
    assert not Task.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_id_is_refused_by_django_and_nothing_is_stored_twice(
    django_requests: list[object],
) -> None:
    assert post(application, "twice")[0] == 201
    status, _, body = post(application, "twice")
    assert len(django_requests) == 1
    assert status == 409 and body["field"] == "id"
    assert Iteration.objects.filter(task_id="twice").count() == 3


@pytest.mark.django_db(transaction=True)
def test_an_invalid_module_is_refused_by_django(django_requests: list[object]) -> None:
    status, _, body = asgi_request(
        application,
        "POST",
        "/tasks",
        data=seed_form(id="junk"),
        files={"wasm": ("junk.wasm", b"not wasm at all")},
    )
    assert len(django_requests) == 1
    assert status == 400 and b"wasm" in body
    assert not Task.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_host_django_refuses_is_refused(django_requests: list[object]) -> None:
    status, _, _ = asgi_request(
        application,
        "POST",
        "/tasks",
        data=seed_form(id="evil"),
        files=FILES,
        headers={"Host": "evil.example"},
    )
    assert len(django_requests) == 1 and status == 400
    assert not Task.objects.exists()


@pytest.mark.django_db(transaction=True)
@override_settings(WW_TASKS=dataclasses.replace(settings.WW_TASKS, writes_need_auth=WriteAuth.TRUE))
def test_where_writes_need_a_user_the_lane_stays_out(django_requests: list[object]) -> None:
    status, _, _ = asgi_request(
        application, "POST", "/tasks", data=seed_form(id="anon"), files=FILES
    )
    assert len(django_requests) == 1 and status == 401
    assert not Task.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_with_a_known_module_the_event_loop_stores_the_task_itself(layer: Any) -> None:
    threads: list[str] = []

    async def in_thread(fn: Any, *args: Any) -> Any:
        threads.append(fn.__name__)
        return await django_application.in_thread(fn, *args)

    lane = submission_lane(
        ASGIStaticFilesHandler(django_application),
        in_thread=in_thread,
        get_response=django_application.get_response,
    )
    assert isinstance(lane, SubmissionLane)
    assert post(lane, "first")[0] == 201  # a new module: checked and stored on a thread
    assert threads == ["_store_in_thread"]
    status, headers, body = post(lane, "second")
    assert status == 201 and headers["location"] == "/tasks/second"
    assert threads == ["_store_in_thread"]  # no thread this time
    assert body["runs"] == 3 and body["state"] == "scheduled"
    assert Iteration.objects.filter(task_id="second").count() == 3
    told = [async_to_sync(layer.receive)(GATEWAY_CHANNEL)["task"] for _ in range(2)]
    assert told == ["first", "second"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://127.0.0.2:9000", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "http://127.0.0.1:9000"},  # another port: another origin
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
    ],
)
def test_a_browser_write_from_another_origin_is_refused_and_nothing_stored(
    headers: dict[str, str], django_requests: list[object]
) -> None:
    """The lane answers without Django's middleware, so it applies the
    origin rule itself before taking a request: refused ones get the 403."""
    status, answer, body = asgi_request(
        application, "POST", "/tasks", data=seed_form(id="xs"), files=FILES, headers=headers
    )
    assert len(django_requests) == 1  # not the lane's to take
    assert status == 403 and answer["content-type"] == "application/json"
    assert httpx.Response(status, content=body).json()["field"] in {"Origin", "Sec-Fetch-Site"}
    assert not Task.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_same_origin_page_still_takes_the_lane(django_requests: list[object]) -> None:
    headers = {"Origin": "http://127.0.0.1:8080", "Sec-Fetch-Site": "same-origin"}
    status, _, _ = asgi_request(
        application, "POST", "/tasks", data=seed_form(id="own"), files=FILES, headers=headers
    )
    assert django_requests == [] and status == 201
    assert Task.objects.filter(pk="own").exists()


# -- admission, worked out at start-up from what is configured ---------------


class StampMiddleware:
    """A middleware the lane does not know: it marks every answer."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        response["X-Stamp"] = "stamped"
        return response


class OncePerHour(AnonRateThrottle):
    """A throttle (the lane knows none): one anonymous request an hour."""

    rate = "1/hour"


class NoAnonymousPosts(BasePermission):
    """A permission the lane does not know."""

    def has_permission(self, request: Any, view: Any) -> bool:
        return request.method != "POST" or request.user is not None


class HeaderAuthentication(TokenAuthentication):
    """An authentication class the lane does not know (a subclass is not its base)."""

    keyword = "Bearer"


def started_now() -> tuple[Any, ThreadedDjangoHandler]:
    """The HTTP application as a process starting now builds it, with the
    settings in force now: Django's handler, the lane in front where it is on."""
    handler = ThreadedDjangoHandler(threads=1)
    app = submission_lane(
        ASGIStaticFilesHandler(handler),
        in_thread=handler.in_thread,
        get_response=handler.get_response,
    )
    return app, handler


def lane_log(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.name == "ww.lane")


@pytest.fixture
def lane_logged(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    # The "ww" logger does not propagate to the root, where caplog listens.
    logger = logging.getLogger("ww.lane")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG, logger="ww.lane")
    yield caplog
    logger.removeHandler(caplog.handler)


@pytest.mark.django_db(transaction=True)
def test_with_the_default_configuration_the_lane_is_on_and_the_probe_stores_nothing(
    lane_logged: pytest.LogCaptureFixture,
) -> None:
    app, _ = started_now()
    assert isinstance(app, SubmissionLane)
    assert "off" not in lane_log(lane_logged)
    assert not Task.objects.exists()  # the probe's 201 stored no task
    assert admission(django_application.get_response) is not None


@pytest.mark.django_db(transaction=True)
def test_an_unknown_middleware_turns_the_lane_off_and_then_applies(
    django_requests: list[object], lane_logged: pytest.LogCaptureFixture
) -> None:
    stamp = f"{__name__}.StampMiddleware"
    with override_settings(MIDDLEWARE=[*settings.MIDDLEWARE, stamp]):
        app, _ = started_now()
        assert not isinstance(app, SubmissionLane)
        status, headers, _ = post(app, "stamped")
    assert len(django_requests) == 1 and status == 201
    assert headers["x-stamp"] == "stamped"  # Django's way: the middleware ran
    assert f"middleware {stamp} is not one it knows" in lane_log(lane_logged)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("where", ["view", "DRF default"])
def test_a_throttle_turns_the_lane_off_and_then_throttles(
    where: str,
    monkeypatch: pytest.MonkeyPatch,
    django_requests: list[object],
    lane_logged: pytest.LogCaptureFixture,
) -> None:
    throttle = f"{__name__}.OncePerHour"
    rest = dict(settings.REST_FRAMEWORK)
    if where == "view":
        monkeypatch.setattr(TaskListView, "throttle_classes", [OncePerHour])
    else:
        rest["DEFAULT_THROTTLE_CLASSES"] = [throttle]
    cache.clear()
    try:
        with override_settings(REST_FRAMEWORK=rest):
            app, _ = started_now()
            assert not isinstance(app, SubmissionLane)
            first, second = post(app, "one")[0], post(app, "two")[0]
    finally:
        cache.clear()  # the throttle's count
    assert len(django_requests) == 2 and first == 201
    if where == "view":
        assert second == 429  # Django's way: the throttle counted the first
    assert f"throttle class {throttle} is not one it knows" in lane_log(lane_logged)
    # DRF's default is copied into a view's class at import, so the view
    # does not throttle; the lane stays out all the same: it is configured.


@pytest.mark.django_db(transaction=True)
def test_an_unknown_permission_turns_the_lane_off_and_then_refuses(
    monkeypatch: pytest.MonkeyPatch,
    django_requests: list[object],
    lane_logged: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(TaskListView, "permission_classes", [TaskAPIPermission, NoAnonymousPosts])
    app, _ = started_now()
    assert not isinstance(app, SubmissionLane)
    status, _, _ = post(app, "refused")
    assert len(django_requests) == 1 and status == 401  # DRF's refusal of the anonymous
    assert not Task.objects.exists()
    assert f"permission class {__name__}.NoAnonymousPosts is not one it knows" in lane_log(
        lane_logged
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("attribute", "classes", "named"),
    [
        (
            "parser_classes",
            [FileUploadParser, MultiPartParser],
            "parser class rest_framework.parsers.FileUploadParser",
        ),
        (
            "authentication_classes",
            [HeaderAuthentication],
            f"authentication class {__name__}.HeaderAuthentication",
        ),
    ],
)
def test_an_unknown_parser_or_authentication_turns_the_lane_off(
    attribute: str,
    classes: list[type],
    named: str,
    monkeypatch: pytest.MonkeyPatch,
    django_requests: list[object],
    lane_logged: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(TaskListView, attribute, classes)
    app, _ = started_now()
    assert not isinstance(app, SubmissionLane)
    post(app, "through-django")
    assert len(django_requests) == 1
    assert f"{named} is not one it knows" in lane_log(lane_logged)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"SECURE_SSL_REDIRECT": True}, "SECURE_SSL_REDIRECT"),
        ({"SECURE_HSTS_SECONDS": 3600}, "SECURE_HSTS_SECONDS"),
        ({"WW_TASKS": dataclasses.replace(settings.WW_TASKS, fast_lane=False)}, "WW_FAST_LANE"),
    ],
)
def test_settings_under_which_django_answers_otherwise_turn_the_lane_off(
    overrides: dict[str, Any], named: str, lane_logged: pytest.LogCaptureFixture
) -> None:
    with override_settings(**overrides):
        app, _ = started_now()
    assert not isinstance(app, SubmissionLane)
    assert named in lane_log(lane_logged)


@pytest.mark.django_db(transaction=True)
@override_settings(DISALLOWED_USER_AGENTS=[re.compile(r"^BadBot")])
def test_a_user_agent_django_refuses_is_refused(django_requests: list[object]) -> None:
    """CommonMiddleware is asked per request, with the request as Django builds it."""
    status, _, _ = asgi_request(
        application,
        "POST",
        "/tasks",
        data=seed_form(id="bot"),
        files=FILES,
        headers={"User-Agent": "BadBot/1.0"},
    )
    assert len(django_requests) == 1 and status == 403
    assert not Task.objects.exists()


@pytest.mark.django_db(transaction=True)
@override_settings(X_FRAME_OPTIONS="SAMEORIGIN", SECURE_REFERRER_POLICY="no-referrer")
def test_the_headers_are_those_django_renders_with_the_settings_at_start(
    django_requests: list[object],
) -> None:
    app, handler = started_now()
    assert isinstance(app, SubmissionLane)
    status, headers, _ = post(app, "lane")
    assert django_requests == [] and status == 201
    django_status, django_headers, _ = post(handler, "django")
    assert len(django_requests) == 1 and django_status == 201
    assert headers["x-frame-options"] == django_headers["x-frame-options"] == "SAMEORIGIN"
    assert headers["referrer-policy"] == django_headers["referrer-policy"] == "no-referrer"
    assert headers.keys() == django_headers.keys()
