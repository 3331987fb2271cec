"""Provenance hints (EXIF, C2PA): read from files built here; bad or hostile metadata is a note, never an error."""

from __future__ import annotations

import datetime
import io
import json
import struct
import sys

import numpy as np
import pytest
from PIL import Image

from forensic.pipeline import Detector
from forensic.pipeline.loading import load
from forensic.provenance import MAX_TEXT, PIXELS_NOTE, Provenance, read_provenance


def _jpeg(exif: Image.Exif | None = None, size: int = 32) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), (120, 90, 60)).save(out, "JPEG", **({"exif": exif} if exif is not None else {}))
    return out.getvalue()


def _camera_exif(software: str = "GIMP 2.10") -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0131], exif[0x0132] = "Canon", "EOS 5D", software, "2024:01:02 10:00:00"
    exif.get_ifd(0x8769)[0x9003] = "2023:12:31 09:00:00"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (48.0, 51.0, 30.0)
    return exif


def _with_segment(jpeg: bytes, marker: int, payload: bytes) -> bytes:
    """``jpeg`` with one more APPn segment right after SOI (the length field as written, even if it lies)."""
    return jpeg[:2] + bytes([0xFF, marker]) + payload + jpeg[2:]


def test_exif_camera_software_dates_and_gps(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(_jpeg(_camera_exif()))
    p = read_provenance(path)
    assert p.has_file and p.notes == ()
    assert p.exif == {"make": "Canon", "model": "EOS 5D", "software": "GIMP 2.10", "modified": "2024:01:02 10:00:00",
                      "taken": "2023:12:31 09:00:00", "gps": True}
    assert p.c2pa is False and not p.ai_generated
    text = p.summary()
    assert "camera Canon EOS 5D" in text and "software GIMP 2.10" in text and "GPS location present" in text
    assert "Content Credentials (C2PA): none" in text
    # JSON-able, and the same from bytes as from the path
    assert json.loads(json.dumps(p.to_dict())) == p.to_dict()
    assert read_provenance(path.read_bytes()) == p and read_provenance(str(path)) == p


def test_no_metadata():
    p = read_provenance(_jpeg())
    assert p.has_file and p.exif == {} and p.c2pa is False and p.notes == ()
    assert p.summary() == "EXIF: none. Content Credentials (C2PA): none."
    exif = Image.Exif()
    exif[0x010F] = "Nikon"
    assert read_provenance(_jpeg(exif)).exif == {"make": "Nikon", "gps": False}


@pytest.mark.parametrize("pixels", [np.zeros((8, 8, 3), np.uint8), Image.new("RGB", (8, 8)), None, 3.5])
def test_pixels_have_no_file_metadata(pixels):
    p = read_provenance(pixels)
    assert not p.has_file and p.notes == (PIXELS_NOTE,) and p.summary() == PIXELS_NOTE
    assert p.to_dict()["c2pa"]["present"] is None


def test_huge_exif_string_is_cut():
    p = read_provenance(_jpeg(_camera_exif(software="A" * 60_000)))
    assert len(p.exif["software"]) == MAX_TEXT and p.exif["software"].endswith("…")
    assert len(p.summary()) < 1000


def test_hostile_text_is_one_line():
    p = read_provenance(_jpeg(_camera_exif(software="evil\n\x00<script>\r\nsecond line")))
    assert p.exif["software"] == "evil <script> second line"


@pytest.mark.parametrize("cut", [3, 20, 200])
def test_truncated_file_is_a_note(cut):
    data = _jpeg(_camera_exif())[:cut]
    p = read_provenance(data)
    assert p.has_file and p.notes and all("\n" not in n for n in p.notes)
    assert p.summary()


def test_malformed_app1_is_a_note_or_nothing():
    # an APP1 that claims to be EXIF but holds garbage, and one whose length runs past the file
    for payload in (struct.pack(">H", 20) + b"Exif\x00\x00" + b"\xff" * 12, struct.pack(">H", 60000) + b"Exif\x00\x00MM"):
        p = read_provenance(_with_segment(_jpeg(), 0xE1, payload))
        assert p.has_file and p.exif.get("make") is None
        assert all("\n" not in n for n in p.notes)


def test_malformed_c2pa_segment_is_a_note():
    # APP11 with a JUMBF header ("JP" + box) but a broken manifest store inside
    box = b"JP" + struct.pack(">HI", 1, 1) + struct.pack(">I", 40) + b"jumb" + b"\x00" * 8 + b"c2pa" + b"\x13" * 20
    p = read_provenance(_with_segment(_jpeg(), 0xEB, struct.pack(">H", len(box) + 2) + box))
    assert p.has_file and p.c2pa is not True
    assert p.c2pa is False or any("Content Credentials" in n for n in p.notes)
    assert "Content Credentials" in p.summary()


def test_missing_or_failing_file(tmp_path):
    p = read_provenance(tmp_path / "gone.jpg")
    assert p.has_file and len(p.notes) == 1 and "could not be read" in p.notes[0]
    d = tmp_path / "folder"
    d.mkdir()
    assert read_provenance(d).notes
    assert read_provenance(b"not an image at all").notes


def test_without_the_c2pa_bindings_the_note_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "c2pa", None)  # import c2pa raises ImportError
    p = read_provenance(_jpeg(_camera_exif()))
    assert p.c2pa is None and p.exif["make"] == "Canon"
    assert any("c2pa-python bindings could not be loaded" in n for n in p.notes)


