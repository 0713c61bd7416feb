"""Embed signed C2PA Content Credentials in masters and renditions (read back: c2pa_read).

A master gets ``c2pa.created`` with its digital source type (IPTC vocabulary, e.g.
``trainedAlgorithmicMedia`` for generated images). A rendition names its master as the
``parentOf`` ingredient, which carries the master's own manifest (``ingredient="manifest"``:
a viewer can follow the history from any delivered file back to its creation) or only
its reference (``"hash"``: the master's manifest label, instance id and SHA-256, about
6 kB less per file; whoever holds the master can check it).

A manifest is embedded in the file, or detached (``remote_url``): the file keeps only
an XMP ``dcterms:provenance`` reference (written into the packet beforehand by
:mod:`.xmp`, so the hard binding covers it) and the manifest store goes into a
``.c2pa`` sidecar published next to it, as C2PA's remote manifests allow. The brand is the author
(``stds.schema-org.CreativeWork``); ``do_not_train`` adds ``cawg.training-mining``.

Built against c2pa-python 0.38 (c2pa-rs 0.91): JPEG, WebP, AVIF and PNG are embeddable.
Signed bytes are not reproducible (fresh manifest ids, randomised ECDSA), so content
hashes and cache keys must come from the unsigned rendition. Thumbnails are left out of
manifests: a rendition's byte budget is for pixels.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any, Final

from bildwerk.config.delivery import IngredientMode
from bildwerk.errors import MissingExtraError, UserError
from bildwerk.publish.keys import (
    TRUST_CONFIG_EKUS,
    CallbackSigner,
    SignerConfig,
)

_MIME: Final = {
    "jpeg": "image/jpeg", "jpg": "image/jpeg", "webp": "image/webp",
    "avif": "image/avif", "png": "image/png",
}  # fmt: skip
_IPTC: Final = "http://cv.iptc.org/newscodes/digitalsourcetype/"
DIGITAL_SOURCE_TYPES: Final = (
    "trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "algorithmicMedia",
    "compositeSynthetic", "algorithmicallyEnhanced", "digitalCapture", "computationalCapture",
    "digitalCreation", "composite", "compositeCapture", "humanEdits", "minorHumanEdits",
    "dataDrivenMedia", "screenCapture", "virtualRecording",
)  # fmt: skip
TRAINING_MINING_LABEL: Final = "cawg.training-mining"
_NOT_ALLOWED: Final = ("cawg.ai_training", "cawg.ai_generative_training", "cawg.data_mining")
_AUTHOR_LABEL: Final = "stds.schema-org.CreativeWork"
_MASTER_ID: Final = "bildwerk.master"  # links the c2pa.opened action to the ingredient
_SETTINGS: Final[dict[str, Any]] = {
    "version": 1,
    "builder": {"thumbnail": {"enabled": False}},
    # Accept every C2PA claim-signing EKU, not only c2pa-rs's default emailProtection.
    "trust": {"trust_config": TRUST_CONFIG_EKUS},
    # Reading never goes to the network: no remote manifests, no OCSP.
    "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
}


_REF_SHA: Final = "bildwerk.master_sha256"  # ingredient metadata of a hash-only parent
_REF_MANIFEST: Final = "bildwerk.master_manifest"
SIDECAR_TYPE: Final = "application/c2pa"


@dataclass(frozen=True)
class Signed:
    """A signed file and, for a detached manifest, the manifest store for its sidecar."""

    data: bytes
    sidecar: bytes | None


def sign(
    data: bytes,
    fmt: str,
    *,
    signer: SignerConfig | CallbackSigner,
    title: str,
    digital_source_type: str,
    author: str,
    master: bytes | None,
    master_title: str | None,
    actions: Sequence[str] | None = None,
    do_not_train: bool = False,
    claim_generator: str = "bildwerk/0.1",
    ingredient: IngredientMode = "manifest",
    remote_url: str | None = None,
) -> Signed:
    """``data`` with a signed C2PA manifest embedded, or with ``remote_url`` a detached
    manifest: ``data`` comes back unchanged (its XMP must already name ``remote_url`` as
    ``dcterms:provenance``; AVIF's XMP box as well, see :func:`.metadata.write_metadata`)
    with the manifest store for the sidecar. A relative ``remote_url`` resolves against
    the file's own URL.

    Without ``master`` this is a master: ``c2pa.created`` then any ``actions``. With
    ``master`` it is a rendition of it: ``c2pa.opened`` on the master, then ``actions``
    (default ``c2pa.resized``). Every action carries the digital source type;
    ``ingredient`` decides whether the master's manifest travels along or only its hash."""
    mime = _mime(fmt)
    _check_bytes(data, mime, f"the {fmt} to sign ({title!r})")
    source_type = _source_type_uri(digital_source_type)
    if not author.strip():
        raise UserError("Content Credentials need an author: set the brand's name.")
    if master is not None and _sniff(master) is None:
        raise UserError(f"the master of {title!r} is not a JPEG, WebP, AVIF or PNG image.")
    if actions is None:
        actions = () if master is None else ("c2pa.resized",)
    steps = tuple(actions)
    for step in steps:
        if step in ("c2pa.created", "c2pa.opened") or not step.count("."):
            raise UserError(
                f"C2PA action {step!r} cannot be passed here.",
                hint="use c2pa.resized, c2pa.converted, c2pa.edited, ... (created/opened are set)",
            )
    first: dict[str, Any] = {"action": "c2pa.created", "digitalSourceType": source_type}
    if master is not None:
        first = {
            "action": "c2pa.opened",
            "digitalSourceType": source_type,
            "parameters": {"ingredientIds": [_MASTER_ID]},
        }
    assertions: list[dict[str, Any]] = [
        {
            "label": "c2pa.actions",
            "data": {
                "actions": [first]
                + [{"action": s, "digitalSourceType": source_type} for s in steps]
            },
        },
        {
            "label": _AUTHOR_LABEL,
            "data": {
                "@context": "https://schema.org",
                "@type": "CreativeWork",
                "author": [{"@type": "Organization", "name": author}],
            },
        },
    ]
    if do_not_train:
        entries = {key: {"use": "notAllowed"} for key in _NOT_ALLOWED}
        assertions.append({"label": TRAINING_MINING_LABEL, "data": {"entries": entries}})
    name, _, version = claim_generator.partition("/")
    manifest: dict[str, Any] = {
        "claim_generator_info": [{"name": name, "version": version or "0"}],
        "title": title,
        "assertions": assertions,
    }
    if master is not None and ingredient == "hash":
        manifest["ingredients"] = [master_reference(master, master_title or "master")]
    c2pa = _c2pa()
    out = io.BytesIO()
    failures: list[BaseException] = []
    with (
        _sdk_errors(f"signing {title!r}", failures, signer.tsa_url),
        _native_signer(signer, failures) as native,
        c2pa.Context.from_dict(_SETTINGS) as context,
        c2pa.Builder(manifest, context=context) as builder,
    ):
        if master is not None and ingredient == "manifest":
            parent = {
                "title": master_title or "master",
                "relationship": "parentOf",
                "label": _MASTER_ID,
            }
            builder.add_ingredient(parent, _sniff(master), io.BytesIO(master))
        if remote_url is not None:
            builder.set_no_embed()  # the file names remote_url already (metadata.py)
        store = builder.sign(native, mime, io.BytesIO(data), out)
    if remote_url is None:
        return Signed(out.getvalue(), None)
    signed = out.getvalue() or data
    if not store:
        raise UserError(f"signing {title!r}: the c2pa SDK returned no manifest for the sidecar.")
    return Signed(signed, bytes(store))


def master_reference(master: bytes, title: str) -> dict[str, Any]:
    """The ``parentOf`` ingredient naming a signed master by its manifest label,
    instance id and SHA-256, without carrying its manifest store."""
    c2pa = _c2pa()
    mime = _sniff(master)
    if mime is None:
        raise UserError(f"the master of {title!r} is not a JPEG, WebP, AVIF or PNG image.")
    try:
        with (
            c2pa.Context.from_dict(_SETTINGS) as context,
            c2pa.Reader(mime, io.BytesIO(master), context=context) as reader,
        ):
            store = json.loads(reader.json())
    except c2pa.C2paError as exc:
        raise UserError(
            f"the master of {title!r} has no readable Content Credentials: {_sdk_message(exc)}."
        ) from None
    label = store.get("active_manifest")
    active = store.get("manifests", {}).get(label) or {}
    ref: dict[str, Any] = {
        "title": title,
        "format": mime,
        "relationship": "parentOf",
        "label": _MASTER_ID,
        "metadata": {_REF_SHA: hashlib.sha256(master).hexdigest(), _REF_MANIFEST: label},
    }
    if active.get("instance_id"):
        ref["instance_id"] = active["instance_id"]
    return ref


def supported_formats() -> tuple[str, ...]:
    """The formats of :data:`_MIME` this SDK build can embed into (all four in 0.38)."""
    mimes = set(_c2pa().Builder.get_supported_mime_types())
    return tuple(f for f, m in _MIME.items() if m in mimes and f != "jpg")


@contextmanager
def _native_signer(
    signer: SignerConfig | CallbackSigner, failures: list[BaseException]
) -> Iterator[Any]:
    """The SDK's signer; a callback's exception is kept in ``failures`` (the SDK sees -1)."""
    c2pa = _c2pa()
    if isinstance(signer, SignerConfig):
        info = c2pa.C2paSignerInfo(
            signer.alg.encode(), signer.chain_pem, signer.key_pem, signer.tsa_url
        )
        native = c2pa.Signer.from_info(info)
    else:
        alg = c2pa.C2paSigningAlg[signer.alg.upper()]
        sign = signer.sign

        def callback(payload: bytes) -> bytes:
            try:
                return sign(payload)
            except Exception as exc:
                failures.append(exc)
                raise

        native = c2pa.Signer.from_callback(callback, alg, signer.chain_pem.decode(), signer.tsa_url)
    with native:
        yield native


@contextmanager
def _sdk_errors(doing: str, failures: list[BaseException], tsa_url: str | None) -> Iterator[None]:
    """Turn SDK errors into :class:`UserError`, naming a signing callback's own failure."""
    c2pa = _c2pa()
    try:
        yield
    except c2pa.C2paError as exc:
        cause = failures[0] if failures else None
        if cause is not None:
            raise UserError(
                f"{doing}: the signing callback failed: {type(cause).__name__}: {cause}",
                hint="check the KMS/HSM the callback signs with",
            ) from cause
        message = _sdk_message(exc)
        hint = "check the signing certificate and key with load_signer_config"
        if tsa_url and "http" in message:
            hint = f"check that the time-stamp authority {tsa_url} is reachable"
        raise UserError(f"{doing}: the c2pa SDK refused: {message}.", hint=hint) from exc


def _sdk_message(exc: BaseException) -> str:
    """The SDK's message on one line, without its "Category: " prefix."""
    text = " ".join(str(exc).split()).rstrip(".")
    category = type(exc).__name__.removeprefix("_C2pa")
    return text.removeprefix(f"{category}: ") or type(exc).__name__


def _mime(fmt: str) -> str:
    key = fmt.lower().removeprefix("image/").removeprefix(".")
    if key not in _MIME:
        raise UserError(
            f"Content Credentials cannot be embedded in {fmt!r} here.",
            hint="supported: " + ", ".join(sorted(set(_MIME) - {"jpg"})),
        )
    return _MIME[key]


def _sniff(data: bytes) -> str | None:
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp" and data[8:12] in (b"avif", b"avis"):
        return "image/avif"
    return None


def _check_bytes(data: bytes, mime: str, what: str) -> None:
    found = _sniff(data)
    if found != mime:
        raise UserError(f"{what} is {found or 'not a supported image'}, not {mime}.")


def _source_type_uri(value: str) -> str:
    if value.startswith(("http://", "https://")):
        return value
    if value in DIGITAL_SOURCE_TYPES:
        return _IPTC + value
    raise UserError(
        f"unknown digital source type {value!r}.",
        hint="use an IPTC term such as trainedAlgorithmicMedia, or its full URI",
    )


@cache
def _c2pa() -> ModuleType:
    try:
        return importlib.import_module("c2pa")
    except ImportError as exc:
        raise MissingExtraError("c2pa-python", "publish", "Content Credentials signing") from exc
