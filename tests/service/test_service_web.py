"""The web page at ``GET /`` of a live ``automl serve`` (fake trainer), driven in Debian's headless
Chromium through chromium-driver (selenium): sign in, submit, watch trials and a learning curve
update, pause, resume, cancel, another user's experiment (403); the analysis views (views.js)
render with data and update without reload, brushing the parallel coordinates filters the trial
table, a click opens a trial's page, trials compare side by side, and the single-file report
opens from disk with the network off. Every test asserts on the DOM; one checks a screenshot is
not blank. One server and one browser serve the
whole module (starting them is most of the cost)."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from automl.client import Client
from tests.helpers.skills import make_fake_skill
from tests.helpers.processes import wait_until
from tests.service_fixtures import ENV, LiveServer, admin_token

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
WEB = Path(__file__).resolve().parents[2] / "src" / "automl" / "service" / "web"


def _token(server: LiveServer, user: str) -> str:
    out = subprocess.run([sys.executable, "-m", "automl.cli", "token", "create", user, "--root",
                          str(server.root / "srv")], capture_output=True, text=True, env=ENV,
                         check=True)
    return out.stdout.strip()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("web")
    make_fake_skill(root / "fake-skill")
    live = LiveServer(root, "--skill-dir", str(root / "fake-skill"), "--allow-root", str(root),
                      "--num-cpus", "2", "--max-experiments", "2",
                      "--mlflow-ui", "http://mlflow.example:5001/")
    try:
        admin_token(live.start())
        live.alice, live.bob = _token(live, "alice"), _token(live, "bob")
        yield live
    finally:
        live.close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM or not DRIVER:
        pytest.skip("Chromium and its driver are not installed (apt-get install chromium "
                    "chromium-driver; .ci/run does it): the web page tests need a real browser")
    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium (test extra)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(DRIVER))
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def _css(driver, selector: str):
    return driver.find_elements("css selector", selector)


def _text(driver, selector: str) -> str:
    """The element's rendered text, read in one script call: the page redraws while it polls,
    so an element found in one call may be gone by the next."""
    return driver.execute_script(
        "const el = document.querySelector(arguments[0]); return el ? el.innerText : ''", selector)


def _wait_text(driver, selector: str, pattern: str, timeout: float = 60) -> str:
    wait_until(lambda: re.search(pattern, _text(driver, selector)), timeout=timeout,
               what=f"{selector} to read {pattern!r} (reads {_text(driver, selector)!r})")
    return _text(driver, selector)


def _sign_in(driver, server: LiveServer, token: str) -> None:
    driver.get(server.url + "/")
    driver.execute_script("sessionStorage.clear()")
    driver.get(server.url + "/#/")
    wait_until(lambda: _css(driver, "#token"), timeout=20, what="the sign-in form")
    _css(driver, "#token")[0].send_keys(token)
    _css(driver, "#login button")[0].click()
    _wait_text(driver, "#who", "alice|bob", timeout=20)


def test_page_is_self_contained(server):
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for name in ("app.js", "style.css"):
        assert httpx.get(f"{server.url}/web/{name}").status_code == 200
    # Offline: nothing is loaded from another host (no CDN, no font, no image).
    for path in WEB.iterdir():
        text = path.read_text()
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|"""
                             r"""import\s.*from\s+["']https?:""", text), path.name


def test_sign_in_rejects_a_bad_token_then_lists_experiments(server, browser):
    browser.get(server.url + "/")
    browser.execute_script("sessionStorage.clear()")
    browser.refresh()
    wait_until(lambda: _css(browser, "#token"), timeout=20, what="the sign-in form")
    _css(browser, "#token")[0].send_keys("not-a-token")
    _css(browser, "#login button")[0].click()
    _wait_text(browser, "#login-error", "not valid")
    _sign_in(browser, server, server.alice)
    assert _text(browser, "#who") == "alice"
    assert _css(browser, "table#experiments") and _css(browser, "#submit")
    assert browser.execute_script("return sessionStorage.getItem('automl-token')") == server.alice


