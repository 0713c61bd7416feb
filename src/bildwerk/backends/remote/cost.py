"""Cost per image: an *estimate* from list prices, overridable per brief."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bildwerk.errors import UserError

# --------------------------------------------------------------------------- cost

PRICES_AS_OF = "2025-06-01"
# USD per output image from the services' public list prices on PRICES_AS_OF. Keys are
# "model/size/quality", "model/size" or "model"; the most specific match wins. An
# estimate only: OpenAI also bills input tokens of edits, and prices change.
PRICES: Mapping[str, Mapping[str, float]] = {
    "openai": {
        "gpt-image-1/1024x1024/low": 0.011,
        "gpt-image-1/1024x1536/low": 0.016,
        "gpt-image-1/1536x1024/low": 0.016,
        "gpt-image-1/1024x1024/medium": 0.042,
        "gpt-image-1/1024x1536/medium": 0.063,
        "gpt-image-1/1536x1024/medium": 0.063,
        "gpt-image-1/1024x1024/high": 0.167,
        "gpt-image-1/1024x1536/high": 0.25,
        "gpt-image-1/1536x1024/high": 0.25,
        "dall-e-3/1024x1024/standard": 0.04,
        "dall-e-3/1024x1792/standard": 0.08,
        "dall-e-3/1792x1024/standard": 0.08,
        "dall-e-3/1024x1024/hd": 0.08,
        "dall-e-3/1024x1792/hd": 0.12,
        "dall-e-3/1792x1024/hd": 0.12,
        "dall-e-2/256x256": 0.016,
        "dall-e-2/512x512": 0.018,
        "dall-e-2/1024x1024": 0.02,
    },
    "stability": {  # credits at $0.01
        "core": 0.03,
        "ultra": 0.08,
        "sd3.5-large": 0.065,
        "sd3.5-large-turbo": 0.04,
        "sd3.5-medium": 0.035,
        "inpaint": 0.03,
        "outpaint": 0.04,
    },
}


def estimate_cost(
    service: str, model: str, size: str | None, quality: str | None, overrides: Any = None
) -> dict[str, Any]:
    """``{"cost_usd": float | None, "cost_estimate": {...}}`` for one image.

    ``overrides`` is ``request.params["pricing"]``: the same flat key → USD mapping as
    :data:`PRICES` (plus an optional ``as_of`` date); any matching override, even a less
    specific one such as just the model, wins over the table."""
    table = dict(PRICES.get(service, {}))
    as_of, source = PRICES_AS_OF, "bildwerk price table"
    custom: dict[str, float] = {}
    if overrides is not None:
        if not isinstance(overrides, Mapping):
            raise UserError(
                "params.pricing must be a mapping",
                hint="write it as 'model/size/quality: USD per image', e.g. "
                "'gpt-image-1/1024x1024/medium: 0.042'",
            )
        for key, value in overrides.items():
            if key == "as_of":
                as_of = str(value)
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise UserError(
                    f"params.pricing.{key}: the price must be a non-negative number (USD)"
                )
            custom[str(key)] = float(value)
    parts = [p for p in (model, size, quality) if p]
    candidates = ["/".join(parts[:n]) for n in range(len(parts), 0, -1)]
    for origin, prices in (("params.pricing", custom), (source, table)):
        for key in candidates:
            if key in prices:
                return {
                    "cost_usd": round(prices[key], 6),
                    "cost_estimate": {
                        "basis": "estimate from list prices, per output image",
                        "price_key": key,
                        "source": origin,
                        "prices_as_of": as_of if origin == "params.pricing" else PRICES_AS_OF,
                    },
                }
    return {
        "cost_usd": None,
        "cost_estimate": {
            "basis": "no price known",
            "price_key": candidates[0] if candidates else model,
            "source": source,
            "prices_as_of": PRICES_AS_OF,
        },
    }
