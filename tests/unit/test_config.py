"""model.toml / Triton ModelConfig JSON parsing and the repository layout rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from oipserve.errors import InvalidArgument, ModelNotFound
from oipserve.repository import layout
from oipserve.repository.config import ModelParameter, parse_json, parse_toml

EXAMPLE = """
backend = "sklearn"
max_batch_size = 64
[[input]]
name = "input-0"
data_type = "TYPE_FP32"
dims = [4]
[[output]]
name = "predict"
data_type = "INT64"
dims = []
[dynamic_batching]
max_queue_delay_microseconds = 500
preferred_batch_size = [32]
[dynamic_batching.default_queue_policy]
max_queue_size = 1024
[[instance_group]]
count = 2
kind = "KIND_CPU"
[version_policy.latest]
num_versions = 2
[parameters]
some_key = "string value"
"""


def test_parse_full_toml() -> None:
    config = parse_toml(EXAMPLE)
    assert config.backend == "sklearn"
    assert config.max_batch_size == 64
    assert config.input_specs()[0].datatype == "FP32"
    assert config.output_specs()[0].datatype == "INT64"
    assert config.dynamic_batching is not None
    assert config.dynamic_batching.preferred_batch_size == [32]
    assert config.dynamic_batching.default_queue_policy is not None
    assert config.dynamic_batching.default_queue_policy.max_queue_size == 1024
    assert config.instance_group[0].count == 2
    assert config.version_policy is not None
    assert config.version_policy.latest is not None
    assert config.version_policy.latest.num_versions == 2
    assert config.parameter_strings() == {"some_key": "string value"}
    normalized = config.with_normalized_types()
    assert normalized.output[0].data_type == "TYPE_INT64"


def test_triton_json_config() -> None:
    config = parse_json(
        '{"name": "m", "max_batch_size": 8, "input": [{"name": "x", "data_type": "TYPE_INT32",'
        ' "dims": [16]}], "parameters": {"k": {"string_value": "v"}}}'
    )
    assert config.name == "m"
    assert config.parameters["k"] == ModelParameter("v")
    assert config.parameter_strings() == {"k": "v"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max_batch_size = -1", "max_batch_size"),
        ("maxbatch = 3", "maxbatch"),
        ('[[input]]\nname = "x"\ndata_type = "TYPE_NOPE"', "TYPE_NOPE"),
        ('[[input]]\nname = "x"\ndims = [-2]', "dims"),
        ("max_batch_size = 4\n[dynamic_batching]\npreferred_batch_size = [8]", "preferred"),
        ("[[instance_group]]\ncount = 0", "count"),
        ("max_batch_size = ", "invalid TOML"),
        ('max_batch_size = "eight"', "max_batch_size"),
    ],
)
def test_invalid_configs_name_the_field(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_toml(text)


def test_json_config_must_be_an_object() -> None:
    with pytest.raises(InvalidArgument, match="object"):
        parse_json("[1]")
    with pytest.raises(InvalidArgument, match="invalid JSON"):
        parse_json("{")


def _model(root: Path, name: str, *files: str, config: str | None = None) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    for relative in files:
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    if config is not None:
        (folder / "model.toml").write_text(config)
    return folder


def test_versions_and_latest_policy(tmp_path: Path) -> None:
    _model(tmp_path, "m", "1/model.py", "3/model.py", "10/model.py")
    source = layout.read_model(tmp_path, "m")
    assert list(source.versions) == ["1", "3", "10"]
    assert layout.select_versions(source) == ["10"]


def test_version_policies(tmp_path: Path) -> None:
    _model(tmp_path, "a", "1/model.py", "2/model.py", config="[version_policy.all]\n")
    assert layout.select_versions(layout.read_model(tmp_path, "a")) == ["1", "2"]
    _model(
        tmp_path,
        "b",
        "1/model.py",
        "2/model.py",
        "3/model.py",
        config="[version_policy.specific]\nversions = [1, 3]\n",
    )
    assert layout.select_versions(layout.read_model(tmp_path, "b")) == ["1", "3"]
    _model(
        tmp_path,
        "c",
        "1/model.py",
        "2/model.py",
        "3/model.py",
        config="[version_policy.latest]\nnum_versions = 2\n",
    )
    assert layout.select_versions(layout.read_model(tmp_path, "c")) == ["2", "3"]


def test_no_version_folder_means_version_1(tmp_path: Path) -> None:
    folder = _model(tmp_path, "m", "model.joblib")
    source = layout.read_model(tmp_path, "m")
    assert source.versions == {"1": folder}
    assert layout.guess_backend(source, folder) == ("sklearn", folder / "model.joblib")


def test_backend_guess_and_override(tmp_path: Path) -> None:
    folder = _model(tmp_path, "m", "1/model.onnx", "1/labels.txt")
    source = layout.read_model(tmp_path, "m")
    assert layout.guess_backend(source, folder / "1") == (
        "onnxruntime",
        folder / "1" / "model.onnx",
    )
    both = _model(tmp_path, "both", "1/model.onnx", "1/model.joblib")
    source = layout.read_model(tmp_path, "both")
    with pytest.raises(InvalidArgument, match="ambiguous"):
        layout.guess_backend(source, both / "1")
    _model(tmp_path, "pinned", "1/model.onnx", "1/model.joblib", config='backend = "sklearn"\n')
    source = layout.read_model(tmp_path, "pinned")
    backend, path = layout.guess_backend(source, source.versions["1"])
    assert backend == "sklearn"
    assert path is not None
    assert path.name == "model.joblib"
    empty = _model(tmp_path, "empty", "1/readme.md")
    with pytest.raises(InvalidArgument, match="no model file"):
        layout.guess_backend(layout.read_model(tmp_path, "empty"), empty / "1")


def test_names_that_escape_the_repository(tmp_path: Path) -> None:
    for name in ("../x", "..", "/etc", "a/b", ""):
        with pytest.raises(InvalidArgument):
            layout.read_model(tmp_path, name)
    with pytest.raises(ModelNotFound):
        layout.read_model(tmp_path, "absent")


def test_config_name_must_match_folder(tmp_path: Path) -> None:
    _model(tmp_path, "m", "1/model.py", config='name = "other"\n')
    with pytest.raises(InvalidArgument, match="must match"):
        layout.read_model(tmp_path, "m")


def test_model_listing_skips_hidden(tmp_path: Path) -> None:
    _model(tmp_path, "b", "model.py")
    _model(tmp_path, "a", "model.py")
    _model(tmp_path, ".hidden", "model.py")
    (tmp_path / "file.txt").write_text("")
    assert layout.list_model_names(tmp_path) == ["a", "b"]