class _FakeReader:
    def __init__(self, store):
        self.store = store

    def json(self):
        return json.dumps(self.store)

    def close(self):
        raise RuntimeError("close fails too")


def _fake_c2pa(monkeypatch, result):
    c2pa = pytest.importorskip("c2pa")

    def try_create(*args, **kwargs):
        if isinstance(result, BaseException):
            raise result
        return _FakeReader(result)

    monkeypatch.setattr(c2pa.Reader, "try_create", staticmethod(try_create))


def test_c2pa_manifest_hints_signer_generator_ai_and_validation(monkeypatch):
    ai = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
    store = {
        "active_manifest": "urn:a",
        "manifests": {"urn:a": {
            "claim_generator_info": [{"name": "ImageMaker", "version": "1.0"}],
            "signature_info": {"issuer": "Example CA", "common_name": "Example Signer"},
            "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": [{"action": "c2pa.created",
                                                                              "digitalSourceType": ai}]}}],
        }},
        "validation_state": "Invalid",
        "validation_results": {"activeManifest": {"failure": [{"code": "assertion.dataHash.mismatch"}]}},
    }
    _fake_c2pa(monkeypatch, store)
    p = read_provenance(_jpeg())
    assert p.c2pa is True and p.signer == "Example Signer" and p.claim_generator == "ImageMaker 1.0"
    assert p.ai_generated and p.ai_source_types == ("trainedAlgorithmicMedia",)
    assert p.validation_state == "Invalid" and p.validation_errors == ("assertion.dataHash.mismatch",)
    text = p.summary()
    assert "signed by Example Signer" in text and "declares generative AI" in text and "dataHash.mismatch" in text


@pytest.mark.parametrize("store", [[], {"manifests": "x"}, {"active_manifest": "missing", "manifests": {}},
                                   {"validation_status": [{"code": "claim.missing"}, "junk"]}])
def test_odd_manifest_stores_do_not_raise(monkeypatch, store):
    _fake_c2pa(monkeypatch, store)
    p = read_provenance(_jpeg())
    assert isinstance(p, Provenance) and p.summary()


@pytest.mark.parametrize("error", [RuntimeError("native library crashed"), MemoryError(), ValueError("")])
def test_a_c2pa_library_that_raises_is_a_note(monkeypatch, error):
    _fake_c2pa(monkeypatch, error)
    p = read_provenance(_jpeg(_camera_exif()))
    assert p.c2pa is None and p.exif["make"] == "Canon"
    assert any(n.startswith("Content Credentials unreadable") for n in p.notes)


def test_the_load_stage_keeps_the_file_hints(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(_jpeg(_camera_exif(), size=64))
    assert load(path).provenance.exif["make"] == "Canon"
    assert load(path.read_bytes(), degradation="jpeg:quality=50").provenance.exif["gps"] is True
    assert load(np.zeros((64, 64, 3), np.uint8)).provenance.notes == (PIXELS_NOTE,)
    # decoded elsewhere: the origin names the file
    from forensic.images import decode_image

    assert load(decode_image(str(path)), origin=path).provenance.exif["model"] == "EOS 5D"


AI_SOURCE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def _signed_jpeg() -> bytes:
    """A JPEG with Content Credentials signed here, offline, by a throw-away test CA (ES256)."""
    c2pa = pytest.importorskip("c2pa")
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def cert(subject, issuer, key, sign_key, *, ca):
        usage = dict(content_commitment=False, key_encipherment=False, data_encipherment=False, key_agreement=False,
                     encipher_only=False, decipher_only=False)
        b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject),
                                                                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tests")]))
             .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer),
                                     x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tests")]))
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
             .add_extension(x509.KeyUsage(digital_signature=not ca, key_cert_sign=ca, crl_sign=ca, **usage), critical=True)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
        if not ca:
            b = (b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
                 .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(sign_key.public_key()), critical=False))
        return b.sign(sign_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = cert("Test CA", "Test CA", ca_key, ca_key, ca=True)
    leaf = cert("Test Signer", "Test CA", key, ca_key, ca=False)
    chain = leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain, pem, None))
    manifest = {"claim_generator_info": [{"name": "forensic-tests", "version": "1.0"}], "title": "test.jpg",
                "format": "image/jpeg",
                "assertions": [{"label": "c2pa.actions", "data": {"actions": [{"action": "c2pa.created",
                                                                               "digitalSourceType": AI_SOURCE}]}}]}
    src, dst = io.BytesIO(_jpeg(size=64)), io.BytesIO()
    with c2pa.Builder(json.dumps(manifest)) as builder:
        builder.sign(signer, "image/jpeg", src, dst)
    return dst.getvalue()


