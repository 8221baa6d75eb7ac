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

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ROOT = Path(__file__).resolve().parents[1]
QUESTION = "How much does the Rosetta Stone weigh?"

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
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=20)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    """Headless Chromium through Debian's chromedriver, with a fresh profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

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


def _visible_button(driver: object, text: str, *, timeout: float) -> object:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    xpath = f"//button[normalize-space(.)={text!r}]"

    def find(d: object) -> object:
        shown = [b for b in d.find_elements(By.XPATH, xpath) if b.is_displayed()]  # type: ignore[attr-defined]
        return shown[0] if shown else False

    return WebDriverWait(driver, timeout).until(find)


def test_follow_a_citation_to_its_marked_quote(app_url: str, browser: object, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    driver.get(app_url)  # type: ignore[attr-defined]
    _visible_button(driver, "Load the demo corpus", timeout=120).click()  # type: ignore[attr-defined]
    wait = WebDriverWait(driver, 400)
    wait.until(lambda d: not d.find_elements(By.XPATH, "//button[normalize-space(.)='Load the demo corpus']"))
    box = wait.until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, "textarea[data-testid='stChatInputTextArea']"))
    )
    box.send_keys(QUESTION, Keys.ENTER)

    def first_citation(d: object) -> object:
        found = [
            b
            for b in d.find_elements(By.XPATH, "//button[starts-with(normalize-space(.), '[')]")  # type: ignore[attr-defined]
            if b.is_displayed() and re.match(r"\[\d+\] ", b.text)
        ]
        return found[0] if found else False

    citation = WebDriverWait(driver, 300).until(first_citation)
    label = citation.text
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", citation)  # type: ignore[attr-defined]
    citation.click()
    mark = WebDriverWait(driver, 60).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, "mark.mg-quote"))
    )
    quote = driver.execute_script("return arguments[0].textContent;", mark)  # type: ignore[attr-defined]
    caption = driver.find_element(By.XPATH, "//*[contains(text(), 'characters ')]").text  # type: ignore[attr-defined]
    shot = tmp_path / "citation.png"
    driver.save_screenshot(str(shot))  # type: ignore[attr-defined]
    print(f"screenshot: {shot}")

    span = re.search(r"characters (\d+)–(\d+) of (\S+)", caption)
    assert span is not None, caption
    start, end, doc_id = int(span.group(1)), int(span.group(2)), span.group(3)
    assert quote.strip(), f"the quote of {label!r} is empty"
    from agents.settings import load_settings
    from retrieval.index import Index

    document = Index(load_settings({"home": tmp_path / "home"}).index).document(doc_id)
    assert document.text[start:end] == quote
    assert document.title in label
