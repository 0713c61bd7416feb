"""Stamp files for publication: rights metadata, then signed Content Credentials.

The invisible watermark is already in the pixels (the render stage embeds it before
encoding, so it costs no second lossy encode); here only the container changes: XMP/IPTC
first, then the C2PA manifest, which binds the final bytes. The master is signed once as
``c2pa.created`` and goes into every rendition's manifest as its ``parentOf`` ingredient.

What a published file carries follows its channel's delivery profile
(:mod:`bildwerk.config.delivery`): rights and the digital source type always, the
generation record only where the profile keeps it, Content Credentials embedded, in a
``.c2pa`` sidecar, or not at all, with the master's manifest or only its hash.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import cast

from bildwerk.config.delivery import DeliveryProfile, MetadataLevel
from bildwerk.config.publishing import SigningSettings
from bildwerk.errors import UserError
from bildwerk.publish.c2pa_sign import Signed, sign
from bildwerk.publish.keys import CallbackSigner, SignerConfig, load_signer_config
from bildwerk.publish.metadata import AssetMetadata, write_metadata

# Bump when what a stamp contains changes, so cached stamps are made again.
STAMP_VERSION = 3
SIDECAR_SUFFIX = ".c2pa"
FULL = DeliveryProfile(
    generation_record=True, metadata="full", icc=True, c2pa="embedded", ingredient="manifest"
)
"""Everything in every file: what publishing did before delivery profiles (masters are
always stamped this way; they are the record, never published)."""
Signer = SignerConfig | CallbackSigner


@dataclass(frozen=True)
class SigningIdentity:
    """The signer in use and whether it is the NOT-FOR-PRODUCTION dev chain."""

    signer: Signer
    dev: bool
    source: str  # where it came from, for messages

    @property
    def fingerprint(self) -> str:
        """Changes with the certificate chain, algorithm and time-stamp authority."""
        blob = self.signer.chain_pem + f"|{self.signer.alg}|{self.signer.tsa_url}".encode()
        return hashlib.sha256(blob).hexdigest()


def load_identity(root: Path, signing: SigningSettings | None) -> SigningIdentity:
    """The workspace's signer: ``signing:`` in bildwerk.yaml, else the dev chain from
    ``bildwerk keys dev-init``. Certificates are checked here, before anything is written."""
    if signing is not None:
        if signing.tsa_url:
            # the C2PA SDK connects itself: refuse an inside address up front
            from bildwerk.netguard import check_url

            check_url(signing.tsa_url, "bildwerk.yaml: signing.tsa_url")
        cert = _inside(root, signing.cert)
        if signing.callback:
            chain = _read(cert, "certificate chain")
            sign = _import_callback(signing.callback)
            signer: Signer = CallbackSigner(
                chain, sign, alg=signing.alg or "es256", tsa_url=signing.tsa_url
            )
            return SigningIdentity(signer, False, f"callback {signing.callback}")
        if signing.key is None:
            raise UserError(
                "bildwerk.yaml: signing needs `key` (a PEM private key) or `callback`.",
                hint="run `bildwerk keys use --cert chain.pem --key key.pem`",
            )
        key = _inside(root, signing.key)
        return SigningIdentity(
            load_signer_config(cert, key, tsa_url=signing.tsa_url), False, str(cert)
        )
    dev_chain, dev_key = root / "keys" / "dev-chain.pem", root / "keys" / "dev-key.pem"
    if dev_chain.is_file() and dev_key.is_file():
        return SigningIdentity(load_signer_config(dev_chain, dev_key), True, str(dev_chain))
    raise UserError(
        "no signing credentials for Content Credentials.",
        hint="run `bildwerk keys use --cert chain.pem --key key.pem` (production) "
        "or `bildwerk keys dev-init` (local testing only)",
    )


def stamp_key(*parts: str | bytes) -> str:
    """Cache key of a stamp: everything that decides its bytes except the signature."""
    h = hashlib.sha256(f"stamp-v{STAMP_VERSION}".encode())
    for part in parts:
        h.update(b"\0" + (part.encode() if isinstance(part, str) else part))
    return h.hexdigest()


def profile_fields(profile: DeliveryProfile) -> str:
    """The stamping half of a profile, for stamp keys (the rendering half is already in
    the rendition's bytes)."""
    fields = profile.model_dump(
        mode="json",
        include={"generation_record", "metadata", "minimal_below", "c2pa", "ingredient"},
    )
    return json.dumps(fields, sort_keys=True)


def for_profile(
    meta: AssetMetadata, profile: DeliveryProfile, level: MetadataLevel, sidecar_url: str = ""
) -> AssetMetadata:
    """What a file says under ``profile`` at metadata ``level`` (the file's, from
    :meth:`~bildwerk.config.delivery.DeliveryProfile.metadata_for`): the fields of that
    level, the generation record only where the profile keeps it, and the sidecar's URL
    only when the manifest is remote."""
    if profile.c2pa == "remote" and not sidecar_url:
        raise ValueError("a remote manifest needs the URL of its sidecar")
    meta = replace(
        meta,
        generation=dict(meta.generation) if profile.generation_record else {},
        provenance=sidecar_url if profile.c2pa == "remote" else "",
    )
    if level == "full":
        return meta
    # rights: no description of the picture (the page's alt text and caption say it)
    meta = replace(meta, title="", description="", licensor_name="", campaign_id="")
    if level == "rights":
        return meta
    return replace(
        meta,
        creator="",
        credit_line="",
        copyright_notice="" if meta.web_statement else meta.copyright_notice,
        licensor_url="",
        asset_id="",
        licence_expiry=None,
        do_not_train=False,
    )


def stamp(
    data: bytes,
    fmt: str,
    meta: AssetMetadata,
    *,
    identity: SigningIdentity,
    author: str,
    master: bytes | None = None,
    master_title: str | None = None,
    profile: DeliveryProfile = FULL,
    sidecar_url: str = "",
    width: int = 0,
) -> Signed:
    """``data`` with metadata and, unless the profile turns it off, a signed manifest
    (embedded, or for ``c2pa: remote`` returned as the sidecar to publish at
    ``sidecar_url``). Without ``master`` it is the master (``c2pa.created``); with it, a
    rendition naming the signed master as parent, resized and converted from it.

    The invisible mark is not declared as ``c2pa.watermarked``: C2PA requires a
    soft-binding assertion with a registered algorithm for that, and ours is not
    registered; the XMP generation record carries its payload instead, where kept.
    The credentials keep the title and the do-not-train assertion whatever the file's
    metadata level leaves out of its XMP (``width``: the file's, for
    :meth:`~bildwerk.config.delivery.DeliveryProfile.metadata_for`; 0 for masters and
    files of unknown width takes the profile's own level)."""
    level = profile.metadata_for(width)
    said = for_profile(meta, profile, level, sidecar_url)
    written = write_metadata(data, fmt, said, lean=level != "full")
    if profile.c2pa == "off":
        return Signed(written, None)
    return sign(
        written,
        fmt,
        signer=identity.signer,
        title=meta.title,
        digital_source_type=meta.digital_source_type,
        author=author,
        master=master,
        master_title=master_title,
        actions=None if master is None else ("c2pa.resized", "c2pa.converted"),
        do_not_train=meta.do_not_train,
        ingredient=profile.ingredient,
        remote_url=said.provenance or None,
    )


def _inside(root: Path, path: Path) -> Path:
    return path if path.is_absolute() else root / path


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UserError(
            f"{path}: cannot read the {what} ({exc.strerror}).",
            hint="check `signing:` in bildwerk.yaml or run `bildwerk keys use` again",
        ) from None


def _import_callback(spec: str) -> Callable[[bytes], bytes]:
    module_name, _, attr = spec.partition(":")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise UserError(
            f"bildwerk.yaml: signing.callback {spec!r} cannot be imported ({exc}).",
            hint="name an importable function as module:function",
        ) from None
    if not callable(fn):
        raise UserError(f"bildwerk.yaml: signing.callback {spec!r} is not callable.")
    return cast(Callable[[bytes], bytes], fn)
