"""The web page at ``GET /`` of a live ``automl serve`` (fake trainer), driven in Debian's headless
Chromium through chromium-driver (selenium): sign in, submit, watch trials and a learning curve
update, pause, resume, cancel, another user's experiment (403), the report link. Every test
asserts on the DOM; one checks a screenshot is not blank. One server and one browser serve the
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
from service_fixtures import ENV, LiveServer, admin_token

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
WEB = Path(__file__).resolve().parents[1] / "src" / "automl" / "service" / "web"


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
    wait_until(lambda: _text(browser, "#state") == "SUCCEEDED", timeout=180,
               what=f"success ({_text(browser, '#state')} {_text(browser, '#experiment-error')})")
    wait_until(lambda: len(_css(browser, "#trials tr[data-rec]")) == 2, timeout=10, what="2 trials")
    assert browser.execute_script("return [...document.querySelectorAll('#trials td.status')]"
                                  ".map(td => td.innerText.trim())") == ["completed"] * 2
    best = _text(browser, "#best-table")
    assert re.search(r"model_epoch_001_step_\d+\.pth \(TAO epoch 1\)", best), best
    assert "hp.y\t3" in best  # the override, pinned
    assert _css(browser, "#trials tr.best")
    assert "completed (2)" in _text(browser, "#curves-legend")
    href = browser.execute_script("return document.getElementById('mlflow-link').href")
    assert re.fullmatch(r"http://mlflow\.example:5001/#/experiments/\d+/runs\?workflowType=machine_learning",
                        href), href

    main = browser.current_window_handle
    browser.find_element("id", "report").click()
    wait_until(lambda: len(browser.window_handles) == 2, timeout=30, what="the report window")
    browser.switch_to.window([h for h in browser.window_handles if h != main][0])
    try:
        wait_until(lambda: "automl report" in browser.title, timeout=60, what="the report")
        loaded = browser.execute_script(
            "return [...document.images].filter(i => i.complete && i.naturalWidth > 0).length")
        assert loaded >= 1
    finally:
        browser.close()
        browser.switch_to.window(main)


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
