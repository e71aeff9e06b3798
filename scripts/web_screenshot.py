#!/usr/bin/env python3
"""Screenshots of the web page for the README, taken mid-run: re-run it to refresh them.

Starts ``automl serve`` in a temporary folder, submits the bundled SegFormer skill (small model
and images so that a CPU shows several rungs in a few minutes) with ASHA, waits until the search
is mid-run (trials running, some promoted past the first rung, results on the curves, a best trial)
(checked in the page itself) and writes, with Debian's headless Chromium (selenium):

* ``docs/web-experiment.png``: the experiment page;
* ``docs/web-experiments.png``: the experiments list.

Then it cancels the experiment and stops the server. Usage::

    python3 scripts/web_screenshot.py [--out docs] [--timeout 900]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The bundled SegFormer trainer, made small (CPU): the search space stays the skill's default.
BODY = {"algo": "asha", "max_recommendations": 16, "max_epochs": 9, "reduction_factor": 3,
        "max_concurrent": 2, "seed": 7, "name": "segformer-asha",
        "overrides": {"model.backbone.type": "mit_nano", "dataset.segment.img_size": 32,
                      "dataset.segment.batch_size": 8, "dataset.segment.workers": 0}}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _call(url: str, token: str, method: str = "GET", body: dict | None = None) -> dict:
    request = urllib.request.Request(url, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        data=json.dumps(body).encode() if body is not None else None)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def _wait(what: str, condition, timeout: float, poll_s: float = 2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll_s)
    raise SystemExit(f"web_screenshot: gave up waiting for {what} after {timeout:.0f}s")


# Mid-run as the page shows it (checked in the page itself, so the picture cannot lag behind
# the condition): running trials beside ended ones, one promoted past the first rung, curves.
MID_RUN = """
const legend = (document.getElementById('curves-legend') || {}).innerText || '';
const promoted = document.querySelectorAll('#rung-table td:nth-child(3) div').length;
return (document.getElementById('state') || {}).innerText === 'RUNNING' && /running/.test(legend)
    && /stopped|completed/.test(legend) && promoted >= 1
    && document.querySelectorAll('#curves polyline.curve').length >= 5;
"""


def _ended(api: str, token: str, experiment_id: str) -> None:
    experiment = _call(f"{api}/experiments/{experiment_id}", token)
    if experiment["state"] in ("SUCCEEDED", "FAILED", "CANCELED"):
        raise SystemExit(f"web_screenshot: the experiment ended ({experiment['state']}) before "
                         f"it was mid-run; re-run with more trials")


def _browser():
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1360,1500", "--hide-scrollbars"):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(
        shutil.which("chromedriver") or "/usr/bin/chromedriver"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to reach mid-run")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="automl-web-"))
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
    port = _free_port()
    url, api = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/api/v1"
    log = open(folder / "serve.log", "w")  # noqa: SIM115
    server = subprocess.Popen([sys.executable, "-m", "automl.cli", "serve", "--root",
                               str(folder / "srv"), "--port", str(port), "--max-experiments", "1"],
                              stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    driver = None
    try:
        _wait("the server", lambda: server.poll() is None and _answers(f"{api}/health"), 180, 0.5)
        token = subprocess.run([sys.executable, "-m", "automl.cli", "token", "create", "alice",
                                "--root", str(folder / "srv")], capture_output=True, text=True,
                               env=env, check=True).stdout.strip()
        # An earlier, finished experiment for the list view.
        done = _call(f"{api}/experiments", token, "POST", {
            **BODY, "algo": "random", "max_recommendations": 2, "max_epochs": 1,
            "name": "segformer-smoke"})
        _wait("the first experiment", lambda: _call(f"{api}/experiments/{done['id']}", token)
              ["state"] == "SUCCEEDED", args.timeout)
        experiment = _call(f"{api}/experiments", token, "POST", BODY)
        print(f"submitted {experiment['id']}; waiting until it is mid-run", flush=True)
        driver = _browser()
        driver.get(url + "/")
        driver.execute_script("sessionStorage.setItem('automl-token', arguments[0])", token)
        args.out.mkdir(parents=True, exist_ok=True)
        driver.get(f"{url}/#/experiments/{experiment['id']}")

        def mid_run() -> bool:
            if driver.execute_script(MID_RUN):
                return True
            _ended(api, token, experiment["id"])
            return False

        _wait("mid-run", mid_run, args.timeout, 1.0)
        driver.save_screenshot(str(args.out / "web-experiment.png"))
        driver.get(f"{url}/#/")
        _wait("the list", lambda: driver.execute_script(
            "return document.querySelectorAll('#experiments tr[data-id]').length >= 2"), 30, 0.5)
        driver.save_screenshot(str(args.out / "web-experiments.png"))
        print(f"wrote {args.out / 'web-experiment.png'} and {args.out / 'web-experiments.png'}")
        try:
            _call(f"{api}/experiments/{experiment['id']}:cancel", token, "POST")
        except urllib.error.HTTPError as exc:  # 409: it ended meanwhile
            if exc.code != 409:
                raise
        return 0
    finally:
        if driver is not None:
            driver.quit()
        for sig in (signal.SIGTERM, signal.SIGKILL):  # the server, then what it left (Ray)
            try:
                os.killpg(server.pid, sig)
                server.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(folder, ignore_errors=True)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