@pytest.fixture(scope="module")
def signed_jpeg() -> bytes:
    return _signed_jpeg()


def test_signed_content_credentials(signed_jpeg, tmp_path):
    p = read_provenance(signed_jpeg)
    assert p.c2pa is True and p.signer == "Test Signer" and p.claim_generator == "forensic-tests 1.0"
    assert p.ai_generated and p.ai_source_types == ("trainedAlgorithmicMedia",)
    # a test CA is in no trust list: the signature checks out, the signer is not trusted
    assert p.validation_state == "Valid" and p.validation_errors == ("signingCredential.untrusted",)
    assert "signed by Test Signer" in p.summary() and "declares generative AI" in p.summary()
    path = tmp_path / "signed.jpg"
    path.write_bytes(signed_jpeg)
    assert read_provenance(path) == p


def test_tampered_content_credentials_fail_validation(signed_jpeg):
    # the pixels changed after signing: the manifest no longer matches (a hint, not an error)
    data = bytearray(signed_jpeg)
    data[-40] ^= 0xFF
    p = read_provenance(bytes(data))
    assert p.c2pa is True and p.validation_state == "Invalid"
    assert any("mismatch" in e for e in p.validation_errors) and "validation failures" in p.summary()
    # cut in the middle of the manifest: a note or no manifest, never an error
    cut = read_provenance(signed_jpeg[: len(signed_jpeg) // 3])
    assert cut.has_file and cut.summary()


@pytest.fixture(scope="module")
def detector():
    return Detector.from_preset("tiny-random", device="cpu")


def test_reports_carry_the_hints_outside_the_vote(tmp_path, detector):
    path = tmp_path / "photo.jpg"
    path.write_bytes(_jpeg(_camera_exif(), size=96))
    report = detector.analyze(path, degradation="jpeg:quality=40")
    record = report.to_dict()
    assert record["provenance"]["exif"]["make"] == "Canon" and record["provenance"]["c2pa"]["present"] is False
    assert "provenance" not in record["vote"]
    pixels = detector.analyze(np.asarray(Image.open(path)))
    assert pixels.to_dict()["provenance"]["notes"] == [PIXELS_NOTE]
    assert pixels.prob_fake == pytest.approx(detector.analyze(path).prob_fake, abs=1e-6)


def test_the_app_shows_the_hints_of_the_uploaded_file(tmp_path, detector, signed_jpeg):
    pytest.importorskip("gradio")
    from webapp.files import ScratchDir
    from webapp.handlers import Handlers
    from webapp.lab import LabSettings

    handlers = Handlers(detector, scratch=ScratchDir(tmp_path))
    path = tmp_path / "photo.jpg"
    path.write_bytes(_jpeg(_camera_exif(software="[click](http://x) <b>bold</b>"), size=96))
    view = handlers.analyze_in_place(str(path), LabSettings(jpeg_quality=40), explain="none")
    assert view.provenance.startswith("**Provenance hints** (not part of the vote):")
    assert "camera Canon EOS 5D" in view.provenance and "GPS location present" in view.provenance
    # the file's text is shown, not rendered: no link, no HTML tag
    assert "](" not in view.provenance and "<b>" not in view.provenance
    assert view.report_json["provenance"]["exif"]["model"] == "EOS 5D"
    signed = tmp_path / "signed.jpg"
    signed.write_bytes(signed_jpeg)
    view = handlers.analyze_in_place(str(signed), LabSettings(), explain="none")
    assert "signed by Test Signer" in view.provenance and "declares generative AI" in view.provenance
