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
    """libFuzzer runs RUNS inputs through decode() and parse_status() in two processes (one per
    core, fixed seeds 1 and 2, RUNS/2 each); none fails."""
    share = (RUNS + 1) // 2
    runs: list[tuple[int, Path, subprocess.Popen[str]]] = []
    for seed in (1, 2):
        work = tmp_path / f"seed-{seed}"
        scratch = work / "corpus"
        scratch.mkdir(parents=True)
        command = [
            sys.executable,
            str(HERE / "fuzz_decoder.py"),
            str(scratch),  # new inputs go to the first directory, not to the committed seeds
            str(HERE / "corpus"),
            f"-dict={HERE / 'json.dict'}",
            "-max_len=4096",
            f"-runs={share}",
            f"-seed={seed}",
            "-timeout=10",  # one input taking 10 s is a bug of its own: a slow poison message
            f"-artifact_prefix={work}/",
        ]
        with (work / "stdout.txt").open("w") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.PIPE, text=True)
        runs.append((seed, work, proc))
    total = 0
    for seed, work, proc in runs:
        _, stderr = proc.communicate(timeout=1_700)
        assert proc.returncode == 0, _failure(seed, work, proc.returncode, stderr)
        done = re.findall(r"^Done (\d+) runs in (\d+) second", stderr, re.MULTILINE)
        assert done, stderr[-3000:]
        assert int(done[-1][0]) == share, done
        total += int(done[-1][0])
    assert total >= RUNS


def _failure(seed: int, work: Path, code: int | None, stderr: str) -> str:
    """What a failed run leaves to reproduce it: the crash inputs themselves (bytes), the
    Python traceback (atheris prints it on either stream) and the end of libFuzzer's log."""
    crashes = {p.name: p.read_bytes()[:600] for p in work.iterdir() if p.name.startswith("crash")}
    noise = re.compile(r"^#\d+\s")
    log = [line for line in stderr.splitlines() if not noise.match(line)]
    stdout = (work / "stdout.txt").read_text(errors="replace")
    return (
        f"fuzzer (seed {seed}) exit {code}; crash inputs {crashes!r}\n"
        f"stdout:\n{stdout[-3000:]}\nstderr (progress lines left out):\n" + "\n".join(log)[-4000:]
    )
