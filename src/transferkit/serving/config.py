"""ServeConfig: the model server's request limits, micro-batching and auth, each with a safe default."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from transferkit.errors import ConfigError
from transferkit.registry import closest_match_hint

MB = 1024 * 1024


@dataclass
class ServeConfig:
    max_body_bytes: int = 10 * MB  # larger request bodies get 413 before they are parsed (counted as they stream in)
    max_items: int = 256  # inputs per request; more is a bulk job for `transferkit predict --data`
    max_text_chars: int = 10_000  # per text; backbones truncate at a few hundred tokens, longer only costs tokenizing
    max_image_pixels: int = 25_000_000  # width x height from the header, checked before decoding (a 24 MP photo fits)
    max_audio_seconds: float = 60.0  # per clip, from the header before decoding; models hear a few seconds at a time
    max_batch_size: int = 32  # inputs run through the model together; 1 turns micro-batching off
    max_wait_ms: float = 5.0  # how long the first queued input waits for others to join its batch
    top_k: int = (
        5  # classes (or labels) listed per prediction with their probabilities; a request may ask for another k
    )
    token: str | None = None  # when set, every route but /health needs `Authorization: Bearer <token>`
    graceful_shutdown_s: float = 30.0  # on SIGTERM/Ctrl-C, in-flight requests get this long to finish

    def __post_init__(self) -> None:
        problems = [
            f"{name} must be > 0, got {getattr(self, name)!r}"
            for name in ("max_body_bytes", "max_items", "max_text_chars", "max_image_pixels", "max_audio_seconds")
            + ("max_batch_size", "top_k", "graceful_shutdown_s")
            if not _positive(getattr(self, name))
        ]
        if not (_number(self.max_wait_ms) and self.max_wait_ms >= 0):
            problems.append(f"max_wait_ms must be >= 0, got {self.max_wait_ms!r}")
        if self.token is not None and (not isinstance(self.token, str) or not self.token.strip()):
            problems.append("token must be a non-empty string (or None for no auth)")
        if problems:
            raise ConfigError("Invalid serve configuration: " + "; ".join(problems) + ".")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ServeConfig:
        """Build from a mapping; every unknown key is reported at once, with the closest valid one."""
        valid = [f.name for f in dataclasses.fields(cls)]
        unknown = [k for k in values if k not in valid]
        if unknown:
            hints = "".join(closest_match_hint(k, valid) for k in unknown)
            raise ConfigError(
                f"Unknown serve option(s): {', '.join(map(repr, unknown))}.{hints} Valid keys: {', '.join(valid)}."
            )
        return cls(**values)

    def limits(self) -> dict[str, Any]:
        """The request limits a client must respect (shown in /metadata), without the token."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in ("token", "graceful_shutdown_s")}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positive(value: Any) -> bool:
    return _number(value) and value > 0
