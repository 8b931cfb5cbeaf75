"""API settings: environment variables API_* (or .env); the password from the
environment or a secrets file, never from the repo."""

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="API_", env_file=".env", extra="ignore")

    db_host: str = "127.0.0.1"
    db_port: int = 5432
    db_name: str = "tweetstream"
    # a role that can only read (GRANT SELECT)
    db_user: str = "api_reader"
    db_password: SecretStr | None = None
    db_password_file: Path = REPO / ".stack" / "secrets" / "api_db_password"
    pool_max_size: int = 8
    web_dir: Path = REPO / "web"

    def conninfo(self) -> str:
        password = self.db_password.get_secret_value() if self.db_password else self.db_password_file.read_text().strip()
        from psycopg.conninfo import make_conninfo

        return make_conninfo(host=self.db_host, port=self.db_port, dbname=self.db_name,
                             user=self.db_user, password=password, connect_timeout=3)


settings = Settings()
