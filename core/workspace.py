"""Opening a workspace: the database (under RAGEVAL_HOME, or at RAGEVAL_STORAGE_URI on object
storage), seeded with the default question set."""
from __future__ import annotations

import os

from core.config import PREFIX, Settings, redact_url, secrets_to_env
from core.errors import ConfigError
from core.questions import DEFAULT_FILE, DEFAULT_SET, default_questions
from core.store import Store, get_store

# what an object store's refusal looks like in LanceDB's error text, and what to tell the user
_STORAGE_FAULTS = (
    ("NoSuchBucket", "the bucket does not exist"),
    ("InvalidAccessKeyId", "the access key was refused"),
    ("SignatureDoesNotMatch", "the secret key was refused"),
    ("AccessDenied", "access was denied"),
    ("ConnectError", "the endpoint cannot be reached"),
    ("Connection refused", "the endpoint cannot be reached"),
)


def open_workspace(settings: Settings) -> Store:
    """The settings' database; a new one gets the 30 seed questions as the 'default' set."""
    settings.home.mkdir(parents=True, exist_ok=True)  # caches, logs and uploads stay on this machine
    if not settings.on_object_storage:
        return _seeded(get_store(settings.db_uri))
    secrets_to_env()  # LanceDB reads the endpoint and keys from the environment
    try:
        return _seeded(get_store(settings.db_uri))
    except (OSError, ValueError, RuntimeError) as e:
        reason = next((says for mark, says in _STORAGE_FAULTS if mark in str(e)), f"{type(e).__name__}")
        endpoint = redact_url(os.environ.get("AWS_ENDPOINT_URL", "")) or "the AWS default"
        raise ConfigError(f"setting {PREFIX}STORAGE_URI={redact_url(settings.db_uri)}: the database cannot be "
                          f"opened ({reason}; endpoint {endpoint}): check the bucket, AWS_ENDPOINT_URL, AWS_REGION "
                          "and the keys (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)") from None


def _seeded(store: Store) -> Store:
    if not store.question_sets():
        store.save_question_set(DEFAULT_SET, default_questions().questions, origin=DEFAULT_FILE.name)
    return store
