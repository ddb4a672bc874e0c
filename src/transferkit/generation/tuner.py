"""GenerativeFineTuner: `FineTuner(task="generation")` — fit on prompt/response pairs, generate, evaluate, save."""

from __future__ import annotations

import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from transferkit.api import FineTuner, _stderr
from transferkit.config import RunConfig
from transferkit.errors import ConfigError, NotFittedError, TransferkitError
from transferkit.generation.pairs import PairSet, load_pairs, prompts_from

SHOWN_EXAMPLES = 5  # evaluated examples written out side by side (prompt, reference, base, fine-tuned)

# Options of classification runs that mean nothing for a language model: setting one is a mistake worth naming.
CLASSIFICATION_ONLY = (
    "label_separator",
    "regression_loss",
    "huber_delta",
    "head",
    "head_hidden",
    "head_dropout",
    "head_epochs",
    "head_batch_size",
    "head_lr",
    "probe_lr",
    "pooling",
    "metric",
    "feature_cache",
    "batchnorm",
    "image_column",
    "audio_column",
    "feature_columns",
    "standardize",
    "clip_seconds",
    "trim_silence",
    "max_audio_seconds",
    "weights",
    "output_layer",
    "image_size",
    "trainable_blocks",
    "layer_lr_decay",
    "label_column",
    "text_column",
)  # evaluated examples written out side by side (prompt, reference, base, fine-tuned)


