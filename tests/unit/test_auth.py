"""Users file, tokens, the authenticator, the action rate limit, and `safety-hub users`."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from safety_hub.api.auth import (
    ADMIN_USER,
    Authenticator,
    Principal,
    RateLimiter,
    Role,
    UserRecord,
    hash_token,
    load_users,
    write_users,
)
from safety_hub.cli import main
from safety_hub.errors import ConfigError, LoadError
from safety_hub.settings import load_settings

ENTERPRISES = {"e01-chloralkali", "e02-sodium"}


def test_users_file_round_trip_and_token_lookup(tmp_path: Path) -> None:
    """Users written to the file come back; a token maps to its user, role and scope; the file
    holds only hashes and is private to its owner."""
    path = tmp_path / "users.yaml"
    write_users(
        path,
        [
            UserRecord("op-wang", Role.OPERATOR, None, hash_token("tok-wang")),
            UserRecord("e1-li", Role.VIEWER, "e01-chloralkali", hash_token("tok-li")),
        ],
    )
    assert "tok-wang" not in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    auth = Authenticator(users_file=path, enterprises=ENTERPRISES)
    assert auth.authenticate("tok-wang") == Principal("op-wang", Role.OPERATOR, None)
    assert auth.authenticate("tok-li") == Principal("e1-li", Role.VIEWER, "e01-chloralkali")
    assert auth.authenticate("tok-nobody") is None
    assert auth.authenticate("") is None
    assert auth.authenticate(None) is None


def test_admin_token_is_the_built_in_admin() -> None:
    auth = Authenticator(admin_token="a-long-admin-token-123")
    assert auth.authenticate("a-long-admin-token-123") == Principal(ADMIN_USER, Role.ADMIN, None)
    assert auth.authenticate("a-long-admin-token-12") is None


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("users: [{name: a, role: boss, token_sha256: " + "0" * 64 + "}]", "role 'boss'"),
        ("users: [{name: a, role: viewer, token_sha256: abc}]", "64 lower-case hex"),
        (
            "users: [{name: a, role: viewer, enterprise: e99, token_sha256: " + "0" * 64 + "}]",
            "e99",
        ),
        ("users: [{name: admin, role: viewer, token_sha256: " + "0" * 64 + "}]", "built-in"),
        ("users: [{name: 'a b', role: viewer, token_sha256: " + "0" * 64 + "}]", "name 'a b'"),
        ("users: [{name: a, role: viewer, token: x, token_sha256: " + "0" * 64 + "}]", "token"),
        ("people: []", "one key, users"),
        ("users: [", "not valid YAML"),
    ],
)
def test_bad_users_file_names_the_problem(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "users.yaml"
    path.write_text(text)
    with pytest.raises(LoadError) as caught:
        load_users(path, ENTERPRISES)
    assert needle in str(caught.value)
    # The hub turns it into a configuration error naming the variable.
    with pytest.raises(ConfigError) as config:
        Authenticator(users_file=path, enterprises=ENTERPRISES)
    assert config.value.variable == "SAFETY_HUB_USERS_FILE"


def test_users_file_changes_are_picked_up_and_a_broken_one_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user added to (or removed from) the file works without a restart; a broken file keeps
    the users read before."""
    monkeypatch.setattr("safety_hub.api.auth.RELOAD_EVERY_S", 0.0)
    path = tmp_path / "users.yaml"
    write_users(path, [UserRecord("a", Role.VIEWER, None, hash_token("tok-a"))])
    auth = Authenticator(users_file=path)
    assert auth.authenticate("tok-b") is None
    write_users(
        path,
        [
            UserRecord("b", Role.OPERATOR, None, hash_token("tok-b")),
        ],
    )
    assert auth.authenticate("tok-b") == Principal("b", Role.OPERATOR, None)
    assert auth.authenticate("tok-a") is None  # removed
    path.write_text("users: [")
    assert auth.authenticate("tok-b") == Principal("b", Role.OPERATOR, None)


