"""Signing credentials for C2PA Content Credentials: a dev CA, and checks before signing.

The c2pa SDK refuses a bad certificate with one opaque line ("the certificate is invalid")
at the end of a render, so every credential is checked here first, and each problem is
named with the file and the fix. What is checked is what c2pa-rs 0.91 enforces on a
signing certificate: X.509 v3, inside its validity period, not a CA, not self-signed, an
authority key identifier, the digitalSignature key usage, and an extended key usage from
the C2PA list (never anyExtendedKeyUsage; timeStamping and OCSPSigning only alone).

:func:`dev_init` makes a throwaway root -> intermediate -> leaf chain so that signing and
verification can be tried end to end. It is loudly marked NOT FOR PRODUCTION everywhere,
because content signed with it proves nothing to anyone else.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

from bildwerk.atomicio import atomic_write_bytes
from bildwerk.errors import MissingExtraError, UserError

try:
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier
except ImportError as exc:  # pragma: no cover - cryptography comes with c2pa-python
    raise MissingExtraError("c2pa-python", "publish", "Content Credentials signing") from exc

NOT_FOR_PRODUCTION: Final = "NOT FOR PRODUCTION"

SigningAlg = Literal["es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519"]

# The claim-signing EKUs of the C2PA trust model. c2pa-rs 0.91 accepts emailProtection by
# default and the others only when its trust_config lists them (see TRUST_CONFIG_EKUS),
# which is why dev_init puts emailProtection next to c2pa-kp-claimSigning.
EKU_C2PA_CLAIM_SIGNING: Final = ObjectIdentifier("1.3.6.1.4.1.62558.2.1")
EKU_DOCUMENT_SIGNING: Final = ObjectIdentifier("1.3.6.1.5.5.7.3.36")
EKU_MS_C2PA_SIGNING: Final = ObjectIdentifier("1.3.6.1.4.1.311.76.59.1.9")
ACCEPTED_EKUS: Final[dict[ObjectIdentifier, str]] = {
    EKU_C2PA_CLAIM_SIGNING: "c2pa-kp-claimSigning",
    EKU_DOCUMENT_SIGNING: "documentSigning",
    EKU_MS_C2PA_SIGNING: "Microsoft C2PA signing",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
}
# The SDK's trust.trust_config format: one OID per line.
TRUST_CONFIG_EKUS: Final = "".join(f"{oid.dotted_string}\n" for oid in ACCEPTED_EKUS)
_SOLE_EKUS: Final = (ExtendedKeyUsageOID.TIME_STAMPING, ExtendedKeyUsageOID.OCSP_SIGNING)
_WEAK_HASHES: Final = (hashes.SHA1, hashes.MD5)
_EC_ALGS: Final[dict[str, SigningAlg]] = {
    "secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"
}  # fmt: skip
_LEAF_DAYS, _INTERMEDIATE_DAYS, _ROOT_DAYS = 365, 2 * 365, 5 * 365
_RENEW_SOON = dt.timedelta(days=30)
_FIX_HINT = "use a signing certificate issued for C2PA (see keys/README.txt from `dev_init`)"


@dataclass(frozen=True, kw_only=True)
class SignerConfig:
    """A certificate chain and its private key, checked and ready for the c2pa SDK."""

    chain_pem: bytes  # leaf first, then intermediates; re-encoded without comments
    key_pem: bytes = field(repr=False)  # PKCS#8, never printed
    alg: SigningAlg
    tsa_url: str | None
    subject: str
    issuer: str
    not_after: dt.datetime
    warnings: tuple[str, ...] = ()  # signing works, but the lead should hear about these


@dataclass(frozen=True)
class CallbackSigner:
    """Sign through a callable (KMS, HSM, remote service) instead of a key file.

    ``sign`` receives the bytes to sign and returns the signature: for ES* a DER or raw
    r||s ECDSA signature (the SDK takes either), for PS* RSASSA-PSS, for ed25519 EdDSA.
    The chain is checked like :func:`load_signer_config` checks it, and ``alg`` must suit
    the leaf's public key.
    """

    chain_pem: bytes
    sign: Callable[[bytes], bytes] = field(repr=False)
    alg: str = "es256"
    tsa_url: str | None = None
    subject: str = field(init=False, default="")
    issuer: str = field(init=False, default="")
    not_after: dt.datetime = field(init=False, default=dt.datetime.min)
    warnings: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        where = "the certificate chain given to CallbackSigner"
        certs = _parse_certs(self.chain_pem, where)
        _check_chain(certs, where)
        expected = _alg_for_key(certs[0].public_key(), where)
        alg = self.alg.lower()
        if alg != expected and not (expected == "ps256" and alg in ("ps384", "ps512")):
            raise UserError(
                f"CallbackSigner: algorithm {self.alg!r} does not suit {where}, "
                f"whose key signs {expected}."
            )
        _check_tsa_url(self.tsa_url)
        object.__setattr__(self, "alg", alg)
        object.__setattr__(self, "chain_pem", _pem(certs))
        object.__setattr__(self, "subject", certs[0].subject.rfc4514_string())
        object.__setattr__(self, "issuer", certs[0].issuer.rfc4514_string())
        object.__setattr__(self, "not_after", certs[0].not_valid_after_utc)
        object.__setattr__(self, "warnings", _warnings(certs[0], self.tsa_url))


@dataclass(frozen=True)
class DevKeys:
    """Where :func:`dev_init` wrote a development chain. NOT FOR PRODUCTION."""

    chain: Path
    key: Path
    root: Path  # the trust anchor: give it to verify(), never to anyone as a real root
    trust_settings: Path  # c2pa SDK settings JSON trusting ``root``
    notice: Path
    not_after: dt.datetime
    not_for_production: Literal[True] = True

    def __str__(self) -> str:
        return f"DEV KEYS - {NOT_FOR_PRODUCTION}: {self.chain.parent} (see {self.notice.name})"


def load_signer_config(chain: Path, key: Path, *, tsa_url: str | None = None) -> SignerConfig:
    """Read and check a PEM chain (leaf first) and its private key before any signing."""
    certs = _parse_certs(_read(chain, "certificate chain"), str(chain))
    _check_chain(certs, str(chain))
    private_key = _parse_key(_read(key, "private key"), key)
    if _spki(private_key.public_key()) != _spki(certs[0].public_key()):
        raise UserError(
            f"{key}: this private key does not belong to the first certificate in {chain} "
            f"({certs[0].subject.rfc4514_string()}).",
            hint="pass the key the certificate was issued for, and put the leaf first",
        )
    alg = _alg_for_key(certs[0].public_key(), str(chain))
    _check_tsa_url(tsa_url)
    return SignerConfig(
        chain_pem=_pem(certs),
        key_pem=_pkcs8(private_key),
        alg=alg,
        tsa_url=tsa_url,
        subject=certs[0].subject.rfc4514_string(),
        issuer=certs[0].issuer.rfc4514_string(),
        not_after=certs[0].not_valid_after_utc,
        warnings=_warnings(certs[0], tsa_url),
    )


def load_trust_anchors(path: Path) -> str:
    """Root certificates from a PEM file, re-encoded; the SDK would silently skip bad ones."""
    return _pem(_parse_certs(_read(path, "trust anchors"), str(path))).decode()


def trust_section(anchors_pem: str, name: str) -> dict[str, Any]:
    """The ``trust`` part of c2pa-rs 0.91 settings: one named anchor list, all C2PA EKUs.

    ``trust.anchors`` supersedes the deprecated ``trust_anchors``/``user_anchors``.
    """
    anchor = {"trust_anchors": anchors_pem, "trust_uri": name, "trust_kind": "manifest"}
    return {"anchors": [anchor], "trust_config": TRUST_CONFIG_EKUS}


def _check_chain(certs: list[x509.Certificate], where: str) -> None:
    """Raise :class:`UserError` for anything c2pa-rs would reject in a signing chain."""
    now = dt.datetime.now(dt.UTC)
    for i, cert in enumerate(certs):
        name = f"{where}: certificate {i + 1} ({cert.subject.rfc4514_string()})"
        if cert.version != x509.Version.v3:
            raise UserError(f"{name} is not an X.509 v3 certificate.", hint=_FIX_HINT)
        if isinstance(cert.signature_hash_algorithm, _WEAK_HASHES):
            algo = cert.signature_hash_algorithm.name
            raise UserError(f"{name} is signed with {algo}, which C2PA does not accept.")
        start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
        if not start <= now <= end:
            state = "has expired" if now > end else "is not valid yet"
            raise UserError(
                f"{name} {state}: valid from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC.",
                hint="renew the certificate (or check this machine's clock)",
            )
        if i + 1 < len(certs):
            try:
                cert.verify_directly_issued_by(certs[i + 1])
            except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
                raise UserError(
                    f"{name} was not issued by certificate {i + 2}: {exc or 'bad signature'}.",
                    hint="order the chain leaf first, then each issuer; leave out the root",
                ) from exc
    _check_leaf(certs[0], f"{where}: the signing certificate")


def dev_init(directory: Path, *, org: str, force: bool = False) -> DevKeys:
    """Write a NOT-FOR-PRODUCTION test CA chain for C2PA into ``directory/keys``.

    Root and intermediate private keys are thrown away, so nothing else can be issued
    from the dev root; rerun with ``force=True`` for a fresh chain (content signed with
    the old one then no longer verifies as Trusted against the new root).
    """
    keys_dir = directory / "keys"
    out = DevKeys(
        chain=keys_dir / "dev-chain.pem",
        key=keys_dir / "dev-key.pem",
        root=keys_dir / "dev-root.pem",
        trust_settings=keys_dir / "dev-trust.json",
        notice=keys_dir / "README.txt",
        not_after=dt.datetime.now(dt.UTC) + dt.timedelta(days=_LEAF_DAYS),
    )
    existing = [p for p in (out.chain, out.key, out.root, out.trust_settings) if p.exists()]
    if existing and not force:
        raise UserError(
            f"{existing[0]}: dev signing keys already exist.",
            hint="keep them, or pass force to replace them (old signatures stop being Trusted)",
        )
    keys_dir.mkdir(parents=True, exist_ok=True)
    root_key, mid_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    org_label = _org_label(org)
    root = _issue(org_label, "root CA", root_key, None, root_key, _ROOT_DAYS)
    mid = _issue(org_label, "intermediate CA", mid_key, root, root_key, _INTERMEDIATE_DAYS)
    leaf = _issue(org_label, "signer", leaf_key, mid, mid_key, _LEAF_DAYS)
    banner = f"# bildwerk DEV signing {{}} - {NOT_FOR_PRODUCTION}. See README.txt.\n"
    settings = {
        "_comment": f"bildwerk dev trust settings - {NOT_FOR_PRODUCTION}. See README.txt.",
        "version": 1,
        "trust": trust_section(_pem([root]).decode(), "urn:bildwerk:dev-root:not-for-production"),
    }
    _write(out.key, banner.format("key").encode() + _pkcs8(leaf_key), 0o600)
    _write(
        out.chain, banner.format("chain (leaf, intermediate)").encode() + _pem([leaf, mid]), 0o644
    )
    _write(out.root, banner.format("ROOT, the trust anchor").encode() + _pem([root]), 0o644)
    _write(out.trust_settings, json.dumps(settings, indent=2).encode() + b"\n", 0o644)
    _write(out.notice, _NOTICE.format(org=org, leaf_days=_LEAF_DAYS).encode(), 0o644)
    _write(
        keys_dir / ".gitignore", b"# never commit a private key, even a dev one\n*key*.pem\n", 0o644
    )
    return out


_NOTICE = """\
=====================================================================
  DEVELOPMENT SIGNING KEYS - NOT FOR PRODUCTION
