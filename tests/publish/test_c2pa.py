"""C2PA signing and verification with the real c2pa SDK: dev keys, masters, renditions."""

from __future__ import annotations

import datetime as dt
import io
import json
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bildwerk.errors import UserError
from bildwerk.publish.c2pa_read import VerifyResult, verify
from bildwerk.publish.c2pa_sign import TRAINING_MINING_LABEL, sign, supported_formats
from bildwerk.publish.keys import (
    EKU_DOCUMENT_SIGNING,
    NOT_FOR_PRODUCTION,
    CallbackSigner,
    DevKeys,
    SignerConfig,
    dev_init,
    load_signer_config,
)

c2pa = pytest.importorskip("c2pa")
x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

AI = "trainedAlgorithmicMedia"
AI_URI = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
SAVE: dict[str, dict[str, Any]] = {
    "jpeg": {"format": "JPEG", "quality": 82},
    "webp": {"format": "WEBP", "quality": 80},
    "avif": {"format": "AVIF", "quality": 60, "speed": 10},
}


def encode(image: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    image.save(buf, **SAVE[fmt])
    return buf.getvalue()


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> DevKeys:
    return dev_init(tmp_path_factory.mktemp("ws"), org="Acme Outdoor")


@pytest.fixture(scope="module")
def signer(keys: DevKeys) -> SignerConfig:
    return load_signer_config(keys.chain, keys.key)


@pytest.fixture(scope="module")
def master_image() -> Image.Image:
    gradient = Image.linear_gradient("L").resize((1080, 1350))
    return Image.merge("RGB", (gradient, gradient.rotate(90), Image.new("L", (1080, 1350), 90)))


@pytest.fixture(scope="module")
def signed_master(master_image: Image.Image, signer: SignerConfig) -> bytes:
    return sign(
        encode(master_image, "jpeg"),
        "jpeg",
        signer=signer,
        title="spring-hero master",
        digital_source_type=AI,
        author="Acme Outdoor",
        master=None,
        master_title=None,
    ).data


# -- dev keys ------------------------------------------------------------------------------


def test_dev_init_writes_a_loudly_marked_chain(keys: DevKeys) -> None:
    assert keys.not_for_production is True
    assert NOT_FOR_PRODUCTION in str(keys)
    assert stat.S_IMODE(keys.key.stat().st_mode) == 0o600
    for path in (keys.chain, keys.key, keys.root):
        assert NOT_FOR_PRODUCTION in path.read_text().splitlines()[0]
    assert NOT_FOR_PRODUCTION in keys.notice.read_text()
    chain = x509.load_pem_x509_certificates(keys.chain.read_bytes())
    leaf, root = chain[0], x509.load_pem_x509_certificate(keys.root.read_bytes())
    assert len(chain) == 2 and NOT_FOR_PRODUCTION in leaf.issuer.rfc4514_string()
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc <= dt.timedelta(days=366)
    assert root.subject == chain[1].issuer
    settings = json.loads(keys.trust_settings.read_text())
    anchor = settings["trust"]["anchors"][0]
    assert anchor["trust_anchors"].strip() in keys.root.read_text()
    with pytest.raises(UserError, match="already exist"):
        dev_init(keys.chain.parent.parent, org="Acme Outdoor")


def test_dev_signer_config(signer: SignerConfig, keys: DevKeys) -> None:
    assert signer.alg == "es256" and "key" not in repr(signer).replace("key_pem", "")
    assert b"#" not in signer.chain_pem  # comments stripped before the SDK sees them
    assert NOT_FOR_PRODUCTION in signer.subject
    assert [w.split(":")[0] for w in signer.warnings] == ["no time-stamp authority"]


# -- signing and verifying -----------------------------------------------------------------


def test_master_is_created_with_its_source_type(signed_master: bytes, keys: DevKeys) -> None:
    result = verify(signed_master, "jpeg", trust_anchors=None)
    assert result.state == "Valid"
    assert result.actions == ("c2pa.created",)
    assert result.digital_source_type == AI_URI
    assert result.title == "spring-hero master" and result.claim_generator == "bildwerk/0.1"
    assert result.authors == ("Acme Outdoor",) and result.ingredients == ()
    assert not result.do_not_train and TRAINING_MINING_LABEL not in result.assertions
    assert result.issuer is not None and NOT_FOR_PRODUCTION in result.issuer
    assert verify(signed_master, "jpeg", trust_anchors=keys.root).state == "Trusted"


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "avif"])
def test_rendition_carries_the_master_as_parent(
    fmt: str, signed_master: bytes, master_image: Image.Image, signer: SignerConfig, keys: DevKeys
) -> None:
    small = encode(master_image.resize((540, 675), Image.Resampling.LANCZOS), fmt)
    actions = ("c2pa.resized",) if fmt == "jpeg" else ("c2pa.resized", "c2pa.converted")
    signed = sign(
        small,
        fmt,
        signer=signer,
        title=f"spring-hero 540w.{fmt}",
        digital_source_type=AI,
        author="Acme Outdoor",
        master=signed_master,
        master_title="spring-hero master",
        actions=actions,
        do_not_train=True,
    ).data
    with Image.open(io.BytesIO(signed)) as decoded:
        assert decoded.size == (540, 675) and decoded.format == SAVE[fmt]["format"]
    plain = verify(signed, fmt, trust_anchors=None)
    assert plain.state == "Valid"
    assert any(f.startswith("signingCredential.untrusted") for f in plain.failures)
    trusted = verify(signed, fmt, trust_anchors=keys.root, source=f"r.{fmt}")
    assert trusted.state == "Trusted" and trusted.trusted and trusted.failures == ()
    assert trusted.actions == ("c2pa.opened", *actions)
    assert trusted.digital_source_type == AI_URI
    (parent,) = trusted.ingredients
    assert parent.relationship == "parentOf" and parent.title == "spring-hero master"
    assert parent.format == "image/jpeg" and parent.manifest is not None
    assert trusted.do_not_train and TRAINING_MINING_LABEL in trusted.assertions


