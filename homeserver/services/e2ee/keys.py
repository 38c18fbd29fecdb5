"""End-to-end encryption keys: upload, query, claim, changes, cross-signing and signatures.

The server never sees plaintext: it checks what it can (the key owner, the self-signatures)
and hands keys out faithfully. A change to a user's keys is a device-list change, so everyone
sharing a room with them re-queries; a claimed key moves the aux stream for its owner, so the
owner's next sync carries the new one-time key count.

Keys of users on other servers are asked of their servers (`e2e_keys_remote.RemoteKeys`), and
other servers ask us about our users (`*_for_server`): a peer gets our users' device keys with
their display names, master and self-signing keys with their owner's signatures only, and
never a user-signing key; it is told nothing about users of other servers. A signature one of
our users makes on a remote user's master key (cross-server verification) is checked against
the key their server gives, kept here, and shown only to its signer.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from signedjson.key import decode_verify_key_bytes
from signedjson.sign import SignatureVerifyException, verify_signed_json
from unpaddedbase64 import decode_base64

from homeserver.core.ids import is_valid_user_id, server_name_of
from homeserver.errors import Codes, MatrixError
from homeserver.services.accounts.uia import UIAService
from homeserver.services.auth import Requester
from homeserver.services.e2ee.remote_keys import DEFAULT_TIMEOUT_MS, RemoteKeys, timeout_of
from homeserver.services.ephemeral.to_device import DeviceListService
from homeserver.services.streams.aux import AuxStream
from storage.database import Database
from storage.e2e_keys import E2EKeyStore

CROSS_SIGNING_TYPES = {"master_key": "master", "self_signing_key": "self_signing", "user_signing_key": "user_signing"}
INVALID_SIGNATURE = "M_INVALID_SIGNATURE"


class E2EKeyService:
    def __init__(self, db: Database, store: E2EKeyStore, device_lists: DeviceListService, aux: AuxStream,
                 uia_service: UIAService, server_name: str, remote: RemoteKeys, *,
                 device_names_over_federation: bool = False) -> None:
        # allow_device_name_lookup_over_federation: whether peers see device display names.
        self._device_names_over_federation = device_names_over_federation
        self._db = db
        self._store = store
        self._device_lists = device_lists
        self._aux = aux
        self._uia = uia_service
        self._server_name = server_name
        self._remote = remote

    # --- keys/upload -------------------------------------------------------------------------

    async def upload(self, requester: Requester, body: dict[str, Any]) -> dict[str, Any]:
        user_id, device_id = requester.user_id, requester.device_id
        if not device_id:  # an appservice acting without a device, an admin acting as the user (as Synapse)
            raise MatrixError(400, Codes.UNKNOWN, "To upload keys, you must pass device_id when authenticating")
        await self.upload_for_device(user_id, device_id, body)
        return {"one_time_key_counts": await self.one_time_key_counts(user_id, device_id)}

    def check_upload(self, user_id: str, device_id: str, body: dict[str, Any]) -> None:
        """Raise what `upload_for_device` would raise for a malformed body, writing nothing."""
        self._parse_upload(user_id, device_id, body)

    async def upload_for_device(self, user_id: str, device_id: str, body: dict[str, Any]) -> None:
        """Store a device's keys (a keys/upload body), the whole body checked before any write."""
        device_keys, one_time, fallback = self._parse_upload(user_id, device_id, body)
        changed = False
        if device_keys is not None:
            if await self._store.get_device_keys(user_id, device_id) != device_keys:
                await self._store.set_device_keys(user_id, device_id, device_keys)
                changed = True
        if one_time:
            existing = await self._store.existing_one_time_keys(user_id, device_id, list(one_time))
            for ids, key in one_time.items():
                if ids in existing and existing[ids] != key:
                    raise MatrixError(400, Codes.INVALID_PARAM,
                                      f"One-time key {ids[0]}:{ids[1]} already exists with different content")
            await self._store.add_one_time_keys(
                user_id, device_id, [(a, k, v) for (a, k), v in one_time.items() if (a, k) not in existing])
        for (algorithm, key_id), key in fallback.items():
            await self._store.set_fallback_key(user_id, device_id, algorithm, key_id, key)
        if changed:
            await self._device_lists.mark_changed(user_id, [device_id])
        elif one_time or fallback:
            await self._aux.touch([user_id])  # the uploader's next sync carries the new counts

    @staticmethod
    def _parse_upload(user_id: str, device_id: str, body: dict[str, Any]
                      ) -> tuple[dict[str, Any] | None, dict[tuple[str, str], Any], dict[tuple[str, str], Any]]:
        device_keys = body.get("device_keys")
        if device_keys is not None:
            _check_device_keys(device_keys, user_id, device_id)
        one_time = _key_map(body.get("one_time_keys"), "one_time_keys")
        fallback = _key_map(body.get("fallback_keys", body.get("org.matrix.msc2732.fallback_keys")), "fallback_keys")
        return device_keys, one_time, fallback

    async def one_time_key_counts(self, user_id: str, device_id: str) -> dict[str, int]:
        counts = await self._store.one_time_key_counts(user_id, device_id)
        counts.setdefault("signed_curve25519", 0)  # clients expect it even at zero (as Synapse)
        return counts

    async def unused_fallback_key_types(self, user_id: str, device_id: str) -> list[str]:
        return await self._store.unused_fallback_key_types(user_id, device_id)

    # --- keys/query --------------------------------------------------------------------------

    async def query(self, requester: Requester, body: dict[str, Any]) -> dict[str, Any]:
        """POST /keys/query of a client: our users from the database, the others' from their servers."""
        local, remote = self._split_query(body)
        remote_task = asyncio.ensure_future(self._remote.query(remote, timeout_of(body))) if remote else None
        try:
            result = await self._query_local(local, viewer=requester.user_id)
        except BaseException:
            if remote_task is not None:
                remote_task.cancel()
            raise
        result["failures"] = {}
        if remote_task is not None:
            answered, result["failures"] = await remote_task
            if answered["master_keys"]:
                await self._with_own_signatures(requester.user_id, answered["master_keys"])
            for field, by_user in answered.items():
                result[field].update(by_user)
        return result

    async def query_for_server(self, origin: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST /_matrix/federation/v1/user/keys/query: our users only; others are left out."""
        local, _ = self._split_query(body)
        result = await self._query_local(local, viewer=None, names=self._device_names_over_federation)
        del result["user_signing_keys"]
        return result

    async def devices_for_server(self, user_id: str) -> dict[str, Any]:
        """GET /_matrix/federation/v1/user/devices/{userId}: a local user's devices with keys,
        their cross-signing keys, and the device-list position (`stream_id`) they stand at."""
        if not is_valid_user_id(user_id) or server_name_of(user_id) != self._server_name:
            raise MatrixError(400, Codes.INVALID_PARAM, "The user is not hosted on this homeserver")
        found = await self._query_local({user_id: []}, viewer=None, names=self._device_names_over_federation)
        devices = []
        for device_id, keys in sorted(found["device_keys"].get(user_id, {}).items()):
            device: dict[str, Any] = {"device_id": device_id, "keys": keys}
            name = keys.get("unsigned", {}).get("device_display_name")
            if name is not None:
                device["device_display_name"] = name
            devices.append(device)
        result: dict[str, Any] = {"user_id": user_id, "stream_id": await self._device_lists.stream_id(user_id),
                                  "devices": devices}
        for field, kind in (("master_key", "master_keys"), ("self_signing_key", "self_signing_keys")):
            if user_id in found[kind]:
                result[field] = found[kind][user_id]
        return result

    def _split_query(self, body: dict[str, Any]) -> tuple[dict[str, list[str]], dict[str, dict[str, list[str]]]]:
        """`device_keys` checked, as our users' wishes and other servers' (by server)."""
        wanted = body.get("device_keys")
        if not isinstance(wanted, dict):
            raise MatrixError(400, Codes.BAD_JSON, "'device_keys' must be an object")
        local: dict[str, list[str]] = {}
        remote: dict[str, dict[str, list[str]]] = {}
        for user_id, devices in wanted.items():
            if not is_valid_user_id(user_id) or not isinstance(devices, list) \
                    or not all(isinstance(d, str) for d in devices):
                raise MatrixError(400, Codes.BAD_JSON, f"Invalid device_keys entry for {user_id!r}")
            server = server_name_of(user_id)
            if server == self._server_name:
                local[user_id] = devices
            elif server:
                remote.setdefault(server, {})[user_id] = devices
        return local, remote

    async def _query_local(self, local: dict[str, list[str]], viewer: str | None,
                           names: bool = True) -> dict[str, Any]:
        """Keys of our users. `viewer`: the asking user, who also sees their own user-signing
        key and the signatures they made; None for another server. `names`: with the devices'
        display names (in `unsigned`)."""
        user_ids = sorted(local)
        signatures = await self._signatures_by_target(user_ids)
        device_keys: dict[str, dict[str, Any]] = {u: {} for u in user_ids}
        for user_id, device_id, keys, display_name in await self._store.devices_with_keys(user_ids):
            if keys is None or (local[user_id] and device_id not in local[user_id]):
                continue
            keys = _with_signatures(keys, signatures.get((user_id, device_id), []))
            unsigned = keys.setdefault("unsigned", {})  # always there, as Synapse answers
            if display_name is not None and names:
                unsigned["device_display_name"] = display_name
            device_keys[user_id][device_id] = keys
        result: dict[str, Any] = {"device_keys": device_keys,
                                  "master_keys": {}, "self_signing_keys": {}, "user_signing_keys": {}}
        for (user_id, key_type), key in (await self._store.cross_signing_keys(user_ids)).items():
            if key_type == "user_signing" and user_id != viewer:
                continue  # only the owner sees their user-signing key
            public = _public_key(key)
            relevant = [s for s in signatures.get((user_id, public), [])
                        if s[0] in (user_id, viewer)] if public else []
            result[f"{key_type}_keys"][user_id] = _with_signatures(key, relevant)
        return result

    # --- keys/claim --------------------------------------------------------------------------

    async def claim(self, requester: Requester, body: dict[str, Any]) -> dict[str, Any]:
        """POST /keys/claim of a client: our users' keys here, the others' from their servers."""
        local, remote = self._split_claim(body)
        remote_task = asyncio.ensure_future(self._remote.claim(remote, timeout_of(body))) if remote else None
        try:
            one_time_keys = await self._claim_local(local)
        except BaseException:
            if remote_task is not None:
                remote_task.cancel()
            raise
        failures: dict[str, Any] = {}
        if remote_task is not None:
            claimed, failures = await remote_task
            one_time_keys.update(claimed)
        return {"one_time_keys": one_time_keys, "failures": failures}

    async def claim_for_server(self, origin: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST /_matrix/federation/v1/user/keys/claim: our users only; others are left out."""
        local, _ = self._split_claim(body)
        return {"one_time_keys": await self._claim_local(local)}

    def _split_claim(self, body: dict[str, Any]) -> tuple[list[tuple[str, str, str]],
                                                          dict[str, dict[str, dict[str, str]]]]:
        wanted_body = body.get("one_time_keys")
        if not isinstance(wanted_body, dict):
            raise MatrixError(400, Codes.BAD_JSON, "'one_time_keys' must be an object")
        local: list[tuple[str, str, str]] = []
        remote: dict[str, dict[str, dict[str, str]]] = {}
        for user_id, devices in wanted_body.items():
            if not is_valid_user_id(user_id) or not isinstance(devices, dict) \
                    or not all(isinstance(a, str) for a in devices.values()):
                raise MatrixError(400, Codes.BAD_JSON, f"Invalid one_time_keys entry for {user_id!r}")
            server = server_name_of(user_id)
            if server == self._server_name:
                local.extend((user_id, device_id, algorithm) for device_id, algorithm in devices.items())
            elif server and devices:
                remote.setdefault(server, {})[user_id] = devices
        return local, remote

    async def _claim_local(self, wanted: list[tuple[str, str, str]]) -> dict[str, dict[str, Any]]:
        claimed = await self._store.claim(wanted)
        one_time_keys: dict[str, dict[str, Any]] = {}
        for (user_id, device_id), (algorithm, key_id, key) in claimed.items():
            one_time_keys.setdefault(user_id, {})[device_id] = {f"{algorithm}:{key_id}": key}
        owners = {u for u, _ in claimed}
        if owners:
            await self._aux.touch(owners)  # their next sync must carry the lower key count
        return one_time_keys

    # --- cross-signing -----------------------------------------------------------------------

    async def upload_cross_signing(self, requester: Requester, body: dict[str, Any]) -> None:
        user_id = requester.user_id
        uploaded = {kind: body[field] for field, kind in CROSS_SIGNING_TYPES.items() if field in body}
        current = await self._store.cross_signing_keys([user_id])
        # Spec (v1.11, MSC3967): the first upload of a master key needs no UIA; replacing one does.
        replacing = any(current.get((user_id, kind)) not in (None, key) for kind, key in uploaded.items())
        master = uploaded.get("master") or current.get((user_id, "master"))
        for kind, key in uploaded.items():
            _check_cross_signing_key(key, user_id, kind)
        if master is None and uploaded:
            raise MatrixError(400, Codes.MISSING_PARAM, "No master key is available to sign these keys")
        master_public = _public_key(master) if master else None
        for kind in ("self_signing", "user_signing"):
            if kind in uploaded and not _signed_by(uploaded[kind], user_id, master_public):
                raise MatrixError(400, INVALID_SIGNATURE, f"The {kind} key is not signed by the master key")
        result = None
        # Spec v1.17: appservices replace their users' cross-signing keys without UIA.
        if replacing and requester.app_service_id is None:
            result = await self._uia.authenticate(body.get("auth"), operation="device_signing_upload",
                                                  flows=self._uia.user_flows(), user_id=user_id)
        async with self._db.transaction():
            for kind, key in uploaded.items():
                await self._store.set_cross_signing_key(user_id, kind, key)
        if result is not None:
            await self._uia.finish(result.session_id)
        if uploaded.keys() - {"user_signing"}:
            await self._device_lists.mark_changed(user_id, signing_keys=True)
        elif uploaded:
            # Only the owner ever sees their user-signing key: only they are told (as Synapse).
            await self._device_lists.mark_changed_for(user_id, [user_id])

    async def upload_signatures(self, requester: Requester, body: dict[str, Any]) -> dict[str, Any]:
        signer = requester.user_id
        own_keys = await self._store.cross_signing_keys([signer])
        self_signing = _public_key(own_keys.get((signer, "self_signing")))
        user_signing = _public_key(own_keys.get((signer, "user_signing")))
        own_master = _public_key(own_keys.get((signer, "master")))
        rows: list[tuple[str, str, str, str, str]] = []
        failures: dict[str, dict[str, Any]] = {}
        # What other servers must hear of: our devices and our master key (signatures by our
        # user-signing key on other users' keys are only ever shown to us).
        signed_devices: set[str] = set()
        master_signed = False
        others: set[str] = set()  # users whose keys our user-signing key signed
        for target_user, by_key in body.items():
            if not isinstance(by_key, dict):
                raise MatrixError(400, Codes.BAD_JSON, "Each user's entry must be an object")
            for target_key_id, signed in by_key.items():
                try:
                    rows.extend(await self._signature_rows(signer, target_user, target_key_id, signed,
                                                           self_signing, user_signing, own_master))
                    if target_user == signer and target_key_id == own_master:
                        master_signed = True
                    elif target_user == signer:
                        signed_devices.add(target_key_id)
                    else:
                        others.add(target_user)
                except MatrixError as err:
                    failures.setdefault(target_user, {})[target_key_id] = {"errcode": err.errcode, "error": str(err)}
        await self._store.add_signatures(rows)
        if signed_devices or master_signed:
            await self._device_lists.mark_changed(signer, sorted(signed_devices), signing_keys=master_signed)
        if others:
            # Signatures on other users' keys are shown to the signer only: only they re-query.
            await self._device_lists.mark_changed_for(signer, others)
        return {"failures": failures}

    # --- for other servers ---------------------------------------------------------------------

    async def device_keys_with_signatures(self, user_id: str, device_id: str) -> dict[str, Any] | None:
        """A device's keys as a query would show them (with cross-signatures), for a device-list EDU."""
        keys = await self._store.get_device_keys(user_id, device_id)
        if keys is None:
            return None
        return _with_signatures(keys, (await self._signatures_by_target([user_id])).get((user_id, device_id), []))

    async def public_cross_signing_keys(self, user_id: str) -> dict[str, Any]:
        """The user's master and self-signing keys (with the user's own signatures), as an
        m.signing_key_update EDU carries them; the user-signing key stays private."""
        keys = await self._store.cross_signing_keys([user_id])
        signatures = await self._signatures_by_target([user_id])
        out: dict[str, Any] = {}
        for kind, field_name in (("master", "master_key"), ("self_signing", "self_signing_key")):
            key = keys.get((user_id, kind))
            if key is not None:
                public = _public_key(key)
                own = [r for r in signatures.get((user_id, public), []) if r[0] == user_id] if public else []
                out[field_name] = _with_signatures(key, own)
        return out

    async def on_devices_changed(self, user_id: str, device_ids: list[str], deleted: bool) -> None:
        if deleted:
            for device_id in device_ids:
                await self._store.delete_device(user_id, device_id)

    # --- internals ---------------------------------------------------------------------------

    async def _signature_rows(self, signer: str, target_user: str, target_key_id: str, signed: Any,
                              self_signing: str | None, user_signing: str | None,
                              own_master: str | None) -> list[tuple[str, str, str, str, str]]:
        """Check one uploaded signed object; the signatures it adds, as rows."""
        if not isinstance(signed, dict) or signed.get("user_id") != target_user:
            raise MatrixError(400, Codes.INVALID_PARAM, "The signed object does not belong to this user")
        if target_user == signer and target_key_id != own_master:
            # One of our devices, signed by our self-signing key.
            stored = await self._store.get_device_keys(signer, target_key_id)
            signing_key = self_signing
        elif target_user == signer:
            # Our master key, signed by one of our devices.
            stored = (await self._store.cross_signing_keys([signer])).get((signer, "master"))
            signing_key = None
        else:
            # Another user's master key, signed by our user-signing key.
            theirs = await self._master_key_of(target_user)
            stored = theirs if theirs is not None and _public_key(theirs) == target_key_id else None
            signing_key = user_signing
        if stored is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown key")
        if _strip(signed) != _strip(stored):
            raise MatrixError(400, Codes.INVALID_PARAM, "The signed object differs from the stored key")
        new = (signed.get("signatures") or {}).get(signer) or {}
        rows = []
        for key_id, signature in new.items():
            if not isinstance(signature, str) or not key_id.startswith("ed25519:"):
                raise MatrixError(400, INVALID_SIGNATURE, "Malformed signature")
            public = key_id.split(":", 1)[1]
            if signing_key is None:  # a device signing our master key: its own device key signs
                device = await self._store.get_device_keys(signer, public)
                public_key = (device or {}).get("keys", {}).get(key_id)
            else:
                public_key = signing_key if public == signing_key else None
            if public_key is None or not _verify(signed, signer, key_id, public_key):
                raise MatrixError(400, INVALID_SIGNATURE, "Invalid signature")
            rows.append((signer, key_id, target_user, target_key_id, signature))
        if not rows:
            raise MatrixError(400, INVALID_SIGNATURE, "No signature from you on this key")
        return rows

    async def _master_key_of(self, user_id: str) -> dict[str, Any] | None:
        """A user's master key: ours from the database, another server's user's from their server
        (to check a signature on it that one of our users made after verifying them)."""
        server = server_name_of(user_id)
        if server == self._server_name or not server:
            return (await self._store.cross_signing_keys([user_id])).get((user_id, "master"))
        answered, failures = await self._remote.query({server: {user_id: []}}, DEFAULT_TIMEOUT_MS)
        if failures:
            raise MatrixError(502, Codes.UNKNOWN, f"Could not fetch {user_id}'s keys from {server}")
        return answered["master_keys"].get(user_id)

    async def _with_own_signatures(self, viewer: str, master_keys: dict[str, Any]) -> None:
        """Add to other servers' users' master keys the signatures `viewer` made on them (with
        their user-signing key, kept here; the users' own servers never see them)."""
        for signer, key_id, target_user, target_key_id, signature in await self._store.signatures_on(list(master_keys)):
            key = master_keys.get(target_user)
            if signer == viewer and key is not None and _public_key(key) == target_key_id:
                master_keys[target_user] = _with_signatures(key, [(signer, key_id, target_user, target_key_id,
                                                                   signature)])

    async def _signatures_by_target(self, user_ids: list[str]) -> dict[tuple[str, str], list[tuple]]:
        out: dict[tuple[str, str], list[tuple]] = {}
        for row in await self._store.signatures_on(user_ids):
            out.setdefault((row[2], row[3]), []).append(row)
        return out


def _key_map(value: Any, name: str) -> dict[tuple[str, str], Any]:
    """{"algorithm:key_id": key} -> {(algorithm, key_id): key}."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MatrixError(400, Codes.BAD_JSON, f"'{name}' must be an object")
    out = {}
    for name_id, key in value.items():
        algorithm, sep, key_id = name_id.partition(":")
        if not sep or not algorithm or not key_id or not isinstance(key, (str, dict)):
            raise MatrixError(400, Codes.BAD_JSON, f"Invalid key {name_id!r} in '{name}'")
        out[(algorithm, key_id)] = key
    return out


def _check_device_keys(keys: Any, user_id: str, device_id: str) -> None:
    if not isinstance(keys, dict):
        raise MatrixError(400, Codes.BAD_JSON, "'device_keys' must be an object")

    # The shape only, as Synapse checks it: the device's self-signature is not verified here
    # (clients verify the keys they fetch; Synapse stores whatever the device signed).
    def strings(value: Any) -> bool:
        return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())

    algorithms, signatures = keys.get("algorithms"), keys.get("signatures")
    if (not isinstance(algorithms, list) or not all(isinstance(a, str) for a in algorithms)
            or not strings(keys.get("keys"))
            or not isinstance(signatures, dict) or not all(strings(by) for by in signatures.values())):
        raise MatrixError(400, Codes.BAD_JSON, "device_keys needs 'algorithms', 'keys' and 'signatures'")
    if keys.get("user_id") != user_id or keys.get("device_id") != device_id:
        raise MatrixError(400, Codes.INVALID_PARAM, "device_keys must name your user and this device")


def _check_cross_signing_key(key: Any, user_id: str, kind: str) -> None:
    if not isinstance(key, dict) or key.get("user_id") != user_id:
        raise MatrixError(400, Codes.INVALID_PARAM, f"The {kind} key must belong to you")
    usage = key.get("usage")
    if not isinstance(usage, list) or kind not in usage:
        raise MatrixError(400, Codes.INVALID_PARAM, f"The {kind} key's usage must include {kind!r}")
    if _public_key(key) is None:
        raise MatrixError(400, Codes.INVALID_PARAM, f"The {kind} key must hold one ed25519 key")


def _public_key(key: dict[str, Any] | None) -> str | None:
    """The unpadded-base64 public key of a cross-signing key (also its key ID suffix)."""
    keys = (key or {}).get("keys")
    if not isinstance(keys, dict) or len(keys) != 1:
        return None
    key_id, public = next(iter(keys.items()))
    return public if isinstance(public, str) and key_id == f"ed25519:{public}" else None


def _signed_by(obj: dict[str, Any], user_id: str, public: str | None) -> bool:
    return public is not None and _verify(obj, user_id, f"ed25519:{public}", public)


def _verify(obj: dict[str, Any], user_id: str, key_id: str, public: str) -> bool:
    try:
        verify_key = decode_verify_key_bytes(key_id, decode_base64(public))
        verify_signed_json(obj, user_id, verify_key)
        return True
    except (SignatureVerifyException, ValueError, TypeError, KeyError):
        return False


def _strip(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}


def _with_signatures(key: dict[str, Any], rows: list[tuple]) -> dict[str, Any]:
    if not rows:
        return copy.deepcopy(key)
    out = copy.deepcopy(key)
    signatures = out.setdefault("signatures", {})
    for signer, key_id, _, _, signature in rows:
        signatures.setdefault(signer, {})[key_id] = signature
    return out
