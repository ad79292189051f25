"""Settings: one root with nested sections, read from env, a TOML file and defaults.

Precedence (highest first): arguments, ``TUNELOOP_*`` variables (nested with ``__``,
e.g. ``TUNELOOP_PIPELINE__DAYS_BACK=14``), the standard names (``DATABASE_URL``,
``REDIS_URL``, ``MLFLOW_TRACKING_URI``, ``OPENAI_API_KEY``, ...), ``tuneloop.toml``
(or the file named by ``TUNELOOP_CONFIG``), then the defaults below. Every default is
local and safe, so ``tuneloop demo`` needs no configuration at all.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from tuneloop.resilience.breaker import BreakerConfig


class DatabaseSettings(BaseModel):
    # URLs may carry passwords: kept out of repr; ``Settings.redacted()`` shows them masked.
    url: str = Field(
        default="",
        repr=False,
        description="SQLAlchemy URL. Empty: a SQLite file in the workspace.",
    )
    pool_min: int = Field(default=2, ge=1, description="Connections kept open per process.")
    pool_max: int = Field(default=10, ge=1, description="Most connections per process.")
    pool_recycle_seconds: int = Field(default=300, description="Idle lifetime of a connection.")
    command_timeout_seconds: int = Field(
        default=60, ge=0, description="Statement timeout (PostgreSQL); 0: none."
    )


class RedisSettings(BaseModel):
    url: str | None = Field(default=None, repr=False, description="redis:// URL. None: in-process.")


class EventsSettings(BaseModel):
    """The durable event stream between ``POST /v1/events`` and the events table."""

    stream: Literal["auto", "database", "redis", "kafka"] = Field(
        default="auto",
        description="Where accepted events wait: auto = Redis Streams when REDIS_URL is set, "
        "else an append-only table in the app database; kafka = a Kafka topic (needs the "
        "`kafka` extra and kafka_bootstrap_servers; never chosen by auto).",
    )
    stream_key: str = Field(
        default="tuneloop:events",
        description="Redis stream key; dead letters go to KEY:dlq:CATEGORY.",
    )
    group: str = Field(
        default="tuneloop-consumers", description="Redis consumer group, or Kafka group.id."
    )
    kafka_bootstrap_servers: str = Field(
        default="", description="Kafka brokers, host:port[,host:port] (events.stream = kafka)."
    )
    kafka_topic: str = Field(
        default="tuneloop.events",
        description="Kafka topic of accepted events; dead letters go to TOPIC.dlq.CATEGORY.",
    )
    kafka_config: dict[str, str] = Field(
        default_factory=dict,
        repr=False,
        description="Extra librdkafka settings for every Kafka client (security.protocol, "
        'sasl.*, ssl.*), e.g. TUNELOOP_EVENTS__KAFKA_CONFIG=\'{"security.protocol":"SSL"}\'.',
    )
    sqlite_own_file: bool = Field(
        default=True,
        description="On SQLite, keep the embedded stream in a file of its own next to the "
        "database, so appends never wait for the events table's writer.",
    )
    consume_in_serve: bool = Field(
        default=True, description="`tuneloop serve` runs a consumer in each worker process."
    )
    batch_size: int = Field(default=5000, ge=1, description="Entries written per batch.")
    max_deliveries: int = Field(
        default=5, ge=1, description="Deliveries before a failing entry is dead-lettered."
    )
    claim_idle_seconds: float = Field(
        default=60.0,
        ge=0.0,
        description="An entry delivered but not acknowledged for this long is reclaimed.",
    )
    poll_seconds: float = Field(
        default=0.2, gt=0.0, description="How long an idle consumer waits for new entries."
    )


class MlflowSettings(BaseModel):
    tracking_uri: str = Field(
        default="", repr=False, description="Empty: sqlite store in the workspace."
    )
    experiment_name: str = Field(
        default="tuneloop", description="Prefix of per-tenant experiments."
    )
    outage_wait_seconds: float = Field(
        default=300.0,
        ge=0.0,
        description="How long a run step that needs MLflow waits out an outage (breaker "
        "open, MLflow unreachable) before the run fails as retryable; 0: fail at once.",
    )


class OpenAISettings(BaseModel):
    api_key: SecretStr | None = None
    base_url: str = "https://api.openai.com/v1"


class SourceSettings(BaseModel):
    """Where the posts live: table and column names, so a team can use its own table."""

    table: str = "posts"
    id_column: str = "id"
    tenant_column: str | None = Field(
        default="tenant_id", description="None: the whole table belongs to the tenant asked for."
    )
    persona_column: str = "persona_id"
    hook_column: str = "hook"
    body_column: str = "body"
    engagement_column: str = "engagement_rate"
    ts_column: str = "ts"
    source_model_column: str | None = Field(
        default=None,
        description="Which model wrote a post. None: `source_model` in tuneloop's own `posts` "
        "table; in another table, every post is of unknown origin unless this is set.",
    )
    source_version_column: str | None = Field(
        default=None, description="Its version; None: as for source_model_column."
    )

    def model_columns(self) -> tuple[str, str] | None:
        """The (model, version) columns of the source, or None when it has none."""
        if self.source_model_column and self.source_version_column:
            return self.source_model_column, self.source_version_column
        if self.table == "posts" and not self.source_model_column:
            return "source_model", "source_version"
        return None


class PipelineSettings(BaseModel):
    enabled: bool = True
    training_data_threshold: int = Field(default=100, ge=1)
    engagement_threshold: float = Field(default=0.06, ge=0.0, le=1.0)
    weekly_schedule: str = Field(
        default="0 2 * * 0", description="Cron expression of the scheduled runs (5 fields)."
    )
    timezone: str = Field(default="UTC", description="IANA time zone the schedule reads in.")
    a_b_test_duration_hours: int = Field(default=168, ge=1)
    days_back: int = Field(default=7, ge=1)
    chunk_size: int = Field(default=1000, ge=1)
    max_records: int = Field(default=10000, ge=1)
    memory_alert_mb: int = Field(default=2048, ge=1)
    bootstrap: Literal["promote", "manual"] = Field(
        default="promote",
        description="A tenant with no champion yet: 'promote' makes the first candidate that "
        "passes offline evaluation champion; 'manual' makes its run wait for "
        "`tuneloop models promote`.",
    )
    a_b_test_traffic_split: float = Field(
        default=0.1, gt=0.0, lt=1.0, description="The candidate's share in a run's A/B test."
    )
    min_engagement_lift: float = Field(
        default=0.15, description="A run's A/B test: the lift needed to promote."
    )
    min_cost_efficiency_gain: float = Field(
        default=0.10, description="A run's A/B test: the cost-per-token gain needed to promote."
    )
    significance_threshold: float = Field(default=0.05, gt=0.0, lt=1.0)

    @field_validator("weekly_schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        return check_cron(value)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_timezone(value)


def check_cron(expression: str) -> str:
    """The expression, if the cron library accepts it (five fields, each in range)."""
    from datetime import UTC, datetime

    from cronsim import CronSim, CronSimError

    text = " ".join(expression.split())
    if len(text.split(" ")) != 5:
        raise ValueError(f"cron expression {expression!r} must have 5 fields")
    try:
        CronSim(text, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        raise ValueError(f"invalid cron expression {expression!r}: {exc}") from None
    return text


def check_timezone(name: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name, e.g. Europe/Berlin)"
        ) from None
    return name


class DatasetSettings(BaseModel):
    validation_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    max_tokens_per_example: int = Field(
        default=65536, ge=16, description="OpenAI's per-example training limit (gpt-4o-mini)."
    )
    min_examples: int = Field(default=10, ge=1, description="OpenAI's minimum.")
    n_epochs_for_estimate: int = Field(default=3, ge=1)
    price_per_million_training_tokens: float = Field(default=3.0, ge=0.0)
    max_share_per_model: float = Field(
        default=1.0,
        gt=0.0,
        le=1.0,
        description="Cap on the share of a dataset's posts written by any one model version "
        "(1.0: no cap); an over-represented version loses its lowest-engagement posts.",
    )
    hook_prompt: str = "Create engaging content"
    body_prompt_suffix: str = "\n\nWrite a detailed post:"
    system_prompt: str | None = None


class HostedTrainingSettings(BaseModel):
    """The hosted fine-tuning API (``training.backend = "openai"``), reached through the
    ``openai`` section's ``base_url`` and ``api_key`` (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``)."""

    base_model: str = Field(
        default="gpt-4o-mini-2024-07-18",
        description="The provider's model to fine-tune when training.base_model is 'tiny'.",
    )
    suffix: str = Field(default="tuneloop", max_length=64, description="In the ft: model name.")
    learning_rate_multiplier: float | Literal["auto"] = Field(
        default="auto", description="The provider's learning_rate_multiplier."
    )
    poll_initial_seconds: float = Field(default=5.0, gt=0.0, description="First poll interval.")
    poll_max_seconds: float = Field(
        default=60.0, gt=0.0, description="Poll interval cap (it grows while nothing changes)."
    )
    timeout_seconds: float = Field(default=30.0, gt=0.0, description="Per API request.")
    max_attempts: int = Field(
        default=3, ge=1, description="Tries per call on 429/5xx/timeouts (uploads, job creation)."
    )
    price_per_million_training_tokens: float | None = Field(
        default=None, ge=0.0, description="USD; None: dataset.price_per_million_training_tokens."
    )


