"""XMP packets: the IPTC, PLUS and bildwerk properties of a rendition as RDF/XML, with the
namespaces and digital-source-type vocabulary they use."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

if TYPE_CHECKING:
    from bildwerk.publish.metadata import AssetMetadata


IPTC_DST = "http://cv.iptc.org/newscodes/digitalsourcetype/"
TRAINED_ALGORITHMIC_MEDIA = IPTC_DST + "trainedAlgorithmicMedia"
COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA = IPTC_DST + "compositeWithTrainedAlgorithmicMedia"
ALGORITHMIC_MEDIA = IPTC_DST + "algorithmicMedia"
COMPOSITE_SYNTHETIC = IPTC_DST + "compositeSynthetic"
MODEL_FREE_BACKENDS = frozenset({"studio"})
"""Backends that draw without trained weights; every other backend counts as generative AI."""

PLUS_VOCAB = "http://ns.useplus.org/ldf/vocab/"
DO_NOT_TRAIN = PLUS_VOCAB + "DMI-PROHIBITED-AIMLTRAINING"
"""PLUS data-mining value for ``do_not_train``: prohibited for AI/ML training. Plain
``DMI-PROHIBITED`` would also forbid search-engine indexing, which published marketing
images want."""

BILDWERK_NS = "https://bildwerk.dev/ns/1.0/"
_NAMESPACES = {
    "dc": "http://purl.org/dc/elements/1.1/",
    "dcterms": "http://purl.org/dc/terms/",
    "xmpRights": "http://ns.adobe.com/xap/1.0/rights/",
    "photoshop": "http://ns.adobe.com/photoshop/1.0/",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
    "plus": "http://ns.useplus.org/ldf/xmp/1.0/",
    "bildwerk": BILDWERK_NS,
}
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
# Characters XML 1.0 cannot carry at all (controls, lone surrogates, U+FFFE/FFFF).
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
PROPERTY_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
DST_URI = re.compile("^" + re.escape(IPTC_DST) + "[A-Za-z]+$")


def build_xmp(meta: AssetMetadata, *, wrapper: bool = True) -> bytes:
    """A complete XMP packet (UTF-8) for ``meta``; every value is XML-escaped, and
    characters XML cannot carry become U+FFFD.

    Lean on purpose, because every published file carries it: simple values are
    attributes of the one ``rdf:Description`` (RDF/XML's shorthand, read by every XMP
    parser), only the namespaces in use are declared, and there is no whitespace or
    padding (files are rewritten whole, never edited in place). ``wrapper=False`` leaves
    out the ``<?xpacket?>`` processing instructions (~90 bytes), which only help tools
    that scan raw bytes for XMP; every container here says where its packet is. The
    generation record (``meta.generation``) is written only when the profile kept it."""
    attrs: list[str] = []
    props: list[str] = []

    def simple(name: str, value: str) -> None:
        if value:
            attrs.append(f'{name}="{_text(value, quote=True)}"')

    def alt(name: str, value: str) -> None:
        if value:
            li = f'<rdf:li xml:lang="x-default">{_text(value)}</rdf:li>'
            props.append(f"<{name}><rdf:Alt>{li}</rdf:Alt></{name}>")

    alt("dc:title", meta.title)
    # the alt text once: dc:description is what viewers show (Iptc4xmpCore's
    # AltTextAccessibility would repeat the same words in every file)
    alt("dc:description", meta.description)
    if meta.creator:
        props.append(
            f"<dc:creator><rdf:Seq><rdf:li>{_text(meta.creator)}</rdf:li></rdf:Seq></dc:creator>"
        )
    alt("dc:rights", meta.copyright_notice)
    simple("photoshop:Credit", meta.credit_line)
    simple("xmpRights:WebStatement", meta.web_statement)
    if meta.copyright_notice:
        simple("xmpRights:Marked", "True")
    simple("Iptc4xmpExt:DigitalSourceType", meta.digital_source_type)
    simple("dcterms:provenance", meta.provenance)
    licensor = meta.licensor_name or meta.creator
    if licensor or meta.licensor_url:
        parts = "".join(
            f"<plus:{tag}>{_text(value)}</plus:{tag}>"
            for tag, value in (("LicensorName", licensor), ("LicensorURL", meta.licensor_url))
            if value
        )
        li = f'<rdf:li rdf:parseType="Resource">{parts}</rdf:li>'
        props.append(f"<plus:Licensor><rdf:Seq>{li}</rdf:Seq></plus:Licensor>")
    if meta.licence_expiry is not None:
        simple("plus:LicenseEndDate", meta.licence_expiry.isoformat())
    if meta.do_not_train:
        simple("plus:DataMining", DO_NOT_TRAIN)
    simple("bildwerk:campaignId", meta.campaign_id)
    simple("bildwerk:assetId", meta.asset_id)
    for key, value in meta.generation.items():
        if value is not None:
            simple(f"bildwerk:{camel_case(key)}", _scalar(value))
    used = {chunk.lstrip("<").split(":", 1)[0] for chunk in attrs + props}
    xmlns = "".join(f' xmlns:{p}="{uri}"' for p, uri in _NAMESPACES.items() if p in used)
    head = " ".join([f'rdf:about=""{xmlns}', *attrs])
    return _packet(head, "".join(props), wrapper=wrapper)


def provenance_packet(url: str) -> bytes:
    """An XMP packet holding ``dcterms:provenance`` alone (a remote manifest's URL)."""
    return _packet(f'rdf:about="" xmlns:dcterms="{_NAMESPACES["dcterms"]}" '
                   f'dcterms:provenance="{_text(url, quote=True)}"', "", wrapper=False)  # fmt: skip


def _packet(head: str, body: str, *, wrapper: bool) -> bytes:
    description = (
        f"<rdf:Description {head}>{body}</rdf:Description>" if body
        else f"<rdf:Description {head}/>"
    )  # fmt: skip
    packet = (
        f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="{_RDF}">'
        f"{description}</rdf:RDF></x:xmpmeta>"
    )
    if wrapper:
        packet = (
            f'<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>{packet}<?xpacket end="w"?>'
        )
    return packet.encode("utf-8")


def _text(value: str, *, quote: bool = False) -> str:
    text = escape(NOT_XML.sub("\ufffd", value))
    # attribute values: quotes escaped, and line breaks kept as characters (an attribute
    # value's raw newlines and tabs would be normalised to spaces by XML parsers)
    if quote:
        text = text.replace('"', "&quot;").replace("\n", "&#10;").replace("\r", "&#13;")
        text = text.replace("\t", "&#9;")
    return text


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def camel_case(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)
