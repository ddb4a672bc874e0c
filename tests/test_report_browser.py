"""report.html in a real browser (headless Chromium): every image decodes, nothing is logged to the console,
and the page renders; the screenshot is kept in test-artifacts/report.png."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ARTIFACTS
from test_report import make_image_run
from transferkit.report import build_report

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]
CONSOLE = re.compile(r"^.*(?::CONSOLE\b|Uncaught).*$", re.MULTILINE)  # the report itself logs nothing


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    return build_report(make_image_run(tmp_path_factory.mktemp("browser-run")))


def _open(chromium: Path, page: Path, profile: Path, *actions: str) -> subprocess.CompletedProcess:
    command = [str(chromium), *FLAGS, f"--user-data-dir={profile}", *actions, page.resolve().as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=90, check=True)


def _body(dom: str) -> str:
    return re.search(r"<body[^>]*>", dom).group(0)


def test_every_image_loads_and_the_console_stays_silent(chromium, report, tmp_path):
    opened = _open(chromium, report, tmp_path / "profile", "--dump-dom")
    assert 'data-images-ok="true"' in _body(opened.stdout), _body(opened.stdout)
    assert opened.stdout.count("<img") == report.read_text(encoding="utf-8").count("<img") >= 3
    assert '<img class="thumb"' in opened.stdout  # the worst example's thumbnail is among them
    assert not CONSOLE.findall(opened.stderr), "\n".join(CONSOLE.findall(opened.stderr))


def test_a_broken_or_remote_image_would_be_caught(chromium, report, tmp_path):
    """The checks above can fail: a missing file and a remote URL both flip the flag and log to the console."""
    broken = tmp_path / "broken.html"
    page = report.read_text(encoding="utf-8")
    broken.write_text(page.replace("<nav>", '<img src="missing.png"><img src="https://example.com/x.png"><nav>'))
    opened = _open(chromium, broken, tmp_path / "profile", "--dump-dom")
    assert 'data-images-ok="false"' in _body(opened.stdout)
    logged = "\n".join(CONSOLE.findall(opened.stderr))
    assert "missing.png" in logged and "example.com" in logged


def test_the_report_renders_and_the_screenshot_is_kept(chromium, report, tmp_path):
    shot = tmp_path / "report.png"
    _open(chromium, report, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,2000")
    with Image.open(shot) as image:
        assert image.size == (1280, 2000)
        grey = np.asarray(image.convert("L"))
    assert grey.std() > 20 and len(np.unique(grey)) > 50  # text, tables and plots, not a blank page
    assert (grey < 128).mean() > 0.01  # dark ink on the page
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(shot, ARTIFACTS / "report.png")
