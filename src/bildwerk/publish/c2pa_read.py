"""Read C2PA Content Credentials back: validate a file's manifest (embedded, or a sidecar's
store) and report what it claims, for ``bildwerk verify`` and the tests.

The writing half is :mod:`.c2pa_sign`; both share its SDK settings, so reading never goes
to the network (no remote manifest fetch, no OCSP): a remote manifest is named by
:class:`RemoteManifestError` and fetched, under the network guard, by the caller.
"""

from __future__ import annotations

import copy
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bildwerk.errors import UserError
from bildwerk.publish.c2pa_sign import (
    _AUTHOR_LABEL,
    _REF_MANIFEST,
    _REF_SHA,
    _SETTINGS,
    _c2pa,
    _mime,
    _sdk_message,
)
from bildwerk.publish.keys import load_trust_anchors, trust_section


@dataclass(frozen=True)
class Ingredient:
    """One ingredient of the active manifest, as the reader reports it."""

    title: str
    relationship: str  # parentOf, componentOf, inputTo
    format: str
    manifest: str | None  # label of the ingredient's own manifest, if it had one
    carried: bool = True  # its manifest travels in this store (False: only referenced)
    sha256: str | None = None  # the ingredient file's SHA-256, for a reference


class RemoteManifestError(UserError):
    """The file's manifest is remote (XMP ``dcterms:provenance``) and was not given."""

    def __init__(self, message: str, url: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.url = url


@dataclass(frozen=True)
class VerifyResult:
    """What the c2pa reader says about a file's active manifest."""

    state: str  # "Trusted" (chains to a trust anchor), "Valid" (intact) or "Invalid"
    title: str | None
    claim_generator: str | None
    actions: tuple[str, ...]
    digital_source_type: str | None
    ingredients: tuple[Ingredient, ...]
    issuer: str | None  # organisation of the CA that issued the signing certificate
    signer: str | None  # common name of the signing certificate
    signed_at: str | None  # only with a time stamp (tsa_url); otherwise None
    authors: tuple[str, ...]
    do_not_train: bool
    failures: tuple[str, ...]  # "code: explanation"; untrusted shows here without anchors
    assertions: tuple[str, ...]

    @property
    def trusted(self) -> bool:
        return self.state == "Trusted"


def verify(
    data: bytes,
    fmt: str,
    *,
    trust_anchors: Path | None,
    source: str | None = None,
    manifest: bytes | None = None,
) -> VerifyResult:
    """Validate the embedded manifest, or ``manifest`` (a sidecar's manifest store)
    against the file; Trusted needs ``trust_anchors``.

    ``trust_anchors`` is a PEM bundle of root certificates (``keys/dev-root.pem``) or a
    c2pa settings JSON (``keys/dev-trust.json``). ``source`` names the file in errors.
    A file without a manifest, or one the SDK cannot parse, raises :class:`UserError`;
    one whose manifest is remote and not given raises :class:`RemoteManifestError`.
    """
    where = source or f"the {fmt} data"
    mime = _mime(fmt)
    settings = copy.deepcopy(_SETTINGS)
    if trust_anchors is not None:
        settings["trust"].update(_trust_settings(trust_anchors))
    c2pa = _c2pa()
    try:
        with (
            c2pa.Context.from_dict(settings) as context,
            c2pa.Reader(mime, io.BytesIO(data), manifest, context=context) as reader,
        ):
            state = reader.get_validation_state()
            results = reader.get_validation_results() or {}
            active = reader.get_active_manifest() or {}
    except c2pa.C2paError.ManifestNotFound:
        raise UserError(
            f"{where}: no C2PA manifest (Content Credentials) found.",
            hint="sign it first, or check that nothing stripped the metadata",
        ) from None
    except c2pa.C2paError as exc:
        message = _sdk_message(exc)
        url = _remote_url(message) if manifest is None else None
        if url is not None:
            raise RemoteManifestError(
                f"{where}: its Content Credentials are remote, at {url}.",
                url,
                hint="publish the .c2pa sidecar next to the file, or pass it",
            ) from None
        raise UserError(
            f"{where}: cannot read Content Credentials: {message}.",
            hint=f"the file is corrupt or not a {fmt} image",
        ) from None
    return _result(str(state or "Invalid"), active, results)


def _result(state: str, manifest: dict[str, Any], results: dict[str, Any]) -> VerifyResult:
    actions: list[dict[str, Any]] = []
    authors: list[str] = []
    do_not_train = False
    for assertion in manifest.get("assertions", []):
        label, body = assertion.get("label", ""), assertion.get("data") or {}
        if label.startswith("c2pa.actions"):
            actions += body.get("actions", [])
        elif label == _AUTHOR_LABEL:
            authors += [a.get("name", "") for a in body.get("author", []) if isinstance(a, dict)]
        elif label.endswith("training-mining"):
            uses = [e.get("use") for e in body.get("entries", {}).values()]
            do_not_train = "notAllowed" in uses
    info = manifest.get("claim_generator_info") or [{}]
    generator = manifest.get("claim_generator") or "/".join(
        str(info[0][k]) for k in ("name", "version") if k in info[0]
    )
    signature = manifest.get("signature_info") or {}
    failures = results.get("activeManifest", {}).get("failure", [])
    return VerifyResult(
        state=state,
        title=manifest.get("title"),
        claim_generator=generator or None,
        actions=tuple(str(a.get("action")) for a in actions),
        digital_source_type=next(
            (a["digitalSourceType"] for a in actions if a.get("digitalSourceType")), None
        ),
        ingredients=tuple(_ingredient(i) for i in manifest.get("ingredients", [])),
        issuer=signature.get("issuer"),
        signer=signature.get("common_name"),
        signed_at=signature.get("time"),
        authors=tuple(authors),
        do_not_train=do_not_train,
        failures=tuple(f"{f.get('code')}: {f.get('explanation', '')}" for f in failures),
        assertions=tuple(str(a.get("label")) for a in manifest.get("assertions", [])),
    )


def _ingredient(i: dict[str, Any]) -> Ingredient:
    meta = i.get("metadata") or {}
    carried = i.get("active_manifest")
    return Ingredient(
        title=str(i.get("title", "")),
        relationship=str(i.get("relationship", "")),
        format=str(i.get("format", "")),
        manifest=carried or meta.get(_REF_MANIFEST),
        carried=carried is not None,
        sha256=meta.get(_REF_SHA),
    )


def _remote_url(message: str) -> str | None:
    """The URL in the SDK's "must fetch remote manifests from url …" refusal."""
    found = re.search(r"remote manifests? from url (\S+)", message)
    return found.group(1) if found else None


def _trust_settings(path: Path) -> dict[str, Any]:
    """The ``trust`` section from a c2pa settings JSON, or one anchoring a PEM bundle."""
    if path.suffix.lower() == ".json":
        try:
            trust = json.loads(path.read_text(encoding="utf-8"))["trust"]
        except OSError as exc:
            raise UserError(f"{path}: cannot read the trust settings: {exc.strerror}.") from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise UserError(f"{path}: not a c2pa settings JSON with a 'trust' section.") from exc
        if not isinstance(trust, dict):
            raise UserError(f"{path}: 'trust' must be an object.")
        return trust
    return trust_section(load_trust_anchors(path), path.name)
