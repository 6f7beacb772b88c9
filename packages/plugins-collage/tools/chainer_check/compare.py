"""Manual check, synth side: ``from_official`` on the files ``make.py`` saved vs the Chainer
outputs it recorded (run in the project's venv; any unmapped or missing key fails).

    .venv/bin/python packages/plugins-collage/tools/chainer_check/compare.py /tmp/chainer_check
"""

import sys
import warnings

import numpy as np
import torch

import synth
from synth_collage import from_official, layer_class_maps

D = sys.argv[1]
o = dict(np.load(f"{D}/outputs.npz"))


def t(k: str) -> torch.Tensor:
    return torch.from_numpy(o[k])


res = {}
with torch.no_grad(), warnings.catch_warnings():
    warnings.simplefilter("error")  # any unmapped / missing key fails the check
    e, rep = from_official(f"{D}/enc_small.npz", kind="E", return_report=True)
    x, y = t("x128"), t("y").long()
    z = e.posterior(x, synth.Condition(image=x, class_id=y, num_classes=5)).z
    res["E small (categorical CBN, 5 classes)"] = (z - t("enc_small_z")).abs().max()
    e2 = from_official(f"{D}/enc_256.npz", kind="E")
    x2 = t("x256")
    res["E 256 (BN)"] = (e2.posterior(x2, synth.Condition(image=x2)).z - t("enc_256_z")).abs().max()
    aux = from_official(f"{D}/auxab.npz", kind="AB")
    zeta = aux.embed(t("aux_z"))
    res["A"] = (zeta - t("aux_zeta")).abs().max()
    res["B"] = (aux.project(t("aux_zeta")) - t("aux_zprime")).abs().max()
    g = from_official(f"{D}/auxab.npz", kind="G")
    img = g.generate(synth.Condition(class_id=y, num_classes=5), synth.Latents(z=t("aux_z"))).image
    res["G (CBN half of the AB file), class ids"] = (img - t("aux_image_noab")).abs().max()
    s = from_official(f"{D}/scbn.npz", kind="G")
    maps = {i: t(f"scbn_w{i}").permute(0, 3, 1, 2) for i in range(10)}
    cond = synth.Condition(class_id=torch.zeros(2, dtype=torch.long), num_classes=5)
    with layer_class_maps(s.generator, maps):
        img = s.generate(cond, synth.Latents(z=t("scbn_z"))).image
    res["G sCBN, a class map per layer"] = (img - t("scbn_image")).abs().max()
    masks = {k: t(f"blend_m{k}")[:, None] for k in range(6)}
    with layer_class_maps(s.generator, maps):
        out = s.sample(
            cond,
            1,
            sampler="collage.feature_blend",
            masks=masks,
            target=synth.Latents(z=t("scbn_z")),
            references=[synth.Latents(z=t("blend_z1"))],
        )
    res["G sCBN + feature blending"] = (out.image - t("blend_image")).abs().max()
    d = from_official(f"{D}/dis.npz", kind="D")
    logits = d(x, synth.Condition(class_id=y, num_classes=5)).logits[0]
    res["D logits"] = ((logits - t("dis_logits")).abs() / t("dis_logits").abs().clamp(min=1)).max()
    res["D feature_vector"] = (d.feature_vector(x) - t("dis_features")).abs().max()
with torch.no_grad(), warnings.catch_warnings():
    warnings.simplefilter("error")
    s256 = from_official(f"{D}/scbn256.npz", kind="G")
    maps = {i: t(f"g256_w{i}").permute(0, 3, 1, 2) for i in range(12)}
    cond = synth.Condition(class_id=torch.zeros(1, dtype=torch.long), num_classes=5)
    with layer_class_maps(s256.generator, maps):
        img = s256.generate(cond, synth.Latents(z=t("g256_z"))).image
    res["G 256 sCBN, a class map per layer"] = (img - t("g256_image")).abs().max()
    d256 = from_official(f"{D}/dis256.npz", kind="D")
    x2, y = t("x256"), t("y").long()
    logits = d256(x2, synth.Condition(class_id=y, num_classes=5)).logits[0]
    res["D 256 logits"] = (logits - t("d256_logits")).abs().max()
    res["D 256 feature_vector"] = (d256.feature_vector(x2) - t("d256_features")).abs().max()
for k, v in res.items():
    print(f"{k:45s} max |diff| {float(v):.2e}")
