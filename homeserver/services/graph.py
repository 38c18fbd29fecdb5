"""Services: the frozen record of every service the transports may call, built by `app.py`."""

from __future__ import annotations

from dataclasses import dataclass

from federation.client import FederationClient
from federation.keys import Keyring
from federation.request_auth import RequestAuthenticator
from federation.sender import FederationSender
from homeserver.config import Config
from homeserver.services.account_data import AccountDataService
from homeserver.services.accounts import AccountService
from homeserver.services.auth import AuthService
from homeserver.services.devices import DeviceService
from homeserver.services.directory import DirectoryService
from homeserver.services.e2e_keys import E2EKeyService
from homeserver.services.events import EventService
from homeserver.services.federation_edus import FederationEduService
from homeserver.services.federation_inbound import FederationTransactions
from homeserver.services.federation_intake import FederationIntake
from homeserver.services.federation_membership import FederationMembership
from homeserver.services.federation_out import PduBroadcaster
from homeserver.services.federation_reads import FederationReadService
from homeserver.services.filters import FilterService
from homeserver.services.key_backup import KeyBackupService
from homeserver.services.media import MediaService
from homeserver.services.membership import MembershipService
from homeserver.services.messaging import MessagingService
from homeserver.services.presence import PresenceService
from homeserver.services.notifications import NotificationService
from homeserver.services.profiles import ProfileService
from homeserver.services.push import PushRuleService
from homeserver.services.pushers import PusherService
from homeserver.services.ratelimit import RateLimiter
from homeserver.services.receipts import ReceiptService
from homeserver.services.registration_tokens import RegistrationTokenService
from homeserver.services.replication import Replication
from homeserver.services.relations import RelationsService
from homeserver.services.retention import RetentionService
from homeserver.services.room_state import SnapshotMemo
from homeserver.services.rooms import RoomService
from homeserver.services.search import SearchService
from homeserver.services.server_keys import ServerKeyService
from homeserver.services.sliding_sync import SlidingSyncService
from homeserver.services.sync import SyncService
from homeserver.services.thumbnails import ThumbnailService
from homeserver.services.timeline import TimelineService
from homeserver.services.to_device import DeviceListService, ToDeviceService
from homeserver.services.typing import TypingService
from homeserver.services.uia import UIAService
from homeserver.services.url_previews import UrlPreviewService


@dataclass(frozen=True)
class Services:
    config: Config
    auth: AuthService
    rate_limiter: RateLimiter
    uia: UIAService
    devices: DeviceService
    accounts: AccountService
    registration_tokens: RegistrationTokenService
    events: EventService
    rooms: RoomService
    membership: MembershipService
    messaging: MessagingService
    timeline: TimelineService
    profiles: ProfileService
    directory: DirectoryService
    relations: RelationsService
    search: SearchService
    retention: RetentionService
    sync: SyncService
    sliding_sync: SlidingSyncService
    filters: FilterService
    push_rules: PushRuleService
    notifications: NotificationService
    pushers: PusherService
    account_data: AccountDataService
    receipts: ReceiptService
    typing: TypingService
    presence: PresenceService
    to_device: ToDeviceService
    device_lists: DeviceListService
    media: MediaService
    thumbnails: ThumbnailService
    url_previews: UrlPreviewService
    replication: Replication
    e2e_keys: E2EKeyService
    key_backup: KeyBackupService
    # Federation: the signed HTTP client, server keys, and X-Matrix checks for Auth.SERVER routes.
    federation_client: FederationClient
    keyring: Keyring
    request_auth: RequestAuthenticator
    server_keys: ServerKeyService
    # Rooms shared with other servers.
    federation_intake: FederationIntake
    federation_membership: FederationMembership
    federation_transactions: FederationTransactions
    # The servers of each room's joined members, cached per state snapshot.
    room_servers: SnapshotMemo[set[str]]
    # Outbound: the persisted per-destination queue (start/stop with the server) and what
    # feeds it with PDUs; inbound: the EDUs of a peer's transaction.
    federation_sender: FederationSender
    pdu_broadcaster: PduBroadcaster
    federation_edus: FederationEduService
    # What peers may read of our rooms (events, state, auth chains, history) and server ACLs.
    federation_reads: FederationReadService
