"""The client's one exception type.

Everything the client raises for a request that did not get what it asked
for is a `ClientError`: the gateway's refusal (`status` is the HTTP status,
`body` its JSON error body, which names the field and the problem) or no
answer at all (`ConnectionFailed`, a subclass: `status` is None)."""

from __future__ import annotations

from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed


class ClientError(Exception):
    """A request the gateway refused (`status`: its HTTP status, `body`:
    its JSON error body, e.g. `{"field": "id", "problem": "...", "detail":
    "id: ..."}`), or, as `ConnectionFailed`, one it never answered
    (`status` None)."""

    def __init__(self, message: str, *, status: int | None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body if body is not None else {}

    @property
    def field(self) -> str | None:
        """The field the gateway named as wrong, if it named one."""
        field = self.body.get("field") if isinstance(self.body, dict) else None
        return None if field is None else str(field)


class ConnectionFailed(ClientError):
    """No answer: the gateway could not be reached, the connection broke,
    a timeout passed, or an event stream was closed on us (`body` then has
    the close `code` and `reason`, e.g. 4008 "slow reader")."""

    def __init__(self, message: str, *, body: Any = None) -> None:
        super().__init__(message, status=None, body=body)


def refusal(method: str, path: str, response: httpx.Response) -> ClientError:
    """The error for a response with an error status. Its message is
    `METHOD PATH: STATUS DETAIL` (the body's `detail`, else the body)."""
    try:
        body: Any = response.json()
    except ValueError:
        body = {"detail": response.text[:500]}
    detail = body.get("detail", body) if isinstance(body, dict) else body
    return ClientError(
        f"{method} {path}: {response.status_code} {detail}", status=response.status_code, body=body
    )


def unreachable(url: str, exc: BaseException) -> ConnectionFailed:
    return ConnectionFailed(f"{url}: {exc or type(exc).__name__}")


def stream_closed(url: str, exc: ConnectionClosed) -> ConnectionFailed:
    """An event stream closed otherwise than normally; the close code and
    reason in the body (4008 "slow reader": this reader fell behind)."""
    close = exc.rcvd
    code, reason = (close.code, close.reason) if close is not None else (1006, "")
    return ConnectionFailed(
        f"{url}: closed with {code} {reason}".rstrip(), body={"code": code, "reason": reason}
    )
