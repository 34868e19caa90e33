"""The uplink transports against real servers: HTTP batches against the webhook receiver
(tests/fixtures/receivers.py), the TCP envelope against the test platform in reply mode and
against a closed port."""

from __future__ import annotations

import pytest

from connectors.uplink import AesCodec, HttpBatchTransport, TcpEnvelopeTransport
from safety_hub.uplink import OutRecord
from safety_hub.uplink.schema import HttpModel, TcpEnvelopeModel
from tests.fixtures.processes import free_port
from tests.fixtures.receivers import WebhookReceiver
from tests.fixtures.uplink_receiver import EnvelopeReceiver

pytestmark = pytest.mark.integration

KEY = b"0123456789abcdef0123456789abcdef"  # AES-256


def records(n: int) -> list[OutRecord]:
    return [OutRecord("reading", f"id-{i}", "e1/T", {"VALUE": i}) for i in range(n)]


def http(receiver: WebhookReceiver) -> HttpBatchTransport:
    model = HttpModel(url=f"http://127.0.0.1:{receiver.port}/up", timeout_s=5)
    return HttpBatchTransport(model, "park-1", token="t0ken")


def test_http_2xx_delivers_the_batch_with_data_ids() -> None:
    """200: the whole batch is done; the body carries park, dataId, kind and the record."""
    with WebhookReceiver() as receiver:
        transport = http(receiver)
        outcome = transport.send(records(3))
        transport.close()
    assert (outcome.done, outcome.rejected, outcome.error) == (3, {}, None)
    (request,) = receiver.requests
    assert request.path == "/up" and request.header("Authorization") == "Bearer t0ken"
    body = request.json()
    assert body["park"] == "park-1"
    assert [r["dataId"] for r in body["records"]] == ["id-0", "id-1", "id-2"]
    assert body["records"][2] == {"dataId": "id-2", "kind": "reading", "data": {"VALUE": 2}}


def test_http_transport_sends_again_after_close() -> None:
    """A node of a pair stops its uplink (the transport closed) and acts again later: the same
    transport sends again."""
    with WebhookReceiver() as receiver:
        transport = http(receiver)
        first = transport.send(records(1))
        transport.close()
        again = transport.send(records(2))
        transport.close()
    assert (first.done, first.error, again.done, again.error) == (1, None, 2, None)
    assert len(receiver.requests) == 2


@pytest.mark.parametrize("status", [500, 503, 408, 429])
def test_http_outage_statuses_keep_the_batch_for_a_retry(status: int) -> None:
    """5xx, 408 and 429: nothing done, an error to back off on."""
    with WebhookReceiver() as receiver:
        receiver.status = status
        transport = http(receiver)
        outcome = transport.send(records(2))
        transport.close()
    assert outcome.done == 0 and outcome.error is not None and f"HTTP {status}" in outcome.error


def test_http_4xx_refuses_records_one_by_one_not_forever() -> None:
    """400: the batch is tried record by record; each refusal is final and has its reason."""
    with WebhookReceiver() as receiver:
        receiver.status = 400
        transport = http(receiver)
        outcome = transport.send(records(2))
        transport.close()
    assert outcome.done == 2 and outcome.error is None
    assert sorted(outcome.rejected) == [0, 1] and "HTTP 400" in outcome.rejected[0]
    assert len(receiver.requests) == 3  # the batch, then each record alone


def test_http_unreachable_is_an_outage() -> None:
    """Connection refused: nothing done, retried later."""
    model = HttpModel(url=f"http://127.0.0.1:{free_port()}/up", timeout_s=2)
    transport = HttpBatchTransport(model, "park-1")
    outcome = transport.send(records(1))
    transport.close()
    assert outcome.done == 0 and outcome.error is not None and "network" in outcome.error


def tcp_model(port: int, ack: str) -> TcpEnvelopeModel:
    return TcpEnvelopeModel.model_validate(
        {
            "host": "127.0.0.1",
            "port": port,
            "app_id": "a",
            "service_id": "s",
            "district_code": "152921",
            "key_env": "K",
            "ack": ack,
            "ack_timeout_s": 2,
            "connect_timeout_s": 2,
        }
    )


def test_tcp_reply_mode_counts_the_platforms_answers() -> None:
    """ack reply: each envelope answered by dataId with code 0 is delivered; AES-256 works."""
    receiver = EnvelopeReceiver(KEY, reply=True).start()
    try:
        transport = TcpEnvelopeTransport(tcp_model(receiver.port, "reply"), AesCodec(KEY))
        outcome = transport.send(records(5))
        again = transport.send(records(7)[5:])
        transport.close()
    finally:
        receiver.stop()
    assert (outcome.done, outcome.error, again.done) == (5, None, 2)
    assert [e.data_id for e in receiver.received()] == [f"id-{i}" for i in range(7)]
    assert receiver.received()[4].records == [{"VALUE": 4}] and receiver.problems == []


def test_tcp_reply_mode_without_replies_sends_again() -> None:
    """ack reply with a platform that never answers: nothing counts as delivered."""
    receiver = EnvelopeReceiver(KEY, reply=False).start()
    try:
        transport = TcpEnvelopeTransport(tcp_model(receiver.port, "reply"), AesCodec(KEY))
        outcome = transport.send(records(2))
        transport.close()
    finally:
        receiver.stop()
    assert outcome.done == 0 and outcome.error is not None and "no reply for 2" in outcome.error


def test_tcp_closed_port_is_an_outage() -> None:
    """Nobody listening: nothing done, the error names the target."""
    port = free_port()
    transport = TcpEnvelopeTransport(tcp_model(port, "write"), AesCodec(KEY))
    outcome = transport.send(records(1))
    transport.close()
    assert (
        outcome.done == 0
        and outcome.error is not None
        and f"tcp://127.0.0.1:{port}" in outcome.error
    )
