"""The admin API of a running skypi, from Python: yank, unyank, delete a file, set a status,
manage namespaces (PEP 752).

    with AdminClient("http://127.0.0.1:8080", token) as admin:
        admin.yank("foo", version="1.0", reason="broken")  # the files yanked
        admin.set_status("foo", "archived", "moved to foo2")

A refusal raises :class:`AdminError` with the index's status and its detail.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from skypi.client.answers import detail


class AdminError(Exception):
    """The index could not be asked (``status`` None), or refused (its status and detail)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AdminClient:
    """One index's admin API, with an admin token; each call returns what changed."""

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        http: httpx.Client | None = None,
        timeout: float = 60,
    ) -> None:
        self.url = url.rstrip("/")
        self.http = http or httpx.Client(timeout=timeout)
        self._owned = http is None
        self._auth = httpx.BasicAuth("__token__", token) if token else None

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._owned:
            self.http.close()

    def yank(
        self,
        project: str,
        *,
        filename: str | None = None,
        version: str | None = None,
        reason: str = "",
    ) -> list[str]:
        """Yank one file or every file of ``version``; the filenames yanked."""
        body = _which(filename, version) | {"reason": reason}
        return self._call("POST", f"{_quoted(project)}/yank", body)["yanked"]

    def unyank(
        self, project: str, *, filename: str | None = None, version: str | None = None
    ) -> list[str]:
        """Undo a yank; the filenames unyanked."""
        return self._call("POST", f"{_quoted(project)}/unyank", _which(filename, version))[
            "unyanked"
        ]

    def delete(self, project: str, filename: str) -> list[str]:
        """Delete one file; its filename."""
        path = f"{_quoted(project)}/files/{_quoted(filename)}"
        return self._call("DELETE", path)["deleted"]

    def set_status(self, project: str, status: str, reason: str | None = None) -> list[str]:
        """Set the project's status (PEP 792); ``['<project> <status>']``."""
        body = {"status": status, "reason": reason or None}
        return self._call("POST", f"{_quoted(project)}/status", body)["status"]

    # -- namespaces (PEP 752): answers are the namespace's record --------------------------

    def namespaces(self) -> list[dict[str, Any]]:
        """Every namespace: name, owner, grants, open, the projects that predate it."""
        found = self._request("GET", "/api/namespaces")["namespaces"]
        return [dict(ns) for ns in found]

    def add_namespace(
        self, name: str, owner: str, grants: list[str] | None = None, *, open: bool = False
    ) -> dict[str, Any]:
        body = {"name": name, "owner": owner, "grants": grants or [], "open": open}
        return self._request("POST", "/api/namespaces", body)

    def grant(self, name: str, principal: str) -> dict[str, Any]:
        path = f"/api/namespaces/{_quoted(name)}/grants"
        return self._request("POST", path, {"principal": principal})

    def revoke(self, name: str, principal: str) -> dict[str, Any]:
        path = f"/api/namespaces/{_quoted(name)}/grants/{_quoted(principal)}"
        return self._request("DELETE", path)

    def remove_namespace(self, name: str) -> dict[str, Any]:
        return self._request("DELETE", f"/api/namespaces/{_quoted(name)}")

    def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> dict[str, list[str]]:
        return self._request(method, f"/api/projects/{path}", body)

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        url = f"{self.url}{path}"
        try:
            response = self.http.request(method, url, json=body, auth=self._auth)
        except (httpx.TransportError, httpx.InvalidURL) as exc:
            reason = str(exc) or type(exc).__name__
            raise AdminError(f"cannot reach the index at {self.url}: {reason}") from exc
        if not response.is_success:
            raise AdminError(detail(response), response.status_code)
        try:
            answer = response.json()
        except ValueError:
            raise AdminError(f"{method} {url} answered something other than JSON") from None
        if not isinstance(answer, dict):
            raise AdminError(f"{method} {url} answered {answer!r}")
        return answer


def _which(filename: str | None, version: str | None) -> dict[str, Any]:
    """The files named; the index refuses anything but exactly one of the two."""
    return {k: v for k, v in (("filename", filename), ("version", version)) if v is not None}


def _quoted(segment: str) -> str:
    """One path segment, with '/' and '%' in it sent encoded rather than as structure."""
    return quote(segment, safe="")
