"""The dashboard at ``/``, driven in a real headless browser (Debian's chromium
and chromium-driver through Selenium) against a real uvicorn server over a
SQLite database holding a finished search; and its JSON helpers over HTTP."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.api import create_app
from service.cli import app as cli
from service.runtime import Runtime
from service.settings import load_settings
from tests.service.live_server import serving

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
HAVE_CHROMIUM = os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)
needs_chromium = pytest.mark.skipif(
    not HAVE_CHROMIUM,
    reason="chromium and chromedriver are not installed "
    "(apt-get install -y chromium chromium-driver)",
)
# Nothing on the page may reach outside the test server: no update checks, no
# sync, no QUIC probes, a profile of its own.
CHROME_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
]
WHERE = ["--supernet", "nb201", "--device", "nb201-pixel3"]


class Store:
    """A database with the nb201 benchmark registered and one finished search."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.url = f"sqlite:///{home / 'hwnas.db'}"

    def hwnas(self, *args: str) -> str:
        result = CliRunner().invoke(
            cli, ["--home", str(self.home), "--database-url", self.url, *args]
        )
        assert result.exit_code == 0, result.output
        return result.output

    @contextmanager
    def runtime(self, *, require_auth: bool = False) -> Iterator[Runtime]:
        settings = load_settings(
            home=str(self.home), database_url=self.url, require_auth=require_auth
        )
        with Runtime.open(settings) as rt:
            yield rt


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("HWNAS_"):
                mp.delenv(key)
        data = Store(tmp_path_factory.mktemp("dashboard"))
        data.hwnas("supernet", "register-benchmark", "nb201")
        data.hwnas("search", "submit", *WHERE, "--budget-ms", "20", "--evaluations", "12")
        data.hwnas("worker", "--exit-when-idle")
        with data.runtime() as rt:
            _add_measured_device(rt)
        yield data


PHONE_EXTRA = 4


def _add_measured_device(rt: Runtime) -> None:
    """A remote device with a latency model of ``ofa-mbv3-tiny`` fitted from 10
    reference latencies and ``PHONE_EXTRA`` others, and a supernet record of
    that space (no checkpoint: only its space matters here)."""
    import numpy as np

    from service.domain import devices, subnets, supernet_records
    from service.orchestration.registration import submit_latencies
    from supernets import get_space

    space = get_space("ofa-mbv3-tiny")
    rng = np.random.default_rng(0)
    extra = [(space.sample(rng).to_dict(), 4.0 + 0.5 * i) for i in range(PHONE_EXTRA)]
    with rt.session() as s:
        devices.create_device(s, "phone", kind="remote")
        devices.create_device(s, "unmeasured", kind="remote")
        supernet_records.register_supernet(
            s, "tiny", space_name=space.name, space_config=space.config(),
            checkpoint_path="/nowhere",
        )  # fmt: skip
    submit_latencies(rt, "phone", space.name, [3.0 + i for i in range(10)], extra=extra)
    with rt.session() as s:
        # One evaluated subnet of "tiny" on the phone, so that it has a front.
        arch = space.sample(rng)
        subnets.record_trial(
            s,
            subnets.TrialIn(
                space_name=space.name, arch=arch.to_dict(), arch_hash=space.arch_hash(arch),
                accuracy=50.0, latency_ms=5.0, latency_source="predicted",
                supernet_id=supernet_records.get_supernet(s, "tiny").id,
                device_id=devices.get_device(s, "phone").id,
            ),
        )  # fmt: skip


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: Any, condition: Any, timeout: float = 20) -> Any:
    """``condition(driver)`` once truthy; an element the page redrew meanwhile
    (the job view redraws while it polls) is looked up again."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    ignored = (NoSuchElementException, StaleElementReferenceException)
    return WebDriverWait(driver, timeout, ignored_exceptions=ignored).until(condition)


def _click(driver: Any, css: str) -> None:
    """Click the element ``css`` selects, again if the page redrew it meanwhile."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By

    def attempt(d: Any) -> bool:
        try:
            d.find_element(By.CSS_SELECTOR, css).click()
        except (NoSuchElementException, StaleElementReferenceException):
            return False
        return True

    _wait(driver, attempt)