def test_submit_watch_pause_resume_cancel(server, browser, tmp_path):
    _sign_in(browser, server, server.alice)
    wait_until(lambda: _css(browser, "#f-skill option"), timeout=20, what="the skills")
    study = browser.find_element("id", "study")
    study.send_keys("skill: fake-skill\nalgo: random\nmax_recommendations: 3\nmax_epochs: 6\n"
                    "max_concurrent: 2\nseed: 3\noverrides:\n  fake.epoch_s: 1.5\n")
    browser.find_element("id", "submit-study").click()
    wait_until(lambda: "#/experiments/" in browser.current_url, timeout=20, what="the new page")
    experiment_id = browser.current_url.rsplit("/", 1)[1]

    # Trials appear in the table and a learning curve grows, without reloading the page.
    wait_until(lambda: len(_css(browser, "#trials tr[data-rec]")) >= 2, timeout=120,
               what="two trial rows")
    points = lambda: browser.execute_script(  # noqa: E731
        "return Math.max(0, ...[...document.querySelectorAll('#curves polyline.curve')]"
        ".map(c => Number(c.dataset.points)))")
    wait_until(lambda: points() >= 1, timeout=90, what="a first point on a curve")
    first = points()
    wait_until(lambda: points() > first, timeout=90, what="the curve to grow")
    assert _css(browser, "#curves line.rung")  # the budget is marked
    # The other views fill in as trials run, still without a reload.
    wait_until(lambda: len(_css(browser, "#timeline rect.bar")) >= 2, timeout=60,
               what="two trials on the timeline")
    wait_until(lambda: _css(browser, "#history circle.mark"), timeout=90, what="a point in the history")
    assert "running" in _text(browser, "#progress") and "started" in _text(browser, "#times")
    assert browser.execute_script("return document.getElementById('handoff').disabled")  # not ended
    assert "running" in _text(browser, "#curves-legend")
    assert "failed" not in _text(browser, "#curves-legend")  # only outcomes that occurred
    row = _text(browser, "#trials")
    assert "running" in row and "/6" in row
    _wait_text(browser, "#best", "checkpoint", timeout=60)

    png = browser.get_screenshot_as_png()
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    colors = image.getcolors(maxcolors=1_000_000) or []
    assert image.size[0] >= 800 and len(colors) > 50, f"blank screenshot: {len(colors)} colours"
    (tmp_path / "experiment.png").write_bytes(png)

    browser.find_element("id", "pause").click()
    _wait_text(browser, "#state", "^PAUSED$", timeout=120)
    assert "Resume" in _text(browser, "#paused-note") and "automl" not in _text(browser, "#paused-note")
    assert browser.find_element("id", "resume").is_enabled()
    assert not browser.find_element("id", "pause").is_enabled()
    browser.find_element("id", "resume").click()
    _wait_text(browser, "#state", "^(RESUMING|RUNNING)$", timeout=30)
    _wait_text(browser, "#state", "^RUNNING$", timeout=120)
    browser.find_element("id", "cancel").click()
    _wait_text(browser, "#state", "^CANCELED$", timeout=120)
    assert not browser.find_element("id", "cancel").is_enabled()

    # The list shows it with its owner and progress; the filter hides what does not match.
    browser.get(server.url + "/#/")
    wait_until(lambda: _css(browser, f'#experiments tr[data-id="{experiment_id}"]'), timeout=20,
               what="the experiment in the list")
    listed = _text(browser, f'#experiments tr[data-id="{experiment_id}"]')
    assert "CANCELED" in listed and "alice" in listed and "random" in listed
    browser.find_element("id", "filter").send_keys("no-such-experiment")
    wait_until(lambda: not _css(browser, "#experiments tr[data-id]"), timeout=5, what="filtering")


