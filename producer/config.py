"""Producer settings: environment variables PRODUCER_* (or a .env file), with local-stack defaults.

Lists take JSON or commas: PRODUCER_KEYWORDS='covid,vaccin' or '["covid", "corona virus"]'.
The X bearer token is read from X_BEARER_TOKEN (or PRODUCER_X_BEARER_TOKEN) and is
never printed: it is a SecretStr, masked in reprs, and masked in log records.
"""

from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO = Path(__file__).resolve().parent.parent

# what the original 2021 project tracked on Twitter (in French)
ORIGINAL_KEYWORDS = ["covid", "vaccin", "COVID-19", "corona virus"]


class ProducerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PRODUCER_", env_file=".env", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:9092"
    # Apicurio's Confluent-compatible API
    registry_url: str = "http://127.0.0.1:8081/apis/ccompat/v7"
    topic: str = "tweets"
    schema_file: Path = REPO / "schemas" / "post.avsc"
    # the evolution policy the registry enforces on the topic's value subject (set when it has none)
    schema_compatibility: str = "BACKWARD"
    # rejected input lines are kept here for inspection
    rejects_dir: Path = REPO / ".stack" / "rejects"
    # a post's text larger than this is rejected (the broker takes 1 MiB records)
    max_text_bytes: int = 100_000
    # a replay file's line larger than this is rejected (and skipped without being read whole)
    max_line_bytes: int = 1_048_576
    # a live source's frame (a Jetstream message, an X stream line, an X search page) larger than this is rejected
    max_frame_bytes: int = 1_000_000
    # the rejects file keeps the first this many bytes of a rejected input (and its size)
    reject_preview_bytes: int = 10_000

    # Kafka producer (idempotence and acks=all are always on)
    compression: str = "lz4"
    linger_ms: int = 50
    batch_size: int = 1_000_000
    message_timeout_ms: int = 300_000
    # further librdkafka properties, e.g. {"client.id": "me"}
    kafka: dict[str, str | int | float | bool] = {}

    # metrics: a log line every log_interval_s, Prometheus text at http://metrics_host:metrics_port/metrics
    log_interval_s: float = 10.0
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(9108, description="0: any free port; -1: no endpoint")

    # live sources: which posts to keep
    keywords: Annotated[list[str], NoDecode] = list(ORIGINAL_KEYWORDS)
    languages: Annotated[list[str], NoDecode] = ["fr"]

    # X API v2
    x_bearer_token: SecretStr | None = Field(
        None, validation_alias=AliasChoices("X_BEARER_TOKEN", "PRODUCER_X_BEARER_TOKEN", "x_bearer_token")
    )
    x_api_url: str = "https://api.twitter.com"
    x_rule_tag: str = "tweetstream"
    x_poll_interval_s: float = 30.0
    x_max_pages: int = 10

    # Bluesky Jetstream (public, no account)
    bluesky_url: str = "wss://jetstream2.us-east.bsky.network/subscribe"
    # no frame for this long: the connection is taken for dead and replaced
    stall_timeout_s: float = 30.0

    # reconnects: network errors back off linearly, HTTP errors and 429s exponentially
    # (the X API's guidance: 250 ms steps to 16 s; 5 s doubling to 320 s; 1 min doubling for 429)
    reconnect_base_s: float = 0.25
    reconnect_max_s: float = 16.0
    http_error_base_s: float = 5.0
    http_error_max_s: float = 320.0
    rate_limit_base_s: float = 60.0
    rate_limit_max_s: float = 960.0
    # each wait is lengthened by a random 0 to reconnect_jitter of itself, so clients do not reconnect in step
    reconnect_jitter: float = 0.25
    # a connection resets the backoff once it delivered a post or stayed up this long (not when it closes at once)
    reconnect_reset_s: float = 30.0

    @field_validator("keywords", "languages", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @property
    def subject(self) -> str:
        """The registry subject of the topic's values (TopicNameStrategy)."""
        return f"{self.topic}-value"
