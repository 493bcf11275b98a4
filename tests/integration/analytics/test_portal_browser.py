"""The customer portal in a real browser: Debian's chromium, headless, driven by Selenium through chromium-driver,
against the lab's collector (the telemetry lab fixture: real agents on lab hosts, wired by provisioning, shipping
over TLS). A simulated attack on a lab host; then sign in with a portal token, find the attacker in the top
sources and the alerts chart drawn, check the text is readable (WCAG contrast), and keep the screenshot."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator

import pytest

from orchestrator.collector.portal_auth import new_portal_token
from orchestrator.ledger import Ledger
from tests.integration.conftest import Provisioned
from tests.integration.telemetry.conftest import PORT, Telemetry, running_telemetry, wait_for
from tests.integration.telemetry.test_telemetry_lab import attack, host_of_tier, unban

pytestmark = pytest.mark.lab

CHROMIUM = "/usr/bin/chromium"
DRIVER = "/usr/bin/chromedriver"
ATTACKER = "203.0.113.77"
PAGE_TIMEOUT_S = 30

# Relative luminance and contrast as WCAG 2 defines them, run in the page on the computed colours.
CONTRAST_JS = """
function lum(c) {
  const v = c.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number).map(x => x / 255)
    .map(x => x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4));
  return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2];
}
function bg(el) {
  for (; el; el = el.parentElement) {
    const c = getComputedStyle(el).backgroundColor;
    if (c && !c.startsWith('rgba(0, 0, 0, 0)') && c !== 'transparent') return c;
  }
  return 'rgb(255, 255, 255)';
}
const out = [];
for (const el of document.querySelectorAll(arguments[0])) {
  const a = lum(getComputedStyle(el).color), b = lum(bg(el));
  out.push([el.tagName + ':' + el.textContent.trim().slice(0, 30),
            (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05), parseFloat(getComputedStyle(el).fontSize)]);
}
return out;
"""


@pytest.fixture(scope="module")
def telemetry(provisioned: Provisioned) -> Iterator[Telemetry]:
    """The telemetry lab's collector for this module only: the telemetry package's own fixture, imported here, would
    stay up past this module (its scope is that package) and hold the address the telemetry tests bind."""
    with running_telemetry(provisioned) as tel:
        yield tel


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not (shutil.which(CHROMIUM) and shutil.which(DRIVER)):
        pytest.fail("chromium and chromium-driver are needed: scripts/setup --tests installs them")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # --no-sandbox: the tests run as root; the collector's certificate is self-signed (agents pin it).
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--ignore-certificate-errors",
        "--window-size=1280,2200",
        "--lang=en-US",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(PAGE_TIMEOUT_S)
    try:
        yield driver
    finally:
        driver.quit()


def test_sign_in_and_find_the_attacker_on_the_dashboard(
    telemetry: Telemetry,
    browser: object,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import WebDriverWait

    driver: WebDriver = browser  # type: ignore[assignment]
    tel = telemetry
    settings = tel.settings
    host = host_of_tier(tel, "enterprise")  # threshold 4 (playbooks/vars/tiers.yml)
    attack(tel, host, [ATTACKER], 6)
    try:
        wait_for(
            "the attacker's alert stored",
            lambda: [r for r in tel.rows("telemetry_alerts", host.name, "ip") if r[0] == ATTACKER],
            90,
        )
        with Ledger.open(settings.db_url, settings.home) as ledger:
            token, _ = new_portal_token(ledger, tel.provisioned.client, label="browser test")
        base = f"https://{tel.address}:{PORT}"
        driver.get(f"{base}/portal")  # no cookie yet: sent to the sign-in form
        WebDriverWait(driver, PAGE_TIMEOUT_S).until(lambda d: d.current_url.endswith("/portal/login"))
        driver.find_element(By.ID, "token").send_keys(token)
        driver.find_element(By.ID, "sign-in").click()
        WebDriverWait(driver, PAGE_TIMEOUT_S).until(lambda d: d.find_elements(By.ID, "top-sources"))
        assert driver.current_url == f"{base}/portal"
        sources = driver.find_element(By.ID, "top-sources").text
        assert ATTACKER in sources, sources
        # The alerts chart is drawn: an SVG with bars carrying data, the attacker's bar among the sources.
        bars = driver.find_elements(By.CSS_SELECTOR, "svg.chart rect.bar")
        values = [float(b.get_attribute("data-value") or 0) for b in bars]
        assert values and max(values) > 0, "no chart bar with data"
        assert any(
            b.get_attribute("data-value") and ATTACKER in (b.text or b.get_attribute("innerHTML") or "") for b in bars
        )
        svg_size = driver.find_element(By.CSS_SELECTOR, "svg.chart").size
        assert svg_size["width"] > 300 and svg_size["height"] > 100, svg_size
        # Readable: body text, table headers, headings and chart labels at least 4.5:1 and 12 px.
        checked = driver.execute_script(CONTRAST_JS, "h1, h2, p, th, td, label, svg.chart text")
        assert len(checked) > 20
        poor = [(what, round(ratio, 2), size) for what, ratio, size in checked if ratio < 4.5 or size < 12]
        assert not poor, f"hard to read: {poor[:10]}"
        artifacts = tmp_path_factory.getbasetemp() / "artifacts"
        artifacts.mkdir(exist_ok=True)
        shot = artifacts / "portal-dashboard.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        print(f"portal screenshot: {shot}")
        # Sign-out clears the cookie: the dashboard sends back to the sign-in form.
        driver.find_element(By.XPATH, "//button[text()='Sign out']").click()
        WebDriverWait(driver, PAGE_TIMEOUT_S).until(lambda d: d.current_url.endswith("/portal/login"))
        driver.get(f"{base}/portal")
        assert re.search(r"/portal/login$", driver.current_url)
    finally:
        unban(tel, host)
