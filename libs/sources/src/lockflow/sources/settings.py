"""Settings of everything that reads sources: allowed folders and hosts, limits, the secrets key."""

from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, SecretStr

from lockflow.common.settings import CommonSettings

MiB = 1024 * 1024


@dataclass(frozen=True)
class FileLimits:
    """Limits on what a file, archive or field may contain."""

    max_file_bytes: int = 2048 * MiB
    max_decompressed_bytes: int = 2048 * MiB
    max_ratio: float = 100.0
    max_entries: int = 1000
    max_field_bytes: int = 1 * MiB


class SourceSettings(CommonSettings):
    """What a source may point at and how much it may hold; read from LOCKFLOW_* variables."""

    allowed_dirs: list[Path] = Field(default_factory=list)
    # Hosts (names or CIDR networks) a connector may reach even though they are internal.
    allow_hosts: list[str] = Field(default_factory=list)
    allowed_dialects: list[str] = Field(default_factory=lambda: ["postgresql", "mysql", "mariadb", "sqlite"])
    # A Fernet key (urlsafe base64 of 32 bytes); if unset one is derived from secret_key.
    sources_key: SecretStr | None = None
    max_file_bytes: int = 2048 * MiB
    max_decompressed_bytes: int = 2048 * MiB
    max_compression_ratio: float = 100.0
    max_archive_entries: int = 1000
    max_field_bytes: int = 1 * MiB
    uploads_per_minute: int = 20

    def source_dirs(self) -> list[Path]:
        """Folders a source path may lie in: the configured ones and the upload folder."""
        return [p.expanduser().resolve() for p in (*self.allowed_dirs, self.upload_dir())]

    def upload_dir(self) -> Path:
        """Where uploaded files are stored."""
        return (self.home / "uploads").resolve()

    def file_limits(self) -> FileLimits:
        """The file and archive limits as one value."""
        return FileLimits(
            max_file_bytes=self.max_file_bytes,
            max_decompressed_bytes=self.max_decompressed_bytes,
            max_ratio=self.max_compression_ratio,
            max_entries=self.max_archive_entries,
            max_field_bytes=self.max_field_bytes,
        )


def source_settings(settings: CommonSettings | None) -> SourceSettings:
    """The source settings of a process: the given ones if they are, else theirs plus the environment."""
    if isinstance(settings, SourceSettings):
        return settings
    if settings is None:
        return SourceSettings()
    return SourceSettings(**{name: getattr(settings, name) for name in CommonSettings.model_fields})
