"""The API, route by route, on SQLite and on a real PostgreSQL (same tests, both stores).

The app runs in-process (Starlette's TestClient) with a queue that runs nothing
(``max_experiments=0``): these tests are about the contract (auth, ownership, states, validation,
pagination, TAO names, ``?after=N``), not about training. Live runs: test_service_live.py.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from automl.results.records import TrialRecord, write_history
from automl.service import auth
from automl.service.api import Config, create_app
from automl.service.runner import Runner
from automl.service.store import Experiment, Store, default_url
from tests.helpers.skills import make_fake_skill
from tests.service_fixtures import new_database, postgres_server  # noqa: F401 - fixture

ROUTES_WITH_ID = [
    ("GET", "/experiments/{id}"), ("DELETE", "/experiments/{id}"),
    ("POST", "/experiments/{id}:cancel"), ("POST", "/experiments/{id}:pause"),
    ("POST", "/experiments/{id}:resume"), ("GET", "/experiments/{id}/trials"),
    ("GET", "/experiments/{id}/trials/r1"), ("GET", "/experiments/{id}/trials/r1/log"),
    ("GET", "/experiments/{id}/log"), ("GET", "/experiments/{id}/best"),
    ("POST", "/experiments/{id}:handoff"), ("GET", "/experiments/{id}/report"),
    ("GET", "/experiments/{id}/analysis"), ("GET", "/experiments/{id}/trials/r1/details"),
]


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path: Path) -> Store:
    if request.param == "sqlite":
        url = default_url(tmp_path)
    else:
        url = new_database(request.getfixturevalue("postgres_server"))
    store = Store(url)
    store.migrate()
    yield store
    store.engine.dispose()


class Api:
    """The app on one store, with tokens for an admin and two users."""

    def __init__(self, store: Store, root: Path) -> None:
        self.store, self.root = store, root
        self.skill = make_fake_skill(root / "fake-skill")
        self.runner = Runner(store, root / "srv", max_experiments=0, ray_address=None)
        self.runner.start()
        config = Config(root=root / "srv", allowed_roots=[root / "srv", root / "data"],
                        skills={"fake-skill": self.skill.resolve()})
        self.http = TestClient(create_app(store, self.runner, config))
        self.tokens = {"admin": auth.issue(store, "admin", admin=True),
                       "alice": auth.issue(store, "alice"), "bob": auth.issue(store, "bob")}

    def call(self, who: str | None, method: str, path: str, **kw):
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return self.http.request(method, f"/api/v1{path}", headers=headers, **kw)

    def submit(self, who: str = "alice", **body):
        response = self.call(who, "POST", "/experiments",
                             json={"skill": "fake-skill", "max_epochs": 2, **body})
        assert response.status_code == 201, response.text
        return response.json()

    def set_state(self, experiment_id: str, state: str, pid: int | None = None) -> None:
        with self.store.session() as session:
            row = session.get(Experiment, experiment_id)
            row.state, row.pid = state, pid


@pytest.fixture
def api(store: Store, tmp_path: Path) -> Api:
    api = Api(store, tmp_path)
    yield api
    api.runner.stop()


def test_every_route_needs_a_valid_token(api: Api):
    experiment = api.submit()
    routes = [("GET", "/experiments"), ("POST", "/experiments"), ("GET", "/skills"),
              ("GET", "/skills/fake-skill/space"), ("GET", "/me"),
              *[(m, p.format(id=experiment["id"])) for m, p in ROUTES_WITH_ID]]
    for method, path in routes:
        assert api.call(None, method, path).status_code == 401, path
        bad = api.http.request(method, f"/api/v1{path}", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401, path
    assert api.call(None, "GET", "/health").status_code == 200
    token_id = auth.list_tokens(api.store)[1]["id"]  # alice's
    auth.revoke(api.store, token_id)
    assert api.call("alice", "GET", "/experiments").status_code == 401
    assert api.call("bob", "GET", "/me").json() == {"name": "bob", "is_admin": False}


def test_users_see_and_act_on_their_own_experiments_only(api: Api):
    mine = api.submit("alice", name="alice-exp")
    theirs = api.submit("bob", name="bob-exp")
    for method, path in ROUTES_WITH_ID:
        response = api.call("alice", method, path.format(id=theirs["id"]),
                            json={"action": "evaluate"} if path.endswith("handoff") else None)
        assert response.status_code == 403, (method, path, response.text)
    names = [e["name"] for e in api.call("alice", "GET", "/experiments").json()["experiments"]]
    assert names == ["alice-exp"]
    assert api.call("alice", "GET", "/experiments?owner=bob").status_code == 403
    everyone = api.call("admin", "GET", "/experiments").json()["experiments"]
    assert {e["owner"] for e in everyone} == {"alice", "bob"}
    bobs = api.call("admin", "GET", "/experiments?owner=bob").json()["experiments"]
    assert [e["id"] for e in bobs] == [theirs["id"]]
    assert api.call("admin", "POST", f"/experiments/{mine['id']}:pause").status_code == 200


def test_unknown_experiment_trial_and_skill_are_404(api: Api):
    for method, path in ROUTES_WITH_ID:
        response = api.call("alice", method, path.format(id="no-such-id"),
                            json={"action": "evaluate"} if path.endswith("handoff") else None)
        assert response.status_code == 404, (method, path)
    experiment = api.submit()
    assert api.call("alice", "GET", f"/experiments/{experiment['id']}/trials/nope").status_code == 404
    assert api.call("alice", "GET", f"/experiments/{experiment['id']}/best").status_code == 404
    assert api.call("alice", "GET", "/skills/nope/space").status_code == 404


def test_bad_bodies_and_queries_are_422_with_the_field(api: Api, tmp_path: Path):
    cases = [
        ({"max_recommendations": 0}, "max_recommendations"),
        ({"max_epoch": 3}, "max_epoch"),  # unknown key
        ({"algo": "nope"}, "algo"),
        ({"skill": "nope"}, "skill"),
        ({"skill_dir": "/etc"}, "skill_dir"),  # outside the allowed roots
        ({"root_dir": str(tmp_path / "elsewhere")}, "root_dir"),
        ({"automl_algorithm": "random", "algo": "bayesian"}, "automl_algorithm"),
        ({"override_automl_disabled_params": True}, "override_automl_disabled_params"),
        ({"ranges": ["hp.nope=0:1"]}, "body"),  # not a parameter of the skill
        ({"space": {"parameters": {"hp.x": {"min": 0}}}}, "body"),  # TAO-ignored key: refused
    ]
    for extra, field in cases:
        body = {"skill": "fake-skill", **extra}
        response = api.call("alice", "POST", "/experiments", json=body)
        assert response.status_code == 422, (extra, response.text)
        assert field in json.dumps(response.json()["detail"]), (extra, response.text)
    for query in ("size=0", "skip=-1", "sort=sideways", "state=ASLEEP"):
        assert api.call("alice", "GET", f"/experiments?{query}").status_code == 422, query
    experiment = api.submit()
    assert api.call("alice", "GET", f"/experiments/{experiment['id']}/trials?after=-1"
                    ).status_code == 422
    assert api.call("alice", "POST", f"/experiments/{experiment['id']}:handoff",
                    json={"action": 3, "surprise": 1}).status_code == 422


def test_tao_automl_settings_names_are_accepted(api: Api):
    experiment = api.submit(automl_settings={
        "automl_algorithm": "hyperband", "automl_max_recommendations": 7,
        "automl_reduction_factor": 2, "automl_max_concurrent": 1,
        "automl_hyperparameters": ["hp.x", "hp.y"],
        "automl_range_override": [{"parameter": "hp.x", "valid_min": 0.1, "valid_max": 0.2}],
        "metric": "val_loss"}, automl_max_epochs=4, max_epochs=None, direction="min")
    s = experiment["settings"]
    assert (s["algo"], s["max_recommendations"], s["reduction_factor"], s["max_concurrent"],
            s["max_epochs"], s["metric"], s["direction"]) == ("hyperband", 7, 2, 1, 4, "val_loss", "min")
    with api.store.session() as session:
        space = session.get(Experiment, experiment["id"]).space
    assert space == {"only": ["hp.x", "hp.y"],
                     "parameters": {"hp.x": {"valid_min": 0.1, "valid_max": 0.2}}}
    assert experiment["progress"]["trials_total"] == 7


def test_state_transitions_and_409s(api: Api):
    e = api.submit()["id"]

    def act(verb: str) -> int:
        return api.call("alice", "POST", f"/experiments/{e}:{verb}").status_code

    assert act("resume") == 409  # PENDING
    assert api.call("alice", "DELETE", f"/experiments/{e}").status_code == 409
    assert act("pause") == 200 and api.call("alice", "GET", f"/experiments/{e}").json()["state"] == "PAUSED"
    assert act("pause") == 409
    assert act("resume") == 200 and api.call("alice", "GET", f"/experiments/{e}").json()["state"] == "RESUMING"
    api.set_state(e, "RUNNING", pid=12345)
    assert act("resume") == 409
    assert act("cancel") == 200 and api.call("alice", "GET", f"/experiments/{e}").json()["state"] == "CANCELING"
    assert act("pause") == 409
    api.set_state(e, "CANCELED")
    for verb in ("cancel", "pause", "resume"):
        assert act(verb) == 409, verb
    assert api.call("alice", "POST", f"/experiments/{e}:handoff",
                    json={"action": "evaluate"}).status_code == 409  # no best trial
    assert api.call("alice", "DELETE", f"/experiments/{e}").status_code == 204
    assert api.call("alice", "GET", f"/experiments/{e}").status_code == 404
    queued = api.submit()["id"]
    assert api.call("alice", "POST", f"/experiments/{queued}:cancel").json()["state"] == "CANCELED"


def test_list_is_paginated_sorted_and_filtered(api: Api):
    ids = [api.submit(name=f"exp-{i}")["id"] for i in range(5)]
    api.call("alice", "POST", f"/experiments/{ids[0]}:pause")
    page = api.call("alice", "GET", "/experiments?skip=2&size=2&sort=date-ascending").json()
    assert [e["id"] for e in page["experiments"]] == ids[2:4]
    assert page["pagination_info"] == {"total_records": 5, "total_pages": 3, "page_size": 2,
                                       "page_index": 1}
    names = [e["name"] for e in api.call("alice", "GET", "/experiments?sort=name-descending"
                                         ).json()["experiments"]]
    assert names == sorted(names, reverse=True)
    paused = api.call("alice", "GET", "/experiments?state=PAUSED").json()["experiments"]
    assert [e["id"] for e in paused] == [ids[0]]


def test_trials_are_polled_with_after(api: Api):
    e = api.submit()
    workspace = Path(e["workspace"])
    workspace.mkdir(parents=True)
    records = [TrialRecord(rec_id=f"r{i}", params={"hp.x": i / 10}, index=i, status="running",
                           budget=2, folder=str(workspace / "trials" / f"r{i}")) for i in (1, 2)]
    records[0].add_result(1, {"val_miou": 0.5})

    def sync(bump: float) -> None:
        write_history(workspace / "history.json", {"budget": 2}, records)
        import os
        os.utime(workspace / "history.json", (time.time() + bump, time.time() + bump))
        with api.store.session() as session:
            api.runner._sync(session.get(Experiment, e["id"]), session)

    sync(0)
    first = api.call("alice", "GET", f"/experiments/{e['id']}/trials").json()
    assert [t["rec_id"] for t in first["trials"]] == ["r1", "r2"]
    assert first["trials"][0]["score"] == 0.5 and first["last_version"] == 2
    assert api.call("alice", "GET", f"/experiments/{e['id']}/trials?after=2").json()["trials"] == []
    records[1].add_result(1, {"val_miou": 0.7})
    records[1].status = "completed"
    sync(5)
    changed = api.call("alice", "GET", f"/experiments/{e['id']}/trials?after=2").json()
    assert [t["rec_id"] for t in changed["trials"]] == ["r2"] and changed["last_version"] == 3
    got = api.call("alice", "GET", f"/experiments/{e['id']}").json()
    assert got["progress"]["best"]["rec_id"] == "r2" and got["trials_version"] == 3
    # A trainer's failure message may echo a secret as key=value: the API hides its value.
    records[0].status, records[0].failure_class = "failed", "spec"
    records[0].failure_message = "Parameter validation error: encryption_key=tlt_encode is wrong"
    sync(10)
    failed = api.call("alice", "GET", f"/experiments/{e['id']}/trials/r1").json()
    assert "tlt_encode" not in failed["failure_message"] and "encryption_key" in failed["failure_message"]
    trial = api.call("alice", "GET", f"/experiments/{e['id']}/trials/r2").json()
    assert trial["status"] == "completed" and trial["results"] == [{"epoch": 1, "val_miou": 0.7}]
    log = workspace / "trials" / "r2" / "train.log"
    log.parent.mkdir(parents=True)
    log.write_text("".join(f"line {i}\n" for i in range(10)))
    tail = api.call("alice", "GET", f"/experiments/{e['id']}/trials/r2/log?tail_lines=3")
    assert tail.text == "line 7\nline 8\nline 9\n"


def test_skills_and_their_space(api: Api):
    skills = api.call("alice", "GET", "/skills").json()
    assert [s["name"] for s in skills] == ["fake-skill"]
    rows = api.call("alice", "GET", "/skills/fake-skill/space").json()
    assert {r["name"] for r in rows} == {"hp.x", "hp.y", "hp.c"}


def test_migrations_create_every_table(store: Store):
    from sqlalchemy import inspect

    assert {"users", "tokens", "experiments", "trials", "alembic_version"} <= \
        set(inspect(store.engine).get_table_names())
    store.migrate()  # idempotent
    with store.session() as session:
        assert session.scalars(select(Experiment)).all() == []


def _app_with(api: Api, skills: dict[str, Path]) -> TestClient:
    """The same store and tokens, serving ``skills`` with the CLI's embedded defaults."""
    from automl.study import EMBEDDED_DEFAULTS

    config = Config(root=api.root / "srv", allowed_roots=[api.root / "srv", api.root / "data"],
                    skills=skills, defaults=EMBEDDED_DEFAULTS)
    return TestClient(create_app(api.store, api.runner, config))