=====================================================================

These files were made by `bildwerk` (dev_init) for {org}, to try C2PA
Content Credentials end to end. Anything signed with them proves
NOTHING to anyone else: the root below is trusted by no one but you.

  dev-chain.pem   leaf signing certificate + intermediate CA (valid {leaf_days} days)
  dev-key.pem     the leaf's private key (mode 0600; never commit or share it)
  dev-root.pem    the dev ROOT CA = the TRUST ANCHOR for verifying dev signatures
  dev-trust.json  c2pa SDK settings that trust dev-root.pem (trust.anchors)

The root and intermediate private keys were discarded on purpose.

For production: get a signing certificate from a CA on the C2PA trust list,
keep its key in a KMS/HSM (bildwerk's CallbackSigner), and sign with a
time-stamp authority (tsa_url): without a time stamp, signatures stop
validating once the certificate expires.
"""


def _check_leaf(cert: x509.Certificate, name: str) -> None:
    constraints = _ext(cert, x509.BasicConstraints)
    if constraints is not None and constraints.ca:
        raise UserError(f"{name} is a CA certificate (basicConstraints CA:TRUE).", hint=_FIX_HINT)
    if cert.issuer == cert.subject:
        raise UserError(f"{name} is self-signed; C2PA needs one issued by a CA.", hint=_FIX_HINT)
    usage = _ext(cert, x509.KeyUsage)
    if usage is None or not usage.digital_signature:
        missing = "has no keyUsage extension" if usage is None else "lacks digitalSignature"
        raise UserError(f"{name} {missing}; C2PA needs keyUsage digitalSignature.", hint=_FIX_HINT)
    ekus = _ext(cert, x509.ExtendedKeyUsage)
    accepted = ", ".join(f"{v} ({k.dotted_string})" for k, v in ACCEPTED_EKUS.items())
    if ekus is None:
        raise UserError(
            f"{name} has no extendedKeyUsage extension; C2PA needs one of: {accepted}.",
            hint=_FIX_HINT,
        )
    oids = list(ekus)
    if ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in oids:
        raise UserError(f"{name} has anyExtendedKeyUsage, which C2PA forbids.", hint=_FIX_HINT)
    if len(oids) > 1 and any(oid in _SOLE_EKUS for oid in oids):
        raise UserError(f"{name} mixes timeStamping/OCSPSigning with other EKUs.", hint=_FIX_HINT)
    if not any(oid in ACCEPTED_EKUS for oid in oids):
        found = ", ".join(getattr(o, "_name", o.dotted_string) for o in oids)
        raise UserError(
            f"{name} has extendedKeyUsage {found}, none of which C2PA accepts ({accepted}).",
            hint=_FIX_HINT,
        )
    if _ext(cert, x509.AuthorityKeyIdentifier) is None:
        raise UserError(
            f"{name} has no authorityKeyIdentifier extension, which the c2pa SDK requires.",
            hint=_FIX_HINT,
        )


def _warnings(leaf: x509.Certificate, tsa_url: str | None) -> tuple[str, ...]:
    found: list[str] = []
    ekus = _ext(leaf, x509.ExtendedKeyUsage)
    if ekus is not None and ExtendedKeyUsageOID.EMAIL_PROTECTION not in list(ekus):
        found.append(
            "the signing certificate lacks the emailProtection EKU: validators on c2pa-rs "
            "<= 0.91 with default settings will report the manifest Invalid"
        )
    end = leaf.not_valid_after_utc
    if tsa_url is None:
        found.append(
            f"no time-stamp authority: signatures stop validating when the certificate "
            f"expires ({end:%Y-%m-%d})"
        )
    if end - dt.datetime.now(dt.UTC) < _RENEW_SOON:
        found.append(f"the signing certificate expires soon ({end:%Y-%m-%d %H:%M} UTC)")
    return tuple(found)


_Ext = TypeVar("_Ext", bound=x509.ExtensionType)


def _ext(cert: x509.Certificate, kind: type[_Ext]) -> _Ext | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _alg_for_key(key: PublicKeyTypes, where: str) -> SigningAlg:
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in _EC_ALGS:
        return _EC_ALGS[key.curve.name]
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048:
        return "ps256"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519"
    kind = type(key).__name__.removesuffix("PublicKey")
    if isinstance(key, ec.EllipticCurvePublicKey):
        kind = f"EC {key.curve.name}"
    elif isinstance(key, rsa.RSAPublicKey):
        kind = f"RSA {key.key_size} bits"
    raise UserError(
        f"{where}: unsupported key type {kind}.",
        hint="C2PA signs with EC P-256/P-384/P-521, RSA >= 2048 bits (PSS) or Ed25519",
    )


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: {what} file not found.", hint="check the path") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, expected the {what} PEM file.") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read the {what}: {exc.strerror}.") from exc


def _parse_certs(data: bytes, where: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise UserError(
            f"{where}: no readable PEM certificate ({exc}).",
            hint="expect '-----BEGIN CERTIFICATE-----' blocks, leaf first",
        ) from exc


def _parse_key(data: bytes, path: Path) -> PrivateKeyTypes:
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError as exc:  # encrypted, and no password given
        raise UserError(
            f"{path}: the private key is encrypted.",
            hint="decrypt it into a file readable only by you, or sign through CallbackSigner",
        ) from exc
    except UnsupportedAlgorithm as exc:
        raise UserError(f"{path}: unsupported private key type ({exc}).") from exc
    except ValueError as exc:
        raise UserError(f"{path}: not a readable PEM private key ({exc}).") from exc


def _check_tsa_url(url: str | None) -> None:
    if url is not None and not url.startswith(("http://", "https://")):
        raise UserError(f"time-stamp authority URL {url!r} must start with http:// or https://")


def _spki(key: PublicKeyTypes) -> bytes:
    der = serialization.Encoding.DER
    return key.public_bytes(der, serialization.PublicFormat.SubjectPublicKeyInfo)


def _pem(certs: list[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def _org_label(org: str) -> str:
    suffix = f" [DEV - {NOT_FOR_PRODUCTION}]"
    return (org.strip() or "bildwerk")[: 64 - len(suffix)] + suffix  # X.520 caps O at 64


def _pkcs8(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _issue(
    org: str,
    role: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    days: int,
) -> x509.Certificate:
    """A root CA (no issuer), an intermediate CA (issued by the root) or the signer."""
    now = dt.datetime.now(dt.UTC)
    leaf = role == "signer"
    path_len = None if leaf else (1 if issuer is None else 0)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, NOT_FOR_PRODUCTION),
            x509.NameAttribute(NameOID.COMMON_NAME, f"bildwerk dev {role} - {NOT_FOR_PRODUCTION}"),
        ]
    )
    usage = dict.fromkeys(
        ("content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
         "encipher_only", "decipher_only"),
        False,
    )  # fmt: skip
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if issuer is None else issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))  # tolerate small clock skew
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=not leaf, path_length=path_len), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=leaf, key_cert_sign=not leaf, crl_sign=not leaf, **usage
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key())
        builder = builder.add_extension(aki, critical=False)
    if leaf:
        eku = [EKU_C2PA_CLAIM_SIGNING, ExtendedKeyUsageOID.EMAIL_PROTECTION]
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, data: bytes, mode: int) -> None:
    """Atomic write with the mode set first: never a half-written key, never a wider mode."""
    atomic_write_bytes(path, data, mode=mode)
