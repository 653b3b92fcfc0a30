"""One model's folder as KServe's storage initializer leaves it: which files are models, how
``.bst`` / ``.txt`` / ``.json`` are told apart, how the root is recognised and named, and what a
folder that is neither a model nor a repository is told."""

from __future__ import annotations

from pathlib import Path

import pytest

from oipserve.errors import InvalidArgument
from oipserve.repository import layout
from oipserve.repository.discovery import (
    FolderPerModel,
    SingleModel,
    check_repository,
    is_model_folder,
    layout_of,
)
from oipserve.repository.readers import reader_for
from oipserve.repository.readers.guess import backend_of_file
from oipserve.repository.readers.storage_initializer import model_file_candidates, runtime_of

LIGHTGBM_TEXT = b"tree\nversion=v4\nnum_class=1\n"
XGBOOST_JSON = b'{"learner":{"attributes":{}},"version":[3,0,0]}'
XGBOOST_UBJ = b"{L\x00\x00\x00\x00\x00\x00\x00\x07learner{"


@pytest.mark.parametrize(
    ("name", "content", "runtime"),
    [
        ("iris.joblib", b"\x80\x04", "sklearn"),
        ("model.pkl", b"\x80\x04", "sklearn"),
        ("classifier.pickle", b"\x80\x04", "sklearn"),
        ("booster.ubj", XGBOOST_UBJ, "xgboost"),
        ("model.bst", XGBOOST_UBJ, "xgboost"),
        ("model.bst", LIGHTGBM_TEXT, "lightgbm"),
        ("trees.txt", LIGHTGBM_TEXT, "lightgbm"),
        ("booster.json", XGBOOST_JSON, "xgboost"),
        ("style.onnx", b"\x08\x07", "onnxruntime"),
        ("net.pt", b"PK\x03\x04", "pytorch"),
        # never models, whatever they hold
        ("labels.txt", LIGHTGBM_TEXT, ""),
        ("model-settings.json", XGBOOST_JSON, ""),
        ("settings.json", XGBOOST_JSON, ""),
        ("config.json", XGBOOST_JSON, ""),
        ("tokenizer.json", b"{}", ""),
        ("tokenizer_config.json", b"{}", ""),
        ("special_tokens_map.json", b"{}", ""),
        ("vocab.txt", b"tree\n", ""),
        ("merges.txt", b"#version\n", ""),
        # not models by their content or extension
        ("notes.txt", b"some notes\n", ""),
        ("metadata.json", b'{"owner": "me"}', ""),
        ("saved_model.pb", b"\x08\x01", ""),
        ("model.h5", b"\x89HDF", ""),
    ],
)
def test_runtime_of_a_file(tmp_path: Path, name: str, content: bytes, runtime: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert runtime_of(path) == runtime


def test_zero_config_model_bst_told_apart_by_content(tmp_path: Path) -> None:
    lightgbm, xgboost = tmp_path / "a" / "model.bst", tmp_path / "b" / "model.bst"
    for path, content in ((lightgbm, LIGHTGBM_TEXT), (xgboost, XGBOOST_UBJ)):
        path.parent.mkdir()
        path.write_bytes(content)
    assert backend_of_file(lightgbm) == "lightgbm"
    assert backend_of_file(xgboost) == "xgboost"


def _mnt_models(tmp_path: Path, files: dict[str, bytes]) -> Path:
    root = tmp_path / "mnt" / "models"
    root.mkdir(parents=True)
    for name, content in files.items():
        (root / name).write_bytes(content)
    return root


def test_a_root_holding_one_model_file_is_one_model(tmp_path: Path) -> None:
    root = _mnt_models(
        tmp_path, {"iris.joblib": b"\x80\x04", "labels.txt": b"a\n", "config.json": b"{}"}
    )
    assert is_model_folder(root)
    assert isinstance(layout_of(root, "sklearn-iris"), SingleModel)
    assert layout.list_model_names(root, "sklearn-iris") == ["sklearn-iris"]
    assert layout.list_model_names(root) == ["models"], "unnamed: the folder's name"
    source = layout.read_model(root, "sklearn-iris", model_name="sklearn-iris")
    assert source.reader == "model file"
    assert (source.config.backend, source.config.default_model_filename) == (
        "sklearn",
        "iris.joblib",
    )
    assert layout.guess_backend(source, source.version_folder("1")) == (
        "sklearn",
        root / "iris.joblib",
    )
    with pytest.raises(InvalidArgument, match="the folder of the one model 'sklearn-iris'"):
        layout.validate_name(root, "other", "sklearn-iris")


def test_model_dot_ext_stays_zero_config(tmp_path: Path) -> None:
    root = _mnt_models(tmp_path, {"model.bst": LIGHTGBM_TEXT, "model-settings.json": b"{}"})
    # an MLServer settings file naming no runtime: its reader guesses as zero-config does
    assert reader_for(root).name == "model-settings.json"
    source = layout.read_model(root, "lgb", model_name="lgb")
    assert layout.guess_backend(source, root) == ("lightgbm", root / "model.bst")


def test_several_model_files_are_ambiguous(tmp_path: Path) -> None:
    root = _mnt_models(tmp_path, {"a.joblib": b"\x80", "b.onnx": b"\x08"})
    assert set(model_file_candidates(root).values()) == {"sklearn", "onnxruntime"}
    with pytest.raises(InvalidArgument, match=r"ambiguous.*a\.joblib \(sklearn\).*b\.onnx"):
        layout.read_model(root, "m", model_name="m")


def test_a_repository_of_model_folders_ignores_the_name(tmp_path: Path) -> None:
    root = tmp_path / "repository"
    (root / "iris").mkdir(parents=True)
    (root / "iris" / "model.joblib").write_bytes(b"\x80")
    (root / "README.txt").write_text("my models\n")
    assert isinstance(layout_of(root, "service-name"), FolderPerModel)
    assert layout.list_model_names(root, "service-name") == ["iris"]
    check_repository(root)


def test_an_empty_folder_is_an_empty_repository(tmp_path: Path) -> None:
    check_repository(tmp_path)
    assert layout.list_model_names(tmp_path) == []


def test_neither_a_model_nor_a_repository(tmp_path: Path) -> None:
    root = _mnt_models(tmp_path, {"saved_model.pb": b"\x08", "labels.txt": b"a\n"})
    with pytest.raises(InvalidArgument) as info:
        check_repository(root)
    message = str(info.value)
    assert "is neither a model repository nor one model's folder" in message
    assert "labels.txt, saved_model.pb" in message
    for looked_for in ("model folders", "model.toml", "*.joblib", "*.pickle", "*.ubj", "*.pt"):
        assert looked_for in message