class RayTrainingSettings(BaseModel):
    """Distributed training on Ray (``training.backend = "ray"``)."""

    address: str | None = Field(
        default=None, description="Ray cluster address; None: RAY_ADDRESS, else a local Ray."
    )
    num_workers: int = Field(default=2, ge=1, description="Training workers (one process each).")
    use_gpu: bool = Field(default=False, description="One GPU per worker.")
    storage_path: str | None = Field(
        default=None,
        description="Checkpoints and results, reachable by every worker (a shared path or "
        "s3://...); None: the run's work directory (single machine).",
    )


class TrainingSettings(BaseModel):
    """Deployment-level training choices; per-run hyperparameters are stored with each run."""

    backend: Literal["local", "openai", "ray"] = Field(
        default="local", description="Where fine-tuning runs: this machine, a hosted API, Ray."
    )
    init: Literal["base", "champion"] = Field(
        default="base",
        description="Start from the base model, or continue from the champion's adapter "
        "(hosted: fine-tune the champion's ft: model).",
    )
    base_every: int = Field(
        default=4,
        ge=1,
        description="With init=champion: every Nth cycle starts from the base again.",
    )
    stuck_after_minutes: float = Field(
        default=120.0, gt=0.0, description="A hosted job with no progress this long fails."
    )
    openai: HostedTrainingSettings = HostedTrainingSettings()
    ray: RayTrainingSettings = RayTrainingSettings()
    base_model: str = Field(
        default="tiny",
        description="HF model id or local path; 'tiny' builds a small model from the posts.",
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    epochs: int | None = Field(default=None, ge=1, description="None: chosen from data size.")
    learning_rate: float | None = Field(default=None, gt=0)
    lora_r: int | None = Field(default=None, ge=1)
    batch_size: int | None = Field(default=None, ge=1)
    max_length: int | None = Field(default=None, ge=16)
    seed: int = 42


class EvaluationSettings(BaseModel):
    max_loss_increase: float = Field(
        default=-0.001,
        description="Gate: the candidate's held-out loss may exceed the champion's by this "
        "much (nats per token). The default, negative, asks for a real improvement of at "
        "least 0.001: a tie does not pass.",
    )


class ExperimentsSettings(BaseModel):
    """The permanent holdout (docs/decisions/0021-feedback-loop-safeguards.md)."""

    holdout_share: float = Field(
        default=0.0,
        ge=0.0,
        lt=1.0,
        description="Share of units (hash of tenant and unit) served the reference model for "
        "good, before any experiment or rollout; 0: no holdout.",
    )
    holdout_model: str | None = Field(
        default=None,
        pattern=r"^.+@[^@]+$",
        description="The holdout's reference as MODEL@VERSION; None: the tenant's first champion.",
    )


class RolloutSettings(BaseModel):
    """Deployment defaults (the documented ``rollout_config``) and the rollback triggers."""

    strategy: Literal["immediate", "gradual_rollout", "canary"] = "gradual_rollout"
    initial_traffic: float = Field(default=0.1, gt=0.0, le=1.0)
    increment_interval_hours: float = Field(default=24.0, ge=0.0)
    increment_percentage: float = Field(default=0.1, gt=0.0, le=1.0)
    max_traffic: float = Field(default=1.0, gt=0.0, le=1.0)
    max_engagement_drop: float = Field(
        default=0.15, gt=0.0, lt=1.0, description="Roll back when engagement drops this much."
    )
    max_error_rate: float = Field(default=0.05, ge=0.0, le=1.0)
    max_p95_latency_ms: float = Field(default=2000.0, gt=0.0)
    stall_timeout_hours: float | None = Field(
        default=72.0,
        gt=0.0,
        description="A step still inconclusive this long after its hold time is stalled "
        "(None: never).",
    )
    stall_action: Literal["hold", "rollback"] = Field(
        default="hold", description="What a stalled step does: keep holding, or roll back."
    )


class UpstreamSettings(BaseModel):
    """An OpenAI-compatible API that serves a model: a provider, or vLLM on a GPU node."""

    base_url: str = Field(description="Its /v1 base, e.g. http://vllm:8000/v1.")
    api_key: SecretStr | None = Field(default=None, description="Sent as a bearer token.")
    model: str | None = Field(
        default=None,
        description="The name the upstream knows the model by (a vLLM LoRA module name); "
        "None: the model id.",
    )
    timeout_seconds: float = Field(default=30.0, gt=0.0)
    tenant: str | None = Field(
        default=None,
        description="The tenant whose model this entry serves; None: the entry serves a "
        "version only to tenants that registered it (set it when tenants share a server).",
    )
    shared: bool = Field(
        default=False,
        description="A provider's base model any tenant may use (pinned or in an experiment).",
    )
    fallback: str | None = Field(
        default=None,
        description="MODEL@VERSION served instead while this upstream's breaker is open; "
        "None: the call fails (503).",
    )
    # Unset prices record no cost (null), not a free model: experiments compare cost per token.
    input_price_per_million: float | None = Field(
        default=None, ge=0.0, description="USD, prompt tokens; unset: cost not recorded."
    )
    output_price_per_million: float | None = Field(
        default=None, ge=0.0, description="USD, completion tokens; unset: cost not recorded."
    )

    @model_validator(mode="after")
    def _one_owner(self) -> UpstreamSettings:
        if self.shared and self.tenant is not None:
            raise ValueError("an upstream is either shared or one tenant's, not both")
        return self

    def serves(self, tenant_id: str, *, registered: bool) -> bool:
        """Whether this entry may answer ``tenant_id``'s calls: a shared base model, the
        tenant's own entry, or an untenanted entry for a version the tenant registered."""
        if self.shared or self.tenant == tenant_id:
            return True
        return self.tenant is None and registered


class LocalServingSettings(BaseModel):
    """The in-process model server for locally trained versions (base + LoRA adapter)."""

    enabled: bool = Field(default=True, description="Serve versions that have an adapter here.")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    max_batch_size: int = Field(default=8, ge=1, description="Requests generated together.")
    batch_wait_ms: float = Field(
        default=5.0, ge=0.0, description="How long a batch waits for company."
    )
    adapter_cache_size: int = Field(default=4, ge=1, description="Adapters kept loaded (LRU).")
    warmup: bool = Field(default=True, description="Load and try the champion before ready.")
    max_new_tokens: int = Field(default=256, ge=1, description="Cap on max_tokens.")
    num_threads: int | None = Field(default=None, ge=1, description="Torch threads; None: all.")
    input_price_per_million: float | None = Field(
        default=None, ge=0.0, description="USD per million prompt tokens (None: no cost recorded)."
    )
    output_price_per_million: float | None = Field(
        default=None, ge=0.0, description="USD per million completion tokens (None: no cost)."
    )


class UpstreamBreakerSettings(BaseModel):
    """The circuit breaker of each serving upstream (resilience4j-style: a failure rate over
    a sliding window, with a minimum of calls). A 429 is back-pressure, not a failure."""

    failure_rate: float = Field(
        default=0.5, gt=0.0, le=1.0, description="Failed share of the window that opens it."
    )
    minimum_calls: int = Field(default=20, ge=1, description="Calls in the window before judging.")
    failure_threshold: int = Field(default=5, ge=1, description="Fewest failures that open it.")
    window_seconds: float = Field(default=30.0, gt=0.0, description="The sliding window.")
    open_seconds: float = Field(default=5.0, ge=0.0, description="OPEN time before trials.")
    half_open_calls: int = Field(default=3, ge=1, description="Trial calls let through at once.")

    def config(self) -> BreakerConfig:
        return BreakerConfig(
            failure_threshold=self.failure_threshold,
            recovery_timeout_s=self.open_seconds,
            failure_rate=self.failure_rate,
            window_s=self.window_seconds,
            half_open_calls=self.half_open_calls,
            minimum_calls=self.minimum_calls,
        )


class ServingSettings(BaseModel):
    """Routing and the OpenAI-compatible proxy (``/v1/route``, ``/v1/chat/completions``)."""

    route_cache_seconds: float = Field(
        default=1.0,
        ge=0.0,
        description="How long a process reuses a tenant's routing state; 0: read every time.",
    )
    upstreams: dict[str, UpstreamSettings] = Field(
        default_factory=dict,
        description="Where a model is served, by MODEL@VERSION or MODEL. A version without "
        "an entry is served locally when it has an adapter, else by the `openai` section.",
    )
    local: LocalServingSettings = LocalServingSettings()
    breaker: UpstreamBreakerSettings = UpstreamBreakerSettings()


class WorkerSettings(BaseModel):
    """The process that keeps the loop moving: ticks, the leader lease, its clock."""

    enabled_in_serve: bool = Field(
        default=True, description="`tuneloop serve` runs the worker in-process (--no-worker: off)."
    )
    tick_seconds: float = Field(default=30.0, gt=0.0, description="Wall seconds between ticks.")
    lease_seconds: float = Field(
        default=90.0,
        gt=0.0,
        description="How long a leader's lease lasts without renewal; a killed leader is "
        "replaced within this time.",
    )
    timezone: str | None = Field(
        default=None, description="Time zone of the schedule; None: pipeline.timezone."
    )
    clock_speed: float = Field(
        default=1.0,
        gt=0.0,
        description="Run the worker on a scaled clock (3600: a real second is an hour); "
        "for trials and demos only.",
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else check_timezone(value)


class TriggerSettings(BaseModel):
    """When a run starts besides the schedule; None switches a trigger off."""

    min_new_examples: int | None = Field(
        default=100, ge=1, description="data: new qualifying posts since the last collection."
    )
    drift_drop: float | None = Field(
        default=0.15,
        gt=0.0,
        lt=1.0,
        description="drift: relative drop of the champion's engagement vs its baseline.",
    )
    drift_window_hours: float = Field(default=24.0, gt=0.0, description="drift: recent window.")
    drift_baseline_days: float = Field(
        default=7.0, gt=0.0, description="drift: trailing baseline before the recent window."
    )
    drift_alpha: float = Field(default=0.05, gt=0.0, lt=0.5, description="drift: test level.")
    drift_min_units: int = Field(
        default=100, ge=2, description="drift: units needed in each window."
    )
    max_model_age_days: float | None = Field(
        default=30.0, gt=0.0, description="freshness: the champion's greatest age."
    )
    cooldown_hours: float = Field(
        default=24.0, ge=0.0, description="Least time between the starts of two runs."
    )


class ApiSettings(BaseModel):
    """The HTTP service: auth, limits, CORS and where ``tuneloop serve`` listens."""

    host: str = Field(default="127.0.0.1", description="Interface `tuneloop serve` binds.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `tuneloop serve` binds.")
    workers: int = Field(default=1, ge=1, description="Uvicorn worker processes.")
    auth_disabled: bool = Field(
        default=False,
        description="Local use only: every request acts as admin of the default tenant.",
    )
    jwt_secret: SecretStr | None = Field(
        default=None, description="HS256 secret for bearer JWTs (>= 32 chars). None: JWTs refused."
    )
    jwt_audience: str | None = Field(default=None, description="Required `aud` claim, if set.")
    jwt_issuer: str | None = Field(default=None, description="Required `iss` claim, if set.")
    key_cache_seconds: float = Field(
        default=10.0,
        ge=0.0,
        description="How long a process trusts a verified API key; a revoked key stops "
        "working in other worker processes within this time. 0: check every request.",
    )
    rate_limit_per_minute: int = Field(
        default=600, ge=0, description="Requests per minute per key or token subject; 0: off."
    )
    serving_rate_limit_per_minute: int = Field(
        default=6000,
        ge=0,
        description="The same for serving traffic (/v1/route, /v1/chat/completions), counted "
        "apart: a client generating at volume is not throttled like the control API; 0: off.",
    )
    rate_limit_prefix: str = Field(
        default="tuneloop:ratelimit:", description="Redis key prefix of the rate-limit buckets."
    )
    max_body_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="Largest request body accepted (413 above)."
    )
    max_batch_size: int = Field(
        default=1000, ge=1, description="Most items in one batch request (posts, events)."
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed by CORS; empty: CORS off."
    )

    @field_validator("jwt_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("jwt_secret must be at least 32 characters (HS256 key strength)")
        return value


class DashboardSettings(BaseModel):
    """The web dashboard at ``/ui``: its session cookie."""

    session_secret: SecretStr | None = Field(
        default=None,
        description="Signs the dashboard's session cookie (>= 32 chars). None: a random "
        "secret is generated once and kept in the workspace (`dashboard-session.key`).",
    )
    session_ttl_seconds: int = Field(
        default=8 * 3600, ge=60, description="How long a dashboard login lasts."
    )

    @field_validator("session_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("session_secret must be at least 32 characters")
        return value


class Settings(BaseSettings):
    """The root of all deployment settings."""

    model_config = SettingsConfigDict(
        env_prefix="TUNELOOP_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    workspace: Path = Field(default=Path(".tuneloop"), description="DB, MLflow store, artifacts.")
    log_level: str = "INFO"
    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    events: EventsSettings = EventsSettings()
    mlflow: MlflowSettings = MlflowSettings()
    openai: OpenAISettings = OpenAISettings()
    source: SourceSettings = SourceSettings()
    pipeline: PipelineSettings = PipelineSettings()
    dataset: DatasetSettings = DatasetSettings()
    api: ApiSettings = ApiSettings()
    dashboard: DashboardSettings = DashboardSettings()
    training: TrainingSettings = TrainingSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    experiments: ExperimentsSettings = ExperimentsSettings()
    rollout: RolloutSettings = RolloutSettings()
    serving: ServingSettings = ServingSettings()
    worker: WorkerSettings = WorkerSettings()
    triggers: TriggerSettings = TriggerSettings()

    @field_validator("workspace")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{(self.workspace / 'tuneloop.db').resolve()}"

    @property
    def artifacts_dir(self) -> Path:
        return self.workspace / "artifacts"

    @property
    def mlflow_tracking_uri(self) -> str:
        return self.mlflow.tracking_uri or f"sqlite:///{(self.workspace / 'mlflow.db').resolve()}"

    def redacted(self) -> dict[str, Any]:
        """A dump safe to print: secrets masked, passwords removed from URLs."""
        data = self.model_dump(mode="json")
        data["database"]["url"] = mask_url(self.database_url)
        if self.redis.url:
            data["redis"]["url"] = mask_url(self.redis.url)
        data["mlflow"]["tracking_uri"] = mask_url(self.mlflow_tracking_uri)
        if self.openai.api_key is not None:
            data["openai"]["api_key"] = "**********"
        return data

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get("TUNELOOP_CONFIG", "tuneloop.toml"))
        return (
            init_settings,
            env_settings,
            StandardNamesSource(settings_cls),
            TomlConfigSettingsSource(settings_cls, toml_file=toml_path),
        )


# Standard and documented environment names, accepted as aliases of our own settings.
STANDARD_NAMES: dict[str, tuple[str, str]] = {
    "DATABASE_URL": ("database", "url"),
    "REDIS_URL": ("redis", "url"),
    "MLFLOW_TRACKING_URI": ("mlflow", "tracking_uri"),
    "MLFLOW_EXPERIMENT_NAME": ("mlflow", "experiment_name"),
    "OPENAI_API_KEY": ("openai", "api_key"),
    "OPENAI_BASE_URL": ("openai", "base_url"),
    "FINE_TUNING_ENABLED": ("pipeline", "enabled"),
    "FINE_TUNING_MIN_EXAMPLES": ("pipeline", "training_data_threshold"),
    "FINE_TUNING_ENGAGEMENT_THRESHOLD": ("pipeline", "engagement_threshold"),
    "FINE_TUNING_SCHEDULE": ("pipeline", "weekly_schedule"),
}


class StandardNamesSource(PydanticBaseSettingsSource):
    """Reads the standard environment names into their nested sections."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ builds the whole dict

    def __call__(self) -> dict[str, Any]:
        found: dict[str, dict[str, Any]] = {}
        for env_name, (section, key) in STANDARD_NAMES.items():
            value = os.environ.get(env_name)
            if value not in (None, ""):
                found.setdefault(section, {})[key] = value
        return found


def mask_url(url: str) -> str:
    from sqlalchemy.engine import make_url  # local: config stays light to import

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a SQLAlchemy URL (redis://...): mask by hand
        if "@" in url and "://" in url:
            scheme, rest = url.split("://", 1)
            creds, host = rest.rsplit("@", 1)
            user = creds.split(":", 1)[0]
            return f"{scheme}://{user}:***@{host}"
        return url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, built on first use (never at import time)."""
    return Settings()
