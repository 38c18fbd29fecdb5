"""Stores(db): the one list of stores, built once by the app."""

from __future__ import annotations

from dataclasses import dataclass

from storage.accounts import AccountStore
from storage.database import Database
from storage.devices import DeviceStore
from storage.registration_tokens import RegistrationTokenStore
from storage.tokens import TokenStore
from storage.uia import UIAuthStore


@dataclass(frozen=True)
class Stores:
    accounts: AccountStore
    devices: DeviceStore
    tokens: TokenStore
    uia: UIAuthStore
    registration_tokens: RegistrationTokenStore

    @classmethod
    def build(cls, db: Database) -> Stores:
        return cls(
            accounts=AccountStore(db),
            devices=DeviceStore(db),
            tokens=TokenStore(db),
            uia=UIAuthStore(db),
            registration_tokens=RegistrationTokenStore(db),
        )
