"""What a published creative says about itself: alt text, title, rights metadata, the
generation record and the digital source type, all derived from the catalog."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bildwerk.catalog.models import Asset, AssetRights, Job, Run
from bildwerk.catalog.models import Rendition as RenditionRow
from bildwerk.config.brand import BrandKit
from bildwerk.config.brief import Rights as BriefRights
from bildwerk.config.channels import Channel
from bildwerk.publish import seo
from bildwerk.publish.metadata import AssetMetadata, digital_source_type
from bildwerk.publish.site import image_fields
from bildwerk.publishers import slugify


@dataclass
class Creative:
    """An approved creative ready to stamp: what its files say and where they come from."""

    asset: Asset
    spec: dict[str, Any]
    channel: Channel
    meta: AssetMetadata
    image: seo.PublishedImage  # without URLs yet (renditions filled per target)
    fields: dict[str, Any]
    renditions: list[RenditionRow]
    run_id: str


def describe(
    job: Job,
    asset: Asset,
    scene: Asset,
    channel: Channel,
    renditions: list[RenditionRow],
    brief: BriefRights,
    rights: AssetRights,
    campaign: str,
    run: Run,
    brand: BrandKit,
) -> Creative:
    spec = job.spec
    copy = spec.get("copy") or {}
    slots = dict(spec.get("slots") or {})
    product = slots.pop("product", None)
    alt = seo.alt_text(copy.get("headline", ""), slots, product, spec.get("locale"))
    title = f"{campaign} — {copy.get('headline') or channel.name}"
    has_product = bool((scene.meta or {}).get("product_box"))
    backend = str(spec.get("backend") or scene.meta.get("backend") or "studio")
    source_type = digital_source_type(backend, has_product)
    licence_url = brief.licence_url or brand.rights.licence_url or ""
    model = (scene.meta.get("params") or {}).get("model") or {}
    meta = AssetMetadata(
        title=title,
        description=alt,
        creator=brand.creator or brand.name,
        credit_line=brand.rights.credit_line or brand.name,
        copyright_notice=brand.copyright or "",
        web_statement=licence_url,
        licensor_url=brand.rights.licence_page or "",
        digital_source_type=source_type,
        campaign_id=asset.campaign_id or "",
        asset_id=asset.id,
        licence_expiry=rights.expires_on,
        generation={
            "prompt": spec.get("prompt"),
            "negative_prompt": spec.get("negative_prompt"),
            "seed": spec.get("seed"),
            "backend": backend,
            "model": spec.get("model"),
            "model_hash": model.get("sha256") if isinstance(model, dict) else None,
            "job_key": job.key,
        },
        do_not_train=brand.rights.do_not_train,
    )
    slug = " ".join(
        str(p) for p in (asset.campaign_id, product, spec.get("segment"), spec.get("locale"))
        if p
    )  # fmt: skip
    image = seo.PublishedImage(
        asset_id=asset.id,
        slug=slugify(slug),
        alt=alt,
        title=title,
        width=asset.width // max(1, channel.density),
        height=asset.height // max(1, channel.density),
        sizes=channel.sizes,
        lcp=channel.lcp,
        renditions=[seo.Rendition(r.format, r.width, r.height, "-") for r in renditions],
        creator=meta.creator,
        credit_text=meta.credit_line or None,
        copyright_notice=meta.copyright_notice or None,
        license_url=licence_url or None,
        acquire_license_page=brand.rights.licence_page,
        digital_source_type=source_type,
    )
    fields = {
        **image_fields(image),
        "campaign": asset.campaign_id,
        "campaign_name": campaign,
        "locale": spec.get("locale"),
        "direction": spec.get("direction", "ltr"),
        "channel": channel.name,
    }
    return Creative(asset, spec, channel, meta, image, fields, renditions, run.id)