def _console_errors(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _front(rt: Runtime) -> list[dict[str, Any]]:
    with TestClient(create_app(rt)) as client:
        response = client.get(
            "/v1/query/pareto", params={"supernet": "nb201", "device": "nb201-pixel3"}
        )
        assert response.status_code == 200, response.text
        front: list[dict[str, Any]] = response.json()["front"]
    return front


@pytest.mark.slow
@needs_chromium
def test_the_page_shows_the_stored_front_and_a_clicked_subnet(store: Store, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    with store.runtime() as rt, serving(rt) as url:
        front = _front(rt)
        assert len(front) >= 2
        browser.get(url)
        points = _wait(
            browser,
            lambda d: d.find_elements(By.CSS_SELECTOR, "#pareto-chart circle.front-point"),
        )
        # One point per subnet of the API's front, fastest first, same trials.
        assert [int(p.get_attribute("data-trial-id")) for p in points] == [
            c["trial_id"] for c in front
        ]
        # The last search's budget (20 ms) is pre-filled: its line and best answer show.
        assert browser.find_elements(By.CSS_SELECTOR, "#pareto-chart line.budget-line")
        best = _wait(browser, lambda d: d.find_element(By.ID, "best-text").text)
        assert best.startswith("Best within 20 ms: accuracy")
        assert len(browser.find_elements(By.CSS_SELECTOR, "#pareto-chart circle.best")) == 1

        chosen = front[-1]
        points[-1].click()
        details = _wait(browser, lambda d: d.find_element(By.ID, "subnet-details"))
        _wait(browser, lambda d: details.is_displayed())
        assert f"trial {chosen['trial_id']}" in details.find_element(By.TAG_NAME, "h3").text
        assert json.loads(browser.find_element(By.ID, "detail-arch").text) == chosen["arch"]
        latency = browser.find_element(By.ID, "detail-latency").text
        assert "nb201-pixel3" in latency and "measured (a real evaluation)" in latency
        assert "measured" in browser.find_element(By.ID, "detail-accuracy").text
        # A tabular benchmark has no weights: export is not offered, and the page says why.
        assert not browser.find_element(By.ID, "export-button").is_enabled()
        assert "no weights to export" in browser.find_element(By.ID, "export-note").text

        # The search job's live view: its curve of best feasible accuracy.
        browser.find_element(By.CSS_SELECTOR, "#tabs button[data-tab=searches]").click()
        _click(browser, '#searches-table tr[data-key="1"]')
        dots = _wait(
            browser,
            lambda d: d.find_elements(By.CSS_SELECTOR, "#progress-chart circle.trial"),
        )
        assert len(dots) == 12
        assert "succeeded" in browser.find_element(By.CSS_SELECTOR, "#search-detail h3").text

        # A device page: a table device says where its latencies come from.
        browser.find_element(By.CSS_SELECTOR, "#tabs button[data-tab=devices]").click()
        _click(browser, '#devices-table tr[data-key="nb201-pixel3"]')
        detail = _wait(browser, lambda d: d.find_element(By.ID, "device-detail"))
        _wait(browser, lambda d: "bundled benchmark table" in detail.text)
        # A device with a latency model: its quality and predicted-vs-measured plot.
        _click(browser, '#devices-table tr[data-key="phone"]')
        fit = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#fit-chart circle"))
        assert len(fit) == 10 + PHONE_EXTRA
        assert len(browser.find_elements(By.CSS_SELECTOR, "#fit-chart circle.reference")) == 10
        quality = browser.find_element(By.ID, "models-table").text
        assert "Spearman ρ" in quality and f"on {PHONE_EXTRA} held-out" in quality

        assert _console_errors(browser) == []

        # A supernet with weights: auth is off, so export is offered and asks the
        # API; this record's checkpoint is missing, and the page shows the refusal.
        browser.find_element(By.CSS_SELECTOR, "#tabs button[data-tab=pareto]").click()
        Select(browser.find_element(By.ID, "pareto-supernet")).select_by_value("tiny")
        Select(browser.find_element(By.ID, "pareto-device")).select_by_value("phone")
        _wait(
            browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#pareto-chart circle.front-point")
        )[0].click()
        button = browser.find_element(By.ID, "export-button")
        assert button.is_enabled() and not browser.find_elements(By.ID, "export-note")
        button.click()
        status = browser.find_element(By.ID, "export-status")
        _wait(browser, lambda d: "Export failed" in status.text)
        assert "Error 422: no supernet checkpoint at '/nowhere'" in status.text
        assert [e for e in _console_errors(browser) if "422" not in e] == []


@pytest.mark.slow
@needs_chromium
def test_with_auth_the_page_asks_for_a_token_and_a_reader_cannot_export(
    store: Store, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    secret = json.loads(
        store.hwnas("--json", "token", "create", "viewer", "--read-only", "--admin")
    )["token"]
    with store.runtime(require_auth=True) as rt, serving(rt) as url:
        browser.get(url)
        form = _wait(browser, lambda d: d.find_element(By.ID, "token-input"))
        _wait(browser, lambda d: form.is_displayed())
        assert not browser.find_element(By.ID, "content").is_displayed()
        # Asking for the token costs no failed request.
        assert _console_errors(browser) == []

        # A wrong token is refused, clearly, and the form stays.
        form.send_keys("hwnas_not-a-token")
        browser.find_element(By.ID, "token-submit").click()
        refused = _wait(browser, lambda d: d.find_element(By.ID, "login-error").text)
        assert "Not authorised (401)" in refused and "unknown or revoked token" in refused

        browser.find_element(By.ID, "token-input").send_keys(secret)
        browser.find_element(By.ID, "token-submit").click()
        points = _wait(
            browser,
            lambda d: d.find_elements(By.CSS_SELECTOR, "#pareto-chart circle.front-point"),
        )
        assert len(points) == len(_front_with_token(rt, secret))
        assert "(read-only)" in browser.find_element(By.ID, "whoami").text
        assert browser.execute_script("return sessionStorage.getItem('hwnas-token')") == secret

        points[0].click()
        button = _wait(browser, lambda d: d.find_element(By.ID, "export-button"))
        assert not button.is_enabled()
        assert "read-only" in (button.get_attribute("title") or "")
        assert "write scope" in browser.find_element(By.ID, "export-note").text

        # The token lasts the browser session: a reload does not ask again.
        browser.refresh()
        _wait(
            browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#pareto-chart circle.front-point")
        )
        assert not browser.find_element(By.ID, "login").is_displayed()


def _front_with_token(rt: Runtime, secret: str) -> list[dict[str, Any]]:
    with TestClient(create_app(rt)) as client:
        response = client.get(
            "/v1/query/pareto",
            params={"supernet": "nb201", "device": "nb201-pixel3"},
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert response.status_code == 200, response.text
        front: list[dict[str, Any]] = response.json()["front"]
    return front


def test_page_assets_and_helpers_over_http(tmp_path: Path) -> None:
    """What the page loads is packaged and self-contained; its two JSON helpers
    answer as documented."""
    store = Store(tmp_path)
    store.hwnas("supernet", "register-benchmark", "nb201")
    secret = json.loads(store.hwnas("--json", "token", "create", "viewer", "--read-only"))["token"]
    with store.runtime() as rt, TestClient(create_app(rt)) as client:
        page = client.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        for asset, kind in (("dashboard.js", "javascript"), ("dashboard.css", "css")):
            response = client.get(f"/dashboard/{asset}")
            assert response.status_code == 200 and kind in response.headers["content-type"]
            # Nothing fetched from elsewhere at run time.
            assert "http://" not in response.text.replace("http://www.w3.org/2000/svg", "")
            assert "https://" not in response.text
        assert "https://" not in page.text and "http://" not in page.text
        assert client.get("/dashboard/index.py").status_code == 404
        assert client.get("/dashboard/settings.json").json() == {"require_auth": False}
        # With auth off everything belongs to "local", which may do anything.
        assert client.get("/v1/whoami").json() == {
            "name": "local",
            "scopes": ["read", "write", "admin"],
        }

        fit = client.get("/v1/devices/nb201-pixel3/latency-fit", params={"supernet": "nb201"})
        assert fit.status_code == 200
        assert fit.json()["source"] == "table" and fit.json()["points"] == []
        missing = client.get("/v1/devices/nb201-pixel3/latency-fit", params={"supernet": "nope"})
        assert missing.status_code == 404 and "nope" in missing.json()["error"]["message"]

    with store.runtime(require_auth=True) as rt, TestClient(create_app(rt)) as client:
        assert client.get("/").status_code == 200  # the page itself is public
        assert client.get("/dashboard/settings.json").json() == {"require_auth": True}
        refused = client.get("/v1/whoami")
        assert refused.status_code == 401
        reader = {"Authorization": f"Bearer {secret}"}
        me = client.get("/v1/whoami", headers=reader).json()
        assert me == {"name": "viewer", "scopes": ["read"]}
        # What the page disables for a read-only token, the API refuses too.
        export = client.post("/v1/supernets/nb201/export", json={"trial_id": 1}, headers=reader)
        assert export.status_code == 403 and "read-only" in export.json()["error"]["message"]


def test_latency_fit_pairs_each_measurement_with_the_searchs_prediction(sqlite_url: str) -> None:
    import numpy as np

    from predictors.latency import DeviceLatencyPredictor
    from service.domain import devices, supernet_records
    from service.orchestration.device_latency import latency_source
    from supernets import get_space

    with Runtime.open(load_settings(database_url=sqlite_url)) as rt:
        _add_measured_device(rt)
        with TestClient(create_app(rt)) as client:
            response = client.get("/v1/devices/phone/latency-fit", params={"supernet": "tiny"})
            assert response.status_code == 200, response.text
            fit = response.json()
            none = client.get("/v1/devices/unmeasured/latency-fit", params={"supernet": "tiny"})
        with rt.session() as s:
            sn = supernet_records.get_supernet(s, "tiny")
            model = latency_source(s, sn, devices.get_device(s, "phone"))
            stored = devices.list_measurements(s, devices.get_device(s, "phone"))
            space = get_space(sn.space_name)
            assert isinstance(model, DeviceLatencyPredictor)
            expected = model.predict(space.encode_many([space.validate(m.arch) for m in stored]))

    assert fit["source"] == "model" and fit["space"] == "ofa-mbv3-tiny"
    points = fit["points"]
    assert [p["measured_ms"] for p in points] == [m.latency_ms for m in stored]
    assert [p["is_reference"] for p in points] == [True] * 10 + [False] * PHONE_EXTRA
    assert [p["measured_ms"] for p in points if not p["is_reference"]] == [
        4.0 + 0.5 * i for i in range(PHONE_EXTRA)
    ]
    assert np.allclose([p["predicted_ms"] for p in points], expected)
    # A device without a latency model gets the commands that give it one: it
    # is measured elsewhere, so the reference package and submit, not measure.
    assert none.status_code == 422
    message = none.json()["error"]["message"]
    assert "hwnas device references unmeasured" in message
    assert "hwnas device submit unmeasured" in message
    assert "hwnas device measure" not in message


@pytest.mark.slow
@needs_chromium
def test_a_running_search_is_followed_live(store: Store, browser: Any) -> None:
    """The job view polls: a queued job, opened in the page, turns into a finished
    one with its evaluations drawn, without reloading. (Runs last: it adds a job.)"""
    from selenium.webdriver.common.by import By

    submitted = store.hwnas(
        "--json", "search", "submit", *WHERE, "--budget-ms", "20", "--evaluations", "6",
        "--seed", "1",
    )  # fmt: skip
    job_id = json.loads(submitted)["id"]
    with store.runtime() as rt, serving(rt) as url:
        browser.get(url)
        browser.find_element(By.CSS_SELECTOR, "#tabs button[data-tab=searches]").click()
        row = f'#searches-table tr[data-key="{job_id}"]'
        _click(browser, row)
        _wait(
            browser, lambda d: "queued" in d.find_element(By.CSS_SELECTOR, "#search-detail h3").text
        )
        _wait(
            browser, lambda d: "No evaluations yet" in d.find_element(By.ID, "search-detail").text
        )

        store.hwnas("worker", "--exit-when-idle")  # the page keeps polling meanwhile

        _wait(
            browser,
            lambda d: "succeeded" in d.find_element(By.CSS_SELECTOR, "#search-detail h3").text,
        )
        # Finished: polling has stopped, so nothing is redrawn under the reads below.
        dots = browser.find_elements(By.CSS_SELECTOR, "#progress-chart circle.trial")
        assert len(dots) == 6
        assert browser.find_element(By.CSS_SELECTOR, f"{row} td:nth-child(3)").text == "succeeded"
        assert _console_errors(browser) == []
