"""oipserve.auth in memory: Triton's option parsing and messages, the checks, keys kept secret."""

from __future__ import annotations

import pytest

from oipserve.auth import AccessPolicy, Category, ConfigError, Refusal, parse_restrictions


def test_parsing_follows_triton() -> None:
    table = parse_restrictions(["health,metadata:k=v", "inference:x=a=b"], "http-restricted-api")
    assert table[Category.HEALTH].header == "k"
    assert table[Category.METADATA].value == "v"
    assert table[Category.INFERENCE].value == "a=b"  # the value is everything after the first '='
    grpc = parse_restrictions(
        ["health:k=v"], "grpc-restricted-protocol", prefix="triton-grpc-protocol-"
    )
    assert grpc[Category.HEALTH].header == "triton-grpc-protocol-k"
    assert {c.value for c in Category} == {
        "health", "metadata", "inference", "shared-memory", "model-config",
        "model-repository", "statistics", "trace", "logging",
    }  # fmt: skip


@pytest.mark.parametrize("spec", ["health", "health:k", "health:=v", ":k=v", "health:k="])
def test_malformed_values(spec: str) -> None:
    with pytest.raises(ConfigError, match="option format is '<config name>:<setting>=<value>'"):
        parse_restrictions([spec], "http-restricted-api")


def test_keys_never_print() -> None:
    policy = AccessPolicy.from_options(["health:k=topsecret"], [], api_key="alsosecret")
    assert "topsecret" not in repr(policy)
    assert "alsosecret" not in repr(policy)
    with pytest.raises(ConfigError):
        AccessPolicy(api_key="")


def test_checks() -> None:
    policy = AccessPolicy.from_options(["inference:K=v"], ["inference:k=v"], api_key="key")
    bearer = {b"authorization": b"Bearer key"}
    assert policy.check_http(None, {}) is None  # no category: /metrics, console files
    assert policy.check_http(Category.HEALTH, {}) is None  # health never needs the API key
    assert policy.check_http(Category.METADATA, {}) == Refusal(
        "unauthenticated",
        "this API needs an API key: send the header 'Authorization: Bearer <key>'",
    )
    assert policy.check_http(Category.METADATA, {b"authorization": b"bearer  key "}) is None
    assert policy.check_http(Category.INFERENCE, bearer) == Refusal(
        "restricted", "This API is restricted, expecting header 'K'"
    )
    assert policy.check_http(Category.INFERENCE, {**bearer, b"k": b"v"}) is None
    metadata = [("authorization", "Bearer key"), ("triton-grpc-protocol-k", "v")]
    assert policy.check_grpc(Category.INFERENCE, metadata) is None
    assert policy.check_grpc(Category.INFERENCE, metadata[:1]) == Refusal(
        "restricted", "This protocol is restricted, expecting header 'triton-grpc-protocol-k'"
    )
    assert policy.guards(Category.MODEL_REPOSITORY)  # by the API key
    assert not AccessPolicy.from_options(["model-repository:k=v"], []).guards(
        Category.MODEL_REPOSITORY
    )  # REST only: gRPC is still open
    assert not AccessPolicy().active
