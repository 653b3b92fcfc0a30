"""Guessing a model's runtime from its folder: every extension, overrides, ambiguity, no file."""

from __future__ import annotations

from pathlib import Path

import pytest

from oipserve.errors import InvalidArgument
from oipserve.repository import layout
from oipserve.repository.layout import BACKEND_BY_EXTENSION, CONFIG_FILE, guess_backend, read_model

EXPECTED = {
    ".joblib": "sklearn",
    ".pkl": "sklearn",
    ".ubj": "xgboost",
    ".bst": "xgboost",
    ".json": "xgboost",
    ".txt": "lightgbm",
    ".onnx": "onnxruntime",
    ".pt": "pytorch",
    ".pt2": "pytorch",
    ".py": "python",
}


def make_model(root: Path, name: str, *files: str, config: str | None = None) -> Path:
    """A model folder ``root/name`` holding ``files`` (paths relative to it) and a config."""
    folder = root / name
    folder.mkdir(parents=True)
    for file in files:
        path = folder / file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    if config is not None:
        (folder / CONFIG_FILE).write_text(config)
    return folder


def guess(root: Path, name: str, version: str = "1") -> tuple[str, Path | None]:
    source = read_model(root, name)
    return guess_backend(source, source.version_folder(version))


def test_the_table_covers_every_documented_extension() -> None:
    assert BACKEND_BY_EXTENSION == EXPECTED


@pytest.mark.parametrize(("extension", "backend"), sorted(EXPECTED.items()))
def test_every_extension_names_its_runtime(tmp_path: Path, extension: str, backend: str) -> None:
    folder = make_model(tmp_path, "m", f"model{extension}")
    assert guess(tmp_path, "m") == (backend, folder / f"model{extension}")


@pytest.mark.parametrize(("extension", "backend"), sorted(EXPECTED.items()))
def test_every_extension_in_a_version_folder(tmp_path: Path, extension: str, backend: str) -> None:
    folder = make_model(tmp_path, "m", f"1/model{extension}", f"3/model{extension}")
    source = read_model(tmp_path, "m")
    assert list(source.versions) == ["1", "3"]
    assert guess_backend(source, folder / "3") == (backend, folder / "3" / f"model{extension}")


def test_the_model_folder_is_searched_after_the_version_folder(tmp_path: Path) -> None:
    folder = make_model(tmp_path, "m", "model.onnx", "1/README.md")
    assert guess(tmp_path, "m") == ("onnxruntime", folder / "model.onnx")


def test_other_files_are_never_guessed_at(tmp_path: Path) -> None:
    folder = make_model(
        tmp_path,
        "m",
        "model.txt",
        "labels.txt",
        "model.md",
        "weights.onnx",
        "model.onnx.bak",
    )
    assert guess(tmp_path, "m") == ("lightgbm", folder / "model.txt")


def test_no_model_file_says_what_is_expected(tmp_path: Path) -> None:
    make_model(tmp_path, "m", "labels.txt", "weights.h5")
    with pytest.raises(InvalidArgument, match="has no model file") as info:
        guess(tmp_path, "m")
    message = str(info.value)
    for extension in EXPECTED:
        assert f"model{extension}" in message
    assert 'backend = "..."' in message


def test_two_runtimes_are_ambiguous_and_the_message_says_how_to_resolve(tmp_path: Path) -> None:
    make_model(tmp_path, "m", "model.py", "model.joblib")
    with pytest.raises(InvalidArgument, match="ambiguous") as info:
        guess(tmp_path, "m")
    message = str(info.value)
    assert "model.joblib, model.py" in message
    assert 'backend = "python"' in message
    assert 'backend = "sklearn"' in message
    assert f"m/{CONFIG_FILE}" in message


def test_backend_in_the_config_resolves_the_ambiguity(tmp_path: Path) -> None:
    folder = make_model(tmp_path, "m", "model.py", "model.joblib", config='backend = "python"\n')
    assert guess(tmp_path, "m") == ("python", folder / "model.py")


