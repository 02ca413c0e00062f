"""Settings ``sync.endpoints``: what loads, and what is refused at load (a ConfigError naming it).

No endpoint may be, contain or lie inside replicast's own state (data dir, lake,
MLflow store, artifacts), also through a symlink or a ``host:path`` that reaches
this machine.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from forecasting.errors import ConfigError
from forecasting.settings import Settings, load_settings
from forecasting.sync_endpoints import is_this_host


def _load(tmp_path: Path, endpoint: str, *, extra: str = "", head: str = "") -> Settings:
    toml = tmp_path / "replicast.toml"
    toml.write_text(
        f'data_dir = "{tmp_path / "var"}"\n{head}\n[sync.endpoints.ep]\n{endpoint}\n{extra}\n'
    )
    return load_settings(toml)


def _refused(tmp_path: Path, endpoint: str, *, head: str = "") -> str:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, endpoint, head=head)
    return str(err.value)


def test_endpoints_load_with_their_parts(tmp_path: Path) -> None:
    toml = tmp_path / "replicast.toml"
    toml.write_text(
        f'data_dir = "{tmp_path / "var"}"\n'
        f'[sync.endpoints.primary]\npath = "{tmp_path}/srv/segments/"\n'
        '[sync.endpoints.eu]\npath = "sync@replica-eu:/srv/db//segments/"\nrole = "target"\n'
        'link = "eu-west"\nallow_delete = true\n'
        '[sync.endpoints.v6]\npath = "[fe80::1]:/srv/db"\nrole = "target"\n'
    )
    endpoints = load_settings(toml).sync.endpoints
    primary, eu, v6 = endpoints["primary"], endpoints["eu"], endpoints["v6"]
    assert (primary.path, primary.role, primary.allow_delete) == (
        f"{tmp_path}/srv/segments",
        "source",
        False,
    )
    assert primary.local_path() == (tmp_path / "srv" / "segments").resolve()
    assert (eu.host, eu.remote_path, eu.link, eu.allow_delete) == (
        "sync@replica-eu",
        "/srv/db/segments",
        "eu-west",
        True,
    )
    assert eu.local_path() is None and eu.is_target and not eu.is_source
    assert (v6.host, v6.remote_path) == ("[fe80::1]", "/srv/db")


def test_endpoints_come_from_the_environment_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "REPLICAST_SYNC__ENDPOINTS", f'{{"env": {{"path": "{tmp_path}/in", "role": "both"}}}}'
    )
    assert load_settings().sync.endpoints["env"].role == "both"


@pytest.mark.parametrize(
    ("path", "what"),
    [
        ("{var}", "is the data dir"),
        ("{var}/", "is the data dir"),
        ("{var}/lake", "is the lake"),
        ("{var}/lake/node_metrics", "lies inside the lake"),
        ("{var}/mlartifacts", "is the model artifacts"),
        ("{var}/mlartifacts/1/abc", "lies inside the model artifacts"),
        ("{var}/sync", "lies inside the data dir"),
        ("{var}/../var/lake", "is the lake"),
        ("{tmp}", "contains the"),
        ("/", "contains the"),
    ],
)
def test_an_endpoint_on_replicasts_own_state_is_refused(
    tmp_path: Path, path: str, what: str
) -> None:
    spec = path.format(var=tmp_path / "var", tmp=tmp_path)
    message = _refused(tmp_path, f'path = "{spec}"\nrole = "both"')
    assert "sync.endpoints.ep.path" in message
    assert what in message


def test_a_symlink_to_the_data_dir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "var").mkdir()
    (tmp_path / "innocent").symlink_to(tmp_path / "var")
    message = _refused(tmp_path, f'path = "{tmp_path}/innocent/lake"')
    assert "sync.endpoints.ep.path" in message and "is the lake" in message


def test_the_mlflow_store_elsewhere_is_protected(tmp_path: Path) -> None:
    store = tmp_path / "mlflow-store"
    head = f'mlflow_tracking_uri = "sqlite:///{store}/mlflow.db"'
    message = _refused(tmp_path, f'path = "{store}"', head=head)
    assert "contains the MLflow store" in message
    # a sibling is fine
    assert _load(tmp_path, f'path = "{tmp_path}/segments"', head=head).sync.endpoints


@pytest.mark.parametrize(
    "host", ["localhost", "127.0.0.1", "127.1", "2130706433", "0.0.0.0", "[::1]", "LocalHost"]
)
def test_a_host_path_reaching_this_machine_is_checked_like_a_local_path(
    tmp_path: Path, host: str
) -> None:
    message = _refused(tmp_path, f'path = "{host}:{tmp_path}/var/lake"\nrole = "target"')
    assert "sync.endpoints.ep.path" in message and "is the lake" in message


@pytest.mark.parametrize(
    ("endpoint", "field", "reason"),
    [
        ('path = "var/segments"', "path", "absolute local directory"),
        ('path = "db2:srv/segments"\nrole = "target"', "path", "remote path must be absolute"),
        ('path = ":/srv"\nrole = "target"', "path", "host:/absolute/path"),
        ('path = "-oProxyCommand=touch /tmp/pwn:/srv"\nrole = "target"', "path", "host:/abs"),
        ('path = "db2:/srv/../etc"\nrole = "target"', "path", "'..'"),
        ('path = "db2:/srv/$(reboot)"\nrole = "target"', "path", "remote shell"),
        ('path = "db2:/srv/a b;rm"\nrole = "target"', "path", "remote shell"),
        ('path = "/srv/a\\nb"', "path", "control characters"),
        ('path = ""', "path", "empty"),
        ('path = "db2:/srv/x"', "ep", "can only be a target"),
        ('path = "/srv/x"\nallow_delete = true', "ep", "allow_delete"),
        ('path = "/srv/x"\nlink = "mars"', "link", "unknown region 'mars'"),
        ('path = "/srv/x"\nrole = "sink"', "role", "role"),
        ('path = "/srv/x"\nallow_delte = true', "allow_delte", "Extra inputs"),
    ],
)
def test_malformed_endpoints_are_refused_naming_the_field(
    tmp_path: Path, endpoint: str, field: str, reason: str
) -> None:
    message = _refused(tmp_path, endpoint)
    assert "sync.endpoints.ep" in message
    assert field in message
    assert reason in message


def test_a_bad_endpoint_name_is_refused(tmp_path: Path) -> None:
    toml = tmp_path / "replicast.toml"
    toml.write_text('[sync.endpoints."../x"]\npath = "/srv/x"\n')
    with pytest.raises(ConfigError, match=r"sync\.endpoints: .*endpoint names \['\.\./x'\]"):
        load_settings(toml)


def test_the_refusal_does_not_echo_the_api_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPLICAST_SERVE__API_TOKEN", "s3cret-token-value")
    message = _refused(tmp_path, f'path = "{tmp_path}/var"')
    assert "s3cret-token-value" not in message


@pytest.mark.parametrize(
    ("host", "local"),
    [("localhost", True), ("ip6-localhost", True), ("127.8.9.10", True), ("[::]", True)]
    + [("replica-eu", False), ("10.1.2.3", False), ("db.example.com", False)],
)
def test_is_this_host(host: str, local: bool) -> None:
    assert is_this_host(host) is local


def test_this_machines_own_name_is_this_host() -> None:
    assert is_this_host(socket.gethostname())
