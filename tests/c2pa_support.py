"""Self-made C2PA signing material for tests and demo examples.

Builds a three-level X.509 chain (root CA -> intermediate CA -> end-entity signer) with the
profile the C2PA specification requires of claim-signing certificates - version 3, ECDSA
P-256/SHA-256 (ES256), ``digitalSignature`` key usage, an extended key usage of
``emailProtection``/``documentSigning``, authority/subject key identifiers - and signs
media with c2pa-python's :class:`c2pa.Builder`. Everything is generated at run time, so no
test depends on committed keys; ``scripts/make_examples.py`` reuses it for the demo files.

The keys made here are throw-away test material: never use them to sign anything real.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
TRAINED_ALGORITHMIC_MEDIA = IPTC + "trainedAlgorithmicMedia"
COMPOSITE_WITH_TRAINED = IPTC + "compositeWithTrainedAlgorithmicMedia"
DIGITAL_CAPTURE = IPTC + "digitalCapture"

# Microsoft "document signing" EKU, accepted by C2PA next to id-kp-emailProtection.
DOCUMENT_SIGNING_EKU = x509.ObjectIdentifier("1.3.6.1.4.1.311.10.3.12")

MIME_BY_SUFFIX = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
}


@dataclass(frozen=True)
class CertChain:
    """PEM texts of a root -> intermediate -> signer chain and the signer's private key."""

    root_pem: str
    intermediate_pem: str
    signer_pem: str
    signer_key_pem: str

    @property
    def x5chain_pem(self) -> str:
        """What goes into the manifest: signer first, then the intermediate (never the root)."""
        return self.signer_pem + self.intermediate_pem

    def write(self, directory: Path) -> dict[str, Path]:
        """Write the chain as PEM files into ``directory``; returns name -> path."""
        directory.mkdir(parents=True, exist_ok=True)
        files = {
            "root_ca.pem": self.root_pem,
            "intermediate_ca.pem": self.intermediate_pem,
            "signer.pem": self.signer_pem,
            "signer_chain.pem": self.x5chain_pem,
            "signer_key.pem": self.signer_key_pem,
        }
        out = {}
        for name, text in files.items():
            path = directory / name
            path.write_text(text, encoding="ascii")
            out[name] = path
        return out

    @classmethod
    def read(cls, directory: Path) -> CertChain:
        """Load a chain written by :meth:`write`."""
        return cls(
            root_pem=(directory / "root_ca.pem").read_text("ascii"),
            intermediate_pem=(directory / "intermediate_ca.pem").read_text("ascii"),
            signer_pem=(directory / "signer.pem").read_text("ascii"),
            signer_key_pem=(directory / "signer_key.pem").read_text("ascii"),
        )


def _name(common_name: str, org: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def make_cert_chain(
    org: str = "Antifake Test",
    signer_name: str = "Antifake Test Signer",
    not_before: dt.datetime | None = None,
    valid_days: int = 3650,
) -> CertChain:
    """Generate a fresh ES256 chain with C2PA-conformant extensions."""
    start = not_before or (dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    end = start + dt.timedelta(days=valid_days)
    root_key = ec.generate_private_key(ec.SECP256R1())
    inter_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())

    def ca_cert(
        subject: x509.Name, key: ec.EllipticCurvePrivateKey, issuer: x509.Name,
        issuer_key: ec.EllipticCurvePrivateKey, path_length: int | None,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
        )
        if issuer_key is not key:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                critical=False,
            )
        return builder.sign(issuer_key, hashes.SHA256())

    root_name = _name(f"{org} Root CA", org)
    inter_name = _name(f"{org} Intermediate CA", org)
    root = ca_cert(root_name, root_key, root_name, root_key, path_length=1)
    inter = ca_cert(inter_name, inter_key, root_name, root_key, path_length=0)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(signer_name, org))
        .issuer_name(inter_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.EMAIL_PROTECTION, DOCUMENT_SIGNING_EKU]
            ),
            critical=False,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(inter_key.public_key()),
            critical=False,
        )
        .sign(inter_key, hashes.SHA256())
    )
    key_pem = leaf_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    return CertChain(_pem(root), _pem(inter), _pem(leaf), key_pem)


def manifest_definition(
    claim_generator: str,
    digital_source_type: str | None = TRAINED_ALGORITHMIC_MEDIA,
    software_agent: str | None = None,
    action: str = "c2pa.created",
    title: str = "antifake test asset",
    extra_actions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A manifest definition with one ``c2pa.actions.v2`` assertion.

    The first action is ``action`` with the given source type/agent; ``extra_actions``
    (raw action objects) follow it, e.g. an AI edit after a capture.
    """
    act: dict[str, Any] = {"action": action}
    if digital_source_type:
        act["digitalSourceType"] = digital_source_type
    if software_agent:
        act["softwareAgent"] = {"name": software_agent}
    return {
        "claim_generator_info": [{"name": claim_generator, "version": "1.0"}],
        "title": title,
        "assertions": [
            {"label": "c2pa.actions.v2", "data": {"actions": [act, *(extra_actions or [])]}}
        ],
    }


def sign_bytes(
    data: bytes, mime: str, manifest: dict[str, Any], chain: CertChain
) -> bytes:
    """Embed ``manifest`` signed by ``chain`` into the asset ``data``; returns the new bytes."""
    info = c2pa.C2paSignerInfo(
        alg=b"es256",
        sign_cert=chain.x5chain_pem.encode("ascii"),
        private_key=chain.signer_key_pem.encode("ascii"),
        ta_url=None,  # no timestamp authority: tests run offline
    )
    out = io.BytesIO()
    # No embedded thumbnail: it would multiply the size of small test/demo files.
    settings = c2pa.Settings.from_dict({"builder": {"thumbnail": {"enabled": False}}})
    with (
        c2pa.Context(settings) as context,
        c2pa.Signer.from_info(info) as signer,
        c2pa.Builder(json.dumps(manifest), context) as builder,
    ):
        builder.sign(signer, mime, io.BytesIO(data), out)
    settings.close()
    return out.getvalue()


def sign_file(
    src: Path, dst: Path, manifest: dict[str, Any], chain: CertChain, mime: str | None = None
) -> Path:
    """Sign ``src`` into ``dst`` (the MIME type defaults from the suffix)."""
    mime = mime or MIME_BY_SUFFIX[src.suffix.lower()]
    dst.write_bytes(sign_bytes(src.read_bytes(), mime, manifest, chain))
    return dst


def tamper_pixels(data: bytes, mime: str, count: int = 32) -> bytes:
    """Flip low bits of ``count`` bytes inside the coded picture data, after signing.

    The change lands in the JPEG scan, the PNG ``IDAT`` or the MP4 ``mdat`` payload, so the
    container still parses and only the asset hash can tell.
    """
    marker = {
        "image/jpeg": b"\xff\xda",
        "image/png": b"IDAT",
        "video/mp4": b"mdat",
        "video/quicktime": b"mdat",
    }[mime]
    pos = data.rfind(marker) if mime == "image/jpeg" else data.find(marker)
    if pos < 0:
        raise ValueError(f"no {marker!r} in the {mime} data")
    start = pos + 16
    buf = bytearray(data)
    flipped = 0
    i = start
    while flipped < count and i < len(buf) - 16:
        # Never create or break a JPEG 0xFF marker/stuffing byte: the container must parse.
        if buf[i] < 0xF0 and buf[i - 1] != 0xFF:
            buf[i] ^= 0x01
            flipped += 1
        i += 3
    if flipped < count:
        raise ValueError("payload too small to tamper")
    return bytes(buf)
