"""From chat messages to token ids: the chat template, loss only on the answers, truncation, packing, batches.

Each conversation is rendered into alternating segments: what the model is shown (system, user turns and the
template's markup; label -100, no loss) and what it must produce (each assistant turn with its end-of-turn
token; trained). Segments are tokenized separately, so the prompt's tokens are exactly those `generate` feeds
the model. With a chat template the segments are differences of renderings (the conversation up to a turn
with the generation prompt, then with the answer); without one a plain "### Instruction / ### Response"
layout is used.
"""

from __future__ import annotations

from dataclasses import dataclass

from transferkit.errors import BackboneError, DataError

IGNORE = -100  # label of tokens that carry no loss (prompt, padding)


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]  # IGNORE on prompt tokens
    truncated: bool = False

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def trained_tokens(self) -> int:
        return sum(label != IGNORE for label in self.labels)


def _plain_prompt(messages: list[dict], end: str) -> str:
    """The layout for models without a chat template; each answer ends with `end` (the EOS token)."""
    parts = [m["content"] + "\n\n" for m in messages if m["role"] == "system"]
    for m in messages:
        if m["role"] == "user":
            parts.append(f"### Instruction:\n{m['content']}\n\n### Response:\n")
        elif m["role"] == "assistant":
            parts.append(m["content"] + end + "\n\n")
    return "".join(parts)


def _render(tokenizer, messages: list[dict], generation_prompt: bool) -> str:
    if tokenizer.chat_template:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    return _plain_prompt(messages, tokenizer.eos_token or "")


def segments(tokenizer, messages: list[dict]) -> list[tuple[str, bool]]:
    """(text, trained) pieces whose concatenation is the whole rendered conversation."""
    pieces: list[tuple[str, bool]] = []
    done = ""
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        asked = _render(tokenizer, messages[:i], generation_prompt=True)
        if tokenizer.chat_template:
            answered = _render(tokenizer, messages[: i + 1], generation_prompt=False)
        else:  # the answer and its EOS; the blank line after it belongs to the next prompt
            answered = asked + message["content"] + (tokenizer.eos_token or "")
        if not (asked.startswith(done) and answered.startswith(asked)):
            raise DataError(
                "The model's chat template renders earlier turns differently once later turns are added, so the "
                "answer tokens cannot be told apart from the prompt. Give single-turn pairs (prompt/response) "
                "instead of multi-turn messages for this model."
            )
        pieces += [(asked[len(done) :], False), (answered[len(asked) :], True)]
        done = answered
    return pieces


def _tokens(tokenizer, text: str, first: bool) -> list[int]:
    # a chat template writes its own special tokens; the plain layout lets the tokenizer add BOS at the start
    special = first and not tokenizer.chat_template
    return tokenizer(text, add_special_tokens=special)["input_ids"]


def encode_conversation(tokenizer, messages: list[dict], max_length: int) -> Encoded:
    ids: list[int] = []
    labels: list[int] = []
    for text, trained in segments(tokenizer, messages):
        piece = _tokens(tokenizer, text, first=not ids)
        ids += piece
        labels += piece if trained else [IGNORE] * len(piece)
    truncated = len(ids) > max_length
    return Encoded(ids[:max_length], labels[:max_length], truncated)


def end_of_turn_ids(tokenizer) -> list[int]:
    """Tokens that end an answer: the EOS token and, with a chat template, the token the template puts after
    an assistant turn (e.g. <|im_end|> where the EOS is <|endoftext|>). Generation stops at any of them."""
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    if tokenizer.chat_template:
        probe = "Zq"
        text, _ = segments(tokenizer, [{"role": "user", "content": "x"}, {"role": "assistant", "content": probe}])[-1]
        tail = text[text.find(probe) + len(probe) :]
        tail_ids = tokenizer(tail, add_special_tokens=False)["input_ids"] if tail.strip() else []
        if tail_ids:
            ids.append(tail_ids[0])
    return list(dict.fromkeys(ids))


def encode_prompt(tokenizer, messages: list[dict]) -> list[int]:
    """Token ids of a prompt (the conversation so far) followed by the generation prompt."""
    return _tokens(tokenizer, _render(tokenizer, messages, generation_prompt=True), first=True)


def pack(encoded: list[Encoded], max_length: int) -> list[list[Encoded]]:
    """First-fit-decreasing bins of examples, each bin at most `max_length` tokens."""
    bins: list[list[Encoded]] = []
    room: list[int] = []
    for example in sorted(encoded, key=len, reverse=True):
        slot = next((b for b, free in enumerate(room) if free >= len(example)), None)
        if slot is None:
            bins.append([example])
            room.append(max_length - len(example))
        else:
            bins[slot].append(example)
            room[slot] -= len(example)
    return bins


def padded_batch(items: list[Encoded], pad_id: int) -> dict:
    """Right-padded input_ids, attention_mask and labels."""
    import torch

    if pad_id is None:
        raise BackboneError("The tokenizer has neither a padding nor an end-of-sequence token; set one on it.")
    width = max(len(x) for x in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    labels = torch.full((len(items), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for row, item in enumerate(items):
        n = len(item)
        ids[row, :n] = torch.tensor(item.input_ids)
        labels[row, :n] = torch.tensor(item.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def packed_batch(bins: list[list[Encoded]], pad_id: int) -> dict:
    """Each bin is one row; position ids restart at every example, which transformers turns into a
    block-diagonal causal mask (no attention across examples). No attention_mask: padding sits at the end of
    a row and has no loss, and causal attention never lets earlier tokens see it."""
    import torch

    rows = [Encoded([t for x in b for t in x.input_ids], [t for x in b for t in x.labels]) for b in bins]
    batch = padded_batch(rows, pad_id)
    positions = torch.zeros_like(batch["input_ids"])
    for row, examples in enumerate(bins):
        start = 0
        for x in examples:
            positions[row, start : start + len(x)] = torch.arange(len(x))
            start += len(x)
        positions[row, start:] = (
            torch.arange(start, positions.shape[1]) - start + (len(examples[-1]) if examples else 0)
        )
    del batch["attention_mask"]
    return {**batch, "position_ids": positions}
