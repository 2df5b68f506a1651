"""A lesson as a student meets it: JupyterLab in headless Chromium, the lesson run from the page.

JupyterLab serves a copy of the course (README, lessons/, minivae/) on 127.0.0.1 with a token and
its own configuration, runtime and settings folders; Playwright drives Debian's Chromium
(/usr/bin/chromium, never a browser Playwright downloads), with every address but the loopback
sent to a closed port. The lesson runs in smoke mode with its progress bars on, and the test
reads the page: no error or warning output, formulas typeset by MathJax, figures with their
captions, progress bars drawn as widgets (not as their text fallback), the library in the file
browser, a link to a library file that opens it, and a lesson that saves unchanged.
"""

import json
import os
import platform
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
LESSON = "02_autoencoder.ipynb"  # trains a model, draws figures, has formulas and checks
CHROMIUM = Path("/usr/bin/chromium")
NO_NETWORK = "http://127.0.0.1:9"  # the discard port: nothing listens there
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    f"--proxy-server={NO_NETWORK}",  # the loopback is never proxied: JupyterLab stays in reach
]

# Records, from the moment the page loads, what the outputs ever showed: progress widgets may
# be gone by the time a cell ends (fit closes each epoch's bar).
WATCH = r"""
window.__seen = {widgets: 0, fallbacks: []};
new MutationObserver(() => {
  window.__seen.widgets += document.querySelectorAll(
    ".jp-OutputArea .widget-hprogress, .jp-OutputArea .widget-progress").length;
  // A widget that cannot be drawn leaves an error, or the bar's text/plain fallback. (A bar
  // that fit closed before the page drew it may say "model not found": that is no fault.)
  const plain = ".jp-OutputArea-output[data-mime-type='text/plain']";
  for (const out of document.querySelectorAll(`.jp-OutputArea-output, ${plain}`)) {
    const text = out.textContent || "";
    const broken = /Error displaying widget/.test(text) && !/model not found/.test(text);
    if (broken || (out.matches(plain) && /\d+\/\d+ \[/.test(text))) {
      window.__seen.fallbacks.push(text.slice(0, 200));
    }
  }
}).observe(document, {childList: true, subtree: true});
"""

NOTEBOOK = "window.jupyterapp.shell.currentWidget"
KERNEL_READY = f"""() => {{
  const w = window.jupyterapp && {NOTEBOOK};
  const kernel = w && w.sessionContext && w.sessionContext.session
    && w.sessionContext.session.kernel;
  return kernel && kernel.connectionStatus === "connected"
    && w.sessionContext.kernelDisplayStatus === "idle";
}}"""
# Done when every code cell has an execution count, or stopped at an error.
RUN_FINISHED = f"""() => {{
  const cells = {NOTEBOOK}.content.model.sharedModel.cells.filter(c => c.cell_type === "code");
  const failed = cells.some(c => c.outputs.some(o => o.output_type === "error"));
  const done = cells.every(c => c.execution_count !== null);
  return (failed || done) && {NOTEBOOK}.sessionContext.kernelDisplayStatus === "idle";
}}"""


@pytest.fixture
def sync_api():
    """Playwright's sync API, or a skip that says what is missing."""
    if not CHROMIUM.exists():
        pytest.skip("no browser: /usr/bin/chromium is missing (apt-get install chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
    )
    pytest.importorskip("jupyterlab", reason="JupyterLab is not installed (pip install .[lessons])")
    pytest.importorskip("ipywidgets", reason="ipywidgets is not installed (pip install .[lessons])")
    return sync_api


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _course(tmp: Path) -> Path:
    """A copy of what a student opens: the README, the lessons and the library."""
    course = tmp / "course"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "minivae", course / "minivae", ignore=ignore)
    (course / "lessons").mkdir()
    shutil.copy(ROOT / "lessons" / LESSON, course / "lessons" / LESSON)
    shutil.copy(ROOT / "README.md", course / "README.md")
    return course


