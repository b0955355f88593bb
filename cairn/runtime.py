"""How a Cairn worker is composed: settings, the data converter, the client and the worker.

`settings_from_env` reads the environment once into a frozen `Settings`; `connect` and
`build_worker` turn settings into a Temporal client and a worker for every Cairn workflow and
activity. ``worker.py`` (the process), the CLI, the tests and the benchmarks all build workers
here.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.envconfig import ClientConfig
from temporalio.worker import Worker

from activities import AgentActivities, AgentRegistry, MemoryActivities
from activities.demo import register_demo
from activities.llm import ProviderSettings
from activities.streams import StreamActivities
from cairn import DEFAULT_MEMORY_URL
from cairn.codec import EncryptionCodec, data_converter_with_codec, keys_from_env_value
from cairn.embedders import build_embedder, embedding_configs, parse_patterns
from cairn.subject_codec import SubjectCodec, subject_data_converter
from cairn.telemetry import Telemetry, capture_content
from memory import MemoryStore
from memory.embedding import EmbeddingConfig
from workflows.chain import ChainWorkflow
from workflows.session import SessionWorkflow


class Settings(BaseModel):
    """Everything a worker needs, read once from the environment by `settings_from_env`."""

    model_config = ConfigDict(frozen=True)
    temporal: dict[str, Any] = Field(default_factory=dict, repr=False)
    task_queue: str = "cairn"
    memory_url: str = DEFAULT_MEMORY_URL
    max_concurrent_steps: int = Field(default=16, ge=1, le=1000)
    shutdown_grace: float = Field(default=30.0, ge=0)
    health_port: int | None = Field(default=None, ge=0, le=65535)
    encryption_keys: SecretStr | None = None
    extensions: tuple[str, ...] = ()
    providers: ProviderSettings = ProviderSettings()
    capture_content: bool = False
    embedder: str | None = None
    embed_namespaces: tuple[tuple[str, ...], ...] = ()
    embed_dims: int | None = Field(default=None, ge=1)

    @property
    def temporal_address(self) -> str:
        """The Temporal frontend address (for messages; never includes credentials)."""
        return str(self.temporal.get("target_host", "localhost:7233"))


# Settings read verbatim from one variable each (the variable names errors, too).
_ENV_FIELDS = {
    "task_queue": "CAIRN_TASK_QUEUE",
    "memory_url": "CAIRN_MEMORY_URL",
    "max_concurrent_steps": "CAIRN_MAX_CONCURRENT_STEPS",
    "shutdown_grace": "CAIRN_SHUTDOWN_GRACE",
    "health_port": "CAIRN_HEALTH_PORT",
    "embedder": "CAIRN_EMBEDDER",
    "embed_dims": "CAIRN_EMBED_DIMS",
}


def settings_from_env(env: Mapping[str, str] | None = None) -> Settings:
    """Read `Settings` from ``env`` (default: the process environment).

    Raises:
        ValueError: A variable is malformed; the message names it.
    """
    env = os.environ if env is None else env
    temporal = dict(
        ClientConfig.load_client_connect_config(
            profile=env.get("TEMPORAL_PROFILE"), override_env_vars=dict(env)
        )
    )
    temporal.setdefault("target_host", "localhost:7233")

    def secret(name: str) -> SecretStr | None:
        value = env.get(name, "").strip()
        return SecretStr(value) if value else None

    fields: dict[str, Any] = {
        "temporal": temporal,
        "encryption_keys": secret("CAIRN_ENCRYPTION_KEYS"),
        "providers": ProviderSettings(
            openai_api_key=secret("OPENAI_API_KEY"),
            openai_base_url=env.get("OPENAI_BASE_URL") or None,
            anthropic_api_key=secret("ANTHROPIC_API_KEY"),
            anthropic_base_url=env.get("ANTHROPIC_BASE_URL") or None,
        ),
        "extensions": tuple(
            m.strip() for m in env.get("CAIRN_EXTENSIONS", "").split(",") if m.strip()
        ),
        "capture_content": capture_content(env),
    }
    for field, name in _ENV_FIELDS.items():
        if env.get(name):
            fields[field] = env[name]
    fields["embed_namespaces"] = parse_patterns(env.get("CAIRN_EMBED_NAMESPACES", ""))
    if fields["embed_namespaces"] and not fields.get("embedder"):
        embedding_configs(None, fields["embed_namespaces"])  # raises, naming both variables
    try:
        return Settings(**fields)
    except ValidationError as error:
        first = error.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        raise ValueError(f"{_ENV_FIELDS.get(field, field)}: {first['msg']}") from None


def store_embedders(settings: Settings) -> list[EmbeddingConfig]:
    """The memory store's `EmbeddingConfig`s (``CAIRN_EMBEDDER``, ``CAIRN_EMBED_NAMESPACES``)."""
    if settings.embedder is None:
        return []
    embedder = build_embedder(
        settings.embedder,
        dims=settings.embed_dims,
        api_key=settings.providers.openai_api_key,
        base_url=settings.providers.openai_base_url,
    )
    return embedding_configs(embedder, settings.embed_namespaces)


def data_converter(settings: Settings, store: MemoryStore | None = None) -> DataConverter:
    """The pydantic data converter, encrypting payloads when keys are configured.

    With keys, sessions' payloads are sealed under their data keys in ``store`` (default: the
    memory at ``settings.memory_url``, opened on the first one), so that forgetting a session
    or its user shreds them (`cairn.subject_codec`); every other payload under the keys
    themselves.
    """
    if settings.encryption_keys is None:
        return data_converter_with_codec(None)
    keys, active = keys_from_env_value(settings.encryption_keys.get_secret_value())
    return subject_data_converter(
        SubjectCodec(EncryptionCodec(keys, active), settings.memory_url if store is None else store)
    )


