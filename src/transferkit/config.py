"""Run configuration: dataclasses for data, backbone, head, strategy and training.

`RunConfig` nests one dataclass per concern. Every field name is unique across sections, so a flat
mapping (`{"epochs": 3, "backbone": "minilm"}`, as the CLI and `FineTuner(**params)` use) and a nested
one (`{"train": {"epochs": 3}}`, as a YAML file may use) both work. Unknown keys are reported all at
once, with the valid keys and the closest match.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transferkit.errors import ConfigError
from transferkit.generation.options import GenerationOptions
from transferkit.registry import closest_match_hint
from transferkit.strategies.contrastive import ContrastiveOptions
from transferkit.strategies.freeze import FreezeOptions
from transferkit.strategies.lora import LoraOptions

POOLINGS = ("mean", "cls")
HEADS = ("linear", "mlp")
SCHEDULES = ("linear", "cosine", "constant")
METRICS = ("accuracy", "macro_f1")
MIXED_PRECISION = ("no", "bf16", "fp16")
TRACKERS = ("tensorboard", "mlflow")
BATCHNORM_MODES = ("frozen", "train")
TASKS = ("classification", "multilabel", "regression", "generation")
REGRESSION_LOSSES = ("mse", "huber")


def _check(problems: list[str], ok: bool, message: str) -> None:
    if not ok:
        problems.append(message)


def _raise_if(problems: list[str], section: str) -> None:
    if problems:
        raise ConfigError(f"Invalid {section} configuration: " + "; ".join(problems) + ".")


@dataclass
class TaskConfig:
    task: str = "classification"  # "classification" (one label), "multilabel" (a set of labels), "regression" (a number) or "generation" (prompt -> response, causal LM)
    label_separator: str = "|"  # multilabel: separator inside a label cell ("a|b"; an empty or missing cell = no labels); lists are kept as they are
    regression_loss: str = "mse"  # regression: "mse", or "huber" (less pulled by outlying targets)
    huber_delta: float = (
        1.0  # regression with huber: residual (in training-target standard deviations) where the loss turns linear
    )

    def __post_init__(self) -> None:
        problems: list[str] = []
        _check(problems, self.task in TASKS, f"task must be one of {TASKS}, got {self.task!r}")
        _check(
            problems,
            isinstance(self.label_separator, str) and self.label_separator != "",
            f"label_separator must be a non-empty string such as '|' or ',', got {self.label_separator!r}",
        )
        _check(
            problems,
            self.regression_loss in REGRESSION_LOSSES,
            f"regression_loss must be one of {REGRESSION_LOSSES}, got {self.regression_loss!r}",
        )
        _check(problems, self.huber_delta > 0, f"huber_delta must be > 0, got {self.huber_delta}")
        _raise_if(problems, "task")


@dataclass
class DataConfig:
    text_column: str | None = None  # None: guessed from common names (text, sentence, review, ...)
    label_column: str | None = None  # None: guessed from common names (label, labels, class, ...)
    image_column: str | None = None  # column of image paths (relative to the data file); None: guessed
    audio_column: str | None = None  # column of audio paths (relative to the data file); None: guessed
    val_fraction: float = 0.1  # held out of train (stratified) for early stopping when no val data is given
    max_train_rows: int | None = None  # stratified subsample of train, for quick runs; None keeps all
    skip_bad_files: bool = False  # images that cannot be decoded: skip and count them instead of stopping
    allow_outside_paths: bool = False  # let image paths in a data file point outside that file's folder
    augment: bool = True  # images: random-resized-crop, flip and RandAugment while training (never for eval/cache)
    feature_columns: str | None = None  # vectors: comma-separated feature columns of a table; None: all but the label
    standardize: bool = True  # vectors: scale features to mean 0, std 1 (fitted on training rows only, saved)
    clip_seconds: float | None = (
        None  # audio: window per clip (longer: random crop to train, centre to evaluate); None: 1 s
    )
    max_audio_seconds: float = 600.0  # audio: longer files are refused (or skipped with --skip-bad-files)
    trim_silence: bool = False  # audio: cut leading/trailing silence with Silero VAD before windowing
    check_data: bool = True  # before training: duplicates, train/val overlap, tiny classes, label variants (printed)
    strict_checks: bool = False  # stop before training when the data checks find an error (train/val overlap included)

    def __post_init__(self) -> None:
        problems: list[str] = []
        _check(problems, 0.0 <= self.val_fraction < 0.9, f"val_fraction must be in [0, 0.9), got {self.val_fraction}")
        _check(
            problems,
            self.clip_seconds is None or 0.1 <= self.clip_seconds <= 29,
            f"clip_seconds must be in [0.1, 29] (Whisper's window is 30 s), got {self.clip_seconds}",
        )
        _check(problems, self.max_audio_seconds > 0, f"max_audio_seconds must be > 0, got {self.max_audio_seconds}")
        _check(
            problems,
            self.max_train_rows is None or self.max_train_rows >= 2,
            f"max_train_rows must be >= 2 or None, got {self.max_train_rows}",
        )
        _raise_if(problems, "data")


@dataclass
class BackboneConfig:
    backbone: str | None = (
        None  # registry name (`transferkit backbones`), timm:<arch>, model dir or hub id; None: by data
    )
    weights: str | None = None  # weights file (.safetensors, or .pth loaded weights-only) for timm:<arch> backbones
    pooling: str | None = (
        None  # "mean" or "cls"; None: what the model was trained with (mean for sentence-transformers)
    )
    max_length: int | None = None  # tokens per text; None: the model's own limit (256 for MiniLM)
    output_layer: str | None = None  # a user module's output layer to remove (submodule name); None: the last Linear
    image_size: int | None = None  # user image modules: input size in pixels (None: 224); ImageNet mean/std
    trust_remote_code: bool = False  # let a model directory run its own Python code (auto_map): only for code you trust

    def __post_init__(self) -> None:
        problems: list[str] = []
        _check(problems, self.pooling in (None, *POOLINGS), f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        _check(
            problems, self.max_length is None or self.max_length >= 8, f"max_length must be >= 8, got {self.max_length}"
        )
        _raise_if(problems, "backbone")


@dataclass
class HeadConfig:
    head: str = "linear"  # "linear" (one layer; exportable to plain transformers) or "mlp" (one hidden layer)
    head_hidden: int = 256  # hidden width of the MLP head
    head_dropout: float = 0.0  # dropout before the head's output layer (0: measured best for probes on MiniLM)

    def __post_init__(self) -> None:
        problems: list[str] = []
        _check(problems, self.head in HEADS, f"head must be one of {HEADS}, got {self.head!r}")
        _check(problems, self.head_hidden >= 1, f"head_hidden must be >= 1, got {self.head_hidden}")
        _check(problems, 0.0 <= self.head_dropout < 1.0, f"head_dropout must be in [0, 1), got {self.head_dropout}")
        _raise_if(problems, "head")


_SECONDS = {"s": 1, "m": 60, "h": 3600}
_BYTES = {"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_duration(value: str | float | None) -> float | None:
    """ "90s", "10m", "1h" or a number of seconds -> seconds (None stays None); ConfigError when unreadable."""
    if value is None:
        return None
    text = str(value).strip().lower()
    unit = _SECONDS.get(text[-1:], None)
    try:
        seconds = float(text[:-1] if unit else text) * (unit or 1)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ConfigError(f'time_budget must be a positive duration such as "90s", "10m", "1h" or 600, got {value!r}.')
    return seconds


def parse_bytes(value: str | float | None) -> int | None:
    """ "4GB", "512MB", "2GiB" or a number of bytes -> bytes (None stays None); ConfigError when unreadable."""
    if value is None:
        return None
    text = str(value).strip().lower().replace(" ", "")
    unit = next((u for u in sorted(_BYTES, key=len, reverse=True) if text.endswith(u)), None)
    try:
        count = float(text[: -len(unit)] if unit else text.rstrip("b")) * (_BYTES[unit] if unit else 1)
    except ValueError:
        count = -1.0
    if not count >= 1:
        raise ConfigError(f'memory_budget must be a positive size such as "4GB", "512MB" or "2GiB", got {value!r}.')
    return int(count)


@dataclass
class StrategyConfig:
    strategy: str = (
        "full"  # what trains: probe, freeze, lora, full, lp-ft, contrastive (few-shot), or auto (pilots, then picks)
    )
    time_budget: str | None = None  # auto: wall-time budget ("90s", "10m", "1h" or seconds); None: every candidate runs
    memory_budget: str | None = (
        None  # auto: peak memory budget ("4GB", "512MB"); candidates measured above it are skipped
    )

    def __post_init__(self) -> None:
        from transferkit.strategies import STRATEGIES

        if self.strategy != "auto":
            STRATEGIES.get(self.strategy)  # raises with the list of valid names
        parse_duration(self.time_budget)  # each raises ConfigError naming the value and the accepted forms
        parse_bytes(self.memory_budget)


@dataclass
class TrainConfig:
    epochs: int = 3  # passes over the training data (early stopping may end sooner)
    head_epochs: int = 30  # passes when only the head trains on cached features (probe): cheap, so more
    batch_size: int = 16  # examples per optimizer step (before accumulation)
    head_batch_size: int = 64  # examples per step when only the head trains on cached features (probe, lp-ft)
    eval_batch_size: int = 64  # examples per forward pass at evaluation/prediction
    lr: float = 5e-5  # learning rate of the pretrained backbone: low, to keep what it learned
    head_lr: float = 1e-3  # learning rate of the new head: high, it starts from random
    probe_lr: float = 1e-2  # learning rate of the head when it trains alone on cached features (probe, lp-ft)
    weight_decay: float = 0.01  # AdamW decoupled weight decay (not applied to biases and norms)
    warmup_ratio: float = 0.1  # share of steps with linear warmup from 0
    schedule: str = "linear"  # decay after warmup: "linear", "cosine" or "constant"
    grad_accum_steps: int = 1  # micro-batches per optimizer step (effective batch = batch_size * this)
    max_grad_norm: float | None = 1.0  # gradient clipping; None disables
    early_stopping_patience: int | None = (
        2  # epochs without validation gain before stopping (x3 for probe); None disables
    )
    metric: str = "accuracy"  # validation metric for early stopping and best epoch (multilabel: micro-F1 unless macro_f1; regression: RMSE)
    group_by_length: bool = True  # batch texts of similar length together (less padding, faster)
    seed: int = 42  # seeds Python, NumPy and torch: the same seed gives the same model
    checkpoint_steps: int | None = (
        None  # with a checkpoint dir: also checkpoint every K optimizer steps (epochs always)
    )
    feature_cache: bool = (
        True  # probe/lp-ft: keep backbone features on disk ($TRANSFERKIT_CACHE or ~/.cache/transferkit)
    )
    device: str = "auto"  # "auto" (GPU when present), "cpu" or "cuda"
    report_to: str | None = None  # experiment tracking: "tensorboard", "mlflow" or "tensorboard,mlflow"; None: off
    tracking_dir: str | None = None  # tensorboard event files (default: ./tensorboard/<run name>)
    tracking_uri: str | None = None  # mlflow tracking URI (default: sqlite:///mlflow.db here); any URI mlflow takes
    batchnorm: str = (
        "frozen"  # "frozen": BatchNorm keeps its pretrained statistics while fine-tuning; "train": updates them
    )
    fsdp: bool = False  # with several processes: shard the model's weights, gradients and optimizer state (FSDP2)
    mixed_precision: str = "no"  # "bf16" (CPUs and GPUs that have it) or "fp16" (GPUs, with loss scaling); "no": fp32

    def __post_init__(self) -> None:
        problems: list[str] = []
        _check(problems, self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        _check(problems, self.head_epochs >= 1, f"head_epochs must be >= 1, got {self.head_epochs}")
        _check(problems, self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        _check(problems, self.head_batch_size >= 1, f"head_batch_size must be >= 1, got {self.head_batch_size}")
        _check(problems, self.eval_batch_size >= 1, f"eval_batch_size must be >= 1, got {self.eval_batch_size}")
        _check(
            problems,
            min(self.lr, self.head_lr, self.probe_lr) > 0,
            f"lr, head_lr and probe_lr must be > 0, got {self.lr}, {self.head_lr}, {self.probe_lr}",
        )
        _check(problems, self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        _check(
            problems,
            self.batchnorm in BATCHNORM_MODES,
            f"batchnorm must be one of {BATCHNORM_MODES}, got {self.batchnorm!r}",
        )
        _check(problems, 0.0 <= self.warmup_ratio < 1.0, f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        _check(problems, self.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        _check(problems, self.grad_accum_steps >= 1, f"grad_accum_steps must be >= 1, got {self.grad_accum_steps}")
        _check(problems, self.metric in METRICS, f"metric must be one of {METRICS}, got {self.metric!r}")
        _check(
            problems,
            self.mixed_precision in MIXED_PRECISION,
            f"mixed_precision must be one of {MIXED_PRECISION}, got {self.mixed_precision!r}",
        )
        unknown = set((self.report_to or "").replace(" ", "").split(",")) - {"", *TRACKERS}
        _check(
            problems,
            not unknown,
            f"report_to takes {' and/or '.join(TRACKERS)} (comma-separated), got {self.report_to!r}",
        )
        _check(
            problems, self.device in ("auto", "cpu", "cuda"), f"device must be auto, cpu or cuda, got {self.device!r}"
        )
        _check(
            problems,
            self.early_stopping_patience is None or self.early_stopping_patience >= 1,
            f"early_stopping_patience must be >= 1 or None, got {self.early_stopping_patience}",
        )
        _raise_if(problems, "training")


SECTIONS: dict[str, type] = {
    "task": TaskConfig,
    "data": DataConfig,
    "backbone": BackboneConfig,
    "head": HeadConfig,
    "strategy": StrategyConfig,
    "freeze": FreezeOptions,
    "lora": LoraOptions,
    "contrastive": ContrastiveOptions,
    "train": TrainConfig,
    "generation": GenerationOptions,
}


def _field_section() -> dict[str, str]:
    return {f.name: section for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)}


@dataclass
class RunConfig:
    task: TaskConfig = field(default_factory=TaskConfig)
    data: DataConfig = field(default_factory=DataConfig)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    freeze: FreezeOptions = field(default_factory=FreezeOptions)
    lora: LoraOptions = field(default_factory=LoraOptions)
    contrastive: ContrastiveOptions = field(default_factory=ContrastiveOptions)
    train: TrainConfig = field(default_factory=TrainConfig)
    generation: GenerationOptions = field(default_factory=GenerationOptions)

    def __post_init__(self) -> None:
        """Options that are valid alone but not together: a strategy's `check_config` says which (and why)."""
        from transferkit.strategies import STRATEGIES

        if self.strategy.strategy in STRATEGIES:
            check = getattr(STRATEGIES.get(self.strategy.strategy), "check_config", None)
            if check:
                check(self)

    @classmethod
    def valid_keys(cls) -> list[str]:
        return sorted(_field_section())

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunConfig:
        """Build from a flat or nested mapping; every unknown key is reported at once."""
        flat = flatten(values)
        where = _field_section()
        unknown = [k for k in flat if k not in where]
        if unknown:
            hints = "".join(closest_match_hint(k, list(where)) for k in unknown)
            raise ConfigError(
                f"Unknown configuration key(s): {', '.join(map(repr, unknown))}.{hints} "
                f"Valid keys: {', '.join(sorted(where))}."
            )
        grouped: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
        for key, value in flat.items():
            grouped[where[key]][key] = value
        try:
            return cls(**{section: SECTIONS[section](**kw) for section, kw in grouped.items()})
        except TypeError as exc:  # wrong value types surface here
            raise ConfigError(f"Invalid configuration: {exc}") from None

    def fingerprint(self) -> str:
        """Hash of every option that changes the trained weights (not of where results go)."""
        import hashlib

        values = self.to_dict()
        where = ("checkpoint_steps", "eval_batch_size", "fsdp")  # how and where it runs, not what it learns
        values["train"] = {k: v for k, v in values["train"].items() if k not in where}
        values["backbone"].pop("trust_remote_code")  # a permission, not a setting: the same weights either way
        return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def to_flat_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for section in SECTIONS:
            out.update(dataclasses.asdict(getattr(self, section)))
        return out

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {section: dataclasses.asdict(getattr(self, section)) for section in SECTIONS}


def flatten(values: dict[str, Any]) -> dict[str, Any]:
    """Accept `{"train": {"epochs": 3}}` and `{"epochs": 3}` alike; values under a section name are lifted."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if key in SECTIONS and isinstance(value, dict):
            flat.update(value)
        else:  # "backbone", "head" and "strategy" name both a section and a field
            flat[key] = value
    return flat


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON config file into a flat dict (validated later, together with CLI flags)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Config file {str(path)!r} does not exist. Pass a YAML or JSON file to --config.")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            loaded = json.loads(text)
        else:
            import yaml

            loaded = yaml.safe_load(text)
    except Exception as exc:  # yaml and json raise several types
        raise ConfigError(f"Config file {str(path)!r} is not valid YAML/JSON: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(
            f"Config file {str(path)!r} must hold a mapping of keys to values, got {type(loaded).__name__}."
        )
    return flatten(loaded)
