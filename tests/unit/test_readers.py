"""The table of model-format readers: recognition, order, the two-formats refusal, messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from oipserve.errors import InvalidArgument
from oipserve.repository import layout
from oipserve.repository.config import ModelConfig
from oipserve.repository.readers import (
    BUILTIN_READERS,
    FALLBACK_READER,
    ModelReader,
    model_readers,
    read_folder,
    reader_for,
)
from oipserve.repository.readers.guess import ZeroConfigReader
from oipserve.repository.readers.model_toml import ModelTomlReader
from oipserve.repository.source import ModelSource, numeric_versions


def make(folder: Path, *files: str, toml: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for file in files:
        (folder / file).parent.mkdir(parents=True, exist_ok=True)
        (folder / file).write_bytes(b"x")
    if toml is not None:
        (folder / "model.toml").write_text(toml)
    return folder


class PbtxtLikeReader:
    """A stand-in for the coming ``config.pbtxt`` reader: a second config-bearing format."""

    name = "config.pbtxt"
    config_file = "config.pbtxt"

    def recognises(self, folder: Path) -> bool:
        return (folder / self.config_file).is_file()

    def read(self, folder: Path, name: str) -> ModelSource:
        return ModelSource(
            name, folder, ModelConfig(backend="onnxruntime"), numeric_versions(folder), self.name
        )


TABLE: tuple[ModelReader, ...] = (ModelTomlReader(), PbtxtLikeReader(), ZeroConfigReader())


def test_the_table_is_model_toml_then_zero_config_last() -> None:
    readers = model_readers()
    assert [r.name for r in readers] == [
        "model.toml",
        "config.pbtxt",
        "model-settings.json",
        "model file",
        "zero-config",
    ]
    assert readers[: len(BUILTIN_READERS)] == BUILTIN_READERS
    assert readers[-1] is FALLBACK_READER


def test_model_toml_reader_recognises_only_its_file(tmp_path: Path) -> None:
    reader = ModelTomlReader()
    assert reader.recognises(make(tmp_path / "a", toml='backend = "python"\n'))
    assert not reader.recognises(make(tmp_path / "b", "model.joblib"))
    assert not reader.recognises(make(tmp_path / "c", "model.toml/inner"))  # a folder, not a file


def test_model_toml_reader_reads_config_versions_and_where_from(tmp_path: Path) -> None:
    folder = make(tmp_path / "m", "1/model.py", "3/model.py", toml="max_batch_size = 8\n")
    source = ModelTomlReader().read(folder, "m")
    assert source.config.max_batch_size == 8
    assert list(source.versions) == ["1", "3"]
    assert source.reader == "model.toml"
    assert source.config_file == folder / "model.toml"
    assert source.config_hint == "m/model.toml"


def test_a_bad_model_toml_is_named_in_the_error(tmp_path: Path) -> None:
    folder = make(tmp_path / "m", "model.py", toml="max_batch_size = [\n")
    with pytest.raises(InvalidArgument, match=r"invalid TOML in .*m/model\.toml"):
        read_folder(folder, "m")
    (folder / "model.toml").write_text("no_such_field = 1\n")
    with pytest.raises(InvalidArgument, match=r"model.toml.*no_such_field"):
        read_folder(folder, "m")


def test_zero_config_reader_recognises_model_files_in_the_folder_or_a_version(
    tmp_path: Path,
) -> None:
    reader = ZeroConfigReader()
    assert reader.recognises(make(tmp_path / "a", "model.joblib"))
    assert reader.recognises(make(tmp_path / "b", "2/model.onnx"))
    assert not reader.recognises(make(tmp_path / "c", "labels.txt", "model.bin"))
    assert not reader.recognises(make(tmp_path / "d"))
    source = reader.read(tmp_path / "b", "b")
    assert source.config == ModelConfig()
    assert source.reader == "zero-config"
    assert source.config_file is None
    assert source.config_hint == "b/model.toml"  # the file to write


def test_first_recognising_reader_reads(tmp_path: Path) -> None:
    toml = make(tmp_path / "t", "model.joblib", toml='backend = "sklearn"\n')
    assert reader_for(toml, TABLE).name == "model.toml"
    pbtxt = make(tmp_path / "p", "1/model.onnx", "config.pbtxt")
    assert reader_for(pbtxt, TABLE).name == "config.pbtxt"
    assert read_folder(pbtxt, "p", TABLE).config.backend == "onnxruntime"
    bare = make(tmp_path / "b", "model.txt")
    assert reader_for(bare, TABLE).name == "zero-config"


def test_a_folder_nothing_recognises_goes_to_the_last_reader(tmp_path: Path) -> None:
    empty = make(tmp_path / "empty", "notes.md")
    assert reader_for(empty, TABLE) is TABLE[-1]
    source = read_folder(empty, "empty")
    with pytest.raises(InvalidArgument, match="has no model file") as info:
        layout.guess_backend(source, source.version_folder("1"))
    assert "empty/model.toml" in str(info.value)


def test_two_config_formats_in_one_folder_are_refused_naming_both(tmp_path: Path) -> None:
    folder = make(tmp_path / "m", "1/model.onnx", "config.pbtxt", toml='backend = "onnxruntime"\n')
    with pytest.raises(InvalidArgument) as info:
        reader_for(folder, TABLE)
    message = str(info.value)
    assert "model.toml" in message and "config.pbtxt" in message
    assert "'m'" in message


def test_the_guesser_is_never_a_conflict(tmp_path: Path) -> None:
    """A config file beside a model file is the normal case, not two formats."""
    folder = make(tmp_path / "m", "model.joblib", toml='backend = "sklearn"\n')
    assert ZeroConfigReader().recognises(folder)
    assert reader_for(folder).name == "model.toml"


def test_read_model_uses_the_table_and_names_the_file_in_guess_errors(tmp_path: Path) -> None:
    make(tmp_path / "m", "model.onnx", "model.joblib", toml="max_batch_size = 4\n")
    source = layout.read_model(tmp_path, "m")
    assert source.reader == "model.toml"
    with pytest.raises(InvalidArgument, match="ambiguous") as info:
        layout.guess_backend(source, source.version_folder("1"))
    assert "m/model.toml" in str(info.value)


def test_an_override_reads_no_config_file(tmp_path: Path) -> None:
    make(tmp_path / "m", "1/model.py", toml="this is not TOML [")
    source = layout.read_model(tmp_path, "m", ModelConfig(backend="python"))
    assert source.reader == "override"
    assert source.config_file is None
    assert source.config_hint == "the load request's config"
    with pytest.raises(InvalidArgument, match="the load request's config names the model"):
        layout.read_model(tmp_path, "m", ModelConfig(name="other"))


def test_a_model_toml_naming_another_model_names_the_file(tmp_path: Path) -> None:
    make(tmp_path / "m", "model.py", toml='name = "x"\n')
    with pytest.raises(InvalidArgument, match=r"m/model\.toml names the model 'x'"):
        layout.read_model(tmp_path, "m")


def test_entry_point_readers_join_the_table_before_the_guesser(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from importlib.metadata import EntryPoint

    from oipserve.repository import readers as table

    plugged = [
        EntryPoint("pbtxt", "tests.unit.test_readers:PbtxtLikeReader", table.ENTRY_POINT_GROUP),
        EntryPoint("broken", "tests.unit.no_such_module:Reader", table.ENTRY_POINT_GROUP),
        EntryPoint("not-a-reader", "tests.unit.test_readers:make", table.ENTRY_POINT_GROUP),
    ]

    def fake_entry_points(*, group: str) -> list[EntryPoint]:
        return plugged if group == table.ENTRY_POINT_GROUP else []

    monkeypatch.setattr(table, "entry_points", fake_entry_points)
    model_readers.cache_clear()
    try:
        names = [reader.name for reader in model_readers()]
    finally:
        model_readers.cache_clear()
    # the built-ins, the plugged one, the model-file reader, the guesser
    assert names == [
        *(r.name for r in BUILTIN_READERS),
        "config.pbtxt",
        "model file",
        "zero-config",
    ]
    assert "model reader 'broken' could not be loaded" in caplog.text
    assert "model reader 'not-a-reader' is not a ModelReader" in caplog.text
