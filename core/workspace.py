"""Opening a workspace: the database under RAGEVAL_HOME, seeded with the default question set."""
from __future__ import annotations

from core.config import Settings
from core.questions import DEFAULT_FILE, DEFAULT_SET, default_questions
from core.store import Store, get_store


def open_workspace(settings: Settings) -> Store:
    """The settings' database; a new one gets the 30 seed questions as the 'default' set."""
    settings.home.mkdir(parents=True, exist_ok=True)
    store = get_store(settings.db_uri)
    if not store.question_sets():
        store.save_question_set(DEFAULT_SET, default_questions().questions, origin=DEFAULT_FILE.name)
    return store
