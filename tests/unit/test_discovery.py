"""The repository-level step: which models a root holds (one folder each, or the root itself)."""

from __future__ import annotations

from pathlib import Path

import pytest

from oipserve.errors import InvalidArgument
from oipserve.repository import layout, poll
from oipserve.repository.discovery import (
    FolderPerModel,
    SingleModel,
    is_model_folder,
    layout_of,
)


def write(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_repository_is_one_folder_per_model(tmp_path: Path) -> None:
    write(tmp_path / "b" / "model.py")
    write(tmp_path / "a" / "1" / "model.onnx")
    write(tmp_path / "c" / "model.toml", 'backend = "python"\n')
    write(tmp_path / ".hidden" / "model.py")
    write(tmp_path / "_private" / "model.py")
    write(tmp_path / "README.md")
    assert isinstance(layout_of(tmp_path), FolderPerModel)
    assert layout.model_folders(tmp_path) == {n: tmp_path / n for n in ("a", "b", "c")}
    assert layout.list_model_names(tmp_path) == ["a", "b", "c"]


def test_a_folder_with_no_model_file_is_still_a_model_of_the_repository(tmp_path: Path) -> None:
    """It is listed (and its load says what it lacks), as before readers existed."""
    (tmp_path / "empty").mkdir()
    assert layout.list_model_names(tmp_path) == ["empty"]


@pytest.mark.parametrize("marker", ["model.joblib", "model.onnx", "model.toml"])
def test_a_root_holding_a_model_is_that_one_model(tmp_path: Path, marker: str) -> None:
    root = tmp_path / "mnt-models"
    write(root / marker, 'backend = "python"\n' if marker == "model.toml" else "x")
    write(root / "sub" / "model.py")  # a folder inside a model is not a second model
    assert is_model_folder(root)
    assert isinstance(layout_of(root), SingleModel)
    assert layout.model_folders(root) == {"mnt-models": root}
    assert layout.validate_name(root, "mnt-models") == root.resolve()
    with pytest.raises(InvalidArgument, match="one model 'mnt-models'"):
        layout.validate_name(root, "sub")


def test_a_single_model_root_is_read_as_the_model(tmp_path: Path) -> None:
    root = tmp_path / "iris"
    write(root / "model.joblib")
    source = layout.read_model(root, "iris")
    assert source.path == root.resolve()
    assert source.reader == "zero-config"
    assert layout.guess_backend(source, source.version_folder("1")) == (
        "sklearn",
        root.resolve() / "model.joblib",
    )


def test_a_single_model_can_be_given_its_name(tmp_path: Path) -> None:
    write(tmp_path / "model.pt")
    assert SingleModel("resnet").discover(tmp_path) == {"resnet": tmp_path}
    assert layout_of(tmp_path, "resnet").discover(tmp_path) == {"resnet": tmp_path}


def test_version_folders_alone_do_not_make_the_root_a_model(tmp_path: Path) -> None:
    """``root/1/model.onnx`` is as likely a model named ``1`` as a version: the repository."""
    write(tmp_path / "1" / "model.onnx")
    assert not is_model_folder(tmp_path)
    assert layout.list_model_names(tmp_path) == ["1"]


def test_poll_snapshots_follow_the_layout(tmp_path: Path) -> None:
    root = tmp_path / "one"
    write(root / "model.py")
    assert list(poll.snapshot(root)) == ["one"]
    repository = tmp_path / "repo"
    write(repository / "a" / "model.py")
    write(repository / "b" / "model.py")
    assert list(poll.snapshot(repository)) == ["a", "b"]
