"""Options of generative runs (`task="generation"`, see config.TaskConfig): which columns hold the pairs, how
sequences are built."""

from __future__ import annotations

from dataclasses import dataclass

from transferkit.errors import ConfigError


@dataclass
class GenerationOptions:
    prompt_column: str | None = None  # generation: prompt column; None: guessed (prompt, question, instruction+input)
    response_column: str | None = None  # generation: response column; None: guessed (response, answer, output)
    system_prompt: str | None = None  # generation: system message put before every prompt (chat-template models)
    packing: bool = False  # generation: pack several examples into each max_length row (no cross-attention)
    max_new_tokens: int = 64  # generation: most tokens generated per prompt when evaluating and by default

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}.")
