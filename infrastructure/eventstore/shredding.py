"""Crypto-shredding: the personal fields of an artifact's events, sealed under its own key.

eventsourcing stores events for ever, and some copies of them (backups, replicas, a
KurrentDB stream) are out of reach. So the fields that may hold personal data
(``domain.artifact.PERSONAL_FIELDS``: the filename, the summary, a failure message) never
reach the store in clear: ``SealingMapper`` encrypts each with AES-256-GCM under a key of
the artifact's own, kept in a ``KeyStore`` outside the events, with the artifact's id and
the field's name as associated data (a sealed value cannot be moved to another artifact or
field). Erasing the artifact destroys its key: every copy of its events still decodes, and
the personal fields read as ``ERASED_TEXT``.

A sealed value is stored as ``{"sealed": "<base64 of nonce and ciphertext>"}``; a field
stored before this existed is a plain value and is read as it is.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from typing import Any, TypeGuard
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Cipher, Compressor, Mapper, StoredEvent, Transcoder

from application.ports import KeyStore
from domain.artifact import ERASED_TEXT, PERSONAL_FIELDS

SEALED = "sealed"
KEY_BYTES = 32
_NONCE_BYTES = 12


def new_key() -> bytes:
    """A fresh AES-256 key."""
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def sealing(keys: KeyStore) -> Callable[[Mapper[UUID]], Mapper[UUID]]:
    """What ``ArtifactsApplication(sealing=...)`` takes: the application's own mapper (its
    transcoder, and any compressor or cipher its environment asks for), sealing too."""

    def wrap(mapper: Mapper[UUID]) -> Mapper[UUID]:
        return SealingMapper(
            mapper.transcoder, keys, compressor=mapper.compressor, cipher=mapper.cipher
        )

    return wrap


class SealingMapper(Mapper[UUID]):
    """eventsourcing's mapper, sealing and unsealing the personal fields of the events."""

    def __init__(
        self,
        transcoder: Transcoder,
        keys: KeyStore,
        compressor: Compressor | None = None,
        cipher: Cipher | None = None,
    ) -> None:
        super().__init__(transcoder, compressor=compressor, cipher=cipher)
        self.keys = keys

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        fields = PERSONAL_FIELDS.get(type(domain_event).__name__)
        if not fields:
            return super().to_stored_event(domain_event)
        originator_id = domain_event.originator_id
        # Made (and stored) before the event is: an event is never stored without its key.
        key = AESGCM(self.keys.create_key(originator_id))
        sealed = object.__new__(type(domain_event))
        state = dict(vars(domain_event))
        for name in fields:
            state[name] = _seal(key, originator_id, name, state[name])
        object.__setattr__(sealed, "__dict__", state)
        return super().to_stored_event(sealed)

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        domain_event = super().to_domain_event(stored_event)
        fields = PERSONAL_FIELDS.get(type(domain_event).__name__)
        if not fields:
            return domain_event
        state = vars(domain_event)
        if not any(_is_sealed(state.get(name)) for name in fields):
            return domain_event  # stored before fields were sealed
        raw_key = self.keys.key_for(domain_event.originator_id)
        key = AESGCM(raw_key) if raw_key is not None else None
        for name in fields:
            if _is_sealed(value := state.get(name)):
                state[name] = _unseal(key, domain_event.originator_id, name, value)
        return domain_event


def _seal(key: AESGCM, originator_id: UUID, name: str, value: Any) -> dict[str, str]:
    nonce = os.urandom(_NONCE_BYTES)
    plain = json.dumps(value, ensure_ascii=False).encode()
    sealed = nonce + key.encrypt(nonce, plain, _associated(originator_id, name))
    return {SEALED: base64.b64encode(sealed).decode("ascii")}


def _unseal(key: AESGCM | None, originator_id: UUID, name: str, value: dict[str, str]) -> Any:
    if key is None:  # erased: the key is destroyed
        return ERASED_TEXT
    sealed = base64.b64decode(value[SEALED])
    try:
        plain = key.decrypt(
            sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], _associated(originator_id, name)
        )
    except InvalidTag:
        raise ValueError(
            f"the sealed {name} of {originator_id} does not open with its key"
        ) from None
    return json.loads(plain)


def _associated(originator_id: UUID, name: str) -> bytes:
    return f"{originator_id}/{name}".encode()


def _is_sealed(value: object) -> TypeGuard[dict[str, str]]:
    return isinstance(value, dict) and set(value) == {SEALED}