class GenerativeFineTuner(FineTuner):
    """Adapt a causal language model to prompt -> response pairs (LoRA by default, or full fine-tuning).

    Parameters are `RunConfig` keys as for FineTuner; `backbone` names the language model (`smollm2`, or a
    local causal-LM directory), `prompt_column` / `response_column` / `system_prompt` / `packing` /
    `max_new_tokens` shape the data and outputs.
    """

    def __init__(self, backbone: str | None = None, strategy: str = "lora", **params: Any) -> None:
        super().__init__(backbone=backbone, strategy=strategy, **{**params, "task": "generation"})

    def _config(self) -> RunConfig:
        params = dict(self.params)
        params["backbone"] = params.get("backbone") or "smollm2"
        config = RunConfig.from_dict(params)
        defaults = RunConfig().to_flat_dict()
        given = config.to_flat_dict()
        misplaced = [k for k in CLASSIFICATION_ONLY if given[k] != defaults[k]]
        if misplaced:
            flags = ", ".join("--" + k.replace("_", "-") for k in misplaced)
            raise ConfigError(
                f"{flags} {'does' if len(misplaced) == 1 else 'do'} not apply to --task generation (a language model "
                "has no classification head, pooling or image/audio input). Drop them; for the data use "
                "--prompt-column / --response-column."
            )
        return config

    def _pair_options(self, **overrides: Any) -> dict[str, Any]:
        g = self.config_.generation if hasattr(self, "config_") else self._config().generation
        options = {"prompt_column": g.prompt_column, "response_column": g.response_column}
        options |= {k: v for k, v in overrides.items() if v is not None}
        return {**options, "system_prompt": g.system_prompt}

    # -- training ---------------------------------------------------------------------------------
    def fit(
        self,
        data: Any,
        labels: Any = None,
        *,
        text: str | None = None,
        label: str | None = None,
        val: Any = None,
        val_labels: Any = None,
        verbose: bool = True,
        checkpoint_dir: str | Path | None = None,
        resume: bool = False,
    ) -> GenerativeFineTuner:
        """Train on prompt/response pairs: a file, DataFrame, Dataset, list of dicts or of (prompt, response), or
        prompts + `labels` (the responses). `text` / `label` name the prompt / response columns."""
        from transferkit.generation.train import fit_generation

        if labels is not None:  # fit(prompts, responses), like fit(texts, labels)
            data = list(zip(list(data), list(labels)))
        if val is not None and val_labels is not None:
            val = list(zip(list(val), list(val_labels)))
        config = self._config()
        self.config_ = config
        options = self._pair_options(prompt_column=text, response_column=label)
        train = load_pairs(data, **options)
        val_set = load_pairs(val, **options) if val is not None else None
        started = time.perf_counter()
        run = fit_generation(config, train, val_set, _stderr if verbose else None, checkpoint_dir, resume)
        self.model_, self.tokenizer_ = run.model, run.tokenizer
        self.device_ = next(run.model.parameters()).device
        self.labels_ = []
        self.run_info_ = {**run.info, "wall_time_s": round(time.perf_counter() - started, 2)}
        return self

    @classmethod
    def from_base(cls, name: str | None = None, **params: Any) -> GenerativeFineTuner:
        """The base language model itself, untrained: to generate from it or compare against it."""
        from transferkit.generation.models import load_causal_lm, resolve_causal_lm

        tuner = cls(backbone=name, **params)
        tuner.config_ = tuner._config()
        directory = resolve_causal_lm(tuner.config_.backbone.backbone)
        model, tuner.tokenizer_ = load_causal_lm(directory, tuner.config_.backbone.trust_remote_code)
        tuner.model_ = model.eval().requires_grad_(False)
        tuner.device_ = next(model.parameters()).device
        tuner.labels_ = []
        tuner.run_info_ = {
            "task": "generation",
            "base_model": tuner.config_.backbone.backbone,
            "base_dir": str(directory),
        }
        return tuner

    @property
    def modality_(self) -> str:
        return "text"

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError("This model is not fitted yet: call fit(pairs) first, or transferkit.load(run_dir).")

    # -- generation -------------------------------------------------------------------------------
    def generate(
        self,
        prompts: Any,
        *,
        max_new_tokens: int | None = None,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
        seed: int | None = None,
        batch_size: int = 8,
        stream: bool = False,
    ) -> list[str]:
        """Answers to `prompts` (a string, a list of strings, or chat message lists). Greedy by default;
        `do_sample=True` samples with `temperature` / `top_p` (reproducible with `seed`). `stream=True`
        prints tokens to stdout as they come (one prompt at a time)."""
        from transferkit.generation.decode import generate_answers

        self._check_fitted()
        messages = prompts_from(prompts, self.config_.generation.system_prompt)
        settings = {
            "max_new_tokens": max_new_tokens or self.config_.generation.max_new_tokens,
            "do_sample": do_sample,
            "temperature": temperature,
            "top_p": top_p,
        }
        if not do_sample and (temperature != 1.0 or top_p != 1.0):
            raise ConfigError("temperature and top_p apply only when sampling: pass do_sample=True (--sample).")
        return generate_answers(self.model_, self.tokenizer_, messages, settings, batch_size, seed, stream)

    def predict(self, inputs: Any, **kwargs: Any) -> list[str]:
        return self.generate(inputs, **{k: v for k, v in kwargs.items() if k != "text"})

    def predict_proba(self, inputs: Any, **kwargs: Any):
        raise ConfigError("A generative model has no class probabilities: use generate(prompts).")

    # -- evaluation -------------------------------------------------------------------------------
    def evaluate(
        self,
        data: Any,
        labels: Any = None,
        *,
        text: str | None = None,
        label: str | None = None,
        compare_base: bool = True,
        max_new_tokens: int | None = None,
        log=_stderr,
    ) -> dict[str, Any]:
        """Exact match, token F1, ROUGE-L, chrF, BLEU and answer perplexity on held-out pairs; with
        `compare_base`, the same for the base model on the same prompts (the before/after table)."""
        from transferkit.generation.decode import answer_perplexity, generation_report

        self._check_fitted()
        if labels is not None:
            data = list(zip(list(data), list(labels)))
        pairs = load_pairs(data, **self._pair_options(prompt_column=text, response_column=label))
        rows, outputs = {}, {}
        for name, use_base in (("base", True), ("fine-tuned", False)) if compare_base else (("fine-tuned", False),):
            with self._base_model() if use_base else nullcontext(self.model_) as model:
                started = time.perf_counter()
                outputs[name] = self._generate_with(model, pairs, max_new_tokens)
                seconds = time.perf_counter() - started
                rows[name] = generation_report(outputs[name], pairs.references(), self.tokenizer_, seconds)
                rows[name]["perplexity"] = answer_perplexity(model, self.tokenizer_, pairs, self.config_)
            if log:
                log(f"evaluated {name}: {len(pairs)} prompts in {seconds:.1f} s")
        shown = [
            {"prompt": p[-1]["content"], "reference": r, **{name: outputs[name][i] for name in outputs}}
            for i, (p, r) in enumerate(zip(pairs.prompts()[:SHOWN_EXAMPLES], pairs.references()))
        ]
        return {"task": "generation", "n": len(pairs), "models": rows, "examples": shown}

    def _generate_with(self, model, pairs: PairSet, max_new_tokens: int | None) -> list[str]:
        from transferkit.generation.decode import generate_answers

        settings = {"max_new_tokens": max_new_tokens or self.config_.generation.max_new_tokens, "do_sample": False}
        return generate_answers(model, self.tokenizer_, pairs.prompts(), settings, 8, None, False)

    @contextmanager
    def _base_model(self):
        """The base model: the adapters switched off (exactly the base's outputs), or the base reloaded."""
        from transferkit.generation.artifact import has_adapters
        from transferkit.generation.models import load_causal_lm, resolve_causal_lm

        if has_adapters(self.model_):
            with self.model_.disable_adapter():
                yield self.model_
            return
        try:  # by name first (a run moved to another machine), then where it was when trained
            base_dir = resolve_causal_lm(self.run_info_.get("base_model"))
        except TransferkitError:
            base_dir = Path(self.run_info_.get("base_dir", ""))
        yield load_causal_lm(base_dir, self.config_.backbone.trust_remote_code)[0].eval().to(self.device_)

    # -- persistence ------------------------------------------------------------------------------
    def save(self, directory: str | Path, overwrite: bool = False, **_: Any) -> Path:
        """Write the run directory (see transferkit.generation.artifact); adapters merged with merge_adapters."""
        from transferkit.export.artifact import check_output_dir
        from transferkit.export.manifest import command_line, hardware, now_iso, package_versions
        from transferkit.generation.artifact import has_adapters, save_generation_run
        from transferkit.report.html import refresh_report

        self._check_fitted()
        check_output_dir(directory, overwrite)  # before merging: a refused directory must leave the model as it was
        if self.config_.lora.merge_adapters and has_adapters(self.model_):
            self.model_ = self.model_.merge_and_unload()  # in place: this model and the saved one stay identical
        manifest = {
            **self.run_info_,
            "merged": not has_adapters(self.model_),
            "trust_remote_code": self.config_.backbone.trust_remote_code,  # load asks for it again
            "config": self.config_.to_dict(),
            "packages": package_versions(),
            "hardware": hardware(),
            "command": command_line(),
            "created": now_iso(),
        }
        saved = save_generation_run(directory, self.model_, self.tokenizer_, manifest, overwrite)
        refresh_report(saved)
        return saved

    @classmethod
    def load_run(
        cls, directory: Path, manifest: dict[str, Any], device: str = "auto", trust_remote_code: bool = False
    ) -> GenerativeFineTuner:
        from transferkit.generation.artifact import load_generation_model
        from transferkit.training.fit import pick_device

        config = RunConfig.from_dict(manifest["config"])
        tuner = cls(**config.to_flat_dict())
        tuner.config_ = config
        model, tuner.tokenizer_ = load_generation_model(directory, manifest, trust_remote_code)
        tuner.device_ = pick_device(device)
        tuner.model_ = model.to(tuner.device_)
        tuner.labels_ = []
        tuner.run_info_ = {k: v for k, v in manifest.items() if k != "config"}
        return tuner
