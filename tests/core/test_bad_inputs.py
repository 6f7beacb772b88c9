"""A battery of bad inputs, the kind users produce (issue 17, items 7-14).

Every case must end in a synth error type, or the ``ValueError``/``TypeError`` the project
raises for bad values, whose message names the field, the bad value and the fix: never a raw
``KeyError``/``IndexError`` or torch's ``RuntimeError``. Each case lists the words its message
must hold.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

import synth
from synth.cli import main
from synth.compose import load_spec, read_config_file
from synth.errors import CheckpointError, ComposeError, ConfigError
from synth.train.config import RunConfig, TrainerConfig, validate

# --------------------------------------------------------------------------- fixtures

TINY = {
    "generator": {
        "type": "core.simple_generator",
        "num_classes": 4,
        "num_stages": 2,
        "ngf": 8,
        "z_dim": 3,
        "style_dim": 5,
        "norm": {"type": "core.adain"},
    },
    "injector": {"type": "core.gaussian", "shared_styles": False},
}


@pytest.fixture(scope="module")
def model() -> synth.SynthesisModel:
    torch.manual_seed(0)
    return synth.compose(TINY).eval()


def _cond(b: int = 2, size: int = 16) -> synth.Condition:
    g = torch.Generator().manual_seed(0)
    return synth.Condition(
        label_map=torch.randint(0, 4, (b, size, size), generator=g), num_classes=4
    )


def _expect(fn: Callable[[], Any], error: type[BaseException], *words: str) -> str:
    """Run ``fn``; it must raise ``error`` (not a raw KeyError/IndexError/RuntimeError) whose
    message holds every one of ``words``."""
    with pytest.raises(Exception) as info:
        fn()
    e = info.value
    assert isinstance(e, error), f"{type(e).__name__}: {e}"
    assert type(e) not in (KeyError, IndexError, RuntimeError), f"raw {type(e).__name__}: {e}"
    message = str(e)
    for word in words:
        assert word in message, f"{word!r} not in: {message}"
    return message


# --------------------------------------------------------------------------- 7: config errors

RUN = {"model": {"generator": TINY["generator"]}, "data": {"type": "demo"}}


@pytest.mark.parametrize(
    ("train", "words"),
    [
        ({"batchsize": 2}, ["train.batchsize", "did you mean 'batch_size'"]),
        ({"stepss": 2}, ["train.stepss", "'steps'"]),
        ({"optimizer": {"lrr": 1e-3}}, ["train.optimizer.lrr", "did you mean 'lr'"]),
        (
            {"optimizers": {"generator": {"beta": [0, 0.9]}}},
            ["optimizers.generator.beta", "'betas'"],
        ),
        ({"freeze": [{"patern": "generator.*", "until": 3}]}, ["freeze.0.patern", "'pattern'"]),
    ],
)
def test_run_config_did_you_mean_at_every_level(train, words):
    _expect(lambda: validate(RunConfig, {**RUN, "train": train}, "run config"), ConfigError, *words)


def test_run_config_top_level_typo_and_all_errors_at_once():
    msg = _expect(
        lambda: validate(
            RunConfig, {**RUN, "trian": {}, "train": {"batchsize": 2, "steps": 0}}, "run config"
        ),
        ConfigError,
        "'trian'",
        "did you mean 'train'",
        "train.batchsize",
        "train.steps",
    )
    assert msg.count("\n  - ") == 3


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"generatr": TINY["generator"]}, ["'generatr'", "did you mean 'generator'"]),
        ({**TINY, "lossses": {}}, ["'lossses'", "'losses'"]),
        (
            {"generator": {**TINY["generator"], "ngff": 8}},
            ["ngff", "did you mean 'ngf'"],
        ),
        (
            {"generator": {**TINY["generator"], "norm": {"type": "core.adain", "hiden": 3}}},
            ["generator.norm", "hiden"],
        ),
    ],
)
def test_spec_did_you_mean(spec, words):
    _expect(lambda: synth.compose(spec), ComposeError, *words)


@pytest.mark.parametrize("keys", [("model", "train"), ("model", "data"), ("train",)])
def test_run_config_given_to_compose_says_synth_train(keys, tmp_path):
    run = {k: {"model": TINY, "data": {"type": "demo"}, "train": {"steps": 1}}[k] for k in keys}
    _expect(lambda: load_spec(run), ComposeError, "run config", "synth train")
    path = tmp_path / "run.json"
    path.write_text(json.dumps(run))
    _expect(lambda: load_spec(path), ComposeError, str(path), "synth train")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("bad.yaml", "generator: {type: core.simple_generator\n  ngf: 8"),
        ("bad.yml", "a: b: c"),
        ("bad.json", '{"generator": "core.simple_generator",}'),
        ("bad.toml", "[generator\ntype = 1"),
        ("list.yaml", "- generator\n- core.simple_generator\n"),
    ],
)
def test_parse_errors_name_the_file(name, text, tmp_path):
    path = tmp_path / name
    path.write_text(text)
    _expect(lambda: read_config_file(path), ConfigError, str(path))
    _expect(lambda: synth.compose(path), ConfigError, str(path))


# --------------------------------------------------------------------------- 8: latents, images, n


def _latents(b=2, z_dim=3, styles=2, width=5, **over) -> synth.Latents:
    fields = {
        "z": torch.randn(b, z_dim),
        "styles": [torch.randn(b, width) for _ in range(styles)],
        **over,
    }
    return synth.Latents(**fields)


@pytest.mark.parametrize(
    ("latents", "words"),
    [
        (_latents(b=3), ["latents.z", "batch", "3", "2"]),
        (_latents(z_dim=4), ["latents.z", "(2, 4)", "(2, 3)"]),
        (_latents(styles=1), ["latents.styles", "1", "2", "per stage"]),
        (_latents(styles=3), ["latents.styles", "3", "2"]),
        (_latents(width=6), ["latents.styles[0]", "(2, 6)", "(2, 5)"]),
        (_latents(z=None), ["latents.z", "missing", "prior"]),
        (synth.Latents(z=torch.randn(2, 3), styles=torch.randn(2, 5)), ["latents.styles", "list"]),
        (_latents(z=np.zeros((2, 3))), ["latents.z", "ndarray"]),
        ({"z": torch.randn(2, 3)}, ["synth.Latents", "dict"]),
    ],
)
def test_latents_checked_before_any_layer(model, latents, words):
    _expect(lambda: model.generate(_cond(), latents), (ValueError, TypeError), *words)


def test_good_latents_pass(model):
    out = model.generate(_cond(), model.injector.prior(_cond()))
    assert out.image.shape == (2, 3, 16, 16)
    model.generate(_cond(), _latents())  # exactly the prior's shapes


@pytest.mark.parametrize(
    ("image", "words"),
    [
        (torch.randn(2, 1, 16, 16), ["image", "1 channel", "3"]),
        (torch.randn(2, 16, 16, 3), ["image", "[B, 3, H, W]", "permute"]),
        (torch.randn(3, 16, 16), ["image", "[B, 3, H, W]", "4"]),
        (torch.randn(3, 3, 16, 16), ["image", "batch", "3", "2"]),
        (np.zeros((2, 3, 16, 16), np.float32), ["image", "ndarray", "torch.from_numpy"]),
    ],
)
def test_image_channels_checked(model, image, words):
    _expect(lambda: model.check_image(image, _cond()), (ValueError, TypeError), *words)


@pytest.mark.parametrize("n", [0, -1, 2.5, "3", True, None, torch.tensor([2, 3])])
def test_sample_n_is_a_positive_int(model, n):
    _expect(lambda: model.sample(_cond(), n), (ValueError, TypeError), "n = ", "positive")


@pytest.mark.parametrize("n", [2, np.int64(2), torch.tensor(2)])
def test_sample_n_integers(model, n):
    assert model.sample(_cond(), n).image.shape[0] == 4


# --------------------------------------------------------------------------- 9: load


def test_load_wrong_shaped_tensor_names_file_tensor_shapes_and_fix(model, tmp_path):
    path = model.save_pretrained(tmp_path / "m")
    state = load_file(str(path / "model.safetensors"))
    key = "generator.head.weight" if "generator.head.weight" in state else sorted(state)[0]
    state[key] = torch.zeros(*(s + 1 for s in state[key].shape))
    save_file(state, str(path / "model.safetensors"))
    _expect(
        lambda: synth.load(path),
        ValueError,
        "model.safetensors",
        key,
        str(tuple(state[key].shape)),
        "synth.json",
    )


@pytest.mark.parametrize("name", ["model.safetensors", "notes.txt", "weights.pt"])
def test_load_a_file_instead_of_a_directory(model, tmp_path, name):
    path = model.save_pretrained(tmp_path / "m")
    target = path / name
    if not target.exists():
        target.write_text("x")
    _expect(lambda: synth.load(target), ValueError, str(target), "directory", str(path))


# --------------------------------------------------------------------------- 10: converters


def _pix2pixhd_parts():
    from synth_pix2pixhd import to_official
    from synth_pix2pixhd.discriminators import MultiscaleDiscriminator
    from synth_pix2pixhd.encoders import InstanceEncoder
    from synth_pix2pixhd.generators import GlobalGenerator

    g = GlobalGenerator({"num_classes": 3, "ngf": 4, "n_downsampling": 1, "n_blocks": 1})
    d = MultiscaleDiscriminator({"num_classes": 3, "ndf": 4, "n_layers": 1, "num_d": 2})
    e = InstanceEncoder({"channels": 3, "nef": 4, "n_downsampling": 1})
    return to_official(g), to_official(d), to_official(e)


UNRELATED = {"epoch": 3, "optimizer": {"lr": 0.1}}
FOREIGN = {"backbone.conv1.weight": torch.zeros(2, 3, 3, 3), "fc.bias": torch.zeros(2)}


def test_pix2pixhd_converter_checks_keys():
    from synth_pix2pixhd import from_official

    g, d, e = _pix2pixhd_parts()
    _expect(lambda: from_official(d, "G", num_classes=3), CheckpointError, "kind='D'", "kind='G'")
    _expect(lambda: from_official(g, "D", num_classes=3), CheckpointError, "kind='G'")
    _expect(lambda: from_official(e, "D"), CheckpointError, "kind='E'")
    _expect(lambda: from_official(d, "E"), CheckpointError, "kind='D'")
    _expect(lambda: from_official(g, "E"), CheckpointError, "kind='G'")
    for junk in (UNRELATED, FOREIGN, {}):
        for kind in ("G", "D", "E"):
            _expect(partial(from_official, junk, kind), CheckpointError, "from_official")
    _expect(lambda: from_official(UNRELATED, "G"), CheckpointError, "no tensors", "epoch")
    _expect(lambda: from_official(FOREIGN, "G"), CheckpointError, "backbone", "2 tensors")


def test_clvae_converters_check_keys():
    from synth_clvae import from_official_clvae, from_official_spade

    disc = {"discriminator_0.model0.0.weight": torch.zeros(4, 7, 4, 4)}
    enc = {"layer1.0.weight": torch.zeros(4, 3, 3, 3), "fc_mu.weight": torch.zeros(8, 128)}
    gen = {"head_0.conv_0.weight": torch.zeros(4, 4, 3, 3), "fc.weight": torch.zeros(4, 4, 3, 3)}
    _expect(lambda: from_official_spade(disc, "G"), CheckpointError, "kind='D'")
    _expect(lambda: from_official_spade(enc, "G"), CheckpointError, "kind='E'")
    _expect(lambda: from_official_spade(gen, "D"), CheckpointError, "kind='G'")
    _expect(lambda: from_official_spade(gen, "E"), CheckpointError, "kind='G'")
    _expect(lambda: from_official_clvae(disc, "G"), CheckpointError, "discriminator")
    for junk in (UNRELATED, FOREIGN, {}):
        for kind in ("G", "D", "E"):
            _expect(
                partial(from_official_spade, junk, kind), CheckpointError, "from_official_spade"
            )
        _expect(partial(from_official_clvae, junk, "G"), CheckpointError, "from_official_clvae")
        _expect(partial(from_official_clvae, junk, "E"), CheckpointError, "from_official_clvae")


def test_cimle_converter_checks_keys():
    from synth_cimle import from_official_srim

    for junk in (UNRELATED, FOREIGN, {}, {"model.0.weight": torch.zeros(4, 5, 3, 3)}):
        _expect(partial(from_official_srim, junk), CheckpointError, "from_official_srim")


# --------------------------------------------------------------------------- 11: optimizers


def test_optimizers_naming_an_unknown_network():
    from synth.train.optimization import check_optimizer_names

    cfg = TrainerConfig(optimizers={"generatr": {"lr": 1e-3}, "disc": {}})
    _expect(
        lambda: check_optimizer_names(cfg, ("generator", "discriminator")),
        ConfigError,
        "train.optimizers",
        "'generatr'",
        "did you mean 'generator'",
        "'disc'",
        "'discriminator'",
    )
    check_optimizer_names(TrainerConfig(optimizers={"generator": {}}), ("generator",))


# --------------------------------------------------------------------------- 12: CLI


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    _, err = capsys.readouterr()
    return code, err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize(
    "argv",
    [
        ["sample", "MODEL", "--label-map", "x.png", "--device", "cuda"],
        ["sample", "MODEL", "--label-map", "x.png", "--device", "cuda:1"],
        ["sample", "MODEL", "--label-map", "x.png", "--device", "gpu"],
        ["evaluate", "MODEL", "--data", "demo", "--device", "cuda"],
        ["train", "CONFIG", "--device", "cuda"],
        ["train", "CONFIG", "--device", "cudaa"],
        ["demo", "--device", "cuda"],
    ],
)
def test_cli_device_errors_are_one_line(capsys, tmp_path, model, argv):
    model_dir = model.save_pretrained(tmp_path / "m")
    config = tmp_path / "run.json"
    config.write_text(json.dumps({**RUN, "train": {"steps": 1}}))
    argv = [str(model_dir) if a == "MODEL" else str(config) if a == "CONFIG" else a for a in argv]
    code, err = _run(capsys, *argv)
    assert code in (1, 2)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "--device" in err and "cpu" in err


@pytest.mark.parametrize("suffix", [".yaml", ".json", ".toml"])
def test_cli_parse_errors_name_the_file(capsys, tmp_path, suffix):
    path = tmp_path / f"bad{suffix}"
    path.write_text("{[: not valid")
    for argv in (["compose", str(path)], ["train", str(path)]):
        code, err = _run(capsys, *argv)
        assert code == 1 and str(path) in err and "Traceback" not in err


# --------------------------------------------------------------------------- 13: numpy


def test_numpy_condition_is_converted():
    ids = np.random.default_rng(0).integers(0, 4, (2, 8, 8))
    cond = synth.Condition(label_map=ids, num_classes=4)
    assert isinstance(cond.label_map, torch.Tensor) and cond.label_map.dtype == torch.long
    image = np.zeros((2, 3, 8, 8))  # float64, as numpy makes it
    cond = synth.Condition(image=image)
    assert isinstance(cond.image, torch.Tensor) and cond.image.dtype == torch.float32


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"label_map": np.zeros((2, 8, 8), np.float32), "num_classes": 4}, ["label_map", "float"]),
        ({"image": np.zeros((2, 8, 8, 3), np.uint8)}, ["image"]),
        ({"label_map": [[0, 1], [1, 0]], "num_classes": 2}, ["label_map", "list"]),
    ],
)
def test_bad_numpy_condition_errors(fields, words):
    _expect(lambda: synth.Condition(**fields), (ValueError, TypeError), *words)


# --------------------------------------------------------------------------- 14: label maps


def test_label_map_png_keeps_ids_and_palette(tmp_path):
    from synth.data.transforms import load_label_map
    from synth.viz import palette, save_label_map

    ids = torch.arange(8).repeat(8, 1)
    path = save_label_map(ids, tmp_path / "lm.png", num_classes=8)
    img = Image.open(path)
    assert img.mode == "P"
    assert np.array_equal(np.asarray(img), ids.numpy())
    pal = np.asarray(img.getpalette()[: 8 * 3]).reshape(8, 3)
    assert np.array_equal(pal, palette(8).numpy())
    assert torch.equal(load_label_map(path), ids)
    # what a viewer shows: the palette's colours, not near-black greys
    rgb = np.asarray(img.convert("RGB"))
    assert np.array_equal(rgb[0, 1], palette(8).numpy()[1])
    _expect(
        lambda: save_label_map(torch.full((4, 4), 300), tmp_path / "x.png", num_classes=301),
        ValueError,
        "300",
        "256",
    )


def test_demo_inputs_are_palette_pngs(tmp_path):
    from synth.demo import _write_inputs

    cond = _cond(b=2, size=8)
    paths = _write_inputs(tmp_path, cond, ["a", "b"])
    for i, p in enumerate(paths):
        img = Image.open(p)
        assert img.mode == "P"
        assert np.array_equal(np.asarray(img), cond.label_map[i].numpy())


def test_sample_reads_palette_label_map_as_ids(capsys, tmp_path, model):
    from synth.viz import save_label_map

    model_dir = model.save_pretrained(tmp_path / "m")
    ids = torch.randint(0, 4, (16, 16), generator=torch.Generator().manual_seed(1))
    lm = save_label_map(ids, tmp_path / "lm.png", num_classes=4)
    out = tmp_path / "out"
    code, err = _run(capsys, "sample", str(model_dir), "--label-map", str(lm), "--out", str(out))
    assert code == 0, err
    # the CLI reads the file with load_label_map, which takes a P-mode PNG's indices as ids
    assert (out / "grid.png").is_file()