def test_finished_experiment_best_trial_and_report(server, browser):
    _sign_in(browser, server, server.alice)
    wait_until(lambda: _css(browser, "#f-skill option"), timeout=20, what="the skills")
    browser.find_element("css selector", "#f-skill option[value=fake-skill]").click()
    browser.find_element("css selector", "#f-algo option[value=random]").click()
    browser.find_element("id", "f-max-recommendations").send_keys("2")
    browser.find_element("id", "f-max-epochs").send_keys("2")
    browser.find_element("id", "f-max-concurrent").send_keys("2")
    browser.find_element("id", "f-overrides").send_keys("hp.y=3")
    browser.find_element("id", "submit-fields").click()
    wait_until(lambda: "#/experiments/" in browser.current_url, timeout=20,
               what=f"the new page ({_text(browser, '#submit-error')})")
    experiment_id = browser.current_url.rsplit("/", 1)[1]
    wait_until(lambda: _text(browser, "#state") == "SUCCEEDED", timeout=180,
               what=f"success ({_text(browser, '#state')} {_text(browser, '#experiment-error')})")
    wait_until(lambda: len(_css(browser, "#trials tr[data-rec]")) == 2, timeout=10, what="2 trials")
    assert browser.execute_script("return [...document.querySelectorAll('#trials td.status')]"
                                  ".map(td => td.innerText.trim())") == ["completed"] * 2
    best = _text(browser, "#best-table")
    assert re.search(r"model_epoch_001_step_\d+\.pth \(TAO epoch 1\)", best), best
    params = browser.execute_script("return document.getElementById('best').textContent")
    assert "hp.y3" in params  # the override, pinned (folded below the 5 that matter most)
    assert _css(browser, "#trials tr.best")
    assert "completed (2)" in _text(browser, "#curves-legend")
    href = browser.execute_script("return document.getElementById('mlflow-link').href")
    assert re.fullmatch(r"http://mlflow\.example:5001/#/experiments/\d+/runs\?workflowType=machine_learning",
                        href), href

    assert _text(browser, "#best-title") == "Best trial"  # not "so far": it ended
    assert browser.find_element("id", "handoff").is_enabled()
    assert browser.find_element("id", "report").is_enabled()
    server.finished = experiment_id


def _drag(driver, element, start: float, end: float) -> None:
    """Drag vertically on ``element`` from ``start`` to ``end`` (fractions of its height, from
    the top), as a user brushes an axis."""
    from selenium.webdriver import ActionChains

    height = element.rect["height"]
    ActionChains(driver).move_to_element_with_offset(element, 0, int(height * (start - 0.5))) \
        .click_and_hold().move_by_offset(0, int(height * (end - start))).release().perform()


def test_views_brush_compare_and_trial_page(server, browser):
    """The finished experiment's analysis views: each renders with its data; brushing the
    metric's axis of the parallel coordinates filters the trial table (and greys the rest), a
    click on a trial opens its page (curve, status lines, log, checkpoints, spec), two ticked
    trials are compared side by side."""
    if not getattr(server, "finished", None):
        pytest.skip("needs the finished experiment of the test above")
    _sign_in(browser, server, server.alice)
    browser.get(f"{server.url}/#/experiments/{server.finished}")
    wait_until(lambda: len(_css(browser, "#parallel polyline.pc-line")) == 2, timeout=30,
               what="two lines in the parallel coordinates")
    assert len(_css(browser, "#history circle.mark")) == 2
    assert len(_css(browser, "#slices svg.slice")) >= 2  # hp.x, hp.c (hp.y is pinned at 3)
    assert len(_css(browser, "#timeline rect.bar")) == 2
    wait_until(lambda: _css(browser, "#importance tr[data-param]") or _css(browser, "#importance-empty"),
               timeout=30, what="the importance view")
    assert _css(browser, "#cost") and _css(browser, "#no-failures")

    # Brush the top of the metric's axis (the last one): only the better trial stays.
    time.sleep(2.5)  # the page's last polls of an ended experiment: nothing redraws after them
    grips = _css(browser, "#parallel rect.brush-grip")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", grips[-1])
    _drag(browser, grips[-1], 0.01, 0.3)
    wait_until(lambda: len(_css(browser, "#trials tr[data-rec]")) == 1, timeout=10,
               what=f"the brushed table ({_text(browser, '#brush-status')})")
    assert len(_css(browser, "#parallel polyline.filtered")) == 1
    assert "1 of 2 trials" in _text(browser, "#brush-status")
    kept = _css(browser, "#trials tr[data-rec]")[0].get_attribute("data-rec")
    assert kept == browser.execute_script(
        "return document.querySelector('#trials tr.best').dataset.rec")
    browser.find_element("id", "clear-brush").click()
    wait_until(lambda: len(_css(browser, "#trials tr[data-rec]")) == 2, timeout=10, what="unfiltered")

    for i in range(2):  # each tick redraws the table: find the box anew
        _css(browser, "#trials input.pick")[i].click()
    wait_until(lambda: _css(browser, "#compare-table"), timeout=10, what="the comparison")
    assert len(_css(browser, "#compare-curves polyline.curve")) == 2
    assert len(_css(browser, "#compare-table thead th")) == 3

    _css(browser, f'#trials tr[data-rec="{kept}"] a.trial-link')[0].click()
    wait_until(lambda: _css(browser, "#trial-page"), timeout=20, what="the trial page")
    assert browser.current_url.endswith(f"/trials/{kept}")
    wait_until(lambda: _css(browser, "#trial-status") and _css(browser, "#trial-checkpoints"),
               timeout=20, what="the trial's status lines and checkpoints")
    assert "completed" in _text(browser, "#trial-facts")
    assert _css(browser, "#trial-curve polyline.curve") and "hp.x" in _text(browser, "#trial-params")
    browser.find_element("id", "back").click()
    wait_until(lambda: _css(browser, "#parallel"), timeout=20, what="back to the experiment")


