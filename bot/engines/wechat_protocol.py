"""WeChat Official Account wire format: signatures, the XML messages, and the encrypted ("safe") mode.

Everything here is pure and synchronous, so the endpoint, the simulator and the tests share one
implementation of WeChat's rules:

* the signature is the SHA-1 hex of the lexicographically sorted token, timestamp and nonce (plus the
  ``Encrypt`` field in safe mode) concatenated;
* safe mode encrypts ``random(16) + length(4, big-endian) + xml + app_id`` with AES-256-CBC, the key being the
  43-character EncodingAESKey decoded from base64 and the IV its first 16 bytes, padded with PKCS#7 to a
  32-byte block (WeChat's block size, not AES's 16).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

PAD_BLOCK = 32
MAX_BODY = 64 * 1024  # WeChat's messages are small; anything larger is not from WeChat


class WeChatProtocolError(ValueError):
    """A request that is not a well-formed WeChat message (bad XML, bad ciphertext, wrong app id)."""


def signature(*parts: str) -> str:
    """WeChat's signature of the token, timestamp, nonce (and, in safe mode, the ciphertext)."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def signature_matches(given: str, *parts: str) -> bool:
    # A constant-time compare, so the signature cannot be guessed byte by byte from response times.
    return hmac.compare_digest(given.encode(), signature(*parts).encode())


def parse_xml(body: bytes) -> dict[str, str]:
    """The flat fields of a WeChat XML message (``<xml><ToUserName>...</ToUserName>...</xml>``)."""
    if len(body) > MAX_BODY:
        raise WeChatProtocolError("message too large")
    # WeChat never sends a DTD; refusing one rules out entity-expansion tricks before parsing.
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise WeChatProtocolError("DTDs are not accepted")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as error:
        raise WeChatProtocolError(f"bad XML: {error}") from error
    if root.tag != "xml":
        raise WeChatProtocolError(f"unexpected root element {root.tag!r}")
    return {child.tag: (child.text or "").strip() for child in root if len(child) == 0}


def build_xml(fields: dict[str, str | int | float]) -> str:
    """A WeChat XML message; text goes in CDATA as WeChat writes it, numbers bare."""
    parts = ["<xml>"]
    for name, value in fields.items():
        parts.append(f"<{name}>{_xml_value(value)}</{name}>")
    parts.append("</xml>")
    return "".join(parts)


def _xml_value(value: str | int | float) -> str:
    if not isinstance(value, str):
        return str(value)
    # "]]>" cannot appear inside CDATA; escaped text is equivalent for any XML parser.
    return escape(value) if "]]>" in value else f"<![CDATA[{value}]]>"


class WeChatCrypto:
    """Encrypts and decrypts message bodies of WeChat's safe mode for one account."""

    def __init__(self, token: str, encoding_aes_key: str, app_id: str) -> None:
        if len(encoding_aes_key) != 43:
            raise ValueError("the EncodingAESKey has 43 characters")
        self.token = token
        self.app_id = app_id
        self.key = base64.b64decode(encoding_aes_key + "=")
        self.iv = self.key[:16]

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self.key), modes.CBC(self.iv))

    def encrypt(self, xml: str, random_prefix: bytes | None = None) -> str:
        body = xml.encode()
        plain = (random_prefix or os.urandom(16)) + struct.pack(">I", len(body)) + body + self.app_id.encode()
        pad = PAD_BLOCK - len(plain) % PAD_BLOCK
        encryptor = self._cipher().encryptor()
        cipher = encryptor.update(plain + bytes([pad]) * pad) + encryptor.finalize()
        return base64.b64encode(cipher).decode()

    def decrypt(self, encrypted: str) -> str:
        try:
            cipher = base64.b64decode(encrypted, validate=True)
            decryptor = self._cipher().decryptor()
            plain = decryptor.update(cipher) + decryptor.finalize()
        except ValueError as error:
            raise WeChatProtocolError(f"cannot decrypt: {error}") from error
        pad = plain[-1] if plain else 0
        if not 1 <= pad <= PAD_BLOCK or len(plain) < 20 + pad:
            raise WeChatProtocolError("bad padding")
        content = plain[16:-pad]
        (length,) = struct.unpack(">I", content[:4])
        xml, app_id = content[4 : 4 + length], content[4 + length :]
        if app_id.decode(errors="replace") != self.app_id:
            raise WeChatProtocolError("the message is for another app id")
        return xml.decode()

    def wrap(self, xml: str, timestamp: str, nonce: str) -> tuple[str, str]:
        """The encrypted envelope WeChat posts for ``xml`` and its ``msg_signature``."""
        encrypted = self.encrypt(xml)
        envelope = build_xml({"ToUserName": "", "Encrypt": encrypted})
        return envelope, signature(self.token, timestamp, nonce, encrypted)

    def unwrap(self, envelope: dict[str, str], msg_signature: str, timestamp: str, nonce: str) -> bytes:
        """The plain XML inside an encrypted envelope, after checking its ``msg_signature``."""
        encrypted = envelope.get("Encrypt", "")
        if not encrypted or not signature_matches(msg_signature, self.token, timestamp, nonce, encrypted):
            raise WeChatSignatureError("bad msg_signature")
        return self.decrypt(encrypted).encode()


class WeChatSignatureError(WeChatProtocolError):
    """The request was not signed with the account's token."""
