"""Who may call what: Triton's restricted-API keys and oipserve's API key, for every transport.

One check, two transports. The REST app asks :meth:`AccessPolicy.check_http` with the matched
route's :class:`Category` and the request headers; the gRPC services ask
:meth:`AccessPolicy.check_grpc` with the rpc's category and the call's metadata (any stack:
metadata is a sequence of ``(key, value)`` pairs). A refusal comes back as a :class:`Refusal`
that each transport renders in its own terms (:data:`HTTP_STATUS` / the gRPC table beside the
servicer); nothing here imports a transport.

**Restricted APIs** (Triton's ``--http-restricted-api`` / ``--grpc-restricted-protocol``,
``<categories>:<key>=<value>``): a request to a restricted category must carry header ``key``
(gRPC: metadata ``triton-grpc-protocol-<key>``) with exactly ``value``. Parsing and messages are
Triton's (triton-inference-server/server ``src/command_line_parser.cc``
``ParseRestrictedFeatureOption`` / ``ParseGenericConfigOption``, categories in
``src/restricted_features.h``); the refusal is ``http_server.cc``'s ``RespondIfRestricted`` (403,
``This API is restricted, expecting header 'KEY'``) and ``grpc/grpc_server.cc``'s
``CommonCallData::Execute`` (``UNAVAILABLE``, ``This protocol is restricted, expecting header
'triton-grpc-protocol-KEY'``).

**API key** (``--api-key`` / ``OIPSERVE_API_KEY``): every route with a category except ``health``
needs ``Authorization: Bearer <key>`` (gRPC metadata ``authorization``), as OpenAI's clients send
it. Routes without a category (``/metrics``, the console's static files) never need it. A miss is
401 with ``WWW-Authenticate: Bearer`` / ``UNAUTHENTICATED``. With restricted categories as well,
a request must satisfy both; the API key is checked first.

Keys are compared with :func:`hmac.compare_digest` and never logged: :class:`Restriction` and
:class:`AccessPolicy` print as ``'***'``.
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

GRPC_RESTRICTED_PREFIX: Final = "triton-grpc-protocol-"
"""Triton's ``kRestrictedProtocolHeaderTemplate``: the metadata key prefix of a gRPC restriction."""


class Category(enum.StrEnum):
    """Triton's restricted-API categories (``src/restricted_features.h``), in Triton's order."""

    HEALTH = "health"
    METADATA = "metadata"
    INFERENCE = "inference"
    SHARED_MEMORY = "shared-memory"
    MODEL_CONFIG = "model-config"
    MODEL_REPOSITORY = "model-repository"
    STATISTICS = "statistics"
    TRACE = "trace"
    LOGGING = "logging"


class ConfigError(ValueError):
    """A restriction or key option that cannot be used; the message is Triton's where it has one."""


@dataclass(frozen=True, slots=True)
class Restriction:
    """The header (or metadata key) a restricted category needs, and its value."""

    header: str
    value: str = field(repr=False)

    def __repr__(self) -> str:
        return f"Restriction({self.header!r}, '***')"


def parse_restrictions(
    specs: Iterable[str], option: str, *, prefix: str = "", feature_type: str = "api"
) -> dict[Category, Restriction]:
    """Triton's ``--<option>=<categories>:<key>=<value>`` values (repeatable) as a table.

    ``feature_type`` is ``api`` for HTTP and ``protocol`` for gRPC (it only words the messages);
    ``prefix`` is prepended to each key (gRPC: :data:`GRPC_RESTRICTED_PREFIX`). An unknown
    category, a category in two groups or a malformed value is a :class:`ConfigError`.
    """
    table: dict[Category, Restriction] = {}
    for spec in specs:
        names, key, value = _generic_option(spec, option)
        for name in names.split(","):
            try:
                category = Category(name)
            except ValueError:
                raise ConfigError(f"unknown restricted {feature_type} '{name}'") from None
            if category in table:
                raise ConfigError(
                    f"restricted {feature_type} '{name}' can not be specified in multiple "
                    "config groups"
                )
            table[category] = Restriction(prefix + key, value)
    return table


