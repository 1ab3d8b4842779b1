"""Fault injection: ``aekit train`` killed with SIGKILL at many moments (during checkpoint
writes, while its output folder is built, between the two renames that swap it in, at random)
or stopped by SIGINT and SIGTERM never leaves a broken or half-written output folder, and its
last checkpoint always resumes to the weights of an uninterrupted run (tests/fault_runner.py).

``AEKIT_FAULT_KILLS`` sets how many runs are stopped (default 6: the three windows, SIGINT, a
random moment, SIGTERM; a nightly run can take more).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RUNNER = Path(__file__).with_name("fault_runner.py")


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="the runner forks its children")
def test_killed_runs_leave_no_broken_folder_and_always_resume(tmp_path):
    kills = int(os.environ.get("AEKIT_FAULT_KILLS", "6"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, str(RUNNER), str(tmp_path), str(kills), "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60 + 30 * kills,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["problems"] == []
    if kills >= 3:  # the first three runs are each killed in one of the windows
        assert set(report["windows_hit"]) >= {"checkpoint write", "output build", "swap"}, report["events"]
    if kills >= 6:  # the fourth and sixth are SIGINT and SIGTERM: status 130 and 143, one line
        assert {"SIGINT", "SIGTERM"} <= {e.get("how") for e in report["events"]}
