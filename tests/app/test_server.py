"""Uploads within limits, the HTTP layer (FastAPI TestClient), safety and the command line."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synth.app import UploadError, create_app
from synth.app import uploads as up
from synth.app.recipe import decode_array
from synth.viz import palette, save_label_map

from .conftest import label_input, stroke_labels

pytest.importorskip("httpx")


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def client(clvae_editor):
    from fastapi.testclient import TestClient

    return TestClient(create_app(clvae_editor))


# --------------------------------------------------------------------------- uploads


def test_label_uploads_indexed_grayscale_and_palette_colours(tmp_path):
    ids = stroke_labels(32)
    save_label_map(ids, tmp_path / "l.png", num_classes=4)
    data = (tmp_path / "l.png").read_bytes()
    assert np.array_equal(up.read_label_png(data, (64, 64), 4)[::2, ::2], ids)
    assert np.array_equal(up.read_label_png(png(Image.fromarray(ids)), (32, 32), 4), ids)
    rgb = palette(4).numpy()[ids]
    assert np.array_equal(up.read_label_png(png(Image.fromarray(rgb)), (32, 32), 4), ids)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "empty"),
        (b"not a png at all", "not an image"),
        (png(Image.fromarray(np.full((8, 8), 9, np.uint8))), "class id 9 .* 4 classes"),
        (png(Image.fromarray(np.full((8, 8, 3), 3, np.uint8))), "not the model's 4 class colours"),
        (png(Image.new("LA", (4, 4))), "is a LA image"),
    ],
)
def test_bad_label_uploads_are_messages(data, match):
    with pytest.raises(UploadError, match=match):
        up.read_label_png(data, (32, 32), 4)


def test_upload_limits(monkeypatch):
    big = png(Image.new("L", (300, 300)))
    monkeypatch.setattr(up, "MAX_PIXELS", 100 * 100)
    with pytest.raises(UploadError, match="300×300 pixels; the limit is 10,000"):
        up.read_label_png(big, (32, 32), 4)
    monkeypatch.setattr(up, "MAX_UPLOAD_BYTES", 100)
    with pytest.raises(UploadError, match="MiB; the limit"):
        up.read_image(big, (16, 16))


def test_image_upload_is_resized_rgb():
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 30, 4), np.uint8))
    out = up.read_image(png(img), (16, 8))
    assert out.shape == (16, 8, 3) and out.dtype == np.uint8


# --------------------------------------------------------------------------- HTTP


def test_page_and_info(client):
    page = client.get("/")
    assert page.status_code == 200 and '<canvas id="label-canvas"' in page.text
    info = client.get("/api/info").json()
    assert info["capabilities"]["input"] == "label_map"
    assert info["capabilities"]["edits"]["resample_class"]["offered"] is True
    assert len(info["palette"]) == 4


def test_run_returns_pngs_and_the_recipe(client):
    r = client.post("/api/run", json={"input": label_input(), "steps": [{"op": "sample", "n": 6}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["images"]) == 6 and body["images"][0].startswith("data:image/png;base64,")
    assert body["recipe"]["format"] == "synth.app.recipe" and body["current"] == 0


def test_bad_requests_are_json_messages_never_tracebacks(client):
    r = client.post("/api/run", content=b"{not json")
    assert r.status_code == 400 and "not JSON" in r.json()["error"]
    r = client.post(
        "/api/run", json={"input": label_input(), "steps": [{"op": "pick", "index": 0}]}
    )
    assert r.status_code == 400 and "first step must be 'sample'" in r.json()["error"]
    r = client.post("/api/upload/label", content=b"garbage")
    assert r.status_code == 400 and "not an image" in r.json()["error"]
    r = client.post("/api/upload/image", content=png(Image.new("RGB", (4, 4))))
    assert r.status_code == 400 and "does not read an image" in r.json()["error"]
    for resp in (r,):
        assert "Traceback" not in resp.text


def test_oversized_upload_is_refused_while_reading(client, monkeypatch):
    import synth.app.server as server

    monkeypatch.setattr(server, "MAX_UPLOAD_BYTES", 1000)
    r = client.post("/api/upload/label", content=b"x" * 5000)
    assert r.status_code == 413 and "limit" in r.json()["error"]


def test_no_path_from_the_browser_is_read(client, tmp_path):
    """A label map given as a path (or any string) is refused by the recipe's schema: the
    editor has no way to open a file named by a request."""
    secret = tmp_path / "secret.png"
    secret.write_bytes(png(Image.fromarray(stroke_labels(64))))
    for value in (str(secret), {"path": str(secret)}, {"shape": [64, 64], "data": str(secret)}):
        inp = {"size": [64, 64], "label_map": value}
        r = client.post("/api/run", json={"input": inp, "steps": [{"op": "sample"}]})
        assert r.status_code == 400, r.text
    r = client.post("/api/upload/label", json={"path": str(secret)})
    assert r.status_code == 400


def test_label_upload_through_http(client):
    r = client.post("/api/upload/label", content=png(Image.fromarray(stroke_labels(32))))
    assert r.status_code == 200, r.text
    ids = decode_array(r.json()["label_map"], "label_map")
    assert ids.shape == (64, 64) and set(np.unique(ids)) == {0, 1, 2}


# --------------------------------------------------------------------------- command line


def test_cli_defaults_to_loopback_and_the_demo_model(tmp_path, clvae_dir):
    from synth.cli.app import DEMO_MODEL_DIR, model_dir
    from synth.cli.console import CLIError
    from synth.cli.main import _parser

    args = _parser().parse_args(["app"])
    assert args.host == "127.0.0.1" and args.model_dir is None
    with pytest.raises(CLIError, match="make demo.*MODEL_DIR"):
        model_dir(None, cwd=tmp_path)
    demo = tmp_path / DEMO_MODEL_DIR
    demo.mkdir(parents=True)
    (demo / "synth.json").write_text((Path(clvae_dir) / "synth.json").read_text())
    assert model_dir(None, cwd=tmp_path) == demo
    assert model_dir("elsewhere") == Path("elsewhere")


def test_cli_without_a_model_says_make_demo(tmp_path, monkeypatch, capsys):
    from synth.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["app"]) == 1
    assert "make demo" in capsys.readouterr().err
