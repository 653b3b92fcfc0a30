"""MLServer's ``model-settings.json`` reader: each field, and each bad input failing the load."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from oipserve.errors import InvalidArgument
from oipserve.repository import layout
from oipserve.repository.readers import model_readers, reader_for
from oipserve.repository.readers.model_settings import ModelSettingsReader
from oipserve.repository.source import version_key

READER = ModelSettingsReader()


def folder_with(tmp_path: Path, settings: Any, *files: str, name: str = "iris") -> Path:
    folder = tmp_path / name
    folder.mkdir(parents=True, exist_ok=True)
    for file in files:
        (folder / file).parent.mkdir(parents=True, exist_ok=True)
        (folder / file).write_bytes(b"x")
    text = settings if isinstance(settings, str) else json.dumps(settings)
    (folder / "model-settings.json").write_text(text)
    return folder


SKLEARN = {
    "name": "iris",
    "implementation": "mlserver_sklearn.SKLearnModel",
    "parameters": {"uri": "./model.joblib", "version": "v0.1.0"},
}


def test_the_reader_is_in_the_table_and_recognises_its_file(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, SKLEARN, "model.joblib")
    assert "model-settings.json" in [r.name for r in model_readers()]
    assert reader_for(folder).name == "model-settings.json"
    assert not READER.recognises(tmp_path)


def test_sklearn_settings_as_mlserver_docs_write_them(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, SKLEARN, "model.joblib")
    source = READER.read(folder, "iris")
    assert source.config.backend == "sklearn"
    assert source.config.default_model_filename == "model.joblib"
    assert source.versions == {"v0.1.0": folder}
    assert source.config_hint == "iris/model-settings.json"
    assert layout.guess_backend(source, folder) == ("sklearn", folder / "model.joblib")


@pytest.mark.parametrize(
    ("implementation", "files", "expected"),
    [
        ("mlserver_sklearn.SKLearnModel", ["model.pickle"], ("sklearn", "model.pickle")),
        ("mlserver_sklearn.SKLearnModel", ["model.pkl"], ("sklearn", "model.pkl")),
        ("mlserver_xgboost.XGBoostModel", ["model.json"], ("xgboost", "model.json")),
        ("mlserver_xgboost.XGBoostModel", ["model.ubj"], ("xgboost", "model.ubj")),
        ("mlserver_lightgbm.LightGBMModel", ["model.bst"], ("lightgbm", "model.bst")),
        ("mlserver_xgboost.XGBoostModel", ["model.bst", "model.json"], ("xgboost", "model.bst")),
    ],
)
def test_a_folder_uri_is_searched_for_the_runtimes_well_known_names(
    tmp_path: Path, implementation: str, files: list[str], expected: tuple[str, str]
) -> None:
    settings = {"implementation": implementation, "parameters": {"uri": "./"}}
    folder = folder_with(tmp_path, settings, *files)
    source = READER.read(folder, "iris")
    backend, model_file = layout.guess_backend(source, folder)
    assert (backend, model_file) == (expected[0], folder / expected[1])


def test_model_bst_is_lightgbm_for_the_lightgbm_runtime_without_uri(tmp_path: Path) -> None:
    settings = {"implementation": "mlserver_lightgbm.LightGBMModel"}
    folder = folder_with(tmp_path, settings, "model.bst")
    source = READER.read(folder, "iris")
    assert source.versions == {"1": folder}
    assert layout.guess_backend(source, folder) == ("lightgbm", folder / "model.bst")


def test_uri_to_a_file_in_a_subfolder(tmp_path: Path) -> None:
    settings = {**SKLEARN, "parameters": {"uri": "artifacts/clf.joblib"}}
    folder = folder_with(tmp_path, settings, "artifacts/clf.joblib")
    source = READER.read(folder, "iris")
    assert source.config.default_model_filename == "artifacts/clf.joblib"
    assert layout.guess_backend(source, folder) == ("sklearn", folder / "artifacts/clf.joblib")


def test_without_implementation_the_runtime_is_guessed_from_the_file(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, {"name": "iris"}, "model.joblib")
    source = READER.read(folder, "iris")
    assert layout.guess_backend(source, folder) == ("sklearn", folder / "model.joblib")


def test_content_type_and_extra_are_kept_in_the_parameters(tmp_path: Path) -> None:
    parameters = {"uri": "model.joblib", "content_type": "pd", "extra": {"predict_fn": "x"}}
    folder = folder_with(tmp_path, {**SKLEARN, "parameters": parameters}, "model.joblib")
    kept = READER.read(folder, "iris").config.parameter_strings()
    assert kept == {"mlserver.content_type": "pd", "mlserver.extra": '{"predict_fn": "x"}'}


def test_inputs_and_outputs_are_declared(tmp_path: Path) -> None:
    settings = {
        **SKLEARN,
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [{"name": "predict", "datatype": "INT64", "shape": [-1, 1]}],
    }
    config = READER.read(folder_with(tmp_path, settings, "model.joblib"), "iris").config
    assert [(i.name, i.data_type, i.dims) for i in config.input] == [("x", "TYPE_FP32", [-1, 4])]
    assert [(o.name, o.data_type, o.dims) for o in config.output] == [
        ("predict", "TYPE_INT64", [-1, 1])
    ]


def test_batching_needs_both_fields_and_converts_seconds(tmp_path: Path) -> None:
    both = {**SKLEARN, "max_batch_size": 8, "max_batch_time": 0.25}
    both["inputs"] = [{"name": "x", "datatype": "FP64", "shape": [-1, 4]}]
    config = READER.read(folder_with(tmp_path / "a", both, "model.joblib"), "iris").config
    assert config.max_batch_size == 8
    assert config.dynamic_batching is not None
    assert config.dynamic_batching.max_queue_delay_microseconds == 250_000
    assert config.input[0].dims == [4]  # the batch dimension leaves the dims, as in Triton
    one = {**SKLEARN, "max_batch_size": 8}
    config = READER.read(folder_with(tmp_path / "b", one, "model.joblib"), "iris").config
    assert (config.max_batch_size, config.dynamic_batching) == (0, None)
    single = {**SKLEARN, "max_batch_size": 1, "max_batch_time": 0.5}  # MLServer: size > 1
    config = READER.read(folder_with(tmp_path / "c", single, "model.joblib"), "iris").config
    assert (config.max_batch_size, config.dynamic_batching) == (0, None)


def test_unknown_fields_are_ignored_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = {**SKLEARN, "parallel_workers": 2, "whatever": True}
    settings["parameters"] = {**SKLEARN["parameters"], "environment_tarball": "x"}  # type: ignore[dict-item]
    with caplog.at_level(logging.INFO, logger="oipserve.readers"):
        READER.read(folder_with(tmp_path, settings, "model.joblib"), "iris")
    assert "parallel_workers, whatever, parameters.environment_tarball" in caplog.text


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "must hold a JSON object"),
        ({"name": 3}, "invalid name"),
        ({"implementation": ["x"]}, "invalid implementation"),
        ({"parameters": "x"}, "invalid parameters"),
        ({"parameters": {"uri": 1}}, "invalid parameters.uri"),
        ({"parameters": {"version": 2}}, "invalid parameters.version"),
        ({"parameters": {"version": "../x"}}, "invalid parameters.version"),
        ({"parameters": {"content_type": 1}}, "invalid parameters.content_type"),
        ({"parameters": {"extra": [1]}}, "invalid parameters.extra"),
        ({"max_batch_size": "8"}, "invalid max_batch_size"),
        ({"max_batch_size": 1.5}, "invalid max_batch_size"),
        ({"max_batch_size": -1}, "invalid max_batch_size"),
        ({"max_batch_time": "1"}, "invalid max_batch_time"),
        ({"inputs": {"name": "x"}}, "invalid inputs"),
        ({"inputs": [{"datatype": "FP32"}]}, "every tensor needs a name"),
        ({"inputs": [{"name": "x", "datatype": "FP99"}]}, "inputs[x].datatype"),
        ({"outputs": [{"name": "y", "shape": "4"}]}, "outputs[y].shape"),
        ({"name": "other"}, "names the model 'other'; it must match the folder name 'iris'"),
    ],
)
def test_bad_settings_fail_the_load_naming_the_field(
    tmp_path: Path, settings: Any, message: str
) -> None:
    folder = folder_with(tmp_path, settings, "model.joblib")
    with pytest.raises(InvalidArgument) as caught:
        READER.read(folder, "iris")
    assert message in str(caught.value)
    assert "iris/model-settings.json" in str(caught.value)


def test_a_custom_runtime_is_refused_saying_so(tmp_path: Path) -> None:
    settings = {"implementation": "models.MyCustomRuntime"}
    with pytest.raises(InvalidArgument) as caught:
        READER.read(folder_with(tmp_path, settings, "model.joblib"), "iris")
    text = str(caught.value)
    assert "custom MLServer runtime" in text and "pip install mlserver" in text


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("s3://bucket/model.joblib", "names remote storage"),
        ("gs://bucket/model", "names remote storage"),
        ("file://host/model.joblib", "names remote storage"),
        ("../other/model.joblib", "points outside the model's folder"),
        ("/etc/passwd", "points outside the model's folder"),
        ("./missing.joblib", "does not exist"),
        ("./empty", "holding none of model.joblib, model.pickle, model.pkl"),
    ],
)
def test_bad_uris_are_refused(tmp_path: Path, uri: str, message: str) -> None:
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "model.joblib").write_bytes(b"x")
    settings = {**SKLEARN, "parameters": {"uri": uri}}
    folder = folder_with(tmp_path, settings, "empty/readme.txt")
    with pytest.raises(InvalidArgument) as caught:
        READER.read(folder, "iris")
    assert message in str(caught.value)


def test_a_symlink_leaving_the_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.joblib").write_bytes(b"x")
    folder = folder_with(tmp_path, {**SKLEARN, "parameters": {"uri": "link.joblib"}})
    (folder / "link.joblib").symlink_to(tmp_path / "secret.joblib")
    with pytest.raises(InvalidArgument, match="outside the model's folder"):
        READER.read(folder, "iris")


def test_model_settings_beside_model_toml_is_refused(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, SKLEARN, "model.joblib")
    (folder / "model.toml").write_text('backend = "sklearn"\n')
    with pytest.raises(InvalidArgument, match=r"model\.toml and model-settings\.json"):
        reader_for(folder)


def test_version_labels_sort_numbers_first_then_text() -> None:
    labels = ["v0.2.0", "10", "2", "v0.1.0"]
    assert sorted(labels, key=version_key) == ["2", "10", "v0.1.0", "v0.2.0"]
