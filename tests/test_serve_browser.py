"""The model server's page in a real browser (Playwright driving Debian's headless Chromium, never a downloaded
one): it shows the model, takes an example, renders the predicted label with probability bars, keeps the console
silent (a Content-Security-Policy violation would be logged there); the screenshot goes to test-artifacts/serve.png."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import transferkit as tk
from conftest import ARTIFACTS
from serve_helpers import running_server, text_run
from transferkit.serving import ServeConfig, create_app


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    model = tk.load(text_run(tmp_path_factory))
    with running_server(create_app(model, ServeConfig(max_text_chars=100), name="sentiment")) as (url, _):
        yield model, url


@pytest.fixture
def page(chromium, served):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        page.console = []
        page.on("console", lambda message: page.console.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: page.console.append(f"pageerror: {error}"))
        page.goto(served[1] + "/")
        page.wait_for_selector("body[data-state=ready]", timeout=30_000)
        yield page
        browser.close()


def test_the_page_predicts_an_example_and_draws_the_bars(page, served):
    model, _ = served
    text = "a great and fun film, i love it"
    expected = model.predict_proba([text])[0]
    assert page.inner_text("#model-name") == "sentiment" and page.title() == "sentiment · transferkit"
    info = page.inner_text("#model-info")
    assert "classification on text" in info and "tiny-bert" in info and "neg, pos" in info
    metrics = page.inner_text("#metrics")
    assert "accuracy" in metrics and "macro_f1" in metrics
    page.fill("#text-input", text)
    page.click("#submit")
    page.wait_for_selector("body[data-state=done]", timeout=30_000)
    assert page.inner_text(".prediction .answer") == model.classes_[int(expected.argmax())]
    assert page.inner_text(".prediction .input") == text
    rows = page.locator(".prediction .row")
    assert rows.count() == 2
    shown = {rows.nth(i).locator(".name").inner_text(): rows.nth(i).locator(".p").inner_text() for i in range(2)}
    assert shown == {label: f"{100 * p:.1f}%" for label, p in zip(model.classes_, expected)}
    bar = page.locator(".prediction .row.chosen .fill").evaluate("e => e.getBoundingClientRect().width")
    track = page.locator(".prediction .row.chosen .bar").evaluate("e => e.getBoundingClientRect().width")
    assert bar / track == pytest.approx(expected.max(), abs=0.02)  # the bar's length is the probability
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "serve.png"
    page.screenshot(path=str(shot), full_page=True)
    with Image.open(shot) as image:
        grey = np.asarray(image.convert("L"))
    assert grey.std() > 10 and (grey < 128).mean() > 0.005  # text and bars, not a blank page
    assert page.console == [], page.console


def test_the_page_shows_the_servers_error_message(page):
    page.click("#submit")
    assert page.inner_text("#status") == "Type an example first."  # checked before any request
    page.fill("#text-input", "x" * 150)
    page.click("#submit")
    page.wait_for_selector("body[data-state=error]", timeout=30_000)
    status = page.inner_text("#status")
    assert "150 characters; the limit is 100" in status and page.locator("#status.error").count() == 1
    assert all("status of 413" in line for line in page.console), page.console  # only the browser's own note


def test_the_api_docs_render_offline(page, served):
    """/docs draws Swagger UI from local files (the default would fetch it from a CDN and stay blank offline)."""
    failed = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.goto(served[1] + "/docs")
    page.wait_for_selector(".opblock", timeout=30_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert {"/predict", "/metadata", "/health"} <= {p.strip() for p in paths}
    assert failed == [] and all(not url.startswith("http") or "127.0.0.1" in url for url in failed)
