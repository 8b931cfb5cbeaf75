"""Producer settings from the environment."""

from producer.config import ORIGINAL_KEYWORDS, ProducerSettings


def test_defaults_are_the_original_projects_and_the_local_stack(monkeypatch):
    for name in ("PRODUCER_KEYWORDS", "PRODUCER_LANGUAGES", "PRODUCER_TOPIC"):
        monkeypatch.delenv(name, raising=False)
    s = ProducerSettings()
    assert s.keywords == ORIGINAL_KEYWORDS == ["covid", "vaccin", "COVID-19", "corona virus"]
    assert s.languages == ["fr"] and s.topic == "tweets" and s.subject == "tweets-value"


def test_lists_take_commas_or_json(monkeypatch):
    monkeypatch.setenv("PRODUCER_KEYWORDS", "covid, vaccin ,")
    monkeypatch.setenv("PRODUCER_LANGUAGES", '["fr", "en"]')
    s = ProducerSettings()
    assert s.keywords == ["covid", "vaccin"] and s.languages == ["fr", "en"]


def test_the_token_comes_from_x_bearer_token(monkeypatch):
    monkeypatch.setenv("X_BEARER_TOKEN", "from-env")
    s = ProducerSettings()
    assert s.x_bearer_token.get_secret_value() == "from-env" and "from-env" not in repr(s)
