"""Which `POST /tasks` the submission lane (tasks_app/api/lane.py) answers in
Django's place, and with which headers: worked out once, at start-up, from
what Django and DRF are configured to do with such a request.

The lane may answer only where Django's answer could not differ. So at
start-up it reads what is configured, the MIDDLEWARE list and the view
`/tasks` resolves to (its authentication, permission, throttle, parser and
renderer classes, content negotiation, versioning; DRF's default throttles),
and looks each up in what it knows: KNOWN_MIDDLEWARE and the KNOWN_* tables
below, each entry with why it makes no difference to the requests the lane
takes (no cookie, no Authorization, no query string, JSON or anything
accepted, a plain multipart form: lane.py checks those). Anything it does
not know, and any setting under which a known one would answer otherwise,
turns the lane off for the life of the process, with a log line naming
what. `WW_FAST_LANE=0` turns it off too.

What depends on the request is asked of the real thing per request, not
written again here: the request is built as Django builds it (`ASGIRequest`)
and handed to the middleware that judge it (CommonMiddleware: ALLOWED_HOSTS,
DISALLOWED_USER_AGENTS, PREPEND_WWW; tasks_app/api/origin.py's cross-origin
rule), and the view's permission classes are asked about an anonymous POST.

The response headers are those of a 201 rendered once at start-up by
Django's handler, through the real middleware chain and DRF's dispatch of
TaskListView with only its `post` replaced by one that stores nothing, less
the two that are each request's own (Location, Content-Length).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from django.conf import settings
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import Resolver404, re_path, resolve, set_urlconf
from django.utils.module_loading import import_string
from rest_framework import authentication, negotiation, parsers, permissions, renderers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from tasks_app.api.negotiation import JSONFirstNegotiation
from tasks_app.api.parsers import BoundedJSONParser
from tasks_app.api.permissions import TaskAPIPermission
from tasks_app.api.views import TaskListView

log = logging.getLogger("ww.lane")

PATH = "/tasks"
GetResponse = Callable[[HttpRequest], HttpResponseBase]
# Headers that are each answer's own: the lane writes them per request.
_PER_REQUEST = frozenset({b"location", b"content-length"})


@dataclass(frozen=True)
class Known:
    """A class or middleware the lane knows, and why the requests it takes
    get the same answer with it as without it."""

    why: str
    # Called per request with the request as Django builds it (middleware
    # that judge the request: it must pass the request on to the view).
    asked: bool = False
    # What in the settings makes it answer otherwise (the lane is then off).
    unless: Callable[[], str | None] = lambda: None


def _security_unless() -> str | None:
    if settings.SECURE_SSL_REDIRECT:
        return "SECURE_SSL_REDIRECT is on: it redirects plain-HTTP requests"
    if settings.SECURE_HSTS_SECONDS:
        return "SECURE_HSTS_SECONDS is set: it adds HSTS to HTTPS requests only"
    return None


def _csrf_unless() -> str | None:
    try:
        view = resolve(PATH).func
    except Resolver404:
        return None  # said by the view check
    if not getattr(view, "csrf_exempt", False):
        return f"{PATH}'s view is not csrf_exempt: it checks CSRF tokens"
    return None


KNOWN_MIDDLEWARE: dict[str, Known] = {
    "django.middleware.security.SecurityMiddleware": Known(
        "its headers (nosniff, Referrer-Policy, COOP) come from the settings: the probe has them",
        unless=_security_unless,
    ),
    "tasks_app.api.origin.RefuseCrossSiteWrites": Known(
        "it judges the Origin and Sec-Fetch-Site headers: asked per request", asked=True
    ),
    "django.contrib.sessions.middleware.SessionMiddleware": Known(
        "without a cookie no session is loaded or saved; the Vary: Cookie it adds when the "
        "session is read is in the probe's headers"
    ),
    "django.middleware.common.CommonMiddleware": Known(
        "ALLOWED_HOSTS, DISALLOWED_USER_AGENTS and PREPEND_WWW: asked per request; the lane "
        "writes the Content-Length it would; APPEND_SLASH acts on a 404 only",
        asked=True,
    ),
    "django.middleware.csrf.CsrfViewMiddleware": Known(
        "DRF's views are csrf_exempt, and it sets a cookie only where a page asked for a token",
        unless=_csrf_unless,
    ),
    "django.contrib.auth.middleware.AuthenticationMiddleware": Known(
        "without a session cookie its user is the anonymous one"
    ),
    "django.contrib.messages.middleware.MessageMiddleware": Known(
        "without a cookie or session there are no messages to read or write"
    ),
    "django.middleware.clickjacking.XFrameOptionsMiddleware": Known(
        "its header comes from the settings: the probe has it"
    ),
}
KNOWN_AUTHENTICATION: dict[type, str] = {
    authentication.TokenAuthentication: "reads the Authorization header, which is absent",
    authentication.BasicAuthentication: "reads the Authorization header, which is absent",
    authentication.SessionAuthentication: "reads the session, which needs a cookie: absent",
}
# Permissions that look at the request's method and user only: asked per
# request about an anonymous POST (the answer may change with the settings).
KNOWN_PERMISSIONS: dict[type, str] = {
    TaskAPIPermission: "method and user only (and the settings)",
    permissions.AllowAny: "always yes",
    permissions.IsAuthenticated: "the user only",
    permissions.IsAuthenticatedOrReadOnly: "method and user only",
    permissions.IsAdminUser: "the user only",
}
# None: a throttle counts requests, and the lane's would go uncounted.
KNOWN_THROTTLES: dict[type, str] = {}
KNOWN_PARSERS: dict[type, str] = {
    parsers.MultiPartParser: "DRF's choice for multipart/form-data; the lane's plain split "
    "(tasks_app/api/submission.py) takes only forms it reads alike",
    parsers.FormParser: "never chosen for multipart/form-data",
    parsers.JSONParser: "never chosen for multipart/form-data",
    BoundedJSONParser: "never chosen for multipart/form-data",
}
KNOWN_NEGOTIATION: dict[type, str] = {
    JSONFirstNegotiation: "the first renderer for no Accept, */* or application/json",
    negotiation.DefaultContentNegotiation: "the first renderer for no Accept, */* or JSON",
}


class Permission(Protocol):
    def has_permission(self, request: Request, view: APIView) -> bool: ...


@dataclass(frozen=True)
class Admission:
    """What the lane answers: requests every judge passes, with `headers`."""

    headers: tuple[tuple[bytes, bytes], ...]
    judges: tuple[Callable[[HttpRequest], object], ...]
    permissions: tuple[Permission, ...]
    anonymous: Request
    view: APIView

    def admits(self, scope: Mapping[str, Any]) -> bool:
        """Whether Django's middleware would pass this request on to the
        view and the view's permissions let an anonymous user POST."""
        if self.judges:
            request = ASGIRequest(scope, io.BytesIO())  # the body is not theirs to read
            for judge in self.judges:
                try:
                    if judge(request) is not _PASSED:
                        return False  # it answered itself (a 403, a redirect)
                except (SuspiciousOperation, PermissionDenied):
                    return False  # DisallowedHost, a user agent refused: Django answers it
        return all(p.has_permission(self.anonymous, self.view) for p in self.permissions)


