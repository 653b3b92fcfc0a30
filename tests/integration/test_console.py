"""The web console in a real headless Chromium (Debian's chromium and chromium-driver, driven by
selenium with the driver's path given and Selenium Manager kept offline).

Marked slow. Outside CI it skips, saying why, when chromium or its driver is missing; with
``CI=true`` it fails instead (``.ci/run`` installs both). The screenshot of the console goes to
``docs/images/console.png`` when ``OIPSERVE_CONSOLE_SCREENSHOT`` names that path, and always to the
test's temporary folder.
"""

from __future__ import annotations

import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from tests.serving import RunningServer, serve

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
WAIT_S = 20


def _browser() -> Any:
    if CHROMIUM is None or DRIVER is None:
        reason = "chromium and chromium-driver are not installed (apt-get install chromium " + (
            "chromium-driver)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not download anything
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        "--disable-gpu",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)


@pytest.fixture(scope="module")
def console_server(
    examples_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """Its own server: the test loads and unloads models."""
    with serve(examples_repository, tmp_dir=tmp_path_factory.mktemp("console")) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    driver = _browser()
    try:
        yield driver
    finally:
        driver.quit()


def _severe(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_console_in_chromium(console_server: RunningServer, browser: Any, tmp_path: Path) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT_S, ignored_exceptions=[StaleElementReferenceException])
    browser.get(console_server.base_url + "/")
    # the example models, with versions and states
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#models tr[data-model=iris]")))
    rows = {
        row.get_attribute("data-model"): row.text
        for row in browser.find_elements(By.CSS_SELECTOR, "#models tbody tr")
    }
    assert {"iris", "simple", "identity"} <= set(rows)
    assert "READY" in rows["iris"]
    wait.until(ec.text_to_be_present_in_element((By.ID, "server-ready"), "ready"))

    # a model's metadata, configuration and try-it form; the prediction for a virginica row
    browser.find_element(By.CSS_SELECTOR, "#models tr[data-model=iris]").click()
    wait.until(ec.presence_of_element_located((By.ID, "try-input-0")))
    assert "input-0" in browser.find_element(By.ID, "tensors").text
    assert "FP32" in browser.find_element(By.ID, "tensors").text
    assert '"max_batch_size": 64' in browser.find_element(By.ID, "config").get_attribute(
        "textContent"
    )
    area = browser.find_element(By.ID, "try-input-0")
    area.clear()
    area.send_keys("[[6.7, 3.0, 5.2, 2.3]]")
    browser.find_element(By.ID, "try-send").click()
    cell = (By.CSS_SELECTOR, "#try-result tr[data-output=predict] td.data")
    wait.until(ec.text_to_be_present_in_element(cell, "[2]"))

    # live figures: the statistics poll sees the request just sent, without a reload
    wait.until(lambda d: d.find_element(By.ID, "total").text.isdigit())
    wait.until(lambda d: int(d.find_element(By.ID, "total").text) >= 1)

    assert _severe(browser) == []  # no console errors so far
    screenshot = tmp_path / "console.png"
    browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000
    if target := os.environ.get("OIPSERVE_CONSOLE_SCREENSHOT"):
        shutil.copy(screenshot, target)

    # a request the model refuses shows the server's message, the page stays
    area.clear()
    area.send_keys("[[1, 2, 3]]")
    browser.find_element(By.ID, "try-send").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "try-error"), "expects [-1, 4]"))

    # unload and load back from the buttons
    def button(model: str) -> Any:
        return browser.find_element(By.CSS_SELECTOR, f"#models tr[data-model={model}] button")

    button("simple").click()
    wait.until(
        lambda d: (
            "UNAVAILABLE" in d.find_element(By.CSS_SELECTOR, "#models tr[data-model=simple]").text
        )
    )
    assert httpx.get(console_server.base_url + "/v2/models/simple/ready").status_code != 200
    wait.until(lambda d: button("simple").text == "Load")
    button("simple").click()
    wait.until(
        lambda d: (
            "READY" in d.find_element(By.CSS_SELECTOR, "#models tr[data-model=simple]").text
            and "UNAVAILABLE"
            not in d.find_element(By.CSS_SELECTOR, "#models tr[data-model=simple]").text
        )
    )
    assert httpx.get(console_server.base_url + "/v2/models/simple/ready").status_code == 200

    # since then, only Chromium's own note of the deliberately refused request
    later = _severe(browser)
    assert all("/v2/models/iris/infer" in m and "400" in m for m in later), later


def test_console_is_served_from_the_package_and_can_be_turned_off(
    console_server: RunningServer, examples_repository: Path, tmp_path: Path
) -> None:
    page = httpx.get(console_server.base_url + "/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "/console/console.js" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no CDN
    script = httpx.get(console_server.base_url + "/console/console.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert httpx.get(console_server.base_url + "/console/../settings.py").status_code == 404
    assert httpx.get(console_server.base_url + "/console/nope.js").status_code == 404
    assert httpx.get(console_server.base_url + "/console/settings.json").json()[
        "repository_changes"
    ]
    with serve(examples_repository, "--allow-console=false", tmp_dir=tmp_path) as off:
        assert httpx.get(off.base_url + "/").status_code == 404
        assert httpx.get(off.base_url + "/v2/health/ready").status_code == 200


class _KeyProxy(http.server.BaseHTTPRequestHandler):
    """Stands in for the security issue's API keys: /v2 answers 401 without the key; everything
    is forwarded to the real server. Records the Authorization header of each /v2 request."""

    upstream = ""
    key = "sekret-key"
    seen: ClassVar[list[str]] = []

    def _forward(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.startswith("/v2"):
            given = self.headers.get("authorization", "")
            self.seen.append(given)
            if given != f"Bearer {self.key}":
                self._answer(401, b'{"error": "this server needs an API key"}', "application/json")
                return
        reply = httpx.request(self.command, self.upstream + self.path, content=body)
        self._answer(reply.status_code, reply.content, reply.headers.get("content-type", ""))

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _forward

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_console_asks_for_the_key_and_keeps_it_in_memory(
    console_server: RunningServer, browser: Any
) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    _KeyProxy.upstream = console_server.base_url
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _KeyProxy)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        wait = WebDriverWait(browser, WAIT_S, ignored_exceptions=[StaleElementReferenceException])
        browser.get(f"http://127.0.0.1:{proxy.server_port}/")
        wait.until(ec.visibility_of_element_located((By.ID, "key-input")))
        assert "needs an API key" in browser.find_element(By.ID, "banner").text
        browser.find_element(By.ID, "key-input").send_keys(_KeyProxy.key)
        browser.find_element(By.CSS_SELECTOR, "#key-form button").click()
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#models tr[data-model=iris]")))
        assert not browser.find_element(By.ID, "key-form").is_displayed()
        assert f"Bearer {_KeyProxy.key}" in _KeyProxy.seen
        assert _KeyProxy.key not in browser.current_url
        stored = browser.execute_script(
            "return JSON.stringify([document.cookie, {...localStorage}, {...sessionStorage}])"
        )
        assert _KeyProxy.key not in stored
        refused = [
            m for m in _severe(browser) if " 401 " not in m and "401 (Unauthorized)" not in m
        ]
        assert refused == []
    finally:
        proxy.shutdown()
        proxy.server_close()
