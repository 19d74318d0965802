"""The service's configuration: a TOML file, then environment variables on top.

```toml
[serve]
pack = "rules/cn-baseline"          # relative paths are relative to the TOML file
bind = "127.0.0.1:8080"
workers = 1
[stores]
history = "memory:"                 # memory: | sqlite:///path
sessions = "sqlite:///var/sessions.sqlite"
audit = "sqlite:///var/audit.sqlite"
keys = "sqlite:///var/keys.sqlite"
evidence = "var/evidence"            # case evidence files (default: beside the audit log)
[audit]
key_env = "GUARDRAIL_AUDIT_KEY"     # where the audit secret is read from (never the file)
[limits]
max_body_bytes = 1048576
max_batch = 100
auth_failures_per_minute = 20
```

Every setting can be overridden by ``GUARDRAIL_SERVE_<SECTION>_<NAME>`` (for example
``GUARDRAIL_SERVE_STORES_AUDIT``). Secrets never live in the file.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from guardrail.errors import GuardrailError

CONFIG_ENV = "GUARDRAIL_SERVE_CONFIG"  # how worker processes find the file
ENV_PREFIX = "GUARDRAIL_SERVE_"


class ConfigError(GuardrailError, ValueError):
    """The service configuration is missing, unreadable or wrong; names the file and field."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _parse_bind(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT (port 0-65535), got {value!r}")
    return host.strip("[]"), int(port)


class ServeSection(_Section):
    pack: str = "rules/cn-baseline"
    bind: str = "127.0.0.1:8080"
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    backend: str = "reference"
    # A draft pack screened in shadow beside ``pack``: recorded in the audit log, never returned.
    candidate_pack: str | None = None
    # Refuse a pack without a valid approval for its exact content (guardrail pack approve).
    production: bool = False

    @field_validator("bind")
    @classmethod
    def _bind(cls, value: str) -> str:
        _parse_bind(value)
        return value


class StoresSection(_Section):
    history: str = "memory:"
    sessions: str = "sqlite:///sessions.sqlite"
    audit: str = "sqlite:///audit.sqlite"
    keys: str = "sqlite:///keys.sqlite"
    policy: str | None = None  # snoozes and circuit breakers: memory:, sqlite:///, postgresql://
    # Case evidence files (a folder; default: AUDIT.evidence beside a SQLite audit log, else
    # ``evidence/`` beside this file).
    evidence: str | None = None


class AuditSection(_Section):
    key_env: str = "GUARDRAIL_AUDIT_KEY"
    # Development only: without the key variable, sign with the public development key.
    allow_insecure_development_key: bool = False


class LimitsSection(_Section):
    max_body_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 1024 * 1024
    max_batch: Annotated[int, Field(ge=1, le=10_000)] = 100
    auth_failures_per_minute: Annotated[int, Field(ge=1)] = 20


class ServeConfig(_Section):
    """The whole configuration; paths in store URLs are already absolute."""

    serve: ServeSection = ServeSection()
    stores: StoresSection = StoresSection()
    audit: AuditSection = AuditSection()
    limits: LimitsSection = LimitsSection()
    source: str = "(defaults)"

    @property
    def bind_address(self) -> tuple[str, int]:
        return _parse_bind(self.serve.bind)

    @property
    def pack_path(self) -> Path:
        return Path(self.serve.pack)


def _resolve(url: str, base: Path) -> str:
    """``sqlite:///relative/path`` is relative to the config file's folder."""
    prefix = "sqlite:///"
    if url.startswith(prefix):
        path = Path(url[len(prefix) :])
        if not path.is_absolute():
            return prefix + str((base / path).resolve())
    return url


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> None:
    sections: dict[str, type[_Section]] = {
        "serve": ServeSection,
        "stores": StoresSection,
        "audit": AuditSection,
        "limits": LimitsSection,
    }
    for section, model in sections.items():
        for name in model.model_fields:
            value = env.get(f"{ENV_PREFIX}{section.upper()}_{name.upper()}")
            if value is not None:
                data.setdefault(section, {})[name] = value


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> ServeConfig:
    """Read ``path`` and the environment; raises ``ConfigError`` naming file and field."""
    path = Path(path)
    env = os.environ if env is None else env
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    _apply_env(data, env)
    base = path.resolve().parent
    try:
        config = ServeConfig.model_validate({**data, "source": str(path)})
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        field = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"{path}: {field}: {first['msg']}") from None
    packs = {"pack": config.serve.pack, "candidate_pack": config.serve.candidate_pack}
    resolved = {
        name: str(folder if folder.is_absolute() else (base / folder).resolve())
        for name, folder in ((n, Path(v)) for n, v in packs.items() if v is not None)
    }
    stores = {
        name: _resolve(value, base) if isinstance(value, str) else value
        for name, value in ((n, getattr(config.stores, n)) for n in StoresSection.model_fields)
    }
    if config.stores.evidence is not None:
        stores["evidence"] = str(base / config.stores.evidence)  # an absolute one stays
    return config.model_copy(
        update={
            "serve": config.serve.model_copy(update=resolved),
            "stores": StoresSection(**stores),
        }
    )
