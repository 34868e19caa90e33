"""How the hub's MQTT sessions report their connection state as one (no broker needed)."""

from __future__ import annotations

from connectors.mqtt import MqttConfig, MqttSessions, sessions_for


def _sessions(events: list[tuple[bool, str]]) -> MqttSessions:
    base = MqttConfig(host="127.0.0.1", port=1, client_id="hub", receive_maximum=1000)
    lanes = [(code, (f"t/{code}",), ()) for code in ("e1", "e2")]
    configs, publisher = sessions_for(base, lanes, None)
    return MqttSessions(configs, publisher, on_connection=lambda up, d: events.append((up, d)))


def test_sessions_still_connecting_at_start_are_no_outage() -> None:
    """While the sessions connect one by one nothing is reported; once all are up, 'connected'."""
    events: list[tuple[bool, str]] = []
    sessions = _sessions(events)
    sessions._listener("e1")(True, "connected")
    sessions._listener("_publisher")(True, "connected")
    assert events == []
    sessions._listener("e2")(True, "connected")
    assert events == [(True, "connected")]


def test_one_session_down_is_an_outage_naming_it() -> None:
    """A session that drops makes the whole source 'down', naming the session and why."""
    events: list[tuple[bool, str]] = []
    sessions = _sessions(events)
    for name in ("e1", "e2", "_publisher"):
        sessions._listener(name)(True, "connected")
    sessions._listener("e2")(False, "keepalive timeout")
    assert events[-1] == (False, "e2: keepalive timeout")
    sessions._listener("e2")(True, "connected")
    assert events[-1] == (True, "connected")


def test_receive_maximum_is_shared_out_and_client_ids_are_distinct() -> None:
    """Each enterprise session gets its share of the receive maximum (at least 16) and its own
    client id; the catch-all is clean and QoS 0; the publisher subscribes to nothing."""
    base = MqttConfig(host="h", port=1, client_id="hub", receive_maximum=1000)
    lanes = [(f"e{i}", (f"t/e{i}",), ()) for i in range(100)]
    configs, publisher = sessions_for(
        base, lanes, (("t/+",), (), lambda topic: topic.startswith("t/e"))
    )
    assert configs["e7"].receive_maximum == 16 and configs["e7"].client_id == "hub/e7"
    catch_all = configs["_unregistered"]
    assert (catch_all.persistent, catch_all.subscribe_qos) == (False, 0)
    assert catch_all.ignore_topic is not None and catch_all.ignore_topic("t/e3")
    assert publisher.subscriptions == () and publisher.client_id == "hub/_publisher"
    assert len({c.client_id for c in configs.values()} | {publisher.client_id}) == 102


def test_a_province_shares_a_bounded_number_of_sessions_and_a_new_enterprise_moves_no_other() -> (
    None
):
    from connectors.mqtt import session_groups

    few = [f"e{k:02d}" for k in range(5)]
    assert session_groups(few, 64) == {code: [code] for code in few}
    many = [f"g{k:03d}" for k in range(1, 501)]
    groups = session_groups(many, 64)
    assert len(groups) <= 64 and all(name.startswith("_g") for name in groups)
    assert sorted(c for group in groups.values() for c in group) == many
    assert max(len(g) for g in groups.values()) <= 20  # spread, not piled up
    more = session_groups([*many, "g501"], 64)
    where = {c: name for name, group in groups.items() for c in group}
    assert all(where[c] == name for name, group in more.items() for c in group if c in where)


def test_the_catch_all_connects_as_its_own_broker_user_with_the_base_password() -> None:
    """SAFETY_HUB_MQTT_CATCH_ALL_USER: the catch-all alone changes user (the ACL of
    `safety-hub broker` fences that user off the registered enterprises); unset, it is the
    base's user like every other session."""
    base = MqttConfig(host="h", port=1, client_id="hub", username="hub", password="pw")
    lanes = [("e1", ("t/e1",), ())]
    catch_all = (("t/+",), (), lambda topic: topic == "t/e1")
    configs, publisher = sessions_for(base, lanes, catch_all, "hub-unregistered")
    fenced = configs["_unregistered"]
    assert (fenced.username, fenced.password) == ("hub-unregistered", "pw")
    assert configs["e1"].username == "hub" and publisher.username == "hub"
    configs, _ = sessions_for(base, lanes, catch_all, None)
    assert configs["_unregistered"].username == "hub"


def test_the_catch_all_copies_are_counted_in_the_hubs_process() -> None:
    """With the sessions as threads of the hub, the catch-all's dropped copies are read from
    its MqttIngest (the child process reports them otherwise)."""
    from connectors.mqtt import MqttSessions

    base = MqttConfig(host="127.0.0.1", port=1, client_id="hub")
    configs, publisher = sessions_for(
        base, [("e1", ("t/e1",), ())], (("t/+",), (), lambda topic: topic == "t/e1")
    )
    import paho.mqtt.client as mqtt

    sessions = MqttSessions(configs, publisher)
    assert sessions.catch_all_copies() == 0
    catch_all = sessions._sessions["_unregistered"]
    got: list[str] = []
    catch_all._handler = lambda m: got.append(m.topic)  # type: ignore[union-attr]
    for topic in (b"t/e1", b"t/e1", b"t/x9"):  # QoS 0: nothing to acknowledge
        catch_all._handle_message(None, None, mqtt.MQTTMessage(topic=topic))  # type: ignore[union-attr,arg-type]
    assert sessions.catch_all_copies() == 2 and got == ["t/x9"]


def test_critical_lanes_have_sessions_and_a_receive_maximum_of_their_own() -> None:
    """Each enterprise's critical topic gets a persistent session of its own, named apart from
    any enterprise code, with a small Receive Maximum that does not shrink the telemetry
    sessions' share; with a province's registry they are grouped as the telemetry ones are."""
    from connectors.mqtt import critical_lanes, enterprise_lanes
    from connectors.mqtt.sessions import CRITICAL_RECEIVE_MAXIMUM, is_critical_session

    codes = ["e01", "e02"]
    lanes = critical_lanes(codes, 64)
    assert lanes == [
        ("_critical-e01", ("hazard/v1/e01/critical/#",), ("hazard/v1/e01/critical/#",)),
        ("_critical-e02", ("hazard/v1/e02/critical/#",), ("hazard/v1/e02/critical/#",)),
    ]
    base = MqttConfig(host="h", port=1, client_id="hub", receive_maximum=1000)
    configs, _ = sessions_for(base, [*enterprise_lanes(codes, 64), *lanes], None)
    assert configs["e01"].receive_maximum == 500  # shared out among the telemetry sessions only
    critical = configs["_critical-e02"]
    assert critical.receive_maximum == CRITICAL_RECEIVE_MAXIMUM
    assert critical.persistent and critical.client_id == "hub/_critical-e02"
    assert is_critical_session("_critical-e02") and not is_critical_session("e02")
    many = [f"g{k:03d}" for k in range(1, 501)]
    grouped = critical_lanes(many, 64)
    assert len(grouped) <= 64 and all(name.startswith("_critical-_g") for name, _, _ in grouped)
    assert sum(len(subs) for _, subs, _ in grouped) == 500
