"""Services: the frozen record of every service the transports may call, built by `app.py`."""

from __future__ import annotations

from dataclasses import dataclass

from federation.client import FederationClient
from federation.keys import Keyring
from federation.request_auth import RequestAuthenticator
from federation.sender import FederationSender
from homeserver.config import Config
from homeserver.services.accounts.accounts import AccountService
from homeserver.services.accounts.cas import CasService
from homeserver.services.accounts.devices import DeviceService
from homeserver.services.accounts.email import EmailValidationService
from homeserver.services.accounts.msisdn import PhoneValidationService
from homeserver.services.accounts.login_tokens import LoginTokenService
from homeserver.services.accounts.openid import OpenIdService
from homeserver.services.accounts.profiles import ProfileService
from homeserver.services.accounts.registration_tokens import RegistrationTokenService
from homeserver.services.accounts.shared_secret import SharedSecretRegistration
from homeserver.services.accounts.threepids import ThreepidService
from homeserver.services.accounts.uia import UIAService
from homeserver.services.admin.appservices import AppServiceAdmin
from homeserver.services.admin.audit import AdminAuditLog
from homeserver.services.admin.destinations import AdminDestinationService
from homeserver.services.admin.health import HealthService
from homeserver.services.admin.media import AdminMediaService
from homeserver.services.admin.metrics import ServerMetrics
from homeserver.services.admin.reports import ReportService
from homeserver.services.admin.server_info import ServerInfoService
from homeserver.services.admin.server_notices import ServerNoticeService
from homeserver.services.admin.user_moderation import AdminUserModeration
from homeserver.services.admin.users import AdminUserService
from homeserver.services.admin.user_ratelimit import UserRateLimitAdmin
from homeserver.services.admin.page_sessions import AdminPageSessions
from homeserver.services.admin.page_views import AdminPageViews
from homeserver.services.admin.purge import PurgeHistoryService
from homeserver.services.admin.room_deletion import RoomDeletionService
from homeserver.services.admin.room_tasks import RoomTaskRunner
from homeserver.services.admin.rooms import AdminRoomService
from homeserver.services.appservices.queries import AppServiceLookups
from homeserver.services.appservices.sender import AppServiceSender
from homeserver.services.appservices.thirdparty import ThirdPartyLookups
from homeserver.services.auth import AuthService
from homeserver.services.calls.turn import TurnService
from homeserver.services.e2ee.dehydrated_devices import DehydratedDeviceService
from homeserver.services.e2ee.key_backup import KeyBackupService
from homeserver.services.e2ee.keys import E2EKeyService
from homeserver.services.ephemeral.account_data import AccountDataService
from homeserver.services.ephemeral.presence import PresenceService
from homeserver.services.ephemeral.receipts import ReceiptService
from homeserver.services.ephemeral.to_device import DeviceListService, ToDeviceService
from homeserver.services.ephemeral.typing import TypingService
from homeserver.services.federation.edus import FederationEduService
from homeserver.services.federation.intake import FederationIntake
from homeserver.services.federation.join_answers import JoinAnswers
from homeserver.services.federation.membership import FederationMembership
from homeserver.services.federation.outbound import PduBroadcaster
from homeserver.services.federation.partial_state import PartialStateResync
from homeserver.services.federation.reads import FederationReadService
from homeserver.services.federation.server_keys import ServerKeyService
from homeserver.services.federation.transactions import FederationTransactions
from homeserver.services.media.repository import MediaService
from homeserver.services.media.thumbnails import ThumbnailService
from homeserver.services.media.url_previews import UrlPreviewService
from homeserver.services.push.notifications import NotificationService
from homeserver.services.push.pushers import PusherService
from homeserver.services.push.rules import PushRuleService
from homeserver.services.ratelimit import OriginLimiter, RateLimiter
from homeserver.services.replication import Replication
from homeserver.services.rooms.creation import RoomService
from homeserver.services.rooms.delayed_events import DelayedEventService
from homeserver.services.rooms.directory import DirectoryService
from homeserver.services.rooms.events import EventService
from homeserver.services.rooms.hierarchy import HierarchyService
from homeserver.services.rooms.membership import MembershipService
from homeserver.services.rooms.messaging import MessagingService
from homeserver.services.rooms.relations import RelationsService
from homeserver.services.rooms.retention import RetentionService
from homeserver.services.rooms.search import SearchService
from homeserver.services.rooms.state import SnapshotMemo
from homeserver.services.identity.third_party_invites import ThirdPartyInviteService
from homeserver.services.rooms.timeline import TimelineService
from homeserver.services.rooms.upgrades import RoomUpgradeService
from homeserver.services.sync.filters import FilterService
from homeserver.services.sync.legacy_initial_sync import InitialSyncService
from homeserver.services.sync.legacy_stream import EventStreamService
from homeserver.services.sync.sliding import SlidingSyncService
from homeserver.services.sync.sync import SyncService


