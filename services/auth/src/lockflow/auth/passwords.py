"""Password hashing with argon2id, and the password rules a new password must meet."""

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from lockflow.auth.settings import AuthSettings
from lockflow.common.errors import InvalidInput


class Passwords:
    """argon2id at the configured cost; a dummy hash evens out the time of unknown-user logins."""

    def __init__(self, *, memory_kib: int, time_cost: int, parallelism: int) -> None:
        self.hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        # Verified against when the user does not exist, so both paths cost one argon2id.
        self._dummy = self.hasher.hash("lockflow-dummy-password-for-timing")

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> "Passwords":
        """The hasher the settings describe."""
        return cls(
            memory_kib=settings.argon2_memory_kib,
            time_cost=settings.argon2_time_cost,
            parallelism=settings.argon2_parallelism,
        )

    def hash(self, password: str) -> str:
        """An encoded argon2id hash (parameters and salt included)."""
        return self.hasher.hash(password)

    def verify(self, encoded: str | None, password: str) -> bool:
        """Whether the password matches; with no hash, burns the same time and says no."""
        try:
            return self.hasher.verify(encoded or self._dummy, password) and encoded is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, encoded: str) -> bool:
        """Whether the hash was made with weaker parameters than today's."""
        return self.hasher.check_needs_rehash(encoded)


def check_new_password(password: str, *, username: str, min_length: int, max_length: int) -> None:
    """Refuse passwords that are too short, too long or the username itself (ASVS 2.1)."""
    if len(password) < min_length:
        raise InvalidInput(f"the password must be at least {min_length} characters long")
    if len(password) > max_length:
        raise InvalidInput(f"the password must be at most {max_length} characters long")
    if password.strip().lower() == username.strip().lower():
        raise InvalidInput("the password may not be the username")