def _generic_option(arg: str, option: str) -> tuple[str, str, str]:
    """Triton's ``ParseGenericConfigOption(arg, ":", "=", option, "config name")``."""
    error = f"--{option} option format is '<config name>:<setting>=<value>'. Got {arg}"
    names, colon, rest = arg.partition(":")
    key, equals, value = rest.partition("=")
    if not colon or not equals or not names or not key or not value:
        raise ConfigError(error)
    return names, key, value


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is refused. ``restricted``: Triton's restricted-API refusal (HTTP 403, gRPC
    ``UNAVAILABLE``); ``unauthenticated``: no valid API key (HTTP 401, gRPC ``UNAUTHENTICATED``)."""

    kind: Literal["restricted", "unauthenticated"]
    message: str


HTTP_STATUS: Final = {"restricted": 403, "unauthenticated": 401}
"""The HTTP status of each kind of refusal."""
WWW_AUTHENTICATE: Final = (b"www-authenticate", b"Bearer")
"""The header a 401 carries (RFC 6750)."""

API_KEY_MISSING: Final = "this API needs an API key: send the header 'Authorization: Bearer <key>'"
API_KEY_WRONG: Final = "invalid API key"


class AccessPolicy:
    """The restrictions of both transports and the API key (see the module docstring).

    ``AccessPolicy()`` lets everything through; :attr:`active` says whether any check is on, so
    transports skip the per-request call entirely when there is nothing to check.
    """

    __slots__ = ("_api_key", "_expected_bearer", "grpc", "http")

    def __init__(
        self,
        http: Mapping[Category, Restriction] | None = None,
        grpc: Mapping[Category, Restriction] | None = None,
        api_key: str | None = None,
    ) -> None:
        self.http = dict(http or {})
        self.grpc = dict(grpc or {})
        if api_key is not None and not api_key:
            raise ConfigError("--api-key must not be empty")
        self._api_key = api_key
        self._expected_bearer = api_key.encode() if api_key else b""

    @classmethod
    def from_options(
        cls,
        http_restricted_api: Sequence[str] = (),
        grpc_restricted_protocol: Sequence[str] = (),
        api_key: str | None = None,
    ) -> AccessPolicy:
        """The policy the command line asks for (Triton's option spellings)."""
        return cls(
            parse_restrictions(http_restricted_api, "http-restricted-api"),
            parse_restrictions(
                grpc_restricted_protocol,
                "grpc-restricted-protocol",
                prefix=GRPC_RESTRICTED_PREFIX,
                feature_type="protocol",
            ),
            api_key,
        )

    def __repr__(self) -> str:
        key = "'***'" if self._api_key else "None"
        return f"AccessPolicy(http={self.http!r}, grpc={self.grpc!r}, api_key={key})"

    @property
    def active(self) -> bool:
        return bool(self.http or self.grpc or self._api_key)

    @property
    def has_api_key(self) -> bool:
        return self._api_key is not None

    def guards(self, category: Category) -> bool:
        """Whether a key guards ``category`` on both transports (the API key, or a restriction
        on each of them)."""
        if self._api_key is not None and category is not Category.HEALTH:
            return True
        return category in self.http and category in self.grpc

    # -- the checks ----------------------------------------------------------------------------

    def check_http(
        self, category: Category | None, headers: Mapping[bytes, bytes]
    ) -> Refusal | None:
        """Check a REST request: ``headers`` by lower-case name (ASGI's, as a dict)."""
        if category is None:
            return None
        return self._check(category, self.http, headers.get, _http_name)

    def check_grpc(
        self, category: Category, metadata: Iterable[tuple[str, str | bytes]] | None
    ) -> Refusal | None:
        """Check a gRPC call's invocation metadata (keys are lower case on the wire)."""
        found: dict[bytes, bytes] = {}
        for key, value in metadata or ():
            name = key.lower().encode("latin-1", "replace")
            found.setdefault(name, value if isinstance(value, bytes) else value.encode("utf-8"))
        return self._check(category, self.grpc, found.get, _http_name)

    def _check(
        self,
        category: Category,
        restrictions: Mapping[Category, Restriction],
        get: Callable[[bytes], bytes | None],
        name: Callable[[str], bytes],
    ) -> Refusal | None:
        if self._api_key is not None and category is not Category.HEALTH:
            refusal = self._check_api_key(get(b"authorization"))
            if refusal is not None:
                return refusal
        restriction = restrictions.get(category)
        if restriction is None:
            return None
        actual = get(name(restriction.header))
        if actual is None or not hmac.compare_digest(actual, restriction.value.encode()):
            kind = "API" if restrictions is self.http else "protocol"
            return Refusal(
                "restricted", f"This {kind} is restricted, expecting header '{restriction.header}'"
            )
        return None

    def _check_api_key(self, authorization: bytes | None) -> Refusal | None:
        if authorization is None:
            return Refusal("unauthenticated", API_KEY_MISSING)
        scheme, _, token = authorization.strip().partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(
            token.strip(), self._expected_bearer
        ):
            return Refusal("unauthenticated", API_KEY_WRONG)
        return None


def _http_name(header: str) -> bytes:
    return header.lower().encode("latin-1", "replace")


__all__ = [
    "API_KEY_MISSING",
    "API_KEY_WRONG",
    "GRPC_RESTRICTED_PREFIX",
    "HTTP_STATUS",
    "WWW_AUTHENTICATE",
    "AccessPolicy",
    "Category",
    "ConfigError",
    "Refusal",
    "Restriction",
    "parse_restrictions",
]
