"""The real app in headless Chromium: load the demo corpus, ask, follow a citation to its marked quote."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from agents.settings import load_settings
from retrieval.index import Index
from tests.http_servers import stop

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ROOT = Path(__file__).resolve().parents[1]
QUESTION = "How much does the Rosetta Stone weigh?"
DEMO_BUTTON = "//button[normalize-space(.)='Load the demo corpus']"
CITATION_BUTTON = "//button[starts-with(normalize-space(.), '[')]"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)",
    ),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, server: subprocess.Popen[bytes], log: Path, *, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"streamlit exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"streamlit did not answer on {url} within {timeout:g} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def app_url(tmp_path: Path) -> Iterator[str]:
    """``streamlit run app.py`` on a free loopback port with an empty home; always terminated."""
    port = _free_port()
    log = tmp_path / "streamlit.log"
    env = {**os.environ, "MULTIGRAIN_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    with log.open("wb") as out:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, server, log)
        yield url
    finally:
        stop(server)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    """Headless Chromium through Debian's chromedriver, with a fresh profile."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _visible_buttons(driver: WebDriver, xpath: str) -> list[WebElement]:
    return [b for b in driver.find_elements(By.XPATH, xpath) if b.is_displayed()]


def _wait_for_button(driver: WebDriver, xpath: str, *, timeout: float) -> WebElement:
    def find(d: WebDriver) -> WebElement | Literal[False]:
        shown = _visible_buttons(d, xpath)
        return shown[0] if shown else False

    return WebDriverWait(driver, timeout).until(find)


def test_follow_a_citation_to_its_marked_quote(app_url: str, browser: WebDriver, tmp_path: Path) -> None:
    browser.get(app_url)
    _wait_for_button(browser, DEMO_BUTTON, timeout=120).click()
    wait = WebDriverWait(browser, 400)
    wait.until(lambda d: not d.find_elements(By.XPATH, DEMO_BUTTON))
    box = wait.until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, "textarea[data-testid='stChatInputTextArea']"))
    )
    box.send_keys(QUESTION, Keys.ENTER)

    citation = _wait_for_button(browser, CITATION_BUTTON, timeout=300)
    label = citation.text
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", citation)
    citation.click()
    mark = WebDriverWait(browser, 60).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, "mark.mg-quote"))
    )
    quote = str(browser.execute_script("return arguments[0].textContent;", mark))
    caption = browser.find_element(By.XPATH, "//*[contains(text(), 'characters ')]").text
    shot = tmp_path / "citation.png"
    browser.save_screenshot(str(shot))
    print(f"screenshot: {shot}")

    span = re.search(r"characters (\d+)–(\d+) of (\S+)", caption)
    assert span is not None, caption
    start, end, doc_id = int(span.group(1)), int(span.group(2)), span.group(3)
    assert quote.strip(), f"the quote of {label!r} is empty"
    document = Index(load_settings({"home": tmp_path / "home"}).index).document(doc_id)
    assert document.text[start:end] == quote
    assert re.match(r"\[\d+\] ", label) and document.title in label
