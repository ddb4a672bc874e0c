"""Multipart uploads to image and audio models: predictions match the model, and the decoding limits hold
(a pixel bomb refused from its header, audio too long by its header, unreadable files, too many files)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
from PIL import Image
from starlette.testclient import TestClient

import transferkit as tk
from test_audio import TONES, _tone
from test_images import COLOURS, _picture, _tiny_png_header
from transferkit.serving import ServeConfig, create_app


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def wav(samples, rate: int, fmt: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format=fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def image_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-images") / "train"
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True)
        for i in range(8):
            _picture(colour, seed=i + 100 * len(name)).save(root / name / f"{i}.png")
    params = dict(backbone="tiny-efficientnet", strategy="probe", head_epochs=15, val_fraction=0.0, batch_size=8)
    model = tk.FineTuner(**params).fit(root, verbose=False)
    return tk.load(model.save(root.parent / "run"))


@pytest.fixture(scope="module")
def audio_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-audio") / "train"
    for name, freq in TONES.items():
        (root / name).mkdir(parents=True)
        for i in range(6):
            sf.write(root / name / f"{i}.wav", *_tone(freq, seed=i + (100 if name == "high" else 0)))
    params = dict(backbone="tiny-whisper", strategy="probe", head_epochs=40, probe_lr=1.0, val_fraction=0.0)
    model = tk.FineTuner(**params, batch_size=8).fit(root, verbose=False)
    return tk.load(model.save(root.parent / "run"))


def client(model, **options) -> TestClient:
    return TestClient(create_app(model, ServeConfig(**options)), raise_server_exceptions=False)


def upload(c: TestClient, *files: tuple[str, bytes], data=None):
    return c.post("/predict", files=[("files", (name, content)) for name, content in files], data=data)


def test_image_uploads_match_the_model(image_model):
    pictures = [_picture(COLOURS["red"], 1000), _picture(COLOURS["blue"], 2000)]
    expected = image_model.predict_proba([Image.open(io.BytesIO(png(p))) for p in pictures])
    with client(image_model) as c:
        response = upload(c, ("red.png", png(pictures[0])), ("blue.png", png(pictures[1])), data={"top_k": "1"})
        assert response.status_code == 200, response.text
        predictions = response.json()["predictions"]
        assert [p["label"] for p in predictions] == [image_model.classes_[i] for i in expected.argmax(axis=1)]
        assert [p["probability"] for p in predictions] == pytest.approx(expected.max(axis=1), abs=1e-5)
        assert all(len(p["top"]) == 1 for p in predictions)
        jpeg = io.BytesIO()
        pictures[0].save(jpeg, format="JPEG")
        assert upload(c, ("photo", jpeg.getvalue())).status_code == 200  # no file name, no suffix: sniffed
        as_json = c.post("/predict", json={"inputs": ["red.png"]})
        assert as_json.status_code == 415 and "multipart/form-data" in as_json.json()["detail"]


IMAGE_REFUSALS = [
    ("a 100000x100000 pixel bomb", [("bomb.png", _tiny_png_header(100_000, 100_000))], 413, "image_too_large"),
    ("over max_image_pixels", [("big.png", png(Image.new("RGB", (60, 50))))], 413, "image_too_large"),
    ("not an image", [("notes.png", b"hello, I am text")], 422, "unreadable_image"),
    (
        "a format not served (EPS)",
        [("x.eps", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n")],
        422,
        "unreadable_image",
    ),
    ("too many files", [(f"{i}.png", b"x") for i in range(5)], 413, "too_many_items"),
    ("no files", [], 422, "missing_files"),
]


@pytest.mark.parametrize("what,files,status,code", IMAGE_REFUSALS, ids=[row[0] for row in IMAGE_REFUSALS])
def test_image_limits(image_model, what, files, status, code):
    with client(image_model, max_image_pixels=2500, max_items=4) as c:
        if files:
            response = upload(c, *files)
        else:  # an empty multipart body (a client drops the multipart type when there is no file)
            headers = {"content-type": "multipart/form-data; boundary=b"}
            response = c.post("/predict", content=b"--b--\r\n", headers=headers)
        assert (response.status_code, response.json()["error"]) == (status, code), response.text
        good = upload(c, ("ok.png", png(_picture(COLOURS["red"], 5))))
        assert good.status_code == 200  # the worker survived
    bomb = _tiny_png_header(100_000, 100_000)
    assert len(bomb) < 200  # refused from a header of a few bytes, nothing decoded


def test_unknown_form_fields_and_bad_top_k(image_model):
    with client(image_model) as c:
        extra = upload(c, ("a.png", png(_picture(COLOURS["red"], 1))), data={"caption": "hi"})
        assert extra.status_code == 422 and extra.json()["error"] == "unknown_field"
        bad_k = upload(c, ("a.png", png(_picture(COLOURS["red"], 1))), data={"top_k": "two"})
        assert bad_k.status_code == 422 and bad_k.json()["error"] == "invalid_top_k"


def test_audio_uploads_match_the_model_and_limits_hold(audio_model):
    low, high = _tone(TONES["low"], 1000), _tone(TONES["high"], 2000)
    as_sent = [sf.read(io.BytesIO(wav(*clip)), dtype="float32") for clip in (low, high)]  # 16-bit PCM, as uploaded
    expected = audio_model.predict_proba([tuple(clip) for clip in as_sent])
    with client(audio_model, max_audio_seconds=1.0) as c:
        response = upload(c, ("low.wav", wav(*low)), ("high.flac", wav(*high, fmt="FLAC")))
        assert response.status_code == 200, response.text
        got = [p["probability"] for p in response.json()["predictions"]]
        assert got == pytest.approx(expected.max(axis=1), abs=1e-5)  # FLAC is lossless: the same 16-bit samples
        stereo = np.stack([low[0], low[0]], axis=1)
        assert upload(c, ("stereo.wav", wav(stereo, low[1]))).status_code == 200
        long = upload(c, ("long.wav", wav(np.zeros(8000 * 3, dtype=np.float32), 8000)))
        assert long.status_code == 413 and long.json()["error"] == "audio_too_long" and "3.0 s" in long.json()["detail"]
        garbage = upload(c, ("noise.wav", b"RIFF....WAVEfmt garbage"))
        assert garbage.status_code == 422 and garbage.json()["error"] == "unreadable_audio"
        empty = upload(c, ("empty.wav", wav(np.zeros(0, dtype=np.float32), 8000)))
        assert empty.status_code == 422
        assert upload(c, ("low.wav", wav(*low))).status_code == 200  # still serving


def test_an_audio_header_that_understates_cannot_overrun(audio_model):
    """A WAV whose header claims 0.5 s but which carries 4 s of samples is read only as far as the limit."""
    from transferkit.serving.inputs import read_audio

    samples = np.zeros(8000 * 4, dtype=np.float32)
    data = bytearray(wav(samples, 8000, fmt="WAV"))
    claimed = 4000 * 2  # bytes of 0.5 s of 16-bit samples (soundfile's default WAV subtype)
    data[data.index(b"data") + 4 : data.index(b"data") + 8] = claimed.to_bytes(4, "little")
    decoded, rate = read_audio(bytes(data), "lying.wav", ServeConfig(max_audio_seconds=1.0))
    assert rate == 8000 and len(decoded) <= 8000 + 1
