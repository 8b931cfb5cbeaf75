"""API settings: environment variables API_* (or .env); the database password
from the environment or a secrets file, never from the repo."""

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from stack.progress import STALL_AFTER_SECONDS

REPO = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="API_", env_file=".env", extra="ignore")

    # where the server listens (the image sets 0.0.0.0: Compose publishes the port on 127.0.0.1)
    host: str = "127.0.0.1"
    port: int = 8000
    # connections at once (a page holds two: its live stream and its fetches): more
    # get a 503 from the server itself. One process: a second one (uvicorn
    # --workers) would cache its own answers, and a page's next request could see
    # a count a second older than the one it just showed (README, "Benchmarks")
    limit_concurrency: int = 4000
    db_host: str = "127.0.0.1"
    db_port: int = 5432
    db_name: str = "tweetstream"
    # a role that can only read (GRANT SELECT)
    db_user: str = "api_reader"
    db_password: SecretStr | None = None
    db_password_file: Path = REPO / ".stack" / "secrets" / "api_db_password"
    pool_max_size: int = 8
    web_dir: Path = REPO / "web"
    # what /api/stats reports on
    flink_url: str = "http://127.0.0.1:8082"
    connect_url: str = "http://127.0.0.1:8083"
    kafka_bootstrap: str = "127.0.0.1:9092"
    dead_letter_topic: str = "dlq_sink"
    rejects_dir: Path = REPO / ".stack" / "rejects"
    # shown in the page's header: what the stream is filtered on
    tracked_keywords: list[str] = ["covid", "vaccin", "COVID-19", "corona virus"]
    tracked_languages: list[str] = ["fr"]
    # how long a JSON answer of the count endpoints is reused (0: never)
    cache_seconds: float = 1.0
    # how often the live streams' one poller (SSE) looks for new counts
    stream_poll_seconds: float = 1.0
    # live streams open at once; one more gets a 503 (the server's own limit,
    # limit_concurrency, is above it)
    max_streams: int = 2000
    # a stage with work waiting that has not moved for this long is reported
    # stalled (the supervisor reads the same variable, STALL_AFTER_SECONDS)
    stall_after_seconds: float = Field(
        STALL_AFTER_SECONDS, validation_alias=AliasChoices("STALL_AFTER_SECONDS", "API_STALL_AFTER_SECONDS")
    )
    progress_check_seconds: float = 5.0

    def conninfo(self) -> str:
        from psycopg.conninfo import make_conninfo

        password = (
            self.db_password.get_secret_value() if self.db_password else self.db_password_file.read_text().strip()
        )
        return make_conninfo(
            host=self.db_host,
            port=self.db_port,
            dbname=self.db_name,
            user=self.db_user,
            password=password,
            connect_timeout=3,
        )


settings = Settings()
