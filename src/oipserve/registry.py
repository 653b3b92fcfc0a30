"""Model lifecycle: which (model, version) is READY, and serialized load / unload.

Each model name has a lock: loads and unloads of one model never overlap. A reload brings the new
versions up beside the old ones and switches over only when they are READY, so requests in flight
(and arriving meanwhile) keep being served; a failed reload leaves the old versions serving.
A retired version drains: requests it already accepted all run before its model is unloaded.

A load may bring its own files (the repository API's ``file:`` overrides): they are written into a
temporary model folder that lives as long as the versions loaded from it.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from oipserve import loading
from oipserve.domain import IndexEntry, ModelReadiness, ModelState
from oipserve.errors import (
    InvalidArgument,
    ModelLoadError,
    ModelNotFound,
    OIPServeError,
    PermissionDenied,
    Unavailable,
)
from oipserve.execution.instance import InstanceFactory, ModelInstance
from oipserve.model import LoadContext, ServerCalls, Signature, TensorSpec
from oipserve.observability.custom import MetricNames, ModelMetrics
from oipserve.observability.metrics import MetricsConfig, ModelObservations
from oipserve.protocol.datatypes import CONFIG_NAMES
from oipserve.protocol.types import ModelMetadata, TensorMetadata
from oipserve.repository import config as config_module
from oipserve.repository import layout, paths, triton
from oipserve.repository.config import ModelConfig, ModelInput, ModelOutput, TransactionPolicy
from oipserve.repository.readers.config_pbtxt import CONFIG_FILE as CONFIG_PBTXT
from oipserve.repository.source import version_key
from oipserve.scheduling.batcher import Scheduler
from oipserve.scheduling.statistics import ModelStatistics

logger = logging.getLogger("oipserve.registry")

LOAD_PARAMETER_SOURCE = "the 'config' load parameter"

UPLOAD_REFUSED = (
    "loading model files through the repository API ('file:' load parameters) is disabled: "
    "model files are code (pickles, model.py) and would run on the server; start the server "
    "with --allow-model-upload to allow it"
)


@dataclass(slots=True)
class LoadedModel:
    """A READY model version and everything the dataplane needs to serve it."""

    name: str
    version: str
    backend: str
    config: ModelConfig
    """The effective config: the folder's, completed with what the model file says."""
    instance: ModelInstance
    """What runs the version's batches (execution's seam)."""
    scheduler: Scheduler
    statistics: ModelStatistics
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]
    labels: dict[str, list[str]] = field(default_factory=dict)
    """Classification labels per output (from ``label_filename``)."""
    observations: ModelObservations = field(
        default_factory=lambda: ModelObservations(MetricsConfig())
    )
    """What the metrics record per request beside the statistics (failure reasons, latency
    histograms, summaries) and the version's load time."""
    custom_metrics: ModelMetrics | None = None
    """The metrics the model registered through ``ctx.metrics``."""

    @property
    def max_batch_size(self) -> int:
        return self.config.max_batch_size

    @property
    def decoupled(self) -> bool:
        """Whether the model streams (``model_transaction_policy.decoupled``): 0..N responses per
        request, served by streaming endpoints only."""
        policy = self.config.model_transaction_policy
        return policy is not None and policy.decoupled

    def metadata(self, versions: list[str]) -> ModelMetadata:
        lead = [-1] if self.max_batch_size > 0 else []
        return ModelMetadata(
            name=self.name,
            versions=versions,
            platform=self.config.platform or self.config.backend or self.backend,
            inputs=[
                TensorMetadata(s.name, s.datatype, [*lead, *s.shape]) for s in self.inputs.values()
            ],
            outputs=[
                TensorMetadata(s.name, s.datatype, [*lead, *s.shape]) for s in self.outputs.values()
            ],
        )


@dataclass(slots=True)
class _Status:
    state: ModelState
    reason: str = ""
    failed: bool = False
    """The version failed to load (its reason is the load error), as opposed to unloaded."""