def _skill_with_inputs(folder: Path) -> Path:
    """The fake skill, its train action declaring a required folder and an optional file."""
    import yaml

    make_fake_skill(folder)
    info_path = folder / "references" / "skill_info.yaml"
    info = yaml.safe_load(info_path.read_text())
    info["name"] = "inputs-skill"
    info["actions"]["train"]["inputs"] = {"dataset.train_dir": {"type": "folder"},
                                          "dataset.labels": {"type": "file", "optional": True}}
    info_path.write_text(yaml.safe_dump(info))
    return folder.resolve()


def test_skills_name_their_metric_direction_and_data_inputs(api: Api):
    from automl.skill.folder import bundled_skill_dir

    http = _app_with(api, {"inputs-skill": _skill_with_inputs(api.root / "inputs-skill"),
                           "segformer-trainer": bundled_skill_dir().resolve()})
    headers = {"Authorization": f"Bearer {api.tokens['alice']}"}
    skills = {s["name"]: s for s in http.get("/api/v1/skills", headers=headers).json()}
    mine, bundled = skills["inputs-skill"], skills["segformer-trainer"]
    assert (mine["metric"], mine["direction"], mine["bundled"]) == ("val_miou", "max", False)
    assert sorted(mine["inputs"], key=lambda i: i["key"]) == [
        {"key": "dataset.labels", "kind": "file", "optional": True},
        {"key": "dataset.train_dir", "kind": "folder", "optional": False}]
    assert bundled["bundled"] is True
    assert {"key": "dataset.segment.root_dir", "kind": "folder", "optional": False} \
        in bundled["inputs"]


