"""The README's Python examples run as written."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
def test_readme_python_examples_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "README has no python example"
    monkeypatch.chdir(tmp_path)  # the example saves a model directory
    namespace = {"__name__": "readme"}  # later examples use what earlier ones defined
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    assert (tmp_path / "my-model" / "model.safetensors").exists()
