"""atheris harness: every input goes through the telemetry decoder and the status parser.

    .venv/bin/python tests/fuzz/fuzz_decoder.py SCRATCH_DIR tests/fuzz/corpus \
        -dict=tests/fuzz/json.dict -max_len=4096 -runs=1000000 -seed=1

An input fails the run (libFuzzer stops, exits non-zero and writes it as a crash artifact) when
an exception escapes ``decode`` or ``parse_status`` or when a result breaks an invariant of
``tests/fuzz/invariants.py``. libFuzzer adds the inputs it finds interesting to the first corpus
directory: give it a scratch directory there, so that the committed seed corpus stays as it is.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

# Only the modules under test are instrumented (coverage of the harness's own checks would only
# distract the fuzzer and slow it down), and they must be imported here first: a module that an
# earlier import loaded is not instrumented.
with atheris.instrument_imports(
    include=["safety_hub.ingest.telemetry", "safety_hub.ingest.decoder"]
):
    from safety_hub.ingest.decoder import TelemetryDecoder
    from safety_hub.ingest.telemetry import DecodeLimits, parse_status

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: find tests/

from tests.fuzz.invariants import check_decoded, check_status

NOW = 1_790_000_000_000
TOPIC = "hazard/v1/e1/telemetry"
# The tags the seed corpus uses: registered for e1, for another enterprise, and non-ASCII.
KNOWN_TAGS = {
    ("e1", "GT-1101"): None,
    ("e1", "GT-1102"): None,
    ("e1", "气体-1103"): None,
    ("e2", "LT-2001"): None,
}
LIMITS = DecodeLimits(max_payload_bytes=65_536)
DECODER = TelemetryDecoder(KNOWN_TAGS, {"e1", "e2"}, lambda: NOW, LIMITS)


def test_one_input(data: bytes) -> None:
    check_decoded(DECODER.decode(TOPIC, data), KNOWN_TAGS, LIMITS, NOW)
    check_status(*parse_status(data))


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
