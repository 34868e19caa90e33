"""Policy tests (`safety-hub notify test`) with the in-test directory."""

from __future__ import annotations

import io
from pathlib import Path

from safety_hub.notify.loader import Known
from safety_hub.notify.testing import main_test, run_policy_tests
from tests.unit.notify_support import directory

POLICY = """policies:
  - name: esc
    match: {tier: [red, orange]}
    steps:
      - {after: 0s, to: role:enterprise_safety_officer}
      - {after: 5m, to: roster:park_duty}
      - {after: 15m, to: role:regulator, tier: red}
    on_clear: {}
"""

TESTS = """policy_files: [policy.yaml]
tests:
  - name: not acknowledged - escalates to the duty officer, then the regulator
    alarm: {alert: ToxicGasLevel2, enterprise: e01, tag: GT-1, priority: critical, class: gas}
    events: [{at: 0s, do: raise}]
    until: 1h
    expect:
      - {at: 0s, person: zhang, channel: email, kind: alarm}
      - {at: 5m, person: li, channel: webhook, kind: escalation}
      - {at: 15m, person: wang, kind: escalation}
  - name: acknowledged at 3 minutes, back to normal at 10 - only the officer is told, twice
    alarm: {alert: PressureHigh, enterprise: e01, tag: PT-1, priority: high, class: process}
    events: [{at: 0s, do: raise}, {at: 3m, do: ack}, {at: 10m, do: clear}]
    until: 1h
    expect:
      - {at: 0s, person: zhang}
      - {at: 10m, person: zhang, kind: clear}
  - name: a low alarm notifies nobody
    alarm: {alert: PressureHigh, enterprise: e01, tag: PT-1, priority: low, class: process}
    events: [{at: 0s, do: raise}]
    until: 1h
"""


def write(tmp_path: Path, tests: str) -> Path:
    (tmp_path / "policy.yaml").write_text(POLICY, encoding="utf-8")
    path = tmp_path / "t.yaml"
    path.write_text(tests, encoding="utf-8")
    return path


def test_policy_tests_pass_and_a_wrong_expectation_fails_located(tmp_path: Path) -> None:
    known = Known(directory().check_target)
    path = write(tmp_path, TESTS)
    out = io.StringIO()
    assert main_test([path], directory(), known, out) == 0, out.getvalue()
    assert "SUCCESS: 3 test(s)" in out.getvalue()
    broken = write(tmp_path, TESTS.replace("{at: 5m, person: li", "{at: 4m, person: li"))
    result = run_policy_tests(broken, directory(), known)
    assert result.failures == [
        f'{broken}:3:5: test "not acknowledged - escalates to the duty officer, then the '
        'regulator": expected 4m li webhook escalation: not sent',
        f'{broken}:3:5: test "not acknowledged - escalates to the duty officer, then the '
        'regulator": unexpected 5m li webhook escalation',
    ]
    typo = write(tmp_path, TESTS.replace("do: ack", "do: acknowledge"))
    (failure,) = run_policy_tests(typo, directory(), known).failures
    assert f"{typo}:13:44:" in failure and "Input should be 'raise'" in failure
