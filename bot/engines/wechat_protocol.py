"""WeChat Official Account wire format: signatures, the XML messages, and the encrypted ("safe") mode.

Everything here is pure and synchronous, so the endpoint, the simulator and the tests share one
implementation of WeChat's rules:

* the signature is the SHA-1 hex of the lexicographically sorted token, timestamp and nonce (plus the
  ``Encrypt`` field in safe mode) concatenated;
* safe mode encrypts ``random(16) + length(4, big-endian) + xml + app_id`` with AES-256-CBC, the key being the
  43-character EncodingAESKey decoded from base64 and the IV its first 16 bytes, padded with PKCS#7 to a
  32-byte block (WeChat's block size, not AES's 16).

XML is parsed with defusedxml and must be UTF-8 without a DTD, the way WeChat writes it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import struct
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.padding import PKCS7
from defusedxml.ElementTree import fromstring as defused_fromstring

PAD_BLOCK = 32
MAX_BODY = 64 * 1024  # WeChat's messages are small; anything larger is not from WeChat
# A text message holds at most 2048 bytes; URLs, ids and the ciphertext of safe mode stay well below this.
MAX_FIELD = 8 * 1024
MAX_FIELDS = 40
XML_DECLARATION = re.compile(r"""\s*<\?xml[^>]*?encoding\s*=\s*["'](?P<encoding>[^"']*)["']""")


class WeChatProtocolError(ValueError):
    """A request that is not a well-formed WeChat message (bad XML, bad ciphertext, wrong app id)."""


def signature(*parts: str) -> str:
    """WeChat's signature of the token, timestamp, nonce (and, in safe mode, the ciphertext)."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def signature_matches(given: str, *parts: str) -> bool:
    # A constant-time compare, so the signature cannot be guessed byte by byte from response times.
    return hmac.compare_digest(given.encode(), signature(*parts).encode())


def parse_xml(body: bytes) -> dict[str, str]:
    """The flat fields of a WeChat XML message (``<xml><ToUserName>...</ToUserName>...</xml>``).

    WeChat sends small UTF-8 documents without a DTD; anything else is refused before it can be stored.
    """
    if len(body) > MAX_BODY:
        raise WeChatProtocolError("message too large")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WeChatProtocolError("the body is not UTF-8") from None
    declared = XML_DECLARATION.match(text)
    if declared is not None and declared["encoding"] and declared["encoding"].lower() not in ("utf-8", "utf8"):
        raise WeChatProtocolError("the body declares an encoding other than UTF-8")
    try:
        root = defused_fromstring(body, forbid_dtd=True)
    except (ET.ParseError, ValueError) as error:  # defusedxml's refusals are ValueErrors
        raise WeChatProtocolError(f"bad XML: {error}") from error
    if root.tag != "xml":
        raise WeChatProtocolError(f"unexpected root element {root.tag!r}")
    fields = {child.tag: (child.text or "").strip() for child in root if len(child) == 0}
    if len(fields) > MAX_FIELDS or any(len(value) > MAX_FIELD for value in fields.values()):
        raise WeChatProtocolError("too many or too long fields")
    return fields


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
        return self.encrypt_bytes(xml.encode(), random_prefix)

    def encrypt_bytes(self, body: bytes, random_prefix: bytes | None = None) -> str:
        plain = (random_prefix or os.urandom(16)) + struct.pack(">I", len(body)) + body + self.app_id.encode()
        padder = PKCS7(PAD_BLOCK * 8).padder()
        encryptor = self._cipher().encryptor()
        cipher = encryptor.update(padder.update(plain) + padder.finalize()) + encryptor.finalize()
        return base64.b64encode(cipher).decode()

    def decrypt(self, encrypted: str) -> str:
        try:
            cipher = base64.b64decode(encrypted, validate=True)
            decryptor = self._cipher().decryptor()
            padded = decryptor.update(cipher) + decryptor.finalize()
            unpadder = PKCS7(PAD_BLOCK * 8).unpadder()
            plain = unpadder.update(padded) + unpadder.finalize()
        except ValueError as error:  # bad base64, a partial block or bad padding
            raise WeChatProtocolError("cannot decrypt the message") from error
        if len(plain) < 20:
            raise WeChatProtocolError("the decrypted message is too short")
        (length,) = struct.unpack(">I", plain[16:20])
        xml, app_id = plain[20 : 20 + length], plain[20 + length :]
        if len(xml) != length or app_id != self.app_id.encode():
            raise WeChatProtocolError("the message is for another app id")
        try:
            return xml.decode()
        except UnicodeDecodeError:
            raise WeChatProtocolError("the decrypted message is not UTF-8") from None

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