def test_rate_limiter_is_a_token_bucket_per_user() -> None:
    """A burst goes through, the next is refused with the wait until the next token; another
    user has a bucket of its own; time refills it."""
    now = [0.0]
    limiter = RateLimiter(per_minute=6, burst=3, clock=lambda: now[0])
    assert [limiter.take("op") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("op") == pytest.approx(10.0)  # 6 a minute: one every 10 s
    assert limiter.take("other") == 0.0
    now[0] = 9.0
    assert limiter.take("op") == pytest.approx(1.0)
    now[0] = 10.0
    assert limiter.take("op") == 0.0
    assert limiter.take("op") > 0
    now[0] = 1000.0
    assert [limiter.take("op") for _ in range(4)][:3] == [0.0, 0.0, 0.0]  # capped at the burst
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(per_minute=0, burst=1)


def test_no_default_credentials_outside_local_mode(tmp_path: Path) -> None:
    """With a broker configured and no admin token or users file, the API refuses to be built;
    in local mode it makes a random token for the run."""
    remote = load_settings(data_dir=tmp_path, mqtt_url="mqtt://broker:1883")
    with pytest.raises(ConfigError) as caught:
        Authenticator.from_settings(remote, ENTERPRISES)
    assert caught.value.variable == "SAFETY_HUB_ADMIN_TOKEN"
    assert "no default credentials" in str(caught.value)
    local = Authenticator.from_settings(load_settings(data_dir=tmp_path), ENTERPRISES)
    assert local.local_token and len(local.local_token) >= 32
    assert local.authenticate(local.local_token) == Principal(ADMIN_USER, Role.ADMIN, None)
    other = Authenticator.from_settings(load_settings(data_dir=tmp_path), ENTERPRISES)
    assert other.local_token != local.local_token


def test_short_admin_token_is_refused_without_echoing_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(data_dir=tmp_path, admin_token="short")
    assert caught.value.variable == "SAFETY_HUB_ADMIN_TOKEN"
    assert "short" not in str(caught.value).replace("16 characters", "")


def test_run_with_a_broker_and_no_credentials_exits_2(tmp_path: Path) -> None:
    """`safety-hub run` outside local mode without credentials stops before it starts."""
    result = subprocess.run(
        [sys.executable, "-m", "safety_hub.cli", "run"],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            "SAFETY_HUB_MQTT_URL": "mqtt://127.0.0.1:1",
            "SAFETY_HUB_DATA_DIR": str(tmp_path),
        },
    )
    assert result.returncode == 2
    assert "SAFETY_HUB_ADMIN_TOKEN" in result.stderr
    assert "SAFETY_HUB_USERS_FILE" in result.stderr
    assert not (tmp_path / "spool.sqlite").exists()  # nothing was started


def test_cli_users_add_list_remove(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`users add` prints a token once and stores its hash; the token authenticates as the
    user; duplicates and unknown enterprises are refused; `remove` revokes it."""
    path = tmp_path / "users.yaml"
    monkeypatch.setenv("SAFETY_HUB_USERS_FILE", str(path))
    assert main(["users", "add", "op-wang", "--role", "operator"]) == 0
    token = capsys.readouterr().out.strip()
    assert main(["users", "add", "e1-li", "--enterprise", "e01-chloralkali"]) == 0
    token_li = capsys.readouterr().out.strip()
    assert token not in path.read_text() and hash_token(token) in path.read_text()
    auth = Authenticator(users_file=path)
    assert auth.authenticate(token) == Principal("op-wang", Role.OPERATOR, None)
    assert auth.authenticate(token_li) == Principal("e1-li", Role.VIEWER, "e01-chloralkali")

    assert main(["users", "add", "op-wang"]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["users", "add", "x", "--enterprise", "e99-nowhere"]) == 2
    assert "e99-nowhere" in capsys.readouterr().err
    assert main(["users", "list"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "op-wang\toperator\t*",
        "e1-li\tviewer\te01-chloralkali",
    ]
    assert main(["users", "remove", "op-wang"]) == 0
    assert Authenticator(users_file=path).authenticate(token) is None
    assert main(["users", "remove", "op-wang"]) == 1
    monkeypatch.delenv("SAFETY_HUB_USERS_FILE")
    assert main(["users", "list"]) == 2
    assert "SAFETY_HUB_USERS_FILE" in capsys.readouterr().err
