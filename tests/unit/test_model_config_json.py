"""Triton's rendering of a model configuration (PROTOCOL.md §3.1), as JSON and as the protobuf."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.protobuf import json_format

from oipserve.errors import InvalidArgument
from oipserve.protocol.messages import config_pb
from oipserve.repository import triton
from oipserve.repository.config import parse_json, parse_toml

IRIS = """
name = "iris"
backend = "sklearn"
max_batch_size = 64
[[input]]
name = "input-0"
data_type = "FP32"
dims = [4]
[[output]]
name = "predict"
data_type = "TYPE_INT64"
dims = []
[dynamic_batching]
max_queue_delay_microseconds = 200
[parameters]
k = "v"
n = 3
"""


def _render(text: str) -> dict[str, Any]:
    return triton.to_json(parse_toml(text))


def test_defaults_triton_fills_in() -> None:
    config = _render('name = "m"')
    assert config["version_policy"] == {"latest": {"num_versions": 1}}
    assert config["instance_group"] == [
        {
            "name": "m_0",
            "kind": "KIND_CPU",
            "count": 1,
            "gpus": [],
            "secondary_devices": [],
            "profile": [],
            "passive": False,
            "host_policy": "",
        }
    ]
    assert config["model_transaction_policy"] == {"decoupled": False}
    assert config["max_batch_size"] == 0
    assert config["platform"] == ""
    assert config["input"] == [] and config["output"] == []
    assert config["parameters"] == {}
    for absent in ("dynamic_batching", "sequence_batching", "ensemble_scheduling"):
        assert absent not in config  # unset message fields are left out


def test_tensors_enums_numbers_and_parameters() -> None:
    config = _render(IRIS)
    assert config["name"] == "iris"
    assert config["backend"] == "sklearn"
    assert config["input"] == [
        {
            "name": "input-0",
            "data_type": "TYPE_FP32",
            "format": "FORMAT_NONE",
            "dims": [4],
            "is_shape_tensor": False,
            "allow_ragged_batch": False,
            "optional": False,
            "is_non_linear_format_io": False,
        }
    ]
    assert config["output"][0]["data_type"] == "TYPE_INT64"
    assert config["output"][0]["dims"] == []
    assert config["output"][0]["label_filename"] == ""
    batching = config["dynamic_batching"]
    assert batching["max_queue_delay_microseconds"] == 200  # a number, not "200"
    assert batching["preferred_batch_size"] == []
    assert batching["priority_queue_policy"] == {}
    assert config["parameters"] == {"k": {"string_value": "v"}, "n": {"string_value": "3"}}
    assert json.loads(json.dumps(config)) == config


def test_every_64_bit_integer_is_a_number() -> None:
    config = triton.to_json(
        parse_json(
            json.dumps(
                {
                    "max_batch_size": 8,
                    "input": [{"name": "x", "dims": [-1, 3], "reshape": {"shape": [3, 1]}}],
                    "version_policy": {"specific": {"versions": [1, 3]}},
                    "dynamic_batching": {
                        "default_queue_policy": {"default_timeout_microseconds": 5},
                        "priority_levels": 2,
                        "priority_queue_policy": {"1": {"default_timeout_microseconds": 7}},
                    },
                }
            )
        )
    )
    assert config["input"][0]["dims"] == [-1, 3]
    assert config["input"][0]["reshape"] == {"shape": [3, 1]}
    assert config["version_policy"] == {"specific": {"versions": [1, 3]}}
    batching = config["dynamic_batching"]
    assert batching["priority_levels"] == 2
    assert batching["default_queue_policy"]["default_timeout_microseconds"] == 5
    assert batching["priority_queue_policy"]["1"]["default_timeout_microseconds"] == 7


def test_version_policies_and_instance_groups_as_given() -> None:
    config = _render(
        'name = "m"\n[version_policy.all]\n[[instance_group]]\ncount = 2\nkind = "KIND_AUTO"\n'
        '[[instance_group]]\nname = "mine"\n'
    )
    assert config["version_policy"] == {"all": {}}
    assert [(g["name"], g["kind"], g["count"]) for g in config["instance_group"]] == [
        ("m_0", "KIND_CPU", 2),
        ("mine", "KIND_CPU", 1),
    ]


def test_proto_and_json_are_the_same_config() -> None:
    config = parse_toml(IRIS)
    message = triton.to_proto(config)
    assert isinstance(message, config_pb.ModelConfig)
    assert message.input[0].data_type == config_pb.TYPE_FP32
    assert message.HasField("dynamic_batching")
    assert not message.HasField("sequence_batching")
    assert triton.message_to_json(message) == triton.to_json(config)
    # the JSON parses back into the same message (as tritonclient's users and the load API do)
    assert json_format.ParseDict(triton.to_json(config), config_pb.ModelConfig()) == message


def test_rendered_config_round_trips_as_a_load_override() -> None:
    rendered = _render(IRIS)
    again = triton.to_json(parse_json(json.dumps(rendered)))
    assert again == rendered


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('{"optimization": {"no_such_knob": 1}}', "no_such_knob"),
        ('{"instance_group": [{"kind": "KIND_TPU"}]}', "KIND_TPU"),
        ('{"sequence_batching": {"oldest": {"max_candidate_sequences": "x"}}}', "max_candidate"),
    ],
)
def test_check_refuses_what_the_proto_refuses(text: str, field: str) -> None:
    config = parse_json(text)  # the struct carries these sections opaquely
    with pytest.raises(InvalidArgument, match=field):
        triton.check(config, "the 'config' load parameter")
