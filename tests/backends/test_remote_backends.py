"""Remote backends against a local fake that enforces the documented API shapes."""

from __future__ import annotations

import json
import random
import socket
from collections.abc import Callable, Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from bildwerk.backends.base import GenerationBackend, SceneRequest
from bildwerk.backends.openai_images import OpenAIImagesBackend, build_prompt, choose_size
from bildwerk.backends.remote import (
    RefusedError,
    RemoteError,
    RemoteUserError,
    RetryPolicy,
    Secret,
    encode_multipart,
    estimate_cost,
    idempotency_key,
    parse_retry_after,
    place_product,
    resolve_api_key,
)
from bildwerk.backends.stability import StabilityBackend, api_seed, closest_aspect
from bildwerk.config.channels import Insets
from bildwerk.errors import ConfigError, UserError
from bildwerk.geometry import plan_layout
from tests.backends.fakes_remote import FakeImageAPI, Scripted, _multipart

pytestmark = pytest.mark.timeout(30)

RED = (255, 0, 0)


@pytest.fixture
def fake() -> Iterator[FakeImageAPI]:
    with FakeImageAPI() as api:
        yield api
    assert not api.violations, api.violations


@pytest.fixture
def product(tmp_path: Path) -> Path:
    """An opaque red bottle shape with hard edges on a transparent margin."""
    img = Image.new("RGBA", (160, 240), (0, 0, 0, 0))
    img.paste(Image.new("RGBA", (100, 200), (*RED, 255)), (30, 20))
    path = tmp_path / "bottle.png"
    img.save(path)
    return path


def scene(
    width: int,
    height: int,
    *,
    product: Path | None = None,
    params: dict[str, Any] | None = None,
    key: str = "scene-key-1",
    prompt: str = "a bottle on a pastel podium",
    negative: str = "text, watermark",
    seed: int = 7,
) -> SceneRequest:
    return SceneRequest(
        key=key,
        prompt=prompt,
        negative_prompt=negative,
        slots={},
        seed=seed,
        width=width,
        height=height,
        palette={"background": "#f4f1ec", "primary": "#33415c"},
        layout=plan_layout(width, height, Insets(), 0.06),
        params=params or {},
        product=product,
    )