def test_report_opens_from_disk_with_the_network_off(server, browser, tmp_path):
    """The single-file report draws the same views from disk, offline: no server, no network
    (Chromium's network emulated offline), a trial's page opens from a click."""
    if not getattr(server, "finished", None):
        pytest.skip("needs the finished experiment of the test above")
    html = httpx.get(f"{server.url}/api/v1/experiments/{server.finished}/report",
                     headers={"Authorization": f"Bearer {server.alice}"}, timeout=60)
    assert html.status_code == 200
    path = tmp_path / "report.html"
    path.write_text(html.text, encoding="utf-8")
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0})
    try:
        browser.get_log("browser")  # drained: what earlier pages logged is not the report's
        browser.get(path.as_uri())
        wait_until(lambda: _css(browser, "#curves polyline.curve"), timeout=20, what="the report's curves")
        assert len(_css(browser, "#curves polyline.curve")) == 2
        assert len(_css(browser, "#parallel polyline.pc-line")) == 2
        assert _text(browser, "#state") == "SUCCEEDED" and "automl report" in browser.title
        assert "offline" in _text(browser, "#report-stamp")
        _css(browser, "#trials a.trial-link")[0].click()
        wait_until(lambda: _css(browser, "#trial-page"), timeout=10, what="a trial page in the report")
        assert _css(browser, "#trial-status") and _css(browser, "#trial-spec")
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        browser.execute_cdp_cmd("Network.emulateNetworkConditions", {
            "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})


def test_pareto_front_on_the_page_and_in_the_report(server, browser, tmp_path):
    """Two objectives: the page draws the front (blue members, grey dominated trials), and so
    does the report from disk. The fake trainer's val_loss is 1 - val_miou, so maximizing both
    conflicts exactly: every trial that reaches the budget is on the front."""
    experiment = Client(server.url, server.alice).submit({
        "skill": "fake-skill", "algo": "bayesian", "max_recommendations": 3, "max_epochs": 1,
        "objectives": [{"metric": "val_miou", "direction": "max"},
                       {"metric": "val_loss", "direction": "max"}]})
    _sign_in(browser, server, server.alice)
    browser.get(f"{server.url}/#/experiments/{experiment['id']}")
    wait_until(lambda: _text(browser, "#state") == "SUCCEEDED", timeout=180,
               what=f"success ({_text(browser, '#state')} {_text(browser, '#experiment-error')})")
    wait_until(lambda: len(_css(browser, "#pareto circle.front")) >= 2, timeout=20,
               what="the Pareto front drawn on the page")
    html = httpx.get(f"{server.url}/api/v1/experiments/{experiment['id']}/report",
                     headers={"Authorization": f"Bearer {server.alice}"}, timeout=60)
    path = tmp_path / "report.html"
    path.write_text(html.text, encoding="utf-8")
    browser.get(path.as_uri())
    wait_until(lambda: len(_css(browser, "#pareto circle.front")) >= 2, timeout=20,
               what="the Pareto front drawn in the report")
    assert "over the template's configuration" in _text(browser, "#baseline")


def test_another_users_experiment_is_403(server, browser):
    theirs = Client(server.url, server.bob).submit(
        {"skill": "fake-skill", "algo": "random", "max_recommendations": 1, "max_epochs": 1})
    _sign_in(browser, server, server.alice)
    browser.get(f"{server.url}/#/experiments/{theirs['id']}")
    text = _wait_text(browser, "#experiment-error", "403", timeout=20)
    assert "another user" in text
    assert not _css(browser, "#trials tr[data-rec]")
    browser.get(server.url + "/#/")
    time.sleep(1)  # the list is drawn from the API: bob's experiment is not in alice's
    wait_until(lambda: _css(browser, "#experiments tbody tr"), timeout=20, what="the list")
    assert not _css(browser, f'#experiments tr[data-id="{theirs["id"]}"]')
