"""A live ``automl serve`` (queue only: ``--max-experiments 0``, so no Ray) under abuse: token
set-up traps, ``kill -9`` in the middle of a stream of submissions (nothing lost, nothing
duplicated, no half-written experiment), and hostile requests over a real socket (no 5xx)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from automl.service import auth
from automl.service.store import Store, default_url
from tests.service_fixtures import ENV, LiveServer, admin_token
from tests.helpers.processes import wait_until
from tests.helpers.skills import make_fake_skill


def _token(root: Path, user: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "automl.cli", "token", "create", user, "--root",
                           str(root), *extra], capture_output=True, text=True, env=ENV,
                          timeout=120)


def test_token_create_refuses_a_root_without_a_store_unless_init(tmp_path: Path):
    """`automl token create NAME --root <typo>` created a new store and printed a token no
    server accepts."""
    typo = tmp_path / "srv-typo"
    refused = _token(typo, "alice")
    assert refused.returncode == 2 and "no automl serve store there" in refused.stderr, refused
    assert "Traceback" not in refused.stderr and not typo.exists()
    made = _token(tmp_path / "srv", "alice", "--init")
    assert made.returncode == 0 and made.stdout.startswith(auth.PREFIX), made.stderr
    again = _token(tmp_path / "srv", "bob")  # the store exists now
    assert again.returncode == 0, again.stderr


def test_an_admin_token_is_issued_while_the_store_has_no_admin(tmp_path: Path):
    """A token created before the first `automl serve` meant no admin token was ever printed."""
    store = Store(default_url(tmp_path))
    store.migrate()
    auth.issue(store, "alice")
    first = auth.ensure_admin(store)
    assert first is not None and auth.authenticate(store, first).is_admin
    assert auth.ensure_admin(store) is None  # an admin exists now


def _body(i: int) -> dict:
    return {"skill": "fake-skill", "name": f"s{i}", "max_recommendations": 1, "max_epochs": 1}


def test_kill_9_during_submissions_loses_and_duplicates_nothing(tmp_path: Path):
    make_fake_skill(tmp_path / "fake-skill")
    (tmp_path / "srv").mkdir()
    assert _token(tmp_path / "srv", "alice", "--init").returncode == 0
    server = LiveServer(tmp_path, "--skill-dir", str(tmp_path / "fake-skill"),
                        "--max-experiments", "0")
    try:
        token = admin_token(server.start())  # no admin yet: one is printed
        headers = {"Authorization": f"Bearer {token}"}
        accepted: list[str] = []
        errors: list[int] = []
        stop = threading.Event()

        def submit() -> None:
            i = 0
            while not stop.is_set():
                try:
                    response = httpx.post(f"{server.url}/api/v1/experiments", json=_body(i),
                                          headers=headers, timeout=10)
                except httpx.HTTPError:
                    return  # the server died under this request
                if response.status_code == 201:
                    accepted.append(response.json()["id"])
                else:
                    errors.append(response.status_code)
                i += 1

        thread = threading.Thread(target=submit)
        thread.start()
        wait_until(lambda: len(accepted) >= 5, timeout=120, what="five submissions")
        server.kill(signal.SIGKILL)
        stop.set()
        thread.join(timeout=60)
        assert not errors, errors
        server.start()
        listed = httpx.get(f"{server.url}/api/v1/experiments?size=1000", headers=headers,
                           timeout=30).json()["experiments"]
        ids = [e["id"] for e in listed]
        assert len(ids) == len(set(ids)), "an experiment was stored twice"
        assert set(accepted) <= set(ids), "an accepted submission was lost"
        assert len(ids) - len(accepted) <= 1, "more experiments than submissions"  # one in flight
        assert {e["state"] for e in listed} == {"PENDING"}
        for experiment_id in ids:
            got = httpx.get(f"{server.url}/api/v1/experiments/{experiment_id}", headers=headers,
                            timeout=30)
            assert got.status_code == 200, got.text
    finally:
        server.close()


def test_hostile_requests_over_a_socket_get_no_5xx(tmp_path: Path):
    make_fake_skill(tmp_path / "fake-skill")
    server = LiveServer(tmp_path, "--skill-dir", str(tmp_path / "fake-skill"),
                        "--max-experiments", "0", "--limit-body-bytes", "200000")
    try:
        token = admin_token(server.start())
        headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
        api = f"{server.url}/api/v1"
        cases = [
            ("/experiments", b'{"skill": "fake-skill", "name": "' + b"n" * 10_000_000 + b'"}', 413),
            ("/experiments", b'{"skill": "fake-skill", "seed": NaN}', 422),
            ("/experiments", b'{"skill": "fake-skill", "overrides": {"hp.x": Infinity}}', 422),
            ("/experiments", b"[" * 150_000, 422),
            ("/experiments", b'{"skill": "fake-skill", "name": "' + b"n" * 300 + b'"}', 422),
            ("/experiments:study", b'{"study": "a: &a [1,1]\\nb: [*a,*a]"}', 422),
        ]
        for path, body, status in cases:
            started = time.monotonic()
            try:
                response = httpx.post(api + path, content=body, headers=headers, timeout=60)
            except httpx.RemoteProtocolError:  # the server answered 413 before reading it all
                assert status == 413
                continue
            assert response.status_code == status, (path, body[:80], response.text[:300])
            assert time.monotonic() - started < 30
        assert httpx.get(f"{api}/health", timeout=10).status_code == 200
    finally:
        server.close()
