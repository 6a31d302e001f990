"""The server's signing identity: archive key, organization certificate, seal.

- An Ed25519 key signs archive manifests (``manifest.sig``). Its raw public
  key is printed in every manifest; an auditor pins it with
  ``meeting-server verify --public-key``.
- An organization X.509 certificate and RSA-2048 key sign the minutes PDF
  (PAdES, via pyHanko). Self-signed with CN = the organization's name on
  first run, or loaded from files an administrator supplies (e.g. issued by
  the organization's CA).
- The seal is drawn from the organization's name (a red round seal, as on
  paper minutes); it is the visible appearance of the PDF signature.

Keys live in ``<data_dir>/keys/`` (directory 0700, private keys 0600) and
are created once, under a file lock, so several server processes starting
together agree on one identity.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import io
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

__all__ = [
    "Keys",
    "load_or_create_keys",
    "make_seal_png",
    "sign_pdf",
]

ARCHIVE_KEY_FILE = "archive_ed25519.pem"
ORG_CERT_FILE = "org_cert.pem"
ORG_KEY_FILE = "org_key.pem"

#: self-signed certificates outlive the archives' retention period; verify
#: judges the PDF signature at its signing time, so expiry is not a hazard
CERT_YEARS = 30


@dataclass(frozen=True)
class Keys:
    #: signs manifest.json
    archive_key: ed25519.Ed25519PrivateKey
    #: the organization's certificate and private key (PAdES signatures)
    org_cert: x509.Certificate
    org_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    org_name: str

    @property
    def public_key_raw(self) -> bytes:
        """The 32-byte raw Ed25519 public key."""
        return self.archive_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def public_key_b64(self) -> str:
        return base64.b64encode(self.public_key_raw).decode("ascii")

    @property
    def public_key_pem(self) -> bytes:
        """For auditors: ``meeting-server verify --public-key`` takes this file."""
        return self.archive_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def cert_der(self) -> bytes:
        return self.org_cert.public_bytes(serialization.Encoding.DER)

    @property
    def cert_sha256(self) -> str:
        """Hex SHA-256 fingerprint of the organization certificate (DER)."""
        return hashlib.sha256(self.cert_der).hexdigest()

    def sign_manifest(self, data: bytes) -> bytes:
        """Raw 64-byte Ed25519 signature over exactly ``data``."""
        return self.archive_key.sign(data)


# --------------------------------------------------------------------------- files


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive lock on the keys directory (POSIX); a no-op elsewhere."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _write_private(path: Path, data: bytes) -> None:
    """Write a new file readable by the owner only; never overwrite."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.link(tmp, path)  # fails if the file appeared meanwhile
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _private_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _load_private(data: bytes):
    if b"-----BEGIN" in data:
        return serialization.load_pem_private_key(data, password=None)
    return serialization.load_der_private_key(data, password=None)


