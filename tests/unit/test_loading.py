"""The registry's translation of a model config into the scheduler's policy and execution's spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from oipserve.errors import ModelLoadError
from oipserve.loading import batch_policy, instance_spec
from oipserve.model import LoadContext
from oipserve.repository.config import ModelConfig, parse_toml
from oipserve.scheduling.batcher import BatchPolicy


def context(config: ModelConfig) -> LoadContext:
    return LoadContext("m", "1", Path("."), config)


def test_batch_policy_from_config() -> None:
    config = parse_toml(
        """
        max_batch_size = 32
        [dynamic_batching]
        max_queue_delay_microseconds = 500
        preferred_batch_size = [16, 4, 16]
        priority_levels = 3
        default_priority_level = 2
        [dynamic_batching.default_queue_policy]
        max_queue_size = 100
        default_timeout_microseconds = 2000
        allow_timeout_override = true
        [[instance_group]]
        count = 2
        """
    )
    policy = batch_policy(config, instance_spec("python", context(config)).count)
    assert policy == BatchPolicy(
        max_batch_size=32,
        dynamic=True,
        max_queue_delay_ns=500_000,
        preferred_batch_sizes=(4, 16),
        max_queue_size=100,
        priority_levels=3,
        default_priority_level=2,
        default_timeout_ns=2_000_000,
        allow_timeout_override=True,
        instance_count=2,
    )
    plain = batch_policy(parse_toml("max_batch_size = 8"))
    assert plain == BatchPolicy(max_batch_size=8, dynamic=False)
    no_batch_dim = batch_policy(parse_toml("[dynamic_batching]"))
    assert not no_batch_dim.dynamic
    delay = batch_policy(
        parse_toml(
            """
            max_batch_size = 4
            [dynamic_batching.default_queue_policy]
            timeout_action = "DELAY"
            default_timeout_microseconds = 10
            """
        )
    )
    assert delay.default_timeout_ns == 0
    assert not delay.allow_timeout_override
    with pytest.raises(ValueError, match="instance_count"):
        BatchPolicy(max_batch_size=1, dynamic=True, instance_count=0)


def test_instance_spec_counts_groups_and_reads_the_execution_parameter() -> None:
    plain = instance_spec("sklearn", context(parse_toml("")))
    assert (plain.count, plain.execution, plain.backend, plain.name) == (
        1,
        "thread",
        "sklearn",
        "m",
    )
    groups = parse_toml(
        '[[instance_group]]\ncount = 2\n[[instance_group]]\ncount = 3\nkind = "KIND_GPU"\n'
    )
    both = instance_spec("python", context(groups))
    assert (both.count, both.kinds) == (5, ("KIND_CPU", "KIND_GPU"))
    process = parse_toml('[parameters]\nexecution = "process"\n')
    assert instance_spec("python", context(process)).execution == "process"
    with pytest.raises(ModelLoadError, match="execution = 'fork'"):
        instance_spec("python", context(parse_toml('[parameters]\nexecution = "fork"\n')))
