"""`safety-hub notify check|test` against the sample people, rules and park."""

from __future__ import annotations

from pathlib import Path

import pytest

from safety_hub.cli import main


def test_the_shipped_policies_check_and_their_tests_pass(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["notify", "check"]) == 0
    assert "SUCCESS: 3 policies found" in capsys.readouterr().out
    assert main(["notify", "test"]) == 0
    assert "SUCCESS: 9 test(s) in 2 file(s)" in capsys.readouterr().out


def test_a_bad_policy_is_reported_located_with_hints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "policies:\n"
        "  - name: x\n"
        "    match: {alert: ToxicGasLevl2}\n"
        "    steps:\n"
        "      - {after: 0s, to: roster:park_duty}\n",
        encoding="utf-8",
    )
    assert main(["notify", "check", str(bad)]) == 1
    out = capsys.readouterr().out
    assert (
        f'{bad}:3:13: policy "x": unknown alert "ToxicGasLevl2"; did you mean \'ToxicGasLevel2\'?'
        in out
    )
    assert (
        f'{bad}:5:21: policy "x": target "roster:park_duty": unknown roster \'park_duty\'; '
        "did you mean 'park-duty'?" in out
    )