def _load_cert(data: bytes) -> x509.Certificate:
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def _public_der(key) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _self_signed(org_name: str, key: rsa.RSAPrivateKey) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, org_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org_name),
        ]
    )
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365 * CERT_YEARS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,  # non-repudiation: what pyHanko expects of signers
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def load_or_create_keys(
    data_dir: Path | str,
    org_name: str,
    cert_path: Path | str | None = None,
    key_path: Path | str | None = None,
) -> Keys:
    """Load the server's keys from ``data_dir/keys``, creating what is missing.

    ``cert_path`` and ``key_path`` (PEM or DER, key unencrypted) replace the
    self-signed organization certificate; both or neither must be given, and
    the key must match the certificate. Only RSA and EC keys are accepted.
    """
    if (cert_path is None) != (key_path is None):
        raise ValueError("give both cert_path and key_path, or neither")
    kdir = Path(data_dir) / "keys"
    kdir.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(kdir, 0o700)
    with _locked(kdir):
        ak_path = kdir / ARCHIVE_KEY_FILE
        if not ak_path.exists():
            _write_private(ak_path, _private_pem(ed25519.Ed25519PrivateKey.generate()))
        archive_key = _load_private(ak_path.read_bytes())
        if not isinstance(archive_key, ed25519.Ed25519PrivateKey):
            raise ValueError(f"{ak_path} is not an Ed25519 private key")

        if cert_path is not None and key_path is not None:
            org_cert = _load_cert(Path(cert_path).read_bytes())
            org_key = _load_private(Path(key_path).read_bytes())
        else:
            c_path, k_path = kdir / ORG_CERT_FILE, kdir / ORG_KEY_FILE
            if not (c_path.exists() and k_path.exists()):
                key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                cert = _self_signed(org_name, key)
                for p in (c_path, k_path):
                    with contextlib.suppress(FileNotFoundError):
                        p.unlink()  # a half-made pair from an interrupted first run
                _write_private(k_path, _private_pem(key))
                _write_private(c_path, cert.public_bytes(serialization.Encoding.PEM))
            org_cert = _load_cert(c_path.read_bytes())
            org_key = _load_private(k_path.read_bytes())
    if not isinstance(org_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError("the organization key must be an RSA or EC private key")
    if _public_der(org_key) != org_cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise ValueError("the organization key does not match its certificate")
    return Keys(archive_key=archive_key, org_cert=org_cert, org_key=org_key, org_name=org_name)


# --------------------------------------------------------------------------- seal

SEAL_RED = (205, 22, 28)


def make_seal_png(org_name: str, label: str = "", size: int = 300) -> bytes:
    """A red round seal: the name along the upper rim, a star, an optional label.

    Drawn with Pillow in the CJK font bundled with PyMuPDF, transparent
    background, about 10-25 KB.
    """
    import pymupdf
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    font_data = pymupdf.Font("cjk").buffer
    scale = 2  # draw large, shrink once: smooth edges
    s = size * scale
    img = Image.new("L", (s, s), 0)  # ink coverage; coloured at the end
    d = ImageDraw.Draw(img)
    c = s / 2
    ring = s * 0.035
    d.ellipse((ring / 2, ring / 2, s - ring / 2, s - ring / 2), outline=255, width=round(ring))

    # five-pointed star in the centre
    r_out, r_in = s * 0.17, s * 0.17 * 0.382
    pts = []
    for k in range(10):
        a = -math.pi / 2 + k * math.pi / 5
        r = r_out if k % 2 == 0 else r_in
        pts.append((c + r * math.cos(a), c + r * math.sin(a)))
    d.polygon(pts, fill=255)

    # the name along the upper arc, each glyph upright relative to the rim
    text = org_name.strip() or "SEAL"
    n = len(text)
    span = min(250.0, max(60.0, 23.0 * n))  # degrees of arc used
    glyph = s * (0.15 if n <= 8 else 0.13 if n <= 12 else 0.105 if n <= 18 else 0.085)
    font = ImageFont.truetype(io.BytesIO(font_data), round(glyph))
    radius = s / 2 - ring * 1.6 - glyph * 0.62
    for k, ch in enumerate(text):
        ang = -span / 2 + (span * (k + 0.5) / n)  # 0 = top, clockwise
        tile = Image.new("L", (round(glyph * 1.5), round(glyph * 1.5)), 0)
        td = ImageDraw.Draw(tile)
        td.text((tile.width / 2, tile.height / 2), ch, font=font, fill=255, anchor="mm")
        tile = tile.filter(ImageFilter.MaxFilter(3))  # seal engravings are bold
        tile = tile.rotate(-ang, resample=Image.BICUBIC)
        rad = math.radians(ang - 90)
        x = c + radius * math.cos(rad) - tile.width / 2
        y = c + radius * math.sin(rad) - tile.height / 2
        img.paste(255, (round(x), round(y)), tile)

    if label:
        lf = ImageFont.truetype(io.BytesIO(font_data), round(s * 0.085))
        d.text((c, c + s * 0.27), label, font=lf, fill=255, anchor="mm")

    img = img.resize((size, size), Image.LANCZOS)
    alpha = img.point(lambda v: v * 215 // 255)  # ink lets a little paper through
    out = Image.new("RGBA", (size, size), SEAL_RED + (0,))
    out.putalpha(alpha)
    buf = io.BytesIO()
    out.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


# --------------------------------------------------------------------------- PAdES


def _seal_spot(writer) -> tuple[int, tuple[int, int, int, int]]:
    """Where the minutes asked for the seal, else the bottom right of the last page."""
    from meeting_server.minutes.pdf import SEAL_SPOT_KEY

    try:
        spot = writer.trailer["/Info"]["/" + SEAL_SPOT_KEY]
        page_ix = int(spot[0])
        x0, y0, x1, y1 = (round(float(spot[i])) for i in range(1, 5))
        if x1 > x0 and y1 > y0:
            return page_ix, (x0, y0, x1, y1)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        pass
    page_ref, _ = writer.find_page_for_modification(-1)
    try:
        _, by0, bx1, _ = (float(v) for v in page_ref.get_object()["/MediaBox"])
    except (KeyError, TypeError, ValueError):
        by0, bx1 = 0.0, 595.0
    side = 113  # 40 mm
    return -1, (int(bx1 - 56 - side), int(by0 + 64), int(bx1 - 56), int(by0 + 64 + side))


def _signer(keys: Keys):
    from asn1crypto import keys as asn1_keys
    from asn1crypto import x509 as asn1_x509
    from pyhanko.sign import signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    cert = asn1_x509.Certificate.load(keys.cert_der)
    key = asn1_keys.PrivateKeyInfo.load(
        keys.org_key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return signers.SimpleSigner(signing_cert=cert, signing_key=key, cert_registry=SimpleCertificateStore())


def _sign_pdf_now(
    pdf_bytes: bytes,
    keys: Keys,
    seal_png: bytes | None,
    reason: str,
    location: str,
    field_name: str = "Seal",
) -> bytes:
    """Sign a PDF (PAdES B-B, SHA-256) with the organization certificate.

    The signature goes into the empty signature field ``field_name`` if the
    PDF has one; otherwise into a new field on the seal spot the minutes
    recorded (see ``minutes.pdf.SEAL_SPOT_KEY``), or at the bottom right of
    the last page. Its appearance is the seal image (``seal_png``, or one
    drawn from the organization's name).
    """
    from PIL import Image
    from pyhanko import stamp
    from pyhanko.pdf_utils import layout
    from pyhanko.pdf_utils.images import PdfImage
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers

    writer = IncrementalPdfFileWriter(io.BytesIO(pdf_bytes), strict=False)
    empty = {name for name, _, _ in fields.enumerate_sig_fields(writer, filled_status=False)}
    taken = {name for name, _, _ in fields.enumerate_sig_fields(writer, filled_status=True)}
    new_field = None
    if field_name not in empty:
        name, k = field_name, 1
        while name in taken or name in empty:
            k += 1
            name = f"{field_name}{k}"
        field_name = name
        page_ix, box = _seal_spot(writer)
        new_field = fields.SigFieldSpec(sig_field_name=field_name, on_page=page_ix, box=box)

    img = Image.open(io.BytesIO(seal_png or make_seal_png(keys.org_name)))
    if img.mode not in ("RGB", "RGBA", "L", "LA"):
        img = img.convert("RGBA")
    style = stamp.StaticStampStyle(
        border_width=0,
        background=PdfImage(img, box=layout.BoxConstraints(1000, 1000 * img.height / img.width)),
        background_opacity=1.0,
        background_layout=layout.SimpleBoxLayoutRule(
            x_align=layout.AxisAlignment.ALIGN_MID,
            y_align=layout.AxisAlignment.ALIGN_MID,
            margins=layout.Margins.uniform(0),
            inner_content_scaling=layout.InnerScaling.SHRINK_TO_FIT,
        ),
    )
    meta = signers.PdfSignatureMetadata(
        field_name=field_name,
        reason=reason or None,
        location=location or None,
        name=keys.org_name or None,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
    )
    pdf_signer = signers.PdfSigner(meta, signer=_signer(keys), stamp_style=style, new_field_spec=new_field)
    out = pdf_signer.sign_pdf(writer)
    return out.getvalue()


def sign_pdf(*args, **kwargs) -> bytes:
    """Sign a PDF (see `_sign_pdf_now` for the arguments), also from a thread with a running event loop.

    pyHanko signs through `asyncio.run`, which refuses to start where a loop already runs (a caller's
    thread may have one, e.g. Playwright's sync API); then the signing runs in a short-lived thread.
    """
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _sign_pdf_now(*args, **kwargs)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(_sign_pdf_now, *args, **kwargs).result()
