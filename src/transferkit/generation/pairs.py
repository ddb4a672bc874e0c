"""Training pairs for generation, read from any source into one shape: a list of chat messages per example.

Accepted: a file (CSV/TSV/JSONL/JSON/Parquet), a DataFrame, a `datasets.Dataset`, a list of dicts or a list
of (prompt, response) tuples, with one of three layouts:
  * prompt / response columns (names configurable; guessed from common names: question/answer, source/target);
  * Alpaca style `instruction` (+ optional `input`) + `output`;
  * chat style `messages`: a list of {"role", "content"} dicts per example (ShareGPT's from/value also read).
Every example becomes [system?] + user/assistant turns; the last assistant turn is the reference answer.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transferkit.errors import DataError

PROMPT_COLUMNS = ("prompt", "question", "query", "instruction", "source", "input", "text")
RESPONSE_COLUMNS = ("response", "answer", "output", "completion", "target", "reply")
MESSAGE_COLUMNS = ("messages", "conversations", "conversation", "chat")
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}

Message = dict[str, str]


@dataclass
class PairSet:
    """One message list per example; `source` names where they came from (for error messages)."""

    conversations: list[list[Message]]
    source: str

    def __len__(self) -> int:
        return len(self.conversations)

    def prompts(self) -> list[list[Message]]:
        """Each conversation up to (not including) its last assistant turn: what the model is asked."""
        return [c[: _last_answer(c)] for c in self.conversations]

    def references(self) -> list[str]:
        return [c[_last_answer(c)]["content"] for c in self.conversations]

    def subset(self, indices) -> PairSet:
        return PairSet([self.conversations[i] for i in indices], self.source)

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.conversations, sort_keys=True).encode()).hexdigest()[:16]


def _last_answer(conversation: list[Message]) -> int:
    return max(i for i, m in enumerate(conversation) if m["role"] == "assistant")


def _text(value: Any, row: int, column: str, source: str) -> str:
    if value is None or (isinstance(value, float) and value != value):  # None or NaN
        raise DataError(f"{source}: row {row + 1} has no value in column {column!r}. Fill it in or drop the row.")
    return str(value)


def _messages(value: Any, row: int, source: str) -> list[Message]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise DataError(f"{source}: row {row + 1}: messages is not a JSON list of turns.") from None
    turns = [_turn(turn, row, source) for turn in list(value)]
    if not any(t["role"] == "assistant" for t in turns):
        raise DataError(f"{source}: row {row + 1}: the conversation has no assistant turn to learn from.")
    return turns


def _turn(turn: Any, row: int, source: str) -> Message:
    """One chat turn as {"role", "content"} (ShareGPT's from/value and human/gpt roles read too)."""
    turn = dict(turn)
    role = turn.get("role", turn.get("from"))
    content = turn.get("content", turn.get("value"))
    if role not in SHAREGPT_ROLES or content is None:
        raise DataError(
            f"{source}: row {row + 1}: each message needs a role (system/user/assistant) and content; got {turn}."
        )
    return {"role": SHAREGPT_ROLES[role], "content": str(content)}


def _pick(columns: list[str], wanted: str | None, candidates: tuple[str, ...], flag: str) -> str | None:
    if wanted is not None:
        if wanted not in columns:
            raise DataError(f"Column {wanted!r} (--{flag}) not found; the data has {columns}.")
        return wanted
    return next((c for c in candidates if c in columns), None)


def _conversation(prompt: str, response: str, system: str | None) -> list[Message]:
    head = [{"role": "system", "content": system}] if system else []
    return head + [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]


def _from_records(records: list[dict], columns: list[str], options: dict, source: str) -> list[list[Message]]:
    system = options.get("system_prompt")
    chat = next((c for c in MESSAGE_COLUMNS if c in columns), None)
    if chat and options.get("prompt_column") is None:
        conversations = [_messages(r[chat], i, source) for i, r in enumerate(records)]
        if system:
            conversations = [
                c if c[0]["role"] == "system" else [{"role": "system", "content": system}, *c] for c in conversations
            ]
        return conversations
    alpaca = "instruction" in columns and "output" in columns and options.get("prompt_column") is None
    prompt_col = (
        "instruction" if alpaca else _pick(columns, options.get("prompt_column"), PROMPT_COLUMNS, "prompt-column")
    )
    response_col = (
        "output" if alpaca else _pick(columns, options.get("response_column"), RESPONSE_COLUMNS, "response-column")
    )
    if prompt_col is None or response_col is None:
        raise DataError(
            f"{source}: cannot tell which columns hold the prompts and responses (columns: {columns}). Name them "
            "prompt/response (or instruction/input/output, or a `messages` list), or pass --prompt-column and "
            "--response-column."
        )
    conversations = []
    for i, record in enumerate(records):
        prompt = _text(record.get(prompt_col), i, prompt_col, source)
        if alpaca and record.get("input") not in (None, "") and record.get("input") == record.get("input"):
            prompt = f"{prompt}\n\n{record['input']}"
        response = _text(record.get(response_col), i, response_col, source)
        if not response.strip():
            raise DataError(f"{source}: row {i + 1} has an empty response; there is nothing to learn from it.")
        conversations.append(_conversation(prompt, response, system))
    return conversations


def load_pairs(data: Any, **options: Any) -> PairSet:
    """Read prompt/response pairs (see the module docstring) into a PairSet; `options` are GenerationOptions."""
    if isinstance(data, PairSet):
        return data
    if isinstance(data, (str, Path)):
        from transferkit.data.tables import read_table

        source = str(data)
        frame = read_table(data)
    elif hasattr(data, "to_pandas") and hasattr(data, "features"):  # datasets.Dataset
        source, frame = "the dataset", data.to_pandas()
    elif hasattr(data, "columns") and hasattr(data, "to_dict"):
        source, frame = "the DataFrame", data
    else:
        return _from_sequence(list(data), options)
    if len(frame) == 0:
        raise DataError(f"{source} has no rows.")
    records = frame.to_dict(orient="records")
    return PairSet(_from_records(records, [str(c) for c in frame.columns], options, source), source)


def _from_sequence(items: list[Any], options: dict) -> PairSet:
    source = "the list of examples"
    if not items:
        raise DataError("No examples given: pass prompt/response pairs, a list of dicts, or a data file.")
    if all(isinstance(x, (tuple, list)) and len(x) == 2 and all(isinstance(v, str) for v in x) for x in items):
        items = [{"prompt": p, "response": r} for p, r in items]
        return PairSet(
            _from_records(
                items, ["prompt", "response"], {**options, "prompt_column": None, "response_column": None}, source
            ),
            source,
        )
    if all(isinstance(x, dict) for x in items):
        columns = list(dict.fromkeys(k for x in items for k in x))
        return PairSet(_from_records(items, columns, options, source), source)
    raise DataError(
        "Cannot read these examples: give (prompt, response) tuples, dicts with prompt/response (or messages), a "
        "DataFrame, a datasets.Dataset, or a .jsonl/.csv/.parquet file."
    )


def prompts_from(inputs: Any, system_prompt: str | None = None) -> list[list[Message]]:
    """Prompts to generate from: one string, a list of strings, or message lists (their last turn is the user's)."""
    if isinstance(inputs, str):
        inputs = [inputs]
    head = [{"role": "system", "content": system_prompt}] if system_prompt else []
    prompts = []
    for item in inputs:
        if isinstance(item, str):
            prompts.append(head + [{"role": "user", "content": item}])
        elif isinstance(item, (list, tuple)) and all(isinstance(m, dict) for m in item):
            prompts.append([dict(m) for m in item])
        else:
            raise DataError(f"Cannot generate from {item!r}: give a prompt string or a list of chat messages.")
    return prompts


def load_prompts(path: str | Path, prompt_column: str | None = None) -> list[Any]:
    """Prompts from a file (no responses needed): the prompt column, Alpaca instruction (+ input), or chat
    `messages` (each conversation up to its last assistant turn, if it has one)."""
    from transferkit.data.tables import read_table

    frame = read_table(path)
    columns = [str(c) for c in frame.columns]
    chat = next((c for c in MESSAGE_COLUMNS if c in columns), None)
    if chat and prompt_column is None:
        conversations = []
        for i, value in enumerate(frame[chat].tolist()):
            turns = [_turn(t, i, str(path)) for t in (json.loads(value) if isinstance(value, str) else list(value))]
            answers = [k for k, t in enumerate(turns) if t["role"] == "assistant"]
            conversations.append(turns[: answers[-1]] if answers else turns)
        return conversations
    alpaca = prompt_column is None and "instruction" in columns
    column = "instruction" if alpaca else _pick(columns, prompt_column, PROMPT_COLUMNS, "prompt-column")
    if column is None:
        raise DataError(f"{path}: no prompt column among {columns}. Name it prompt, or pass --prompt-column.")
    prompts = [_text(v, i, column, str(path)) for i, v in enumerate(frame[column].tolist())]
    if column == "instruction" and "input" in columns:
        prompts = [f"{p}\n\n{x}" if isinstance(x, str) and x else p for p, x in zip(prompts, frame["input"].tolist())]
    return prompts