class Registry:
    """Every model of one repository root: its versions' states and the READY ones.

    The registry owns a load end to end: it validates the name, parses a load request's config
    (JSON) and checks it against Triton's schema, reads the folder, asks execution for an instance
    per version (``instances``, an :data:`~oipserve.execution.instance.InstanceFactory`), and
    builds each version's scheduler. It never touches a model object itself.
    """

    def __init__(
        self,
        root: Path,
        instances: InstanceFactory,
        *,
        allow_uploads: bool = False,
        upload_max_bytes: int = layout.DEFAULT_UPLOAD_MAX_BYTES,
        metrics_config: MetricsConfig | None = None,
        metric_names: MetricNames | None = None,
        model_name: str = "",
        auto_complete: bool = True,
    ) -> None:
        self.root = root
        self.model_name = model_name
        """The model's name when ``root`` is itself one model's folder (``--model-name``)."""
        self.auto_complete = auto_complete
        """Whether runtimes complete a ``config.pbtxt`` model's config from its file, as Triton
        does unless ``--disable-auto-complete-config``."""
        self._instances = instances
        self.allow_uploads = allow_uploads
        """Whether a load may bring its own files (``--allow-model-upload``; off by default)."""
        self.upload_max_bytes = upload_max_bytes
        self._metrics_config = metrics_config or MetricsConfig()
        self._metric_names = metric_names or MetricNames()
        self._ready: dict[str, dict[str, LoadedModel]] = {}
        self._latest: dict[str, LoadedModel] = {}
        """The highest READY version of each model: what a request without a version gets."""
        self._status: dict[str, dict[str, _Status]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._override_folders: dict[str, Path] = {}
        """model name → the temporary folder its READY versions were loaded from (``file:``)."""
        self._model_errors: dict[str, str] = {}
        """model name → why its folder could not be read (bad config, no model file, ...), for
        a model with no version serving; shown in the index without a version."""
        self._expected: set[str] = set()
        """Models announced for loading (start-up) whose load has not finished yet."""
        self.server: ServerCalls | None = None
        """What models may call on the server (set by the dataplane that owns this registry)."""
        self._retiring: set[asyncio.Task[None]] = set()
        """Versions being retired because their instance gave up."""

    # -- queries -------------------------------------------------------------------------------

    def _set_ready(self, name: str, versions: dict[str, LoadedModel]) -> None:
        if versions:
            self._ready[name] = versions
            self._latest[name] = versions[max(versions, key=version_key)]
        else:
            self._ready.pop(name, None)
            self._latest.pop(name, None)

    def model_names(self) -> list[str]:
        """The model folders of the repository, sorted."""
        return layout.list_model_names(self.root, self.model_name)

    def get(self, name: str, version: str = "") -> LoadedModel:
        """The READY version asked for, or the highest READY one when ``version`` is empty.

        :class:`Unavailable` (with the state and reason) for a model or version that is loading
        or failed to load; :class:`ModelNotFound` for one that is unknown or unloaded.
        """
        if not version:
            latest = self._latest.get(name)
            if latest is not None:
                return latest
        ready = self._ready.get(name, {})
        if version:
            if version in ready:
                return ready[version]
            status = self._status.get(name, {}).get(version)
            if status is not None and status.state is not ModelState.UNKNOWN:
                raise Unavailable(
                    f"model '{name}' version {version} is not ready ({status.state.value}"
                    + (f": {status.reason})" if status.reason else ")")
                )
            raise ModelNotFound(name, version)
        not_ready = self._not_ready(name)
        if not_ready:
            raise Unavailable(f"model '{name}' is not ready ({not_ready})")
        if name in self._status:
            raise ModelNotFound(name, detail="has no available versions")
        raise ModelNotFound(name)

    def _not_ready(self, name: str) -> str:
        """``LOADING`` or ``UNAVAILABLE: <why>`` for a model with no READY version that is
        loading or failed to load; empty for one that is unknown or was unloaded."""
        statuses = self._status.get(name, {})
        if name in self._expected or any(s.state is ModelState.LOADING for s in statuses.values()):
            return ModelState.LOADING.value
        if name in self._model_errors:
            return f"{ModelState.UNAVAILABLE.value}: {self._model_errors[name]}"
        failed = [f"version {v}: {s.reason}" for v, s in statuses.items() if s.failed]
        if failed:
            return f"{ModelState.UNAVAILABLE.value}: {'; '.join(failed)}"
        return ""

    def ready_versions(self, name: str) -> list[str]:
        return sorted(self._ready.get(name, {}), key=version_key)

    def loaded(self) -> Iterator[LoadedModel]:
        for name in sorted(self._ready):
            versions = self._ready[name]
            for version in sorted(versions, key=version_key):
                yield versions[version]

    def readiness(self, name: str, version: str = "") -> ModelReadiness:
        """Whether a known model (version) is READY, and why not; :class:`ModelNotFound` for an
        unknown one."""
        try:
            self.get(name, version)
        except Unavailable as exc:
            return ModelReadiness(name, False, exc.message)
        except ModelNotFound as exc:
            if name in self._status and (not version or version in self._status[name]):
                return ModelReadiness(name, False, exc.message)
            raise
        return ModelReadiness(name, True)

    def index(self) -> list[IndexEntry]:
        """Every model folder and every version with a state (Triton's repository index)."""
        names = set(self._status)
        if self.root.is_dir():
            names.update(layout.list_model_names(self.root, self.model_name))
        entries: list[IndexEntry] = []
        for name in sorted(names):
            statuses = self._status.get(name, {})
            if name in self._model_errors and not self._ready.get(name):
                entries.append(
                    IndexEntry(name, "", ModelState.UNAVAILABLE.value, self._model_errors[name])
                )
            elif not statuses:
                entries.append(IndexEntry(name))
            for version in sorted(statuses, key=version_key):
                status = statuses[version]
                entries.append(IndexEntry(name, version, status.state.value, status.reason))
        return entries

    def failures(self) -> dict[str, str]:
        """``name/version`` → reason, for every version that failed to load."""
        failed = {
            f"{name}/{version}": status.reason
            for name, statuses in self._status.items()
            for version, status in statuses.items()
            if status.state is ModelState.UNAVAILABLE and status.reason
        }
        failed.update(
            (f"{name}/-", reason)
            for name, reason in self._model_errors.items()
            if not self._ready.get(name)
        )
        return failed

    # -- lifecycle -----------------------------------------------------------------------------

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    def expect(self, names: Iterable[str]) -> None:
        """Announce models about to load (start-up): until its load ends, each answers
        ``LOADING`` (503) rather than unknown (404)."""
        self._expected.update(names)

    async def load(
        self,
        name: str,
        config: str | None = None,
        files: Mapping[str, bytes] | None = None,
    ) -> None:
        """(Re)load every version of ``name`` its version policy selects.

        ``config`` (the JSON of a ModelConfig, the repository API's ``config`` load parameter)
        replaces the folder's config; ``files`` (relative path → content, e.g.
        ``"1/model.joblib"``) replace the whole model folder and need ``config``; they are refused
        (:class:`PermissionDenied`) unless the registry allows uploads. Each failure is logged
        once, here.
        """
        try:
            if files and not self.allow_uploads:
                raise PermissionDenied(UPLOAD_REFUSED)
            layout.validate_name(self.root, name, self.model_name)
            override = None
            if config is not None:
                override = config_module.parse_json(config, LOAD_PARAMETER_SOURCE)
                triton.check(override, LOAD_PARAMETER_SOURCE)
            elif files:
                raise InvalidArgument(
                    f"loading model '{name}' with file overrides needs the 'config' parameter too"
                )
            async with self._lock(name):
                await self._load_locked(name, override, files)
        finally:
            self._expected.discard(name)

    async def _load_locked(
        self, name: str, override: ModelConfig | None, files: Mapping[str, bytes] | None
    ) -> None:
        temporary: Path | None = None
        try:
            folder = None
            if files:
                temporary = Path(tempfile.mkdtemp(prefix="oipserve-override-"))
                folder = layout.write_model_files(temporary / name, files, self.upload_max_bytes)
            source = layout.read_model(self.root, name, override, folder, self.model_name)
            switched, errors = await self._load(name, source)
        except BaseException as exc:
            if temporary is not None:
                shutil.rmtree(temporary, ignore_errors=True)
            in_repository = layout.validate_name(self.root, name, self.model_name)
            if isinstance(exc, InvalidArgument) and in_repository.is_dir():
                self._model_errors[name] = str(exc)
            if isinstance(exc, Exception):  # the folder could not be read: logged once, here
                logger.error("model '%s' failed to load: %s", name, exc)
            raise
        self._model_errors.pop(name, None)
        if switched:
            self._drop_override_folder(name)
            if temporary is not None and self._ready.get(name):
                self._override_folders[name] = temporary
                temporary = None
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
        if errors:
            raise ModelLoadError(f"failed to load '{name}': {'; '.join(errors)}")

    def _drop_override_folder(self, name: str) -> None:
        folder = self._override_folders.pop(name, None)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    async def _load(self, name: str, source: layout.ModelSource) -> tuple[bool, list[str]]:
        """Load ``source``'s versions beside the READY ones and switch over.

        Returns whether it switched (False: some version failed and the old ones keep serving)
        and the errors, one per failed version.
        """
        # what the ModelConfig proto refuses (a bad enum, an unknown field in a section we only
        # carry) is refused now, not when a client first asks for the config
        triton.check(source.config, f"the config of model '{name}'")
        _check_file_fields(source.config, source.config_hint)
        versions = layout.select_versions(source)
        if not versions:
            raise InvalidArgument(f"model '{name}': its version_policy selects no version")
        statuses = self._status.setdefault(name, {})
        old = dict(self._ready.get(name, {}))
        fresh: dict[str, LoadedModel] = {}
        errors: list[str] = []
        for version in versions:
            if version not in old:
                statuses[version] = _Status(ModelState.LOADING)
            try:
                fresh[version] = await self._load_version(source, version)
            except Exception as exc:
                known = isinstance(exc, OIPServeError)
                reason = str(exc) if known else f"{type(exc).__name__}: {exc}"
                errors.append(f"version {version}: {reason}")
                # once per failure; a traceback when the model's own code raised
                logger.error(
                    "model '%s' version %s failed to load: %s",
                    name,
                    version,
                    reason,
                    exc_info=None if known and exc.__cause__ is None else exc,
                )
                if version not in old:
                    statuses[version] = _Status(ModelState.UNAVAILABLE, reason, failed=True)
        if errors and old:
            # keep the old versions serving; drop what did load of the new ones
            for loaded in fresh.values():
                await self._retire(loaded)
            for version in versions:
                if version not in old and version in fresh:
                    statuses[version] = _Status(ModelState.UNAVAILABLE, "a reload failed")
            return False, errors
        self._set_ready(name, fresh)
        for version, loaded in fresh.items():
            statuses[version] = _Status(ModelState.READY)
            logger.info("model '%s' version %s is READY (%s)", name, version, loaded.backend)
        for version, loaded in old.items():
            if fresh.get(version) is not loaded:
                await self._retire(loaded)
            if version not in fresh:
                statuses[version] = _Status(ModelState.UNAVAILABLE, "unloaded")
        return True, errors

    async def unload(self, name: str) -> None:
        """Unload every version of ``name``; a harmless no-op when nothing is loaded."""
        layout.validate_name(self.root, name, self.model_name)
        async with self._lock(name):
            loaded = self._ready.get(name, {})
            self._set_ready(name, {})
            statuses = self._status.get(name, {})
            for version in loaded:
                statuses[version] = _Status(ModelState.UNLOADING)
            for version, model in loaded.items():
                await self._retire(model)
                statuses[version] = _Status(ModelState.UNAVAILABLE, "unloaded")
                logger.info("model '%s' version %s is unloaded", name, version)
            self._drop_override_folder(name)

    def instance_unavailable(self, instance: ModelInstance, reason: str) -> None:
        """Execution gave up on ``instance`` (its processes kept crashing): the version it ran
        stops serving and is UNAVAILABLE with ``reason``; its other versions keep serving."""
        for name, versions in self._ready.items():
            for version, loaded in versions.items():
                if loaded.instance is instance:
                    self._set_ready(name, {v: m for v, m in versions.items() if v != version})
                    self._status.setdefault(name, {})[version] = _Status(
                        ModelState.UNAVAILABLE, reason, failed=True
                    )
                    logger.error("model '%s' version %s is UNAVAILABLE: %s", name, version, reason)
                    task = asyncio.get_running_loop().create_task(self._retire(loaded))
                    self._retiring.add(task)
                    task.add_done_callback(self._retiring.discard)
                    return

    async def close(self) -> None:
        await asyncio.gather(*self._retiring, return_exceptions=True)
        for name in list(self._ready):
            await self.unload(name)
        for name in list(self._override_folders):
            self._drop_override_folder(name)

    async def _retire(self, loaded: LoadedModel) -> None:
        await loaded.scheduler.drain()
        try:
            await loaded.instance.unload()
        except Exception:
            logger.exception(
                "model '%s' version %s raised in unload()", loaded.name, loaded.version
            )

    async def _load_version(self, source: layout.ModelSource, version: str) -> LoadedModel:
        folder = source.version_folder(version)
        backend, model_file = layout.guess_backend(source, folder)
        custom_metrics = ModelMetrics(source.name, version, self._metric_names)
        ctx = LoadContext(
            source.name,
            version,
            folder,
            source.config,
            model_file,
            metrics_registry=custom_metrics,
            server=self.server,
            auto_complete=self.auto_complete and source.reader == CONFIG_PBTXT,
        )
        spec = loading.instance_spec(backend, ctx)
        instance = self._instances(spec)
        load_start = time.perf_counter()
        signature = await instance.load()
        observations = ModelObservations(self._metrics_config)
        observations.load_seconds = time.perf_counter() - load_start
        try:
            config = _complete_config(source.name, backend, source.config, signature)
            policy = config.model_transaction_policy
            if spec.execution == "process" and policy is not None and policy.decoupled:
                raise ModelLoadError(
                    f"model '{source.name}' is decoupled: it runs in the server process only "
                    "(execution = 'process' cannot carry its response sender yet)"
                )
            labels = {
                out.name: _read_labels(source.path, folder, out.label_filename)
                for out in config.output
                if out.label_filename
            }
        except BaseException:
            await instance.unload()
            raise
        statistics = ModelStatistics()
        scheduler = Scheduler(
            source.name,
            instance.infer,
            loading.batch_policy(config, instance.concurrency),
            statistics=statistics,
        )
        return LoadedModel(
            name=source.name,
            version=version,
            backend=backend,
            config=config,
            instance=instance,
            scheduler=scheduler,
            statistics=statistics,
            inputs={spec.name: spec for spec in _serving_inputs(source.config, config, signature)},
            outputs={spec.name: spec for spec in config.output_specs()},
            labels=labels,
            observations=observations,
            custom_metrics=custom_metrics,
        )


def _complete_config(
    name: str, backend: str, config: ModelConfig, signature: Signature | None
) -> ModelConfig:
    """Fill the config's gaps from what the model file says (config wins where it speaks), then
    apply the fields the model completed itself (``Signature.config``, Triton's auto-complete)."""
    if signature is not None and signature.config:
        source = f"the config completed by model '{name}'"
        merged = {**config_module.to_builtins(config), **signature.config}
        config = config_module.from_builtins(merged, source)
        triton.check(config, source)
    updates: dict[str, object] = {"name": name, "backend": config.backend or backend}
    if signature is not None:
        if signature.decoupled:
            updates["model_transaction_policy"] = TransactionPolicy(decoupled=True)
        if not config.input and signature.inputs:
            updates["input"] = [
                ModelInput(s.name, CONFIG_NAMES[s.datatype], list(s.shape))
                for s in signature.inputs
            ]
        if not config.output and signature.outputs:
            updates["output"] = [
                ModelOutput(s.name, CONFIG_NAMES[s.datatype], list(s.shape))
                for s in signature.outputs
            ]
        if not config.platform and signature.platform:
            updates["platform"] = signature.platform
    return msgspec.structs.replace(config, **updates).with_normalized_types()


def _serving_inputs(
    declared: ModelConfig, completed: ModelConfig, signature: Signature | None
) -> tuple[TensorSpec, ...]:
    """The inputs requests are checked against: the runtime's own specs when the config declares
    none (they also say which datatypes it converts, ``TensorSpec.accepts``), else the config's,
    which are strict."""
    if signature is not None and signature.inputs and not declared.input:
        return signature.inputs
    return completed.input_specs()


def _check_file_fields(config: ModelConfig, origin: str) -> None:
    """Configuration fields naming a file stay inside the model's folder (400 otherwise)."""
    if config.default_model_filename:
        paths.relative_inside(config.default_model_filename, f"default_model_filename in {origin}")
    for output in config.output:
        if output.label_filename:
            what = f"label_filename of output '{output.name}' in {origin}"
            paths.relative_inside(output.label_filename, what)


def _read_labels(model_folder: Path, version_folder: Path, filename: str) -> list[str]:
    for folder in (version_folder, model_folder):
        path = paths.inside(folder, filename, "label_filename")
        if path.is_file():
            return path.read_text(encoding="utf-8").splitlines()
    raise ModelLoadError(f"label file '{filename}' not found in {version_folder} or {model_folder}")