@dataclass(frozen=True)
class Services:
    config: Config
    auth: AuthService
    rate_limiter: RateLimiter
    uia: UIAService
    devices: DeviceService
    accounts: AccountService
    registration_tokens: RegistrationTokenService
    shared_secret_registration: SharedSecretRegistration
    openid: OpenIdService
    health: HealthService
    turn: TurnService
    threepids: ThreepidService
    email: EmailValidationService
    cas: CasService
    login_tokens: LoginTokenService  # m.login.token: from single sign-on and POST /login/get_token
    events: EventService
    rooms: RoomService
    upgrades: RoomUpgradeService
    third_party_invites: ThirdPartyInviteService
    membership: MembershipService
    messaging: MessagingService
    timeline: TimelineService
    profiles: ProfileService
    directory: DirectoryService
    hierarchy: HierarchyService  # spaces: /hierarchy for clients and servers, room summaries
    relations: RelationsService
    search: SearchService
    retention: RetentionService
    sync: SyncService
    sliding_sync: SlidingSyncService
    # The deprecated GET /events, /events/{eventId}, /initialSync and room initialSync.
    event_stream: EventStreamService
    initial_sync: InitialSyncService
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
    federation_join_answers: JoinAnswers
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
    # Administration: the record of every admin change.
    admin_audit: AdminAuditLog
    # The per-origin gate of inbound federation requests (rc_federation).
    federation_origins: OriginLimiter
    # Admins' per-user rate limit overrides.
    user_ratelimit: UserRateLimitAdmin
    # Delayed events (MSC4140): scheduled sends and the scheduler (start/stop with the server).
    delayed_events: DelayedEventService
    # Prometheus metrics (GET /metrics) and the request figures the HTTP middleware records.
    metrics: ServerMetrics
    # The Synapse admin API's accounts, and restraining them (shadow-ban, suspend, lock...).
    admin_users: AdminUserService
    admin_user_moderation: AdminUserModeration
    # Application services: their feeds (start/stop with the server; pings) and the queries
    # that let them create users and aliases on demand. The registry is `auth.appservices`.
    appservice_sender: AppServiceSender
    appservice_lookups: AppServiceLookups
    # The admin API's rooms: list and moderate, delete (in the background, with status), purge
    # history; and the background tasks those run as (recovered at start, stopped at stop).
    admin_rooms: AdminRoomService
    room_deletion: RoomDeletionService
    purge_history: PurgeHistoryService
    room_tasks: RoomTaskRunner
    # Administration (moderation): the server's version and background-update status.
    server_info: ServerInfoService
    # Reports of events, rooms and users: filed by users, handled by admins.
    reports: ReportService
    # Federation destinations for admins: back-off state, delivered rooms, reset.
    admin_destinations: AdminDestinationService
    # Media moderation: listings, quarantine, protection, deletion, usage statistics.
    admin_media: AdminMediaService
    # Server notices: admins' messages to users from the system user, in their notices room.
    server_notices: ServerNoticeService
    # Third-party lookups (/thirdparty/*), answered by the appservices that declare the protocol.
    third_party_lookups: ThirdPartyLookups
    # The admin view of the appservices and their feeds.
    appservice_admin: AppServiceAdmin
    # Dehydrated devices (MSC3814): each user's offline device and the messages waiting for it.
    dehydrated_devices: DehydratedDeviceService
    # Phone numbers: the msisdn requestToken endpoints (no SMS is sent: refused as Synapse does).
    phone_validation: PhoneValidationService
    # The built-in admin page's logins (an admin's device of its own, CSRF tokens).
    admin_page_sessions: AdminPageSessions
    # What one screen of the admin page shows, gathered from the admin services' reads.
    admin_page_views: AdminPageViews
    # Faster joins: the background resync of rooms joined with a partial state.
    partial_state_resync: PartialStateResync