def test_algorithms_come_from_the_registry(api: Api):
    from automl.algorithms import ALGORITHMS, DEFAULT

    listed = api.call("alice", "GET", "/algorithms").json()
    assert [a["name"] for a in listed] == list(ALGORITHMS)
    assert "async_bohb" in [a["name"] for a in listed]
    assert [a["name"] for a in listed if a["default"]] == [DEFAULT]
    assert {a["name"] for a in listed if a["population"]} == {"pbt", "pb2"}


def test_the_form_default_the_bundled_skill_with_empty_fields_is_the_embedded_default(api: Api):
    from automl.study import EMBEDDED_DEFAULTS
    from automl.skill.folder import bundled_skill_dir

    http = _app_with(api, {"segformer-trainer": bundled_skill_dir().resolve()})
    headers = {"Authorization": f"Bearer {api.tokens['alice']}"}
    # What the page sends with every field empty: the skill it lists first, and an algorithm.
    response = http.post("/api/v1/experiments", headers=headers,
                         json={"skill": "segformer-trainer", "algo": "bayesian"})
    assert response.status_code == 201, response.text
    out = response.json()
    assert out["name"] == EMBEDDED_DEFAULTS["name"]
    assert out["settings"]["skill_dir"] is None  # the engine then generates the dataset
    assert out["settings"]["max_recommendations"] == EMBEDDED_DEFAULTS["max_recommendations"]
    assert (out["metric"], out["direction"]) == ("val_miou", "max")
    # A dataset given in the field is checked at the door, named as the form names it.
    response = http.post("/api/v1/experiments", headers=headers, json={
        "skill": "segformer-trainer", "data": {"dataset.segment.root_dir": str(api.root / "srv" / "nope")}})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "data.dataset.segment.root_dir"]
    assert "not found" in error["msg"] and "--" not in error["msg"], error["msg"]


