"""Signed audit checkpoints: the audit chain's head (sequence and hash) at a moment,
signed with the workspace's signing key (the one Content Credentials use), to keep
outside the system. Later, ``bildwerk audit verify --checkpoint FILE`` checks the
signature and that the chain still holds that entry with that hash, so a rewrite of the
whole catalog is caught even by someone who could recompute every link."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from bildwerk.atomicio import atomic_write_bytes
from bildwerk.catalog.audit import canonical
from bildwerk.errors import UserError
from bildwerk.publish.keys import CallbackSigner, SignerConfig

KIND = "bildwerk-audit-checkpoint"
_HASHES: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512,
}  # fmt: skip


def sign_checkpoint(signer: SignerConfig | CallbackSigner, seq: int, head: str) -> dict[str, Any]:
    """A checkpoint document for the chain's head ``seq``/``head``, signed by ``signer``."""
    body = {"kind": KIND, "v": 1, "seq": seq, "hash": head,
            "at": datetime.now(UTC).isoformat(timespec="seconds")}  # fmt: skip
    data = canonical(body).encode()
    if isinstance(signer, CallbackSigner):
        signature = signer.sign(data)
    else:
        key = serialization.load_pem_private_key(signer.key_pem, password=None)
        signature = _sign(key, signer.alg, data)
    return {"checkpoint": body, "alg": signer.alg,
            "signature": base64.b64encode(signature).decode(),
            "chain": signer.chain_pem.decode()}  # fmt: skip


def write_checkpoint(path: Path, document: dict[str, Any]) -> None:
    atomic_write_bytes(path, (json.dumps(document, indent=2) + "\n").encode())


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint in ``path`` once its signature holds; :class:`UserError` naming the
    file for anything unreadable, altered or not signed by the chain it carries."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        body, alg = doc["checkpoint"], str(doc["alg"])
        signature = base64.b64decode(doc["signature"], validate=True)
        leaf = x509.load_pem_x509_certificates(doc["chain"].encode())[0]
    except FileNotFoundError:
        raise UserError(f"{path}: no such checkpoint file") from None
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise UserError(f"{path}: not an audit checkpoint ({exc})") from None
    if not isinstance(body, dict) or body.get("kind") != KIND:
        raise UserError(f"{path}: not an audit checkpoint")
    try:
        _verify(leaf.public_key(), alg, signature, canonical(body).encode())
    except (InvalidSignature, ValueError):
        raise UserError(
            f"{path}: the signature does not match the checkpoint: it was altered, or "
            "signed by another key"
        ) from None
    return {**body, "signer": leaf.subject.rfc4514_string()}


def _sign(key: Any, alg: str, data: bytes) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    digest = _HASHES[alg[-3:]]()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(digest))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, _pss(digest), digest)
    raise UserError(f"cannot sign a checkpoint with a {type(key).__name__}")


def _verify(key: Any, alg: str, signature: bytes, data: bytes) -> None:
    if isinstance(key, ed25519.Ed25519PublicKey):
        key.verify(signature, data)
        return
    digest = _HASHES.get(alg[-3:])
    if digest is None:
        raise ValueError(f"unknown algorithm {alg!r}")
    if isinstance(key, ec.EllipticCurvePublicKey):
        if len(signature) in (64, 96, 132) and signature[0] != 0x30:  # raw r||s (callbacks)
            half = len(signature) // 2
            from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

            signature = encode_dss_signature(int.from_bytes(signature[:half], "big"),
                                             int.from_bytes(signature[half:], "big"))  # fmt: skip
        key.verify(signature, data, ec.ECDSA(digest()))
    elif isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, data, _pss(digest()), digest())
    else:
        raise ValueError(f"cannot verify with a {type(key).__name__}")


def _pss(digest: hashes.HashAlgorithm) -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
