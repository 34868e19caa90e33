"""The long fuzz run: libFuzzer (atheris) drives a million inputs through the telemetry decoder.

SAFETY_HUB_TEST_FUZZ_RUNS sets the number of inputs (default 1,000,000, the issue's proof); a
smaller number gives a quicker local run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
RUNS = int(os.environ.get("SAFETY_HUB_TEST_FUZZ_RUNS", "1000000"))


# A million inputs take minutes on a loaded 2-core machine: the run is bounded by its count.
@pytest.mark.timeout(1_800)
def test_fuzzed_inputs_never_escape_the_decoder(tmp_path: Path) -> None:
    """libFuzzer runs RUNS inputs (fixed seed) through decode() and parse_status(); none fails."""
    scratch = tmp_path / "corpus"
    scratch.mkdir()
    command = [
        sys.executable,
        str(HERE / "fuzz_decoder.py"),
        str(scratch),  # new inputs go to the first directory, not to the committed seeds
        str(HERE / "corpus"),
        f"-dict={HERE / 'json.dict'}",
        "-max_len=4096",
        f"-runs={RUNS}",
        "-seed=1",
        "-timeout=10",  # one input taking 10 s is a bug of its own: a slow poison message
        f"-artifact_prefix={tmp_path}/",
    ]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=1_700, check=False)
    artifacts = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
    assert proc.returncode == 0, (
        f"fuzzer exit {proc.returncode}; artifacts {artifacts}\n{proc.stderr[-6000:]}"
    )
    done = re.findall(r"^Done (\d+) runs in (\d+) second", proc.stderr, re.MULTILINE)
    assert done, proc.stderr[-3000:]
    assert int(done[-1][0]) == RUNS, done