class Recorder:
    """Injected sleep: records delays instead of waiting."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def backend(kind: type[Any], fake: FakeImageAPI, sleep: Recorder, **kw: Any) -> Any:
    defaults: dict[str, Any] = {
        "api_key": fake.api_key,
        "base_url": fake.base_url,
        "sleep": sleep,
        "random": lambda: 0.5,
        "retry": RetryPolicy(max_attempts=4, base=0.5, cap=8.0),
        "read_timeout": 5.0,
        "connect_timeout": 2.0,
        "environ": {},
    }
    defaults.update(kw)
    return kind(**defaults)


def assert_product_exact(gen: Any, request: SceneRequest) -> None:
    placement = place_product(request)
    assert placement is not None
    assert gen.product_box == placement.box
    box = placement.box
    arr = np.asarray(gen.image.convert("RGB"))
    cut = np.asarray(placement.image)
    opaque = cut[..., 3] == 255
    assert opaque.sum() > 500
    region = arr[box.y0 : box.y1, box.x0 : box.x1]
    assert np.array_equal(region[opaque], cut[..., :3][opaque])
    assert tuple(arr[(box.y0 + box.y1) // 2, (box.x0 + box.x1) // 2]) == RED


# --------------------------------------------------------------------------- OpenAI


def test_openai_text_to_image_shapes_size_and_cost(fake: FakeImageAPI) -> None:
    sleep = Recorder()
    be = backend(OpenAIImagesBackend, fake, sleep)
    assert isinstance(be, GenerationBackend)
    req = scene(1200, 628)
    (gen,) = be.generate([req])
    assert gen.image.size == (1200, 628) and gen.image.mode == "RGB"
    (sent,) = fake.posts()
    assert sent.path == "/v1/images/generations"
    assert sent.headers["authorization"] == f"Bearer {fake.api_key}"
    assert sent.json == {
        "model": "gpt-image-1",
        "prompt": "a bottle on a pastel podium\n\nAvoid: text, watermark.",
        "n": 1,
        "size": "1536x1024",
        "quality": "medium",
        "output_format": "png",
    }
    assert sent.headers["idempotency-key"] == idempotency_key("openai", req.key)
    assert gen.params["cost_usd"] == 0.063
    assert gen.params["cost_estimate"]["prices_as_of"]
    assert gen.params["deterministic"] is False
    assert gen.params["usage"]["total_tokens"] == 4200
    assert gen.params["request_id"].startswith("req_")
    assert be.capabilities.deterministic is False
    assert sleep.sleeps == []


def test_openai_product_edit_keeps_product_pixels(fake: FakeImageAPI, product: Path) -> None:
    be = backend(OpenAIImagesBackend, fake, Recorder())
    req = scene(1080, 1920, product=product)
    (gen,) = be.generate([req])
    assert gen.image.size == (1080, 1920)
    assert_product_exact(gen, req)
    (sent,) = fake.posts()
    assert sent.path == "/v1/images/edits"
    assert sent.headers["content-type"].startswith("multipart/form-data")
    assert sent.fields["size"] == ["1024x1536"] and sent.fields["model"] == ["gpt-image-1"]
    (image,) = sent.files["image[]"]
    (mask,) = sent.files["mask"]
    alpha = np.asarray(mask.image().getchannel("A"))
    assert alpha.shape == (1536, 1024)
    assert alpha[0, 0] == 0  # transparent: the model may paint here
    pbox = np.argwhere(alpha == 255)
    assert pbox.size  # opaque: the product is kept
    cy, cx = pbox.mean(axis=0).astype(int)
    assert image.image().convert("RGB").getpixel((int(cx), int(cy))) == RED
    assert gen.params["mode"] == "product-edit"
    assert gen.params["product_box"] == list(gen.product_box.as_tuple())


def test_openai_dalle3_url_is_downloaded_without_the_key(fake: FakeImageAPI) -> None:
    be = backend(OpenAIImagesBackend, fake, Recorder(), model="dall-e-3")
    (gen,) = be.generate([scene(300, 600, params={"response_format": "url"})])
    assert gen.image.size == (300, 600)
    post, get = fake.requests
    assert post.json["size"] == "1024x1792" and post.json["response_format"] == "url"
    assert get.method == "GET" and get.path.startswith("/files/")
    assert "authorization" not in get.headers
    assert gen.params["revised_prompt"].startswith("A revised")
    assert gen.params["cost_usd"] == 0.08


def test_openai_dalle2_edit_uses_single_square_image(fake: FakeImageAPI, product: Path) -> None:
    be = backend(OpenAIImagesBackend, fake, Recorder())
    req = scene(300, 250, product=product, params={"generation": {"model": "dall-e-2"}})
    (gen,) = be.generate([req])
    assert_product_exact(gen, req)
    (sent,) = fake.posts()
    assert "image" in sent.files and "image[]" not in sent.files
    assert sent.fields["size"] == ["512x512"] and "quality" not in sent.fields
    assert gen.params["cost_usd"] == 0.018


def test_openai_options_are_validated_before_spending(fake: FakeImageAPI, product: Path) -> None:
    be = backend(OpenAIImagesBackend, fake, Recorder())
    with pytest.raises(UserError, match="quality 'ultra'"):
        be.generate([scene(300, 250, params={"quality": "ultra"})])
    with pytest.raises(UserError, match="at most 1000"):
        be.generate([scene(300, 250, prompt="x" * 1200, params={"model": "dall-e-2"})])
    with pytest.raises(UserError, match="dall-e-3 cannot edit"):
        be.generate([scene(300, 250, product=product, params={"model": "dall-e-3"})])
    assert fake.requests == []


def test_openai_sizes_and_negative_prompt() -> None:
    assert choose_size("gpt-image-1", 1080, 1080) == "1024x1024"
    assert choose_size("gpt-image-1", 1080, 1920) == "1024x1536"
    assert choose_size("gpt-image-1", 1, 1, "auto") == "auto"
    assert choose_size("dall-e-3", 1920, 1080) == "1792x1024"
    assert choose_size("dall-e-2", 200, 100) == "256x256"
    assert choose_size("dall-e-2", 2000, 100) == "1024x1024"
    with pytest.raises(UserError):
        choose_size("gpt-image-1", 1, 1, (512, 512))
    assert build_prompt("cat ", "") == "cat"
    assert build_prompt("cat", " dogs. ") == "cat\n\nAvoid: dogs."


def test_openai_base_url_from_env_drops_v1(fake: FakeImageAPI) -> None:
    be = OpenAIImagesBackend(
        api_key=fake.api_key,
        environ={"OPENAI_BASE_URL": fake.base_url + "/v1/"},
        sleep=Recorder(),
    )
    assert be.base_url == fake.base_url
    (gen,) = be.generate([scene(64, 64)])
    assert gen.image.size == (64, 64)


# --------------------------------------------------------------------------- Stability


def test_stability_core_image_response(fake: FakeImageAPI) -> None:
    be = backend(StabilityBackend, fake, Recorder())
    req = scene(300, 250, seed=41)
    (gen,) = be.generate([req])
    assert gen.image.size == (300, 250)
    (sent,) = fake.posts()
    assert sent.path == "/v2beta/stable-image/generate/core"
    assert sent.headers["accept"] == "image/*"
    assert sent.headers["content-type"].startswith("multipart/form-data")
    assert sent.files == {}
    assert sent.fields == {
        "prompt": ["a bottle on a pastel podium"],
        "negative_prompt": ["text, watermark"],
        "seed": ["42"],
        "output_format": ["png"],
        "aspect_ratio": ["5:4"],
    }
    assert gen.params["seed"] == 42 and gen.params["finish_reason"] == "SUCCESS"
    assert gen.params["cost_usd"] == 0.03


def test_stability_json_response_and_sd3_model(fake: FakeImageAPI) -> None:
    be = backend(StabilityBackend, fake, Recorder(), accept="application/json")
    req = scene(1920, 1080, params={"generation": {"model": "sd3.5-large"}})
    (gen,) = be.generate([req])
    assert gen.image.size == (1920, 1080)
    (sent,) = fake.posts()
    assert sent.path == "/v2beta/stable-image/generate/sd3"
    assert sent.fields["model"] == ["sd3.5-large"] and sent.fields["aspect_ratio"] == ["16:9"]
    assert sent.headers["accept"] == "application/json"
    assert gen.params["cost_usd"] == 0.065


@pytest.mark.parametrize(("mode", "path"), [("auto", "inpaint"), ("outpaint", "outpaint")])
def test_stability_product_edit_keeps_product_pixels(
    fake: FakeImageAPI, product: Path, mode: str, path: str
) -> None:
    be = backend(StabilityBackend, fake, Recorder())
    req = scene(728, 90, product=product, params={"mode": mode})
    (gen,) = be.generate([req])
    assert gen.image.size == (728, 90)
    assert_product_exact(gen, req)
    (sent,) = fake.posts()
    assert sent.path == f"/v2beta/stable-image/edit/{path}"
    image = sent.files["image"][0].image()
    if path == "inpaint":
        mask = np.asarray(sent.files["mask"][0].image().convert("L"))
        assert mask.shape == (image.height, image.width)
        assert mask[0, 0] == 255 and (mask == 0).sum() > 100  # white = regenerate
    else:
        sides = [int(sent.fields[k][0]) for k in ("left", "right", "up", "down")]
        assert any(sides) and image.width < gen.params["edit_canvas"][0]
    assert gen.params["mode"] == path


def test_stability_content_filtered_is_refused(fake: FakeImageAPI) -> None:
    fake.stability_finish_reason = "CONTENT_FILTERED"
    for accept in ("image/*", "application/json"):
        be = backend(StabilityBackend, fake, Recorder(), accept=accept)
        with pytest.raises(RefusedError) as info:
            be.generate([scene(64, 64)])
        assert info.value.reason == "CONTENT_FILTERED"
        assert not isinstance(info.value, UserError)


def test_stability_moderation_403_is_refused_without_retry(fake: FakeImageAPI) -> None:
    be = backend(StabilityBackend, fake, Recorder())
    with pytest.raises(RefusedError, match="content moderation"):
        be.generate([scene(64, 64, prompt="a forbidden thing")])
    assert len(fake.posts()) == 1


def test_openai_safety_refusal(fake: FakeImageAPI) -> None:
    be = backend(OpenAIImagesBackend, fake, Recorder())
    with pytest.raises(RefusedError) as info:
        be.generate([scene(64, 64, prompt="please refuse this")])
    assert info.value.reason == "moderation_blocked"


def test_stability_seed_and_aspect() -> None:
    assert api_seed(0) == 1 and api_seed(4294967293) == 4294967294
    assert 1 <= api_seed(-5) <= 4294967294 and api_seed(4294967294) == 1
    assert closest_aspect(1080, 1920) == "9:16"
    assert closest_aspect(1080, 1350) == "4:5"
    assert closest_aspect(2560, 1080) == "21:9"


# --------------------------------------------------------------------------- retries


def test_retries_follow_backoff_and_retry_after_with_stable_key(fake: FakeImageAPI) -> None:
    sleep = Recorder()
    be = backend(OpenAIImagesBackend, fake, sleep)
    fake.script(
        Scripted(500),
        Scripted(503),
        Scripted(
            429,
            {"error": {"message": "slow down", "code": "rate_limit_exceeded"}},
            {"Retry-After": "3"},
        ),
    )
    req = scene(64, 64)
    (gen,) = be.generate([req])
    assert sleep.sleeps == [0.25, 0.5, 3.0]  # 0.5·U·base·2^n with U=0.5, then Retry-After
    keys = {r.headers["idempotency-key"] for r in fake.posts()}
    assert keys == {idempotency_key("openai", req.key)} and len(fake.posts()) == 4
    assert gen.params["attempts"] == 4
    # a re-run (new process, new backend) sends the same key; another scene does not
    be2 = backend(OpenAIImagesBackend, fake, Recorder())
    be2.generate([req, scene(64, 64, key="other")])
    assert fake.posts()[-2].headers["idempotency-key"] == idempotency_key("openai", req.key)
    assert fake.posts()[-1].headers["idempotency-key"] != idempotency_key("openai", req.key)


def test_full_jitter_bounds_with_seeded_rng(fake: FakeImageAPI) -> None:
    sleep = Recorder()
    policy = RetryPolicy(max_attempts=6, base=0.5, cap=3.0)
    be = backend(StabilityBackend, fake, sleep, random=random.Random(7).random, retry=policy)
    fake.script(*[Scripted(502, {"name": "bad_gateway", "errors": ["x"]})] * 5)
    be.generate([scene(64, 64)])
    replay = random.Random(7)
    expected = [replay.random() * min(3.0, 0.5 * 2**n) for n in range(5)]
    assert sleep.sleeps == pytest.approx(expected)
    for n, s in enumerate(sleep.sleeps):
        assert 0.0 <= s <= min(policy.cap, policy.base * 2**n)


def test_retry_after_is_capped_and_reads_http_dates(fake: FakeImageAPI) -> None:
    sleep = Recorder()
    now = 1_700_000_000.0
    be = backend(OpenAIImagesBackend, fake, sleep, clock=lambda: now)
    fake.script(
        Scripted(429, {}, {"Retry-After": "100"}),
        Scripted(503, {}, {"Retry-After": formatdate(now + 5, usegmt=True)}),
        Scripted(500, {}, {"Retry-After": "60"}),  # ignored on 500: backoff instead
    )
    be.generate([scene(64, 64)])
    assert sleep.sleeps == [8.0, 5.0, 1.0]
    headers = httpx.Headers({"retry-after-ms": "1500"})
    assert parse_retry_after(headers, now) == 1.5
    assert parse_retry_after(httpx.Headers({"Retry-After": "soon"}), now) is None


def test_gives_up_after_max_attempts(fake: FakeImageAPI) -> None:
    sleep = Recorder()
    be = backend(OpenAIImagesBackend, fake, sleep, retry=RetryPolicy(max_attempts=3))
    fake.script(*[Scripted(500, {"error": {"message": "boom"}})] * 3)
    with pytest.raises(RemoteError) as info:
        be.generate([scene(64, 64)])
    assert not isinstance(info.value, UserError)
    assert info.value.attempts == 3 and info.value.status == 500
    assert len(fake.posts()) == 3 and len(sleep.sleeps) == 2


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"error": {"message": "Invalid size", "code": "invalid_value"}}),
        (403, {"error": {"message": "Organization must be verified", "code": None}}),
        (429, {"error": {"message": "You exceeded your quota", "code": "insufficient_quota"}}),
    ],
)
def test_no_retry_on_client_errors(fake: FakeImageAPI, status: int, body: Any) -> None:
    sleep = Recorder()
    be = backend(OpenAIImagesBackend, fake, sleep)
    fake.script(Scripted(status, body))
    with pytest.raises(RemoteUserError) as info:
        be.generate([scene(64, 64)])
    assert isinstance(info.value, UserError)
    assert info.value.status == status and info.value.hint
    assert "OpenAI Images" in str(info.value)
    assert len(fake.posts()) == 1 and sleep.sleeps == []


def test_other_4xx_is_a_remote_error_without_retry(fake: FakeImageAPI) -> None:
    be = backend(StabilityBackend, fake, Recorder())
    fake.script(Scripted(413, {"name": "payload_too_large", "errors": ["too big"]}))
    with pytest.raises(RemoteError, match="too big") as info:
        be.generate([scene(64, 64)])
    assert not isinstance(info.value, UserError) and len(fake.posts()) == 1


def test_wrong_key_401_names_variable_and_hides_key(fake: FakeImageAPI) -> None:
    wrong = "sk-wrong-KEY-abcdef0123456789"
    be = backend(OpenAIImagesBackend, fake, Recorder(), api_key=wrong)
    with pytest.raises(RemoteUserError) as info:
        be.generate([scene(64, 64)])
    text = str(info.value)
    assert "OPENAI_API_KEY" in text and "401" in text
    assert wrong not in text and wrong[:8] not in text and wrong[-8:] not in text
    assert wrong not in repr(info.value.args)
    sb = backend(StabilityBackend, fake, Recorder(), api_key=wrong)
    with pytest.raises(RemoteUserError, match="STABILITY_API_KEY"):
        sb.generate([scene(64, 64)])
    assert len(fake.posts()) == 2


def test_read_timeout_is_retried_with_the_same_key(fake: FakeImageAPI) -> None:
    sleep = Recorder()
    # 1 s: the retry must be answered within it even on a loaded machine (0.3 s was not)
    be = backend(OpenAIImagesBackend, fake, sleep, read_timeout=1.0)
    fake.script(Scripted(None, delay=3.0))
    (gen,) = be.generate([scene(64, 64)])
    first, second = fake.posts()
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    assert len(sleep.sleeps) == 1 and gen.params["attempts"] == 2


def test_unreachable_service_gives_up(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleep = Recorder()
    be = OpenAIImagesBackend(
        api_key="sk-test-unreachable-0123456789",
        base_url=f"http://127.0.0.1:{port}",
        sleep=sleep,
        random=lambda: 0.0,
        retry=RetryPolicy(max_attempts=3),
        connect_timeout=1.0,
    )
    with pytest.raises(RemoteError, match="after 3 attempt") as info:
        be.generate([scene(64, 64)])
    assert "unreachable" not in str(info.value)
    assert sleep.sleeps == [0.0, 0.0]


def test_policy_rejects_bad_settings() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    assert RetryPolicy(base=1.0, cap=5.0).backoff(10, 0.999) == pytest.approx(4.995)


# --------------------------------------------------------------------------- secrets


def test_key_never_leaks_into_params_errors_or_repr(fake: FakeImageAPI, product: Path) -> None:
    be = backend(OpenAIImagesBackend, fake, Recorder())
    (gen,) = be.generate([scene(300, 250, product=product)])
    dumped = json.dumps(gen.params, default=str)
    assert fake.api_key not in dumped and fake.api_key not in repr(be)
    assert fake.api_key not in repr(be.client())
    secret = Secret(fake.api_key)
    assert fake.api_key not in repr(secret) and fake.api_key not in str(secret)
    assert secret.reveal() == fake.api_key
    fake.script(Scripted(500, {"error": {"message": f"oops {fake.api_key}"}}))
    be2 = backend(OpenAIImagesBackend, fake, Recorder(), retry=RetryPolicy(max_attempts=1))
    with pytest.raises(RemoteError) as info:
        be2.generate([scene(64, 64)])
    assert fake.api_key not in str(info.value) and "[redacted]" in str(info.value)


def _secrets(tmp_path: Path, text: str, mode: int) -> Path:
    path = tmp_path / "secrets.yaml"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_key_from_environment_wins(tmp_path: Path) -> None:
    path = _secrets(tmp_path, "OPENAI_API_KEY: from-file-0123456789\n", 0o600)
    env = {"OPENAI_API_KEY": "from-env-0123456789", "BILDWERK_SECRETS": str(path)}
    assert resolve_api_key("OPENAI_API_KEY", service="x", environ=env).reveal() == (
        "from-env-0123456789"
    )


def test_key_from_private_secrets_file(tmp_path: Path) -> None:
    path = _secrets(tmp_path, "STABILITY_API_KEY: sk-file-0123456789\n", 0o600)
    key = resolve_api_key("STABILITY_API_KEY", service="x", environ={"BILDWERK_SECRETS": str(path)})
    assert key.reveal() == "sk-file-0123456789"
    home = tmp_path / "home"
    (home / "bildwerk").mkdir(parents=True)
    _secrets(home / "bildwerk", "OPENAI_API_KEY: sk-xdg-0123456789\n", 0o600)
    key = resolve_api_key("OPENAI_API_KEY", service="x", environ={"XDG_CONFIG_HOME": str(home)})
    assert key.reveal() == "sk-xdg-0123456789"


def test_readable_secrets_file_is_refused(tmp_path: Path) -> None:
    path = _secrets(tmp_path, "OPENAI_API_KEY: sk-file-0123456789\n", 0o644)
    with pytest.raises(UserError, match="group or others") as info:
        resolve_api_key("OPENAI_API_KEY", service="x", environ={"BILDWERK_SECRETS": str(path)})
    assert "chmod 600" in str(info.value) and "sk-file" not in str(info.value)


def test_missing_key_names_the_variable(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    with pytest.raises(UserError, match="OPENAI_API_KEY is not set"):
        resolve_api_key("OPENAI_API_KEY", service="OpenAI Images", environ=env)
    be = OpenAIImagesBackend(environ=env, base_url="http://127.0.0.1:9")
    with pytest.raises(UserError, match="OPENAI_API_KEY"):
        be.generate([scene(64, 64)])
    with pytest.raises(UserError, match="does not exist"):
        resolve_api_key("X", service="x", environ={"BILDWERK_SECRETS": str(tmp_path / "no")})


def test_bad_secrets_file_points_at_line_without_the_value(tmp_path: Path) -> None:
    path = _secrets(tmp_path, "A: 1\nOPENAI_API_KEY: [sk-list-0123456789]\n", 0o600)
    with pytest.raises(ConfigError) as info:
        resolve_api_key("OPENAI_API_KEY", service="x", environ={"BILDWERK_SECRETS": str(path)})
    assert info.value.line == 2 and "sk-list" not in str(info.value)
    path = _secrets(tmp_path, "OPENAI_API_KEY: 'unterminated\n", 0o600)
    with pytest.raises(ConfigError, match="malformed YAML"):
        resolve_api_key("OPENAI_API_KEY", service="x", environ={"BILDWERK_SECRETS": str(path)})


# --------------------------------------------------------------------------- cost, wire


def test_cost_overrides_and_unknown_prices() -> None:
    est = estimate_cost("openai", "gpt-image-1", "1024x1024", "high", None)
    assert est["cost_usd"] == 0.167 and est["cost_estimate"]["source"] == "bildwerk price table"
    over = {"gpt-image-1": 0.5, "as_of": "2030-01-01"}
    est = estimate_cost("openai", "gpt-image-1", "1024x1024", "high", over)
    assert est["cost_usd"] == 0.5 and est["cost_estimate"]["prices_as_of"] == "2030-01-01"
    assert estimate_cost("openai", "gpt-image-1", "1024x1024", "auto", None)["cost_usd"] is None
    with pytest.raises(UserError, match="non-negative"):
        estimate_cost("openai", "gpt-image-1", None, None, {"gpt-image-1": "cheap"})
    with pytest.raises(UserError, match="mapping"):
        estimate_cost("openai", "gpt-image-1", None, None, [1])


def test_pricing_param_reaches_recorded_cost(fake: FakeImageAPI) -> None:
    be = backend(StabilityBackend, fake, Recorder())
    (gen,) = be.generate([scene(64, 64, params={"pricing": {"core": 0.05}})])
    assert gen.params["cost_usd"] == 0.05
    assert gen.params["cost_estimate"]["source"] == "params.pricing"


def test_multipart_encoding_round_trips() -> None:
    from bildwerk.backends.remote import FilePart

    body, ctype = encode_multipart(
        [("prompt", 'grüne Flasche, "quoted"'), ("image[]", FilePart("a.png", b"\x89PNG..."))]
    )
    fields, files = _multipart(ctype, body)
    assert fields == {"prompt": ['grüne Flasche, "quoted"']}
    assert files["image[]"][0].data == b"\x89PNG..." and files["image[]"][0].filename == "a.png"


def test_backends_satisfy_the_protocol() -> None:
    make: list[Callable[[], Any]] = [OpenAIImagesBackend, StabilityBackend]
    for factory in make:
        be = factory()  # zero-argument factories, as the registry needs; no key yet
        assert isinstance(be, GenerationBackend)
        assert be.capabilities.product_placement and be.capabilities.max_batch == 1
