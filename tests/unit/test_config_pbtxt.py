"""The config.pbtxt reader in memory: parsing, Triton's defaults, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from oipserve.errors import InvalidArgument, ModelLoadError
from oipserve.repository.readers import reader_for
from oipserve.repository.readers.config_pbtxt import ConfigPbtxtReader, parse_pbtxt
from oipserve.runtimes.torch import by_index


def read(tmp_path: Path, text: str, name: str = "m") -> object:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "config.pbtxt").write_text(text)
    return ConfigPbtxtReader().read(folder, name)


def test_fields_and_triton_defaults(tmp_path: Path) -> None:
    config = parse_pbtxt(
        """
        name: "m"  # a comment
        platform: "onnxruntime_onnx"
        max_batch_size: 8
        input [ { name: "x" data_type: TYPE_FP32 dims: [ 4 ] reshape { shape: [ 2, 2 ] }
                  optional: true } ]
        output [ { name: "y" data_type: TYPE_INT64 dims: [ 1 ] label_filename: "labels.txt" } ]
        version_policy { specific { versions: [ 1, 3 ] } }
        dynamic_batching {
          preferred_batch_size: [ 2, 4 ]
          max_queue_delay_microseconds: 100
          priority_levels: 2
          default_priority_level: 1
          default_queue_policy { max_queue_size: 5 timeout_action: DELAY }
        }
        parameters { key: "p" value { string_value: "$$TRITON_MODEL_DIRECTORY/x" } }
        """,
        "m/config.pbtxt",
        tmp_path,
    )
    assert config.max_batch_size == 8
    assert config.input[0].optional and config.input[0].reshape is not None
    assert config.input[0].reshape.shape == [2, 2]
    assert config.output[0].label_filename == "labels.txt"
    assert config.version_policy is not None and config.version_policy.specific is not None
    assert config.version_policy.specific.versions == [1, 3]
    batching = config.dynamic_batching
    assert batching is not None and batching.preferred_batch_size == [2, 4]
    assert batching.default_queue_policy is not None
    assert batching.default_queue_policy.max_queue_size == 5
    assert batching.default_queue_policy.timeout_action == "DELAY"
    assert config.parameter_strings()["p"] == f"{tmp_path}/x"
    assert [g.count for g in config.instance_group] == [2]  # ONNX Runtime on the CPU: 2


def test_default_count_is_one_for_other_backends(tmp_path: Path) -> None:
    config = parse_pbtxt('backend: "pytorch"\ninstance_group [ { count: 3 }, { } ]', "c")
    assert [g.count for g in config.instance_group] == [3, 1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('backend: "onnxruntime"\n  max_batch_size: "eight"', "line 2, column"),
        ("max_batch_sise: 8", "max_batch_sise"),
        ("input [ { name: x } ]", "line 1"),
    ],
)
def test_syntax_errors_name_line_and_field(text: str, expected: str) -> None:
    with pytest.raises(InvalidArgument, match=r"m/config\.pbtxt") as caught:
        parse_pbtxt(text, "m/config.pbtxt")
    assert expected in str(caught.value)


def test_name_must_be_the_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match=r"'other'.*'m'"):
        read(tmp_path, 'name: "other"')


def test_fil_reads_its_file_names(tmp_path: Path) -> None:
    source = read(
        tmp_path,
        'backend: "fil"\nparameters { key: "model_type" value { string_value: "lightgbm" } }',
    )
    assert source.config.default_model_filename == "model.txt"  # type: ignore[attr-defined]
    assert source.config.backend == "fil"  # type: ignore[attr-defined]
    with pytest.raises(InvalidArgument, match="treelite_checkpoint"):
        read(
            tmp_path,
            'backend: "fil"\nparameters { key: "model_type" value { string_value: '
            '"treelite_checkpoint" } }',
            "t",
        )


def test_platform_names_the_runtime(tmp_path: Path) -> None:
    source = read(tmp_path, 'platform: "pytorch_libtorch"')
    assert source.config.backend == "pytorch"  # type: ignore[attr-defined]


def test_both_config_files_refused(tmp_path: Path) -> None:
    (tmp_path / "config.pbtxt").write_text("")
    (tmp_path / "model.toml").write_text("")
    with pytest.raises(InvalidArgument, match=r"model\.toml and config\.pbtxt"):
        reader_for(tmp_path)


def test_name_index_binding() -> None:
    assert by_index(["OUT__1", "OUT__0"]) == ("OUT__0", "OUT__1")
    assert by_index(["b", "a"]) == ("b", "a")
    with pytest.raises(ModelLoadError, match="NAME__INDEX"):
        by_index(["OUT__0", "OUT__2"])