_PASSED = HttpResponse()


def _passed(request: HttpRequest) -> HttpResponse:
    """A judged middleware's `get_response`: reached when it lets the request on."""
    return _PASSED


def admission(get_response: GetResponse) -> Admission | None:
    """The lane's admission in this process, or None (off, logged why).
    `get_response` is Django's handler (its middleware chain)."""
    problems = [] if settings.WW_TASKS.fast_lane else ["WW_FAST_LANE is off"]
    judges: list[Callable[[HttpRequest], object]] = []
    for path in settings.MIDDLEWARE:
        known = KNOWN_MIDDLEWARE.get(path)
        if known is None:
            problems.append(f"middleware {path} is not one it knows")
            continue
        problem = known.unless()
        if problem is not None:
            problems.append(f"{path}: {problem}")
        elif known.asked:
            judges.append(import_string(path)(_passed))
    problems += _view_problems()
    headers: tuple[tuple[bytes, bytes], ...] = ()
    if not problems:
        probed = _probe(get_response)
        if isinstance(probed, str):
            problems.append(probed)
        else:
            headers = probed
    if problems:
        log.warning(
            "submission lane off (POST %s goes through Django): %s", PATH, "; ".join(problems)
        )
        return None
    view = TaskListView()
    log.debug("submission lane on for POST %s", PATH)
    return Admission(
        headers=headers,
        judges=tuple(judges),
        permissions=tuple(view.get_permissions()),  # as DRF makes them for a request
        anonymous=_anonymous_post(),
        view=view,
    )


