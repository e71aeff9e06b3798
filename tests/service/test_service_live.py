"""A live ``automl serve`` (subprocess, its own Ray) running the fake trainer: the life of an
experiment through the Python client and ``automl … --server``, restart safety after ``kill -9`` or SIGTERM
and the OpenAPI contract (committed document current, schemathesis finds no 5xx)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from automl.client import ApiError, Client
from tests.helpers.skills import make_fake_skill
from tests.helpers.processes import trainer_pids, wait_until
from tests.service_fixtures import ENV, LiveServer, admin_token

ROOT = Path(__file__).resolve().parents[2]


def _server(tmp_path: Path, *args: str) -> tuple[LiveServer, str]:
    make_fake_skill(tmp_path / "fake-skill")
    server = LiveServer(tmp_path, "--skill-dir", str(tmp_path / "fake-skill"), "--allow-root",
                        str(tmp_path), "--num-cpus", "2", *args)
    return server, admin_token(server.start())


def _body(epoch_s: float = 0.0, trials: int = 2) -> dict:
    return {"skill": "fake-skill", "algo": "random", "max_recommendations": trials,
            "max_epochs": 2, "max_concurrent": 1, "seed": 1,
            "overrides": {"fake.epoch_s": epoch_s}}


def test_submit_watch_pause_resume_cancel_and_the_cli(tmp_path: Path):
    server, token = _server(tmp_path, "--max-experiments", "2")
    try:
        client = Client(server.url, token)
        done = client.submit(_body())
        slow = client.submit(_body(epoch_s=1.0, trials=4))
        seen: list[dict] = []
        final = client.wait(done["id"], poll_s=0.5, timeout=240, on_trials=seen.extend)
        assert final["state"] == "SUCCEEDED", final
        assert final["progress"]["trials_done"] == 2 and final["progress"]["best"]
        best = client.best(done["id"])
        assert Path(best["best"]["checkpoint_uri"]).is_file()
        assert {t["rec_id"] for t in seen} == {r["rec_id"] for r in best["all_recs"]}
        assert "best trial" in "".join(client.logs(done["id"]))

        wait_until(lambda: client.trials(slow["id"])["trials"], timeout=120, what="a trial")
        assert client.pause(slow["id"])["state"] == "PAUSING"
        assert client.wait(slow["id"], poll_s=0.5, timeout=120)["state"] == "PAUSED"
        with pytest.raises(ApiError) as conflict:
            client.pause(slow["id"])
        assert conflict.value.status == 409
        assert client.resume(slow["id"])["state"] == "RESUMING"
        wait_until(lambda: client.get(slow["id"])["state"] == "RUNNING", timeout=60, what="resume")
        assert client.cancel(slow["id"])["state"] == "CANCELING"
        assert client.wait(slow["id"], poll_s=0.5, timeout=120)["state"] == "CANCELED"
        assert "--- automl resume" in "".join(client.logs(slow["id"], tail=1000))

        env = {**ENV, "AUTOML_SERVER": server.url, "AUTOML_TOKEN": token}
        run = subprocess.run([sys.executable, "-m", "automl.cli", "run", "--skill-dir",
                              str(tmp_path / "fake-skill"), "--algo", "random",
                              "--max-recommendations", "1", "--max-epochs", "1"],
                             capture_output=True, text=True, env=env, timeout=240)
        assert run.returncode == 0, run.stderr
        assert "state: SUCCEEDED" in run.stdout and "best trial:" in run.stdout
        listing = subprocess.run([sys.executable, "-m", "automl.cli", "list"], capture_output=True,
                                 text=True, env=env, timeout=60)
        assert done["id"] in listing.stdout and "CANCELED" in listing.stdout
        status = subprocess.run([sys.executable, "-m", "automl.cli", "status", done["id"]],
                                capture_output=True, text=True, env=env, timeout=60)
        assert "SUCCEEDED" in status.stdout and "best so far" in status.stdout
        bad = subprocess.run([sys.executable, "-m", "automl.cli", "best", "nope"],
                             capture_output=True, text=True, env=env, timeout=60)
        assert bad.returncode == 2 and "404" in bad.stderr and "Traceback" not in bad.stderr
    finally:
        server.close()


# SIGTERM's case is slow-marked for CI's time budget (python3 -m pytest -m slow runs it).
@pytest.mark.parametrize("sig", [pytest.param(signal.SIGKILL, id="kill-9"),
                                 pytest.param(signal.SIGTERM, id="sigterm",
                                              marks=pytest.mark.slow)])
def test_restart_with_two_running_and_one_queued_loses_nothing(tmp_path: Path, sig: int):
    """``kill -9`` (the runs die with the server) or a clean SIGTERM (the server stops its runs as
    Ctrl-C does and exits 0, leaving no trainer behind): after a restart on the same store the two
    running experiments resume, the queued one stays queued, and every trial finished before the
    signal is kept as it was, none run twice."""
    server, token = _server(tmp_path, "--max-experiments", "2")
    try:
        client = Client(server.url, token)
        ids = [client.submit(_body(epoch_s=1.0, trials=3))["id"] for _ in range(3)]
        wait_until(lambda: all(client.trials(i)["trials"] for i in ids[:2]), timeout=180,
                   what="trials of both running experiments")
        assert client.get(ids[2])["state"] == "PENDING"
        done_before = {t["rec_id"]: _kept(t) for i in ids[:2] for t in client.trials(i)["trials"]
                       if t["status"] == "completed"}
        server.kill(sig)  # the server process alone
        if sig == signal.SIGTERM:
            assert server.proc is not None and server.proc.returncode == 0, \
                (tmp_path / "serve-0.log").read_text()[-2000:]
            assert not trainer_pids(tmp_path / "srv" / "workspaces"), "trainers left behind"
        assert "admin token" not in server.start()  # restarted on the same store
        client = Client(server.url, token)  # the restart's own free port
        states = {i: client.get(i)["state"] for i in ids}
        assert states[ids[2]] == "PENDING" and {states[ids[0]], states[ids[1]]} <= {"RESUMING", "RUNNING"}
        for experiment_id in ids:
            final = client.wait(experiment_id, poll_s=1, timeout=300)
            assert final["state"] == "SUCCEEDED", (final, "".join(client.logs(experiment_id)))
            trials = client.trials(experiment_id)["trials"]
            rec_ids = [t["rec_id"] for t in trials]
            assert len(rec_ids) == len(set(rec_ids)) == 3
            assert all(t["status"] == "completed" for t in trials)
            assert len(client.best(experiment_id)["all_recs"]) == 3
            for trial in trials:
                if trial["rec_id"] in done_before:
                    assert _kept(trial) == done_before[trial["rec_id"]], trial
        logs = ["".join(client.logs(i, tail=1000)) for i in ids]
        assert all("--- automl resume" in log for log in logs[:2]) and "--- automl resume" not in logs[2]
    finally:
        server.close()


def _kept(trial: dict) -> dict:
    """What a restart must not change in a finished trial (its ``version`` is the feed's)."""
    return {k: v for k, v in trial.items() if k != "version"}


def test_committed_openapi_document_is_current():
    from automl.service.server import openapi_document

    committed = json.loads((ROOT / "schemas" / "openapi.json").read_text())
    assert committed == json.loads(json.dumps(openapi_document())), \
        "schemas/openapi.json is stale: automl serve --openapi > schemas/openapi.json"


def _schemathesis_config(done: str, rec_id: str, queued: str) -> str:
    """Path parameters naming real things: a finished experiment, its trial,
    the fake skill; DELETE and :handoff get the queued experiment (409), so that the finished
    one is not deleted under the other operations and no hand-off runs a trainer."""
    return (f'[parameters]\n"path.experiment_id" = "{done}"\n"path.rec_id" = "{rec_id}"\n'
            f'"path.name" = "fake-skill"\n\n'
            f'[[operations]]\ninclude-method = "DELETE"\n'
            f'parameters = {{ "path.experiment_id" = "{queued}" }}\n\n'
            f'[[operations]]\ninclude-path = "/api/v1/experiments/{{experiment_id}}:handoff"\n'
            f'parameters = {{ "path.experiment_id" = "{queued}" }}\n')


def test_schemathesis_finds_no_server_error(tmp_path: Path):
    """Fuzz every operation on a server that holds a finished experiment (run first, then the
    server is restarted with ``--max-experiments 0`` so that fuzzed submissions only queue),
    then follow the OpenAPI links from created experiments (the stateful phase: create, get,
    pause, resume, cancel, delete in generated orders)."""
    pytest.importorskip("schemathesis")
    server, token = _server(tmp_path, "--max-experiments", "1")
    try:
        client = Client(server.url, token)
        done = client.submit(_body(trials=1))["id"]
        assert client.wait(done, poll_s=0.5, timeout=240)["state"] == "SUCCEEDED"
        rec_id = client.trials(done)["trials"][0]["rec_id"]
        client.report(done)
        server.kill(signal.SIGTERM)
    finally:
        server.close()
    server = LiveServer(tmp_path, *server.args[:-2], "--max-experiments", "0")
    try:
        server.start()
        queued = Client(server.url, token).submit(_body())["id"]
        (tmp_path / "schemathesis.toml").write_text(_schemathesis_config(done, rec_id, queued))
        run = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}/openapi.json",
             "--checks", "not_a_server_error", "--max-examples", "8", "--seed", "1",
             "-H", f"Authorization: Bearer {token}", "--phases", "examples,fuzzing,stateful",
             "--no-color"],
            capture_output=True, text=True, timeout=400, cwd=tmp_path,
            env={**ENV, "SCHEMATHESIS_HOOKS": ""})
        assert run.returncode == 0, run.stdout[-4000:]
        print(run.stdout)
        assert " passed" in run.stdout and "Operations:" in run.stdout
        assert "Missing test data" not in run.stdout, "an operation answered only 404"
    finally:
        server.close()