@pytest.fixture
def jupyterlab(sync_api, tmp_path):
    """(base URL, token, course folder) of a JupyterLab server of its own, stopped afterwards."""
    course = _course(tmp_path)
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
        MINIVAE_LESSON_MODE="smoke",
        MINIVAE_LESSON_PROGRESS="on",  # smoke sizes, but the bars a student sees
        MINIVAE_DATA=str(tmp_path / "no-downloads"),
        OPENBLAS_NUM_THREADS="1",
    )
    env.pop("MPLBACKEND", None)  # the kernel's own inline backend, as for a student
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        env[key] = NO_NETWORK
    for key in ("NO_PROXY", "no_proxy"):
        env.pop(key, None)
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={course}",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp, to wait on the notebook
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log = (tmp_path / "jupyterlab.log").open("w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        for _ in range(240):
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited: {(tmp_path / 'jupyterlab.log').read_text()}")
            try:
                opener.open(f"{base}/api/status?token={token}", timeout=2).close()
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not answer within two minutes")
        yield base, token, course
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def test_a_student_runs_a_training_lesson_in_jupyterlab(sync_api, jupyterlab, tmp_path):
    base, token, course = jupyterlab
    saved = course / "lessons" / LESSON
    original = saved.read_text(encoding="utf-8")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            page = browser.new_page()
            page.add_init_script(WATCH)
            page.goto(f"{base}/lab/tree/lessons/{LESSON}?token={token}&reset")
            page.wait_for_function(KERNEL_READY, timeout=180_000)

            # Opening the lesson changed nothing: saved now, it is the same file.
            dirty = page.evaluate(
                f"""async () => {{
                  const kernel = {NOTEBOOK}.sessionContext.session.kernel;
                  await kernel.info;
                  await kernel.spec;
                  await new Promise(done => setTimeout(done, 1000));  // JupyterLab's own update
                  return {NOTEBOOK}.context.model.dirty;
                }}"""
            )
            page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
            page.wait_for_function(f"() => !{NOTEBOOK}.context.model.dirty")
            expected = json.loads(original)
            expected["metadata"]["language_info"]["version"] = platform.python_version()
            assert not dirty, "opening the lesson marked it as changed"
            assert json.loads(saved.read_text(encoding="utf-8")) == expected
            if (
                platform.python_version()
                == json.loads(original)["metadata"]["language_info"]["version"]
            ):
                assert saved.read_text(encoding="utf-8") == original, "saved byte for byte"

            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            page.wait_for_function(RUN_FINISHED, timeout=540_000, polling=500)

            errors = page.locator(
                ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
            )
            assert errors.count() == 0, errors.first.inner_text()
            assert page.locator(".jp-RenderedMarkdown mjx-container").count() > 0, "no MathJax"
            assert page.locator(".jp-RenderedMarkdown .MathJax_Error, mjx-merror").count() == 0
            figures = page.locator(".jp-OutputArea-output img")
            captions = page.locator(".jp-OutputArea-output em", has_text="Figure:")
            assert figures.count() >= 3 and captions.count() == figures.count()
            seen = page.evaluate("() => window.__seen")
            assert seen["widgets"] > 0, "no progress bar was drawn as a widget"
            assert not seen["fallbacks"], f"a progress bar as text: {seen['fallbacks'][0]}"

            # The library is in reach: a link in the lesson opens its file, and the file
            # browser at the root lists the README, the lessons and the library.
            page.locator(".jp-RenderedMarkdown a", has_text="minivae/models.py").first.click()
            page.locator(".lm-TabBar-tab", has_text="models.py").wait_for(timeout=60_000)
            page.evaluate(
                "() => window.jupyterapp.commands.execute('filebrowser:go-to-path', {path: '/'})"
            )
            listing = page.locator(".jp-DirListing-itemText")
            page.locator(".jp-DirListing-itemText", has_text="README.md").wait_for()
            names = set(listing.all_inner_texts())
            assert {"README.md", "lessons", "minivae"} <= names, names
            page.locator(".jp-DirListing-item", has_text="minivae").first.dblclick()
            page.locator(".jp-DirListing-itemText", has_text="nn.py").wait_for()
            assert {"nn.py", "models.py", "losses.py"} <= set(listing.all_inner_texts())
        finally:
            browser.close()