def _view_problems() -> list[str]:
    """What in the view `/tasks` resolves to the lane does not know."""
    try:
        view = getattr(resolve(PATH).func, "view_class", None)
    except Resolver404:
        view = None
    if view is not TaskListView:
        return [f"{PATH} resolves to {_name(view)}, not TaskListView"]
    problems = [
        *_unknown("authentication", view.authentication_classes, KNOWN_AUTHENTICATION),
        *_unknown("permission", view.permission_classes, KNOWN_PERMISSIONS),
        *_unknown("throttle", view.throttle_classes, KNOWN_THROTTLES),
        *_unknown("DRF default throttle", api_settings.DEFAULT_THROTTLE_CLASSES, KNOWN_THROTTLES),
        *_unknown("parser", view.parser_classes, KNOWN_PARSERS),
        *_unknown("content negotiation", [view.content_negotiation_class], KNOWN_NEGOTIATION),
    ]
    if parsers.MultiPartParser not in view.parser_classes:
        problems.append("no MultiPartParser: DRF would refuse the form")
    if not view.renderer_classes or view.renderer_classes[0] is not renderers.JSONRenderer:
        problems.append("the view's first renderer is not JSONRenderer (the lane renders JSON)")
    if view.versioning_class is not None:
        problems.append(f"versioning class {_name(view.versioning_class)} is not one it knows")
    return problems


def _unknown(what: str, classes: Iterable[Any], known: dict[type, str]) -> list[str]:
    return [f"{what} class {_name(c)} is not one it knows" for c in classes if c not in known]


def _probe(get_response: GetResponse) -> tuple[tuple[bytes, bytes], ...] | str:
    """The headers of TaskListView's 201 as Django's handler gives it to a
    request the lane takes, less each answer's own; or what went wrong."""
    host = _probe_host()
    if host is None:
        return "no host in ALLOWED_HOSTS to probe Django's answer with"

    class ProbeView(TaskListView):
        # Asked per request (Admission.admits), as this process's bind and
        # settings decide; a permission adds no header to what it allows.
        permission_classes = ()

        def post(self, request: Request) -> Response:
            return Response({}, status=201, headers={"Location": f"{PATH}/probe"})

    class ProbeURLs:  # a URLconf: Django reads its urlpatterns
        urlpatterns = [re_path(f"^{PATH.lstrip('/')}$", ProbeView.as_view())]

    scope = {
        "type": "http",
        "method": "POST",
        "scheme": "http",
        "path": PATH,
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", host.encode("latin-1")),
            (b"content-type", b"multipart/form-data; boundary=probe"),
            (b"content-length", b"0"),
        ],
    }
    request = ASGIRequest(scope, io.BytesIO())
    # This one request routed to the probe's view: Django's per-request URLconf.
    request.urlconf = ProbeURLs  # type: ignore[attr-defined]  # set by middleware, unstubbed
    try:
        response = get_response(request)
    finally:
        set_urlconf(None)  # the thread's URLconf back to ROOT_URLCONF
    response.close()
    if response.status_code != 201:
        return f"Django answered the probe with {response.status_code}"
    if response.cookies:
        return f"Django's answer sets cookies ({', '.join(response.cookies)})"
    return tuple(
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in response.items()
        if name.lower().encode("latin-1") not in _PER_REQUEST
    )


def _probe_host() -> str | None:
    """A host Django's ALLOWED_HOSTS lets in."""
    for pattern in settings.ALLOWED_HOSTS:
        host = "localhost" if pattern == "*" else pattern.lstrip(".")
        if host:
            return host
    return "localhost" if settings.DEBUG else None  # DEBUG allows localhost


def _anonymous_post() -> Request:
    """A POST by DRF's unauthenticated user, for the permissions to judge."""
    request = HttpRequest()
    request.method = "POST"
    return Request(request, authenticators=())


def _name(obj: Any) -> str:
    if obj is None or isinstance(obj, str):
        return str(obj)
    return f"{obj.__module__}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"
