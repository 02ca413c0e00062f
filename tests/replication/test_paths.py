from __future__ import annotations

from pathlib import Path

import pytest

from forecasting.errors import PathEscapeError
from replication.paths import Resolver, inside, parse_endpoint, resolve_under


def test_resolve_under_accepts_nested_paths(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert resolve_under(tmp_path, "a/b/c.db") == (tmp_path / "a" / "b" / "c.db").resolve()


@pytest.mark.parametrize("rel", ["../etc/passwd", "a/../../x", "/etc/passwd", ""])
def test_resolve_under_refuses_dotdot_and_absolute(tmp_path: Path, rel: str) -> None:
    with pytest.raises(PathEscapeError, match="refused"):
        resolve_under(tmp_path, rel)


def test_resolve_under_refuses_symlink_escape(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(PathEscapeError, match="outside the root"):
        resolve_under(root, "link/secret")
    (root / "inner").mkdir()
    (root / "ok").symlink_to(root / "inner")
    assert resolve_under(root, "ok/x") == (root / "inner" / "x").resolve()


def test_inside_does_not_follow_the_last_component(tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to("/")
    assert inside(tmp_path, tmp_path / "link")
    assert not inside(tmp_path, tmp_path)
    assert not inside(tmp_path, tmp_path.parent / "other")


@pytest.mark.parametrize(
    ("spec", "host", "path"),
    [
        ("db2:/srv/replica", "db2", "/srv/replica"),
        ("user@db2.example:replica", "user@db2.example", "replica"),
        ("/srv/replica", None, "/srv/replica"),
        ("./a:b", None, "./a:b"),
    ],
)
def test_parse_endpoint(spec: str, host: str | None, path: str) -> None:
    endpoint = parse_endpoint(spec)
    assert (endpoint.host, endpoint.path) == (host, path)


def test_resolver_locates_like_resolve_under(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "f").write_bytes(b"x")
    (root / "real").mkdir()
    (root / "real" / "g").write_bytes(b"yy")
    (root / "link").symlink_to(root / "real")
    outside.mkdir()
    (root / "a" / "out").symlink_to(outside)
    (root / "a" / "flink").symlink_to(root / "a" / "b" / "f")
    resolve = Resolver(root, what="target file")
    for rel in ["a/b/f", "a/b/missing", "link/g", "a/flink", "new/dir/h", "a/./b/f"]:
        path, st = resolve.locate(rel)
        assert Path(path) == resolve_under(root, rel), rel
        assert (st is None) == (not Path(path).exists()), rel
    assert resolve.locate("link/g")[1].st_size == 2  # the link's target, stat'ed
    for rel in ["a/out/x", "a/../../x", "/etc/passwd", ""]:
        with pytest.raises(PathEscapeError):
            resolve.locate(rel)


def test_a_target_that_reads_as_an_option_is_refused() -> None:
    from forecasting.errors import ConfigError
    from replication.paths import parse_endpoint

    for spec in ("-oProxyCommand=touch PWNED:/x", "-e=x:y", "--delete"):
        with pytest.raises(ConfigError, match="would read as an option"):
            parse_endpoint(spec)
    assert parse_endpoint("./-e=x:y").host is None