def test_data_inputs_are_checked_and_required_ones_named(api: Api):
    http = _app_with(api, {"inputs-skill": _skill_with_inputs(api.root / "inputs-skill")})
    headers = {"Authorization": f"Bearer {api.tokens['alice']}"}

    def post(**body):
        return http.post("/api/v1/experiments", headers=headers,
                         json={"skill": "inputs-skill", "max_epochs": 2, **body})

    missing = post()
    assert missing.status_code == 422
    [error] = missing.json()["detail"]
    assert error["loc"] == ["body", "data.dataset.train_dir"]
    assert "required" in error["msg"] and "--" not in error["msg"], error["msg"]
    (api.root / "data" / "train").mkdir(parents=True)
    (api.root / "data" / "labels.txt").write_text("a\n")
    unknown = post(data={"dataset.nope": str(api.root / "data" / "train")})
    assert unknown.status_code == 422
    [error] = unknown.json()["detail"]
    assert error["loc"] == ["body", "data.dataset.nope"]
    assert "dataset.train_dir" in error["msg"] and "--data" not in error["msg"], error["msg"]
    wrong_kind = post(data={"dataset.train_dir": str(api.root / "data" / "labels.txt")})
    assert wrong_kind.status_code == 422 and "takes a folder" in wrong_kind.text
    ok = post(data={"dataset.train_dir": str(api.root / "data" / "train"),
                    "dataset.labels": str(api.root / "data" / "labels.txt")})
    assert ok.status_code == 201, ok.text
    assert ok.json()["settings"]["data"]["dataset.train_dir"] == str(api.root / "data" / "train")


