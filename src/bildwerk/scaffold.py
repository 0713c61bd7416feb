"""``bildwerk init``: a ready-to-run workspace with a brand kit, sample products made by
this project, and an example campaign covering several channels, locales and segments."""

from __future__ import annotations

from pathlib import Path

from bildwerk.config.settings import FILENAME
from bildwerk.errors import WorkspaceError
from bildwerk.publishers import slugify
from bildwerk.samples import write_sample_logo, write_sample_products

SETTINGS_YAML = """\
# bildwerk workspace settings
name: {name}
brand: brand/brand.yaml
catalog:
  url: sqlite:///.bildwerk/catalog.db   # any SQLAlchemy URL, e.g. postgresql+psycopg://host/db
blobs: .bildwerk/blobs
runs: runs
# workers: 2            # default: all cores
limits:
  max_megapixels: 64    # larger input images are refused (decompression-bomb guard)
# Where `bildwerk publish RUN --to NAME` puts approved creatives.
targets:
  site:                 # a folder laid out as a CDN origin; serve it with any static host
    type: folder
    path: public
    base_url: http://localhost:8000   # its public URL (try: python -m http.server -d public)
  # assets:             # an S3-compatible bucket; credentials from the AWS environment
  #   type: s3
  #   url: s3://my-bucket/campaigns
  #   public_base_url: https://cdn.example.com/campaigns
  # cms:                # a CMS webhook, told about each publish (files live on `origin`)
  #   type: webhook
  #   url: https://cms.example.com/hooks/bildwerk
  #   secret_env: BILDWERK_CMS_SECRET
  #   origin: site
"""

BRAND_YAML = """\
name: {title}
palette:
  primary: "#1f3a5f"
  secondary: "#f4e9dc"
  accent: "#e4572e"
  text: "#14213d"
  background: "#fbf7f2"
fonts: {{}}            # headline/body font files; Noto and DejaVu cover other scripts
logo:
  file: logo.png
  height: 0.05
  min_height: 20
safe_area:
  margin: 0.06
forbidden_terms: [guaranteed, miracle, "#1", "number one"]
creator: {title} Studio
copyright: © 2026 {title}
rights:
  licence_url: https://{slug}.example.com/image-licence
  licence_page: https://{slug}.example.com/licensing
  credit_line: {title}
  do_not_train: true    # published files say: no AI/ML training
"""

CAMPAIGN_YAML = """\
campaign: summer-sale
name: Summer Sale 2026
objective: conversion
backend: studio
segments:
  - id: city-commuters
    description: Urban professionals, 25-40
    slots:
      mood: [crisp morning]
  - id: weekend-hosts
    description: Home entertainers, 30-55
    copy:
      en-US:
        subline: Everything for a long summer evening.
locales:
  en-US:
    headline: Summer, bottled.
    subline: Up to 30% off our bestsellers this week.
    cta: Shop the sale
  ar-AE:
    headline: الصيف في زجاجة
    subline: خصم يصل إلى ٣٠٪ على الأكثر مبيعاً هذا الأسبوع
    cta: تسوّق الآن
  ja-JP:
    headline: 夏を、ボトルに。
    subline: 人気商品が今週だけ最大30%オフ
    cta: セールを見る
channels:
  - instagram_feed
  - instagram_story
  - web_hero
  - display_mrec
prompt:
  template: "studio packshot of the {{product}} on a {{surface}}, {{mood}} light, soft shadow"
  negative: "text, watermark, people, clutter, blurry"
  slots:
    product: [{products}]
    surface: [pastel podium, marble plinth, seamless paper sweep]
    mood: [crisp morning, warm sunset]
product_slot: product
products:
{product_lines}
seeds:
  base: 1200
  count: 1
rights:
  expires: 2029-12-31   # licence end: `bildwerk publish --sync` then takes these down
budget:
  max_variants: 48
  strategy: fractional
  seed: 7
"""


def init_workspace(path: Path, *, name: str | None = None, force: bool = False) -> Path:
    """Create a workspace at ``path``; refuses to overwrite one unless ``force``."""
    root = path.expanduser().resolve()
    if (root / FILENAME).exists() and not force:
        raise WorkspaceError(
            f"{root} already holds a workspace ({FILENAME})",
            hint="pick another folder or pass --force to overwrite the samples",
        )
    if root.exists() and not root.is_dir():
        raise WorkspaceError(f"{root} exists and is not a folder", hint="pick another path")
    name = name or root.name
    title = name.replace("-", " ").replace("_", " ").title()
    for sub in ("brand", "campaigns", "assets/products", "runs"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    products = write_sample_products(root / "assets" / "products")
    write_sample_logo(root / "brand" / "logo.png", title, "#1f3a5f", "#e4572e")
    (root / FILENAME).write_text(SETTINGS_YAML.format(name=name), encoding="utf-8")
    (root / "brand" / "brand.yaml").write_text(
        BRAND_YAML.format(title=title, slug=slugify(name)), encoding="utf-8"
    )
    names = sorted(products)
    lines = "\n".join(f"  {n}: ../assets/products/{products[n].name}" for n in names)
    (root / "campaigns" / "summer-sale.yaml").write_text(
        CAMPAIGN_YAML.format(products=", ".join(names), product_lines=lines), encoding="utf-8"
    )
    (root / ".gitignore").write_text(".bildwerk/\nruns/\npublic/\n", encoding="utf-8")
    return root
