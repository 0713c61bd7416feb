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
from bildwerk.publish import alttext, seo
from bildwerk.publish.metadata import AssetMetadata, digital_source_type
from bildwerk.publish.site import image_fields
from bildwerk.publishers import slugify
from bildwerk.records import JobSpec, SceneRecord


@dataclass
class Creative:
    """An approved creative ready to stamp: what its files say and where they come from."""

    asset: Asset
    spec: JobSpec
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
    spec = JobSpec.from_json(job.spec)
    scene_record = SceneRecord.from_json(scene.meta)
    slots = dict(spec.slots)
    product = slots.pop("product", None)
    alt = alttext.localized_alt(spec.copy.headline, spec.copy.subline, slots, product, spec.locale)
    title = f"{campaign} — {spec.copy.headline or channel.name}"
    backend = spec.backend
    source_type = digital_source_type(backend, scene_record.product_box is not None)
    licence_url = brief.licence_url or brand.rights.licence_url or ""
    model = scene_record.params.get("model") or {}
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
            "prompt": spec.prompt,
            "negative_prompt": spec.negative_prompt,
            "seed": spec.seed,
            "backend": backend,
            "model": spec.model,
            "model_hash": model.get("sha256") if isinstance(model, dict) else None,
            "job_key": job.key,
        },
        do_not_train=brand.rights.do_not_train,
    )
    slug = " ".join(
        str(p) for p in (asset.campaign_id, product, spec.segment, spec.locale)
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
        lang=spec.locale or None,
        caption=alttext.caption_text(spec.copy.headline, spec.copy.subline),
        subject=alttext.subject_name(product),
    )
    fields = {
        **image_fields(image),
        "campaign": asset.campaign_id,
        "campaign_name": campaign,
        "locale": spec.locale or None,
        "direction": spec.direction,
        "channel": channel.name,
        "headline": spec.copy.headline,
        "subline": spec.copy.subline,
    }
    return Creative(asset, spec, channel, meta, image, fields, renditions, run.id)
