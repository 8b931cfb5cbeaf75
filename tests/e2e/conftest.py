from tests.conftest import REPO, reader_db, secret, stack  # noqa: F401  (fixtures for this folder)
