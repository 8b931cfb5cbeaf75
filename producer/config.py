"""Producer settings: environment variables PRODUCER_* (or a .env file), with local-stack defaults."""

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

REPO = Path(__file__).resolve().parent.parent


class ProducerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PRODUCER_", env_file=".env", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:9092"
    # Apicurio's Confluent-compatible API
    registry_url: str = "http://127.0.0.1:8081/apis/ccompat/v7"
    topic: str = "tweets"
    schema_file: Path = REPO / "schemas" / "post.avsc"
    # rejected input lines are kept here for inspection
    rejects_dir: Path = REPO / ".stack" / "rejects"
    # a post's text larger than this is rejected (the broker takes 1 MiB records)
    max_text_bytes: int = 100_000
