from __future__ import annotations

from pathlib import Path

import pytest

from forecasting.errors import ConfigError, UnknownKeyError
from forecasting.settings import load_settings


def test_embedded_defaults_need_no_file(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.tracking_uri.startswith("sqlite:///")
    assert {r.name for r in settings.fleet.regions} >= {"us-east", "eu-west", "cn-north"}
    far = settings.fleet.region("cn-north")
    assert far.rtt_ms > settings.fleet.region("us-east").rtt_ms
    assert far.bandwidth_bytes_s < settings.fleet.region("us-east").bandwidth_bytes_s


def test_toml_then_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "replicast.toml"
    toml.write_text("[forecast]\nhorizon = 12\nfolds = 4\n")
    monkeypatch.setenv("REPLICAST_FORECAST__HORIZON", "48")
    settings = load_settings(toml)
    assert settings.forecast.horizon == 48
    assert settings.forecast.folds == 4


def test_negative_capacity_is_a_clear_error(tmp_path: Path) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text(
        '[[fleet.node_types]]\nname = "x"\nvcpus = 2\nqps_capacity = -5\n'
        "disk_bytes = 1e9\nhourly_cost = 1\n"
    )
    with pytest.raises(ConfigError, match="qps_capacity"):
        load_settings(toml)


def test_unknown_region_in_cluster_is_refused(tmp_path: Path) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text('[[fleet.clusters]]\nname = "a"\nprimary_region = "mars"\nregions = ["mars"]\n')
    with pytest.raises(ConfigError, match="mars"):
        load_settings(toml)


def test_unknown_cluster_lookup_names_known_ones() -> None:
    with pytest.raises(UnknownKeyError, match="orders"):
        load_settings().fleet.cluster("nope")


def test_missing_named_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "absent.toml")


def test_fleet_link_is_the_region_link() -> None:
    fleet = load_settings().fleet
    far = fleet.region("cn-north")
    link = fleet.link("cn-north")
    assert (link.bandwidth_bytes_s, link.rtt_ms) == (far.bandwidth_bytes_s, far.rtt_ms)
    with pytest.raises(UnknownKeyError, match="cn-north"):
        fleet.link("nope")


@pytest.mark.parametrize("data_dir", ["/proc", "/sys/x", "/dev", "/dev/shm/var"])
def test_data_dir_in_a_kernel_file_system_is_refused(
    data_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11: REPLICAST_DATA_DIR=/proc gave a FileExistsError traceback (/proc/locks)."""
    monkeypatch.setenv("REPLICAST_DATA_DIR", data_dir)
    with pytest.raises(ConfigError, match="data_dir: .*kernel file system"):
        load_settings()


def test_data_dir_that_is_a_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11: REPLICAST_DATA_DIR=/etc/hostname gave a NotADirectoryError traceback."""
    file = tmp_path / "hostname"
    file.write_text("x")
    for data_dir in (file, file / "var"):
        monkeypatch.setenv("REPLICAST_DATA_DIR", str(data_dir))
        with pytest.raises(ConfigError, match=f"data_dir: .*{file} exists and is not a directory"):
            load_settings()


def test_data_dir_that_does_not_exist_yet_is_fine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPLICAST_DATA_DIR", str(tmp_path / "new" / "var"))
    assert load_settings().data_dir == tmp_path / "new" / "var"