async def connect(
    settings: Settings, tracing: Telemetry | None = None, *, store: MemoryStore | None = None
) -> Client:
    """Connect to Temporal; a failure is a `ConnectionError` naming the address.

    With ``tracing``, the client (and so every worker built on it) carries Temporal's tracing
    interceptor and reports Temporal's SDK metrics. A process that already has the memory
    store passes it as ``store``, so the payload codec reads data keys from it rather than
    opening the store a second time.
    """
    tracing = tracing or Telemetry()
    try:
        return await Client.connect(
            **settings.temporal,
            data_converter=data_converter(settings, store),
            interceptors=tracing.interceptors,
            runtime=tracing.runtime,
        )
    except RuntimeError as error:
        raise ConnectionError(
            f"cannot reach Temporal at {settings.temporal_address}: {str(error).splitlines()[0]}"
        ) from None


@dataclass(frozen=True)
class Extensions:
    """What the ``CAIRN_EXTENSIONS`` modules add to a worker (see `load_extensions`)."""

    workflows: tuple[type, ...] = ()
    agent_activities: type[AgentActivities] = AgentActivities


def load_extensions(settings: Settings, registry: AgentRegistry) -> Extensions:
    """Import the ``CAIRN_EXTENSIONS`` modules, the way users load their own code into a worker.

    Each module may define any of:

    - ``registry``: an `AgentRegistry`, merged into ``registry`` (agents, scripts, tools);
    - ``workflows``: workflow classes to register besides Cairn's;
    - ``agent_activities``: a subclass of `AgentActivities` to run agent steps with (for
      instance one overriding its `AgentActivities.checkpoint` extension point). At most one
      module may define it.

    Raises:
        ImportError: A module cannot be imported; the message names it.
        ValueError: ``agent_activities`` is not an `AgentActivities` subclass, or two modules
            define it; the message names the modules.
    """
    workflows: list[type] = []
    agent_activities: tuple[str, type[AgentActivities]] | None = None
    for name in settings.extensions:
        try:
            module = importlib.import_module(name)
        except ImportError as error:
            raise ImportError(
                f"CAIRN_EXTENSIONS: cannot import {name!r} ({error}); is its directory the "
                "current one, or on PYTHONPATH?",
                name=error.name,
            ) from error
        extra = getattr(module, "registry", None)
        if isinstance(extra, AgentRegistry):
            registry.merge(extra)
        workflows.extend(getattr(module, "workflows", ()))
        cls = getattr(module, "agent_activities", None)
        if cls is None:
            continue
        if not (isinstance(cls, type) and issubclass(cls, AgentActivities)):
            raise ValueError(
                f"CAIRN_EXTENSIONS: {name}.agent_activities must be a subclass of "
                f"AgentActivities, got {cls!r}"
            )
        if agent_activities is not None:
            raise ValueError(
                f"CAIRN_EXTENSIONS: both {agent_activities[0]} and {name} define agent_activities"
            )
        agent_activities = (name, cls)
    if agent_activities is None:
        return Extensions(workflows=tuple(workflows))
    return Extensions(workflows=tuple(workflows), agent_activities=agent_activities[1])


STICKY_TIMEOUT = timedelta(seconds=5)
"""How long a workflow task waits for the worker that ran the workflow last before any worker
may take it (the SDK's default is 10 s). When that worker died, every workflow it ran stalls
this long after its next event, as after a killed step's rerun; a busy live worker taking
longer only costs a replay elsewhere."""


def build_worker(
    client: Client,
    store: MemoryStore,
    settings: Settings,
    registry: AgentRegistry | None = None,
    workflows: Sequence[type] = (),
    agent_activities: type[AgentActivities] = AgentActivities,
    extensions: Extensions | None = None,
) -> Worker:
    """A worker for every Cairn workflow and activity (plus ``workflows``) on one store.

    ``agent_activities`` runs the agent steps: `AgentActivities` or a subclass of it.
    ``extensions`` (from `load_extensions`, whose registry is ``registry``) adds the
    workflows the ``CAIRN_EXTENSIONS`` modules define and their ``agent_activities``.
    """
    if extensions is not None:
        workflows = (*workflows, *extensions.workflows)
        if extensions.agent_activities is not AgentActivities:
            agent_activities = extensions.agent_activities
    # The demo's scripted behaviours first, so that a user's agents of the same name win.
    combined = register_demo(AgentRegistry())
    if registry is not None:
        combined.merge(registry)
    registry = combined
    agents = agent_activities(
        store, registry, settings.providers, capture_content=settings.capture_content
    )
    memory = MemoryActivities(store)
    streams = StreamActivities(store)
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[ChainWorkflow, SessionWorkflow, *workflows],
        activities=[
            agents.agent_step,
            agents.compact_transcript,
            memory.write_memory,
            memory.open_session,
            streams.append_stream_items,
            streams.read_stream_items,
            streams.pop_stream_item,
            streams.clear_stream,
        ],
        max_concurrent_activities=settings.max_concurrent_steps,
        graceful_shutdown_timeout=timedelta(seconds=settings.shutdown_grace),
        sticky_queue_schedule_to_start_timeout=STICKY_TIMEOUT,
    )