def test_a_pasted_study_with_server_owned_keys_is_accepted_and_they_are_listed(api: Api):
    from automl.skill.folder import bundled_skill_dir

    http = _app_with(api, {"segformer-trainer": bundled_skill_dir().resolve()})
    headers = {"Authorization": f"Bearer {api.tokens['alice']}"}
    quickstart = (Path(__file__).resolve().parents[2] / "studies" / "quickstart.yaml").read_text()
    study = quickstart + "workspace_root: /elsewhere\ntracking_uri: file:///x\naddress: auto\n"
    response = http.post("/api/v1/experiments:study", headers=headers, json={"study": study})
    assert response.status_code == 201, response.text
    out = response.json()
    assert out["ignored"] == ["address", "progress", "tracking_uri", "workspace_root"]
    assert out["name"] == "segformer-quickstart" and out["algorithm"] == "bayesian"
    assert out["workspace"].startswith(str(api.root / "srv"))  # the server's, not the study's
    plain = http.post("/api/v1/experiments:study", headers=headers, json={"study": "algo: random"})
    assert plain.status_code == 201 and plain.json()["ignored"] == []


def test_metric_errors_name_the_field_not_the_flag(api: Api):
    response = api.call("alice", "POST", "/experiments", json={"skill": "fake-skill",
                                                              "metric": "val_nope"})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "metric"]
    assert error["msg"].startswith("metric 'val_nope'"), error["msg"]