def test_two_files_of_one_runtime_point_at_default_model_filename(tmp_path: Path) -> None:
    make_model(tmp_path, "m", "model.pt", "model.pt2")
    with pytest.raises(InvalidArgument, match="default_model_filename"):
        guess(tmp_path, "m")


def test_default_model_filename_picks_the_file(tmp_path: Path) -> None:
    folder = make_model(
        tmp_path, "m", "model.pt", "model.pt2", config='default_model_filename = "model.pt2"\n'
    )
    assert guess(tmp_path, "m") == ("pytorch", folder / "model.pt2")


def test_default_model_filename_of_another_name_names_the_runtime(tmp_path: Path) -> None:
    folder = make_model(
        tmp_path, "m", "1/iris.onnx", config='default_model_filename = "iris.onnx"\n'
    )
    assert guess(tmp_path, "m") == ("onnxruntime", folder / "1" / "iris.onnx")


def test_default_model_filename_that_is_missing_is_refused(tmp_path: Path) -> None:
    make_model(tmp_path, "m", "model.onnx", config='default_model_filename = "other.onnx"\n')
    with pytest.raises(InvalidArgument, match=r"other\.onnx"):
        guess(tmp_path, "m")


def test_unknown_default_model_filename_needs_a_backend(tmp_path: Path) -> None:
    make_model(tmp_path, "m", "weights.bin", config='default_model_filename = "weights.bin"\n')
    with pytest.raises(InvalidArgument, match=r'backend = "\.\.\."'):
        guess(tmp_path, "m")


def test_backend_overrides_the_guess_and_keeps_the_file(tmp_path: Path) -> None:
    # a .json that is not an XGBoost model: the config says which runtime reads it
    folder = make_model(tmp_path, "m", "model.json", config='backend = "my_runtime"\n')
    assert guess(tmp_path, "m") == ("my_runtime", folder / "model.json")


def test_backend_override_hands_a_file_of_any_extension(tmp_path: Path) -> None:
    folder = make_model(tmp_path, "m", "1/model.bin", config='backend = "my_runtime"\n')
    assert guess(tmp_path, "m") == ("my_runtime", folder / "1" / "model.bin")


def test_backend_prefers_its_own_extension(tmp_path: Path) -> None:
    folder = make_model(tmp_path, "m", "model.json", "model.txt", config='backend = "lightgbm"\n')
    assert guess(tmp_path, "m") == ("lightgbm", folder / "model.txt")


def test_backend_without_a_file_leaves_the_search_to_the_runtime(tmp_path: Path) -> None:
    make_model(tmp_path, "m", "1/weights.bin", "1/model.a", "1/model.b", config='backend = "x"\n')
    assert guess(tmp_path, "m") == ("x", None)


def test_the_config_file_is_not_a_model_file(tmp_path: Path) -> None:
    make_model(tmp_path, "m", config='backend = "my_runtime"\n')
    assert guess(tmp_path, "m") == ("my_runtime", None)


@pytest.mark.parametrize(
    ("platform", "backend"),
    [
        ("onnxruntime_onnx", "onnxruntime"),
        ("pytorch_libtorch", "pytorch"),
        ("pytorch_export", "pytorch"),
        ("xgboost", "xgboost"),
        ("lightgbm", "lightgbm"),
        ("sklearn", "sklearn"),
    ],
)
def test_platform_names_the_runtime(tmp_path: Path, platform: str, backend: str) -> None:
    folder = make_model(tmp_path, "m", "model.bin", config=f'platform = "{platform}"\n')
    assert guess(tmp_path, "m") == (backend, folder / "model.bin")


def test_model_files_lists_only_known_extensions(tmp_path: Path) -> None:
    folder = make_model(tmp_path, "m", "model.onnx", "model.toml", "model.bin", "labels.txt")
    assert layout.model_files(folder) == [folder / "model.onnx"]
