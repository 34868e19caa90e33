"""AES with PKCS7 padding and base64 text, as the provincial TCP envelope carries its ``data``
(docs/uplink.md, "TCP envelope"). ECB is what the platforms commonly use; CBC with a fixed IV
is the other choice. Through the ``cryptography`` package (pinned in requirements.lock)."""

from __future__ import annotations

import base64
import binascii
from typing import Literal

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

KEY_BYTES = (16, 24, 32)
IV_BYTES = 16


class AesCodec:
    """Encrypts bytes to base64 text and back. ``key``: 16, 24 or 32 bytes (AES-128/192/256);
    ``iv``: 16 bytes, for CBC only."""

    def __init__(
        self, key: bytes, mode: Literal["ecb", "cbc"] = "ecb", iv: bytes | None = None
    ) -> None:
        if len(key) not in KEY_BYTES:
            raise ValueError(f"AES key of {len(key)} bytes: must be 16, 24 or 32 bytes")
        if mode == "cbc" and (iv is None or len(iv) != IV_BYTES):
            raise ValueError(f"AES-CBC needs a {IV_BYTES}-byte IV")
        if mode == "ecb" and iv is not None:
            raise ValueError("AES-ECB takes no IV")
        self.mode = mode
        self.bits = len(key) * 8
        self._key = key
        self._iv = iv

    def _cipher(self) -> Cipher[modes.ECB] | Cipher[modes.CBC]:
        if self.mode == "cbc":
            assert self._iv is not None
            return Cipher(algorithms.AES(self._key), modes.CBC(self._iv))
        return Cipher(algorithms.AES(self._key), modes.ECB())  # the platforms use ECB

    def encrypt(self, plain: bytes) -> str:
        padder = padding.PKCS7(128).padder()
        padded = padder.update(plain) + padder.finalize()
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode("ascii")

    def decrypt(self, text: str) -> bytes:
        """The inverse of :meth:`encrypt`; ``ValueError`` for text that is not ours."""
        try:
            raw = base64.b64decode(text, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"not base64: {exc}") from None
        if not raw or len(raw) % 16:
            raise ValueError(f"{len(raw)} bytes: not a whole number of AES blocks")
        decryptor = self._cipher().decryptor()
        padded = decryptor.update(raw) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        return unpadder.update(padded) + unpadder.finalize()