def test_analysis_and_trial_details_feed_the_views(api: Api):
    """GET .../analysis: fANOVA importance over the trials so far (none, with a reason, before
    two are scored), each parameter's axis, best_rec.json once written; GET .../details: a
    trial's spec (secrets hidden), status lines, log tail and checkpoints; the report: one
    self-contained HTML file."""
    e = api.submit()
    workspace = Path(e["workspace"])
    path = f"/experiments/{e['id']}"
    empty = api.call("alice", "GET", f"{path}/analysis").json()
    assert empty["importances"] == {} and "once trials have results" in empty["importance_note"]
    workspace.mkdir(parents=True)
    (workspace / "experiment.yaml").write_text(json.dumps(
        {"experiment_id": e["id"], "algo": "random", "metric": "val_miou", "direction": "max"}))
    records = [TrialRecord(rec_id=f"r{i}", params={"hp.x": i / 10, "hp.c": "ab"[i % 2]}, index=i,
                           status="completed", budget=2) for i in range(1, 7)]
    for r in records:
        r.add_result(1, {"val_miou": 0.1})
        r.add_result(2, {"val_miou": 0.2 + r.params["hp.x"]})
    write_history(workspace / "history.json", {"budget": 2}, records[:1])
    one = api.call("alice", "GET", f"{path}/analysis").json()
    assert one["importances"] == {} and "at least 2 trials" in one["importance_note"]
    write_history(workspace / "history.json", {"budget": 2}, records)  # a new history: recomputed
    analysis = api.call("alice", "GET", f"{path}/analysis").json()
    assert set(analysis["importances"]) == {"hp.x", "hp.c"}
    assert abs(sum(analysis["importances"].values()) - 1) < 1e-6
    assert max(analysis["importances"], key=analysis["importances"].get) == "hp.x"
    assert {a["name"]: a["kind"] for a in analysis["params"]} == {"hp.x": "float", "hp.c": "categorical"}
    assert analysis["best_rec"] is None and "not written yet" in analysis["best_note"]
    assert api.call("bob", "GET", f"{path}/analysis").status_code == 403

    folder = workspace / "trials" / "r1"
    (folder / "results" / "train").mkdir(parents=True)
    (folder / "spec.yaml").write_text("train:\n  num_epochs: 2\n  api_key: hunter2-secret\n")
    (folder / "results" / "train" / "status.json").write_text("".join(json.dumps(
        {"status": "RUNNING", "epoch": ep, "max_epoch": 2, "kpi": {"val_miou": 0.1 * ep}}) + "\n"
        for ep in (0, 1)))
    (folder / "results" / "train" / "model_epoch_000_step_00010.pth").write_bytes(b"x" * 10)
    (folder / "train.log").write_text("".join(f"line {i} token=hunter2-secret\n" for i in range(100)))
    with api.store.session() as session:
        api.runner._sync(session.get(Experiment, e["id"]), session, force=True)
    details = api.call("alice", "GET", f"{path}/trials/r1/details?tail_lines=5").json()
    assert "num_epochs: 2" in details["spec"] and "hunter2" not in json.dumps(details)
    assert len(details["log_tail"]) == 5 and details["log_tail"][-1].startswith("line 99")
    assert len(details["status_lines"]) == 2 and '"epoch": 1' in details["status_lines"][-1]
    assert details["checkpoints"] == [{"name": "model_epoch_000_step_00010.pth", "epochs": 1,
                                       "step": 10, "bytes": 10, "finished_epoch": True}]
    assert api.call("alice", "GET", f"{path}/trials/nope/details").status_code == 404
    assert api.call("alice", "GET", f"{path}/trials/r1/details?tail_lines=-1").status_code == 422

    report = api.call("alice", "GET", f"{path}/report")
    assert report.status_code == 200 and "text/html" in report.headers["content-type"]
    assert 'id="automl-data"' in report.text and "class Dashboard" in report.text
    assert api.call("alice", "GET", f"{path}/report/history.png").status_code == 404
