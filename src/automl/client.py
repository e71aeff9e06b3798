"""Python client of ``automl serve``: ``Client(url, token)``.

Thin on purpose: one method per route, JSON in, dicts out (the server's pydantic models are the
contract, ``schemas/openapi.json``). An error response raises :class:`ApiError` with the status
and the server's one-line detail; the token is sent in a header and never put in a message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

FINAL = ("SUCCEEDED", "FAILED", "CANCELED", "PAUSED")


class ApiError(Exception):
    def __init__(self, status: int, detail: Any) -> None:
        if isinstance(detail, list):  # pydantic field errors
            detail = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', []))}: {e.get('msg')}"
                               for e in detail)
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


class Client:
    def __init__(self, url: str, token: str, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=f"{self.url}/api/v1", timeout=timeout,
                                  headers={"Authorization": f"Bearer {token}"})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail")
            except ValueError:
                detail = response.text[:200]
            raise ApiError(response.status_code, detail)
        if response.status_code == 204:
            return None
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    # -- experiments ---------------------------------------------------------------------
    def submit(self, study: dict[str, Any] | None = None, **settings: Any) -> dict[str, Any]:
        """Queue an experiment: study-file keys and/or TAO automl_settings names."""
        return self._call("POST", "/experiments", json={**(study or {}), **settings})

    def list(self, state: str | None = None, owner: str | None = None,
             sort: str = "date-descending") -> list[dict[str, Any]]:
        """Every experiment the token may see (all pages)."""
        out: list[dict[str, Any]] = []
        params = {k: v for k, v in {"state": state, "owner": owner, "sort": sort}.items() if v}
        while True:
            page = self._call("GET", "/experiments", params={**params, "skip": len(out), "size": 500})
            out += page["experiments"]
            if len(out) >= page["pagination_info"]["total_records"] or not page["experiments"]:
                return out

    def get(self, experiment_id: str) -> dict[str, Any]:
        return self._call("GET", f"/experiments/{experiment_id}")

    def delete(self, experiment_id: str, delete_workspace: bool = False) -> None:
        self._call("DELETE", f"/experiments/{experiment_id}",
                   params={"delete_workspace": delete_workspace})

    def cancel(self, experiment_id: str) -> dict[str, Any]:
        return self._call("POST", f"/experiments/{experiment_id}:cancel")

    def pause(self, experiment_id: str) -> dict[str, Any]:
        return self._call("POST", f"/experiments/{experiment_id}:pause")

    def resume(self, experiment_id: str) -> dict[str, Any]:
        return self._call("POST", f"/experiments/{experiment_id}:resume")

    def wait(self, experiment_id: str, poll_s: float = 2.0, timeout: float | None = None,
             on_trials: Callable[[list[dict[str, Any]]], None] | None = None,
             until: tuple[str, ...] = FINAL) -> dict[str, Any]:
        """Poll until the experiment reaches one of ``until``; ``on_trials`` gets each batch of
        changed trials (``?after=N``), for progress output. Returns the experiment."""
        deadline = None if timeout is None else time.monotonic() + timeout
        after = 0
        while True:
            experiment = self.get(experiment_id)
            changed = self.trials(experiment_id, after=after)
            after = changed["last_version"]
            if on_trials and changed["trials"]:
                on_trials(changed["trials"])
            if experiment["state"] in until:
                return experiment
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"experiment {experiment_id} still {experiment['state']} "
                                   f"after {timeout:.0f}s")
            time.sleep(poll_s)

    # -- trials and results --------------------------------------------------------------
    def trials(self, experiment_id: str, after: int = 0) -> dict[str, Any]:
        return self._call("GET", f"/experiments/{experiment_id}/trials", params={"after": after})

    def trial(self, experiment_id: str, rec_id: str) -> dict[str, Any]:
        return self._call("GET", f"/experiments/{experiment_id}/trials/{rec_id}")

    def logs(self, experiment_id: str, rec_id: str | None = None, tail: int = 100,
             follow: bool = False) -> Iterator[str]:
        """The experiment's (or one trial's) log: the last ``tail`` lines, then new text while
        it runs when ``follow``."""
        path = f"/experiments/{experiment_id}" + (f"/trials/{rec_id}" if rec_id else "") + "/log"
        with self._http.stream("GET", path, params={"tail_lines": tail, "follow": follow},
                               timeout=None if follow else self._http.timeout) as response:
            if response.status_code >= 400:
                response.read()
                raise ApiError(response.status_code, response.json().get("detail"))
            yield from response.iter_text()

    def best(self, experiment_id: str) -> dict[str, Any]:
        return self._call("GET", f"/experiments/{experiment_id}/best")

    def handoff(self, experiment_id: str, action: str, run: bool = False,
                **options: Any) -> dict[str, Any]:
        return self._call("POST", f"/experiments/{experiment_id}:handoff",
                          json={"action": action, "run": run, **options})

    def report(self, experiment_id: str) -> str:
        return self._call("GET", f"/experiments/{experiment_id}/report")

    def skills(self) -> list[dict[str, Any]]:
        return self._call("GET", "/skills")
