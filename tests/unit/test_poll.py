"""Poll mode's folder snapshots, and the file overrides of a repository load."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from oipserve.errors import InvalidArgument
from oipserve.repository import layout
from oipserve.repository.config import parse_json
from oipserve.repository.poll import Changes, RepositoryPoller, compare, fingerprint, snapshot


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_snapshot_lists_model_folders_and_ignores_caches_and_hidden_entries(
    tmp_path: Path,
) -> None:
    _write(tmp_path / "a" / "1" / "model.py", "x")
    _write(tmp_path / "a" / "model.toml", "")
    _write(tmp_path / ".hidden" / "1" / "model.py", "x")
    _write(tmp_path / "_private" / "1" / "model.py", "x")
    before = snapshot(tmp_path)
    assert list(before) == ["a"]
    assert [entry[0] for entry in before["a"]] == ["1", "1/model.py", "model.toml"]
    _write(tmp_path / "a" / "1" / "__pycache__" / "model.cpython.pyc", "bytecode")
    _write(tmp_path / "a" / ".model.py.swp", "editor")
    assert snapshot(tmp_path) == before
    assert snapshot(tmp_path / "gone") == {}


def test_a_rewritten_file_changes_the_fingerprint(tmp_path: Path) -> None:
    model = tmp_path / "m" / "model.py"
    _write(model, "one")
    before = fingerprint(tmp_path / "m")
    stat = model.stat()
    model.write_text("two")  # same size: the modification time tells
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert fingerprint(tmp_path / "m") != before


def test_compare_names_added_changed_and_removed_models(tmp_path: Path) -> None:
    _write(tmp_path / "keep" / "model.py", "x")
    _write(tmp_path / "change" / "1" / "model.py", "x")
    _write(tmp_path / "drop" / "model.py", "x")
    before = snapshot(tmp_path)
    _write(tmp_path / "change" / "2" / "model.py", "x")  # a new version
    (tmp_path / "drop" / "model.py").unlink()
    (tmp_path / "drop").rmdir()
    _write(tmp_path / "new" / "model.py", "x")
    changes = compare(before, snapshot(tmp_path))
    assert changes == Changes(added=["new"], changed=["change"], removed=["drop"])
    assert not compare(before, before)


def test_poller_loads_reloads_and_unloads_and_survives_failures(tmp_path: Path) -> None:
    calls: list[str] = []

    async def load(name: str) -> None:
        calls.append(f"load {name}")
        if name == "broken":
            raise RuntimeError("cannot load")

    async def unload(name: str) -> None:
        calls.append(f"unload {name}")

    async def body() -> None:
        _write(tmp_path / "a" / "model.py", "x")
        _write(tmp_path / "b" / "model.py", "x")
        poller = RepositoryPoller(tmp_path, 0.01, load, unload)
        assert not await poller.poll_once()
        _write(tmp_path / "a" / "2" / "model.py", "x")
        (tmp_path / "b" / "model.py").unlink()
        (tmp_path / "b").rmdir()
        _write(tmp_path / "broken" / "model.py", "x")
        _write(tmp_path / "c" / "model.py", "x")
        await poller.poll_once()
        assert calls == ["unload b", "load broken", "load c", "load a"]
        assert not await poller.poll_once()  # a failed load is not retried until it changes

    asyncio.run(body())


def test_poll_interval_must_be_positive(tmp_path: Path) -> None:
    async def nothing(name: str) -> None:
        return None

    with pytest.raises(ValueError, match="> 0"):
        RepositoryPoller(tmp_path, 0, nothing, nothing)


# -- file overrides of a repository load ---------------------------------------------------------


def test_write_model_files_builds_a_model_folder(tmp_path: Path) -> None:
    folder = layout.write_model_files(
        tmp_path / "m", {"1/model.py": b"x = 1\n", "labels.txt": b"a\nb\n"}
    )
    assert (folder / "1" / "model.py").read_bytes() == b"x = 1\n"
    source = layout.read_model(tmp_path, "m", parse_json('{"backend": "python"}'), folder)
    assert source.versions == {"1": folder / "1"}


@pytest.mark.parametrize("path", ["../x", "1/../../x", "/etc/passwd", "", "1\\model.py", "."])
def test_write_model_files_refuses_paths_leaving_the_folder(tmp_path: Path, path: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid file override path"):
        layout.write_model_files(tmp_path / "m", {path: b"x"})
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("name", ["../x", "/abs", "a/b", "..", ".", "", "a\\b"])
def test_model_names_that_escape_the_repository_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid model name"):
        layout.validate_name(tmp_path, name)