def test_trust_settings_file_works_with_the_sdk_itself(signed_master: bytes, keys: DevKeys) -> None:
    settings = keys.trust_settings.read_text()
    with (
        c2pa.Context.from_json(settings) as context,
        c2pa.Reader("image/jpeg", io.BytesIO(signed_master), context=context) as reader,
    ):
        assert reader.get_validation_state() == "Trusted"
    assert verify(signed_master, "jpeg", trust_anchors=keys.trust_settings).trusted


def test_training_mining_assertion_is_readable_by_the_sdk(
    master_image: Image.Image, signer: SignerConfig
) -> None:
    signed = sign(
        encode(master_image, "webp"),
        "webp",
        signer=signer,
        title="m",
        digital_source_type=AI_URI,
        author="Acme",
        master=None,
        master_title=None,
        do_not_train=True,
    ).data
    with c2pa.Reader("image/webp", io.BytesIO(signed)) as reader:
        manifest = reader.get_active_manifest()
    (assertion,) = [a for a in manifest["assertions"] if a["label"] == TRAINING_MINING_LABEL]
    assert {e["use"] for e in assertion["data"]["entries"].values()} == {"notAllowed"}
    assert "cawg.ai_generative_training" in assertion["data"]["entries"]


def test_callback_signer_signs_through_a_python_callable(
    keys: DevKeys, master_image: Image.Image
) -> None:
    key = serialization.load_pem_private_key(keys.key.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    calls: list[int] = []

    def kms_sign(payload: bytes) -> bytes:
        calls.append(len(payload))
        return key.sign(payload, ec.ECDSA(hashes.SHA256()))

    callback = CallbackSigner(keys.chain.read_bytes(), kms_sign)
    signed = sign(
        encode(master_image, "jpeg"),
        "jpeg",
        signer=callback,
        title="m",
        digital_source_type=AI,
        author="Acme",
        master=None,
        master_title=None,
    ).data
    assert calls and verify(signed, "jpeg", trust_anchors=keys.root).state == "Trusted"

    def broken(payload: bytes) -> bytes:
        raise ConnectionError("KMS unreachable")

    with pytest.raises(UserError, match="callback failed: ConnectionError: KMS unreachable"):
        sign(
            encode(master_image, "jpeg"),
            "jpeg",
            signer=CallbackSigner(keys.chain.read_bytes(), broken),
            title="m",
            digital_source_type=AI,
            author="Acme",
            master=None,
            master_title=None,
        )
    with pytest.raises(UserError, match="es384"):
        CallbackSigner(keys.chain.read_bytes(), kms_sign, alg="es384")


def test_formats_the_sdk_embeds() -> None:
    assert {"jpeg", "webp", "avif"} <= set(supported_formats())


def test_bad_sign_inputs_are_user_errors(
    master_image: Image.Image, signer: SignerConfig, signed_master: bytes
) -> None:
    jpeg = encode(master_image, "jpeg")
    base: dict[str, Any] = {
        "signer": signer,
        "title": "t",
        "digital_source_type": AI,
        "author": "Acme",
        "master": None,
        "master_title": None,
    }
    with pytest.raises(UserError, match="cannot be embedded in 'gif'"):
        sign(jpeg, "gif", **base)
    with pytest.raises(UserError, match="is image/jpeg, not image/webp"):
        sign(jpeg, "webp", **base)
    with pytest.raises(UserError, match="unknown digital source type 'aiGenerated'"):
        sign(jpeg, "jpeg", **{**base, "digital_source_type": "aiGenerated"})
    with pytest.raises(UserError, match=r"'c2pa\.created' cannot be passed"):
        sign(jpeg, "jpeg", **{**base, "actions": ["c2pa.created"]})


# -- verifying broken files ----------------------------------------------------------------


def test_verify_reports_missing_and_corrupt_manifests(
    master_image: Image.Image, signed_master: bytes
) -> None:
    with pytest.raises(UserError, match=r"hero\.jpg: no C2PA manifest"):
        verify(encode(master_image, "jpeg"), "jpeg", trust_anchors=None, source="hero.jpg")
    with pytest.raises(UserError, match=r"cut\.jpg: cannot read Content Credentials: asset could"):
        verify(signed_master[:3000], "jpeg", trust_anchors=None, source="cut.jpg")
    with pytest.raises(UserError, match="cannot read Content Credentials"):
        verify(b"definitely not an image" * 4, "jpeg", trust_anchors=None)
    # Cut after the manifest: readable, but the pixels no longer match the signed hash.
    half = verify(signed_master[: len(signed_master) // 2], "jpeg", trust_anchors=None)
    assert half.state == "Invalid"
    assert any(f.startswith("assertion.dataHash.mismatch") for f in half.failures)


def test_verify_flags_changed_pixels(signed_master: bytes) -> None:
    tampered = bytearray(signed_master)
    tampered[-200] ^= 0xFF  # inside the entropy-coded scan, covered by the data hash
    result: VerifyResult = verify(bytes(tampered), "jpeg", trust_anchors=None)
    assert result.state == "Invalid"
    assert any(f.startswith("assertion.dataHash.mismatch") for f in result.failures)


def test_verify_rejects_unreadable_trust_anchors(signed_master: bytes, tmp_path: Path) -> None:
    bogus = tmp_path / "roots.pem"
    bogus.write_text("not a certificate")
    with pytest.raises(UserError, match=r"roots\.pem: no readable PEM certificate"):
        verify(signed_master, "jpeg", trust_anchors=bogus)
    with pytest.raises(UserError, match=r"missing\.pem: trust anchors file not found"):
        verify(signed_master, "jpeg", trust_anchors=tmp_path / "missing.pem")


# -- load_signer_config: each bad credential names the problem -----------------------------


class FakeCA:
    """A throwaway root and intermediate that can issue leaves with any defect."""

    def __init__(self) -> None:
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.key = ec.generate_private_key(ec.SECP256R1())
        root_name = self.name("Test root")
        self.cert = (
            self.builder(self.name("Test intermediate"), self.key.public_key(), root_name)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(self.root_key, hashes.SHA256())
        )

    @staticmethod
    def name(cn: str) -> Any:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    @staticmethod
    def builder(
        subject: Any, public_key: Any, issuer: Any, days: tuple[int, int] = (-1, 30)
    ) -> Any:
        now = dt.datetime.now(dt.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now + dt.timedelta(days=days[0]))
            .not_valid_after(now + dt.timedelta(days=days[1]))
        )

    def leaf(
        self,
        tmp_path: Path,
        *,
        days: tuple[int, int] = (-1, 30),
        digital_signature: bool = True,
        ekus: list[Any] | None = None,
        curve: ec.EllipticCurve | None = None,
    ) -> tuple[Path, Path]:
        key = ec.generate_private_key(curve or ec.SECP256R1())
        usage = dict.fromkeys(
            ("content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
             "key_cert_sign", "crl_sign", "encipher_only", "decipher_only"),
            False,
        )  # fmt: skip
        cert = (
            self.builder(self.name("Test leaf"), key.public_key(), self.cert.subject, days)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=digital_signature, **usage), True)
            .add_extension(
                x509.ExtendedKeyUsage(ekus or [ExtendedKeyUsageOID.EMAIL_PROTECTION]), False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
            .sign(self.key, hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        chain, key_path = tmp_path / "chain.pem", tmp_path / "key.pem"
        chain.write_bytes(cert.public_bytes(pem) + self.cert.public_bytes(pem))
        key_path.write_bytes(
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        return chain, key_path


@pytest.fixture(scope="module")
def ca() -> FakeCA:
    return FakeCA()


Case = Callable[[FakeCA, Path], tuple[Path, Path]]
BAD_CREDENTIALS: dict[str, tuple[Case, str]] = {
    "expired": (
        lambda ca, p: ca.leaf(p, days=(-30, -1)),
        r"has expired: valid from \d{4}-\d\d-\d\d .* to \d{4}-\d\d-\d\d",
    ),
    "not yet valid": (lambda ca, p: ca.leaf(p, days=(2, 30)), r"is not valid yet: valid from"),
    "no digitalSignature": (
        lambda ca, p: ca.leaf(p, digital_signature=False),
        "lacks digitalSignature",
    ),
    "server auth only": (
        lambda ca, p: ca.leaf(p, ekus=[ExtendedKeyUsageOID.SERVER_AUTH]),
        "extendedKeyUsage serverAuth, none of which C2PA accepts",
    ),
    "unsupported curve": (
        lambda ca, p: ca.leaf(p, curve=ec.SECP256K1()),
        "unsupported key type EC secp256k1",
    ),
}


@pytest.mark.parametrize("case", BAD_CREDENTIALS, ids=list(BAD_CREDENTIALS))
def test_bad_credentials_are_named(case: str, ca: FakeCA, tmp_path: Path) -> None:
    make, message = BAD_CREDENTIALS[case]
    chain, key = make(ca, tmp_path)
    with pytest.raises(UserError, match=message) as info:
        load_signer_config(chain, key)
    assert str(chain) in str(info.value)


def test_mismatched_and_missing_files(ca: FakeCA, tmp_path: Path, keys: DevKeys) -> None:
    chain, _ = ca.leaf(tmp_path)
    with pytest.raises(UserError, match=r"dev-key\.pem: this private key does not belong"):
        load_signer_config(chain, keys.key)
    with pytest.raises(UserError, match=r"nope\.pem: certificate chain file not found"):
        load_signer_config(tmp_path / "nope.pem", keys.key)
    with pytest.raises(UserError, match=r"gone\.pem: private key file not found"):
        load_signer_config(keys.chain, tmp_path / "gone.pem")
    reversed_chain = tmp_path / "reversed.pem"
    certs = x509.load_pem_x509_certificates(keys.chain.read_bytes())
    pem = serialization.Encoding.PEM
    reversed_chain.write_bytes(b"".join(c.public_bytes(pem) for c in reversed(certs)))
    with pytest.raises(UserError, match="not issued by certificate 2"):
        load_signer_config(reversed_chain, keys.key)


def test_document_signing_eku_signs_with_a_warning(
    ca: FakeCA, tmp_path: Path, master_image: Image.Image
) -> None:
    chain, key = ca.leaf(tmp_path, ekus=[EKU_DOCUMENT_SIGNING])
    config = load_signer_config(chain, key)
    assert config.alg == "es256"
    assert any("lacks the emailProtection EKU" in w for w in config.warnings)
    assert any("no time-stamp authority" in w for w in config.warnings)
    signed = sign(
        encode(master_image, "jpeg"),
        "jpeg",
        signer=config,
        title="m",
        digital_source_type=AI,
        author="Acme",
        master=None,
        master_title=None,
    ).data
    assert verify(signed, "jpeg", trust_anchors=None).state == "Valid"
