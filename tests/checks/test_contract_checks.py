"""Every built-in QA check passes the check contract of ``bildwerk.testing``.

The sample creative is made the way a run makes one: a studio scene in the brand's
colours, composed with real fonts, the sample wordmark and copy; CLIP is a tiny random
model built here and loaded through the check's own loader.
"""

from __future__ import annotations

import functools
import importlib.util
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bildwerk.backends.base import SceneRequest
from bildwerk.backends.studio import StudioBackend
from bildwerk.checks import clip_score, detectors
from bildwerk.checks.base import Check, CheckContext, TextSpec
from bildwerk.config.brand import BrandKit, Logo, Palette
from bildwerk.config.brief import Copy
from bildwerk.config.channels import Channel, Insets
from bildwerk.fonts import FontSet
from bildwerk.geometry import plan_layout
from bildwerk.registry import checks
from bildwerk.samples import write_sample_logo
from bildwerk.scripts import script_of
from bildwerk.stages.compose import compose
from bildwerk.testing import CheckContract, write_vocab
from bildwerk.testing.common import extra_modules

pytestmark = pytest.mark.timeout(120)

SIZE = 480
NAVY, ORANGE, CREAM = "#1d3557", "#e76f51", "#f7f1e3"
BRAND = BrandKit(
    name="acme",
    palette=Palette(
        primary=NAVY, secondary="#f4a261", accent=ORANGE, text="#1d1d1f", background=CREAM
    ),
    logo=Logo(file="logo.png", min_height=24, height=0.08),
)
CHANNEL = Channel(name="contract", width=SIZE, height=SIZE)
PROMPT = "a product photo on a podium"


@pytest.fixture(scope="module")
def creative(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The sample creative, its scene, logo and text runs (made once; tests get copies)."""
    root = tmp_path_factory.mktemp("contract-checks")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BILDWERK_FONT_CACHE", str(root / "font-cache"))
        fonts = FontSet(BRAND)
        if not all(fonts.find(n) for n in ("NotoSans-Bold.ttf", "NotoSans-Regular.ttf")):
            pytest.skip("Noto Sans not installed: apt-get install fonts-noto-core")
        layout = plan_layout(SIZE, SIZE, Insets(), 0.05)
        request = SceneRequest(
            key="contract",
            prompt=PROMPT,
            negative_prompt="",
            slots={},
            seed=3,
            width=SIZE,
            height=SIZE,
            palette=BRAND.palette.model_dump(),
            layout=layout,
        )
        (scene,) = StudioBackend().generate([request])
        with Image.open(write_sample_logo(root / "logo.png", "acme", NAVY, ORANGE)) as im:
            logo = im.convert("RGBA")
        copy = Copy(headline="Fresh drop", subline="New colours this week", cta="Shop now")
        made = compose(
            scene.image,
            layout,
            copy,
            brand=BRAND,
            locale="en-US",
            direction="ltr",
            logo=logo,
            fonts=fonts,
        )
        texts = tuple(
            TextSpec(
                t.role,
                t.text,
                t.box,
                t.color,
                t.background,
                t.font_size,
                script_of(t.text),
                t.plate,
            )
            for t in made.texts
        )
        yield {
            "image": made.image,
            "scene": scene.image,
            "logo": logo,
            "texts": texts,
            "logo_box": made.logo_box,
            "layout": layout,
            "product_box": scene.product_box,
        }


def forget_builtin_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fresh, empty model and result caches of the built-in checks until the test ends
    (the loaded ones come back afterwards)."""
    for name in ("nudenet_session", "ocr_engine", "ocr_charset"):
        cached = getattr(detectors, name)
        monkeypatch.setattr(detectors, name, functools.cache(cached.__wrapped__))
    monkeypatch.setattr(detectors, "_detections", detectors._Recent())
    monkeypatch.setattr(detectors, "_text_regions", detectors._Recent())
    monkeypatch.setattr(detectors, "_last", None)
    monkeypatch.setattr(clip_score, "_MODELS", {})
    monkeypatch.setattr(clip_score, "_COSINES", OrderedDict())


class BuiltinCheck(CheckContract):
    @pytest.fixture(autouse=True)
    def _creative(self, creative: dict[str, Any]) -> None:
        self.creative = creative

    def make_check(self) -> Check:
        return checks.load(self.registered_name)()

    def params(self) -> Mapping[str, Any]:
        return {}

    def sample(self) -> tuple[Image.Image, CheckContext]:
        c = self.creative
        context = CheckContext(
            channel=CHANNEL,
            brand=BRAND,
            layout=c["layout"],
            locale="en-US",
            texts=c["texts"],
            logo_box=c["logo_box"],
            logo=c["logo"].copy(),
            product_box=c["product_box"],
            scene=c["scene"].copy(),
            prompt=PROMPT,
            ai_generated=False,
            params=self.params(),
        )
        return c["image"].copy(), context

    def forget_models(self, monkeypatch: pytest.MonkeyPatch) -> None:
        forget_builtin_models(monkeypatch)


QA = extra_modules("qa")


class TestNSFW(BuiltinCheck):
    registered_name = "nsfw"
    extra_modules = QA


class TestPeople(BuiltinCheck):
    registered_name = "people"
    extra_modules = QA


class TestLegibility(BuiltinCheck):
    registered_name = "legibility"
    extra_modules = QA


class TestLogo(BuiltinCheck):
    registered_name = "logo"
    extra_modules = QA


class TestContrast(BuiltinCheck):
    registered_name = "contrast"


class TestBrandColour(BuiltinCheck):
    registered_name = "brand_colour"


class TestSafeArea(BuiltinCheck):
    registered_name = "safe_area"


class TestTechnical(BuiltinCheck):
    registered_name = "technical"


# --------------------------------------------------------------------------- CLIP


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random CLIP with 2-layer, 32-wide towers and the tiny byte-level vocabulary,
    saved as a registered model is (``save_pretrained`` of model and processor)."""
    if not all(importlib.util.find_spec(m) for m in ("torch", "transformers")):
        pytest.skip("needs the diffusion extra")
    torch, _, _ = clip_score.import_clip()  # torchvision repaired as the check does
    import transformers

    root = tmp_path_factory.mktemp("contract-clip")
    tokenizer = transformers.CLIPTokenizer.from_pretrained(
        str(write_vocab(root / "tok")), model_max_length=77
    )
    text = transformers.CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.eos_token_id,
    )
    vision = transformers.CLIPVisionConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
    )
    config = transformers.CLIPConfig(
        text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=16
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = transformers.CLIPModel(config).eval()
    processor = transformers.CLIPProcessor(
        image_processor=transformers.CLIPImageProcessor(
            size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
        ),
        tokenizer=tokenizer,
    )
    out = root / "tiny-clip"
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


class TestClipScore(BuiltinCheck):
    registered_name = "clip_score"
    extra_modules = ("torch", "transformers")

    @pytest.fixture(autouse=True)
    def _model(self, tiny_clip: Path) -> None:
        self.model = tiny_clip

    def params(self) -> Mapping[str, Any]:
        # a random model scores near zero: thresholds at 0 so the verdict is a real one
        return {"model_path": str(self.model), "min_score": 0.0, "warn_score": 0.0}
