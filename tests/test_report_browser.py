"""The HTML report in a real browser: headless Chromium (Debian's package) loads it from disk
with no server; every image must decode to a non-zero size, the console must stay free of
errors, and a screenshot is taken (kept in $AEKIT_SCREENSHOT_DIR when set, to look at)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from aekit import AutoencoderTransformer
from aekit.datasets import load
from aekit.report import ReportOptions, write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]

# appended to a copy of the report: the report itself has no scripts
PROBE = """<script>
window.addEventListener('load', () => {
  const images = [...document.images].map(i => ({w: i.naturalWidth, h: i.naturalHeight, ok: i.complete}));
  const out = document.createElement('pre'); out.id = 'probe';
  out.textContent = JSON.stringify({images, sections: document.querySelectorAll('section').length});
  document.body.appendChild(out);
});
</script>"""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None and os.environ.get("CI") != "true",
        reason="chromium is not installed (.ci/run installs it)",
    ),
]


def _chromium(tmp_path, *args) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile"
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def report_file(tmp_path_factory):
    data = load("digits")
    ae = AutoencoderTransformer(
        (16, 8), epochs=3, batch_size=64, random_state=0, corruption="gaussian", device="cpu"
    ).fit(data.X_train)
    path = tmp_path_factory.mktemp("report") / "report.html"
    options = ReportOptions(max_points=150, activation_steps=10, verbose=False)
    write_report(path, ae, data, {"test_mse": -ae.score(data.X_test)}, options=options)
    return path


def test_report_is_self_contained(report_file):
    page = report_file.read_text()
    assert not re.search(r"""(src|href)=['"](?!data:)""", page), "external resource in the report"
    assert "<script" not in page


def test_every_image_loads_and_console_is_clean(report_file, tmp_path):
    probed = tmp_path / "probed.html"
    probed.write_text(report_file.read_text().replace("</body>", PROBE + "</body>"))
    run = _chromium(
        tmp_path,
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=10000",
        "--dump-dom",
        probed.as_uri(),
    )
    match = re.search(r"<pre id=\"probe\">(.*?)</pre>", run.stdout, re.S)
    assert match, f"probe did not run; chromium said:\n{run.stderr[-2000:]}"
    result = json.loads(match.group(1).replace("&quot;", '"'))
    # loss, reconstructions, weights, top-k, act-max (layer 1 and coding layer), interpolation, latent maps
    assert len(result["images"]) == 8
    assert all(i["ok"] and i["w"] > 0 and i["h"] > 0 for i in result["images"]), result
    console = [line for line in run.stderr.splitlines() if "CONSOLE" in line]
    assert not console, console


def test_screenshot(report_file, tmp_path):
    shot = tmp_path / "report.png"
    run = _chromium(tmp_path, "--window-size=1100,5200", f"--screenshot={shot}", report_file.as_uri())
    assert shot.exists() and shot.stat().st_size > 20_000, run.stderr[-2000:]
    keep = os.environ.get("AEKIT_SCREENSHOT_DIR")
    if keep:
        shutil.copy(shot, os.path.join(keep, "report-screenshot.png"))
