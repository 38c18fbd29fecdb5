"""The one place that knows the whole graph: config -> database -> stores -> services.

`build_services()` constructs every object with its dependencies, in order. The aiohttp
application of each listener is built from them by homeserver/web_app.py; the process that
runs them (database, migrations, listeners, a clean stop) is homeserver/server.py.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from federation.client import FederationClient
from federation.discovery import Discovery
from federation.keys import Keyring, LocalKeys
from federation.request_auth import RequestAuthenticator
from federation.sender import FederationSender
from federation.transport import Transport
from homeserver.config import Config
from homeserver.core.events import Event
from homeserver.core.ids import server_name_of
from homeserver.services.accounts.accounts import AccountService
from homeserver.services.accounts.cas import CasService
from homeserver.services.accounts.devices import DeviceService
from homeserver.services.accounts.email import EmailValidationService
from homeserver.services.accounts.login_tokens import LoginTokenService
from homeserver.services.accounts.msisdn import PhoneValidationService
from homeserver.services.accounts.openid import OpenIdService
from homeserver.services.accounts.passwords import PasswordHashing
from homeserver.services.accounts.profiles import ProfileService
from homeserver.services.accounts.registration_tokens import RegistrationTokenService
from homeserver.services.accounts.shared_secret import SharedSecretRegistration
from homeserver.services.accounts.threepids import ThreepidService
from homeserver.services.accounts.uia import Recaptcha, UIAService, siteverify_over
from homeserver.services.admin.appservices import AppServiceAdmin
from homeserver.services.admin.audit import AdminAuditLog
from homeserver.services.admin.destinations import AdminDestinationService
from homeserver.services.admin.health import HealthService
from homeserver.services.admin.media import AdminMediaService
from homeserver.services.admin.metrics import ServerMetrics
from homeserver.services.admin.page_sessions import AdminPageSessions
from homeserver.services.admin.page_views import AdminPageViews
from homeserver.services.admin.purge import PurgeHistoryService, RoomPurger
from homeserver.services.admin.reports import ReportService
from homeserver.services.admin.room_deletion import RoomDeletionService
from homeserver.services.admin.room_tasks import RoomTaskRunner
from homeserver.services.admin.rooms import AdminRoomService
from homeserver.services.admin.server_info import ServerInfoService
from homeserver.services.admin.server_notices import ServerNoticeService
from homeserver.services.admin.user_moderation import AdminUserModeration
from homeserver.services.admin.user_ratelimit import UserRateLimitAdmin
from homeserver.services.admin.users import AdminUserService
from homeserver.services.appservices.client import AppServiceClient
from homeserver.services.appservices.interest import RoomInterest
from homeserver.services.appservices.queries import AppServiceLookups
from homeserver.services.appservices.registrations import load_registry
from homeserver.services.appservices.sender import AppServiceSender
from homeserver.services.appservices.thirdparty import ThirdPartyLookups
from homeserver.services.appservices.transactions import TransactionBuilder
from homeserver.services.auth import AccountRestrictions, AuthService
from homeserver.services.calls.turn import TurnService
from homeserver.services.clock import Clock
from homeserver.services.e2ee.dehydrated_devices import DehydratedDeviceService
from homeserver.services.e2ee.key_backup import KeyBackupService
from homeserver.services.e2ee.keys import E2EKeyService
from homeserver.services.e2ee.remote_devices import CachedRemoteKeys
from homeserver.services.ephemeral.account_data import AccountDataService
from homeserver.services.ephemeral.presence import PresenceService
from homeserver.services.ephemeral.receipts import ReceiptService
from homeserver.services.ephemeral.to_device import DeviceListService, ToDeviceService
from homeserver.services.ephemeral.typing import TypingService
from homeserver.services.federation.edus import FederationEduService
from homeserver.services.federation.intake import FederationIntake
from homeserver.services.federation.join_answers import JoinAnswers
from homeserver.services.federation.membership import FederationMembership
from homeserver.services.federation.outbound import EduBroadcaster, PduBroadcaster
from homeserver.services.federation.partial_state import PartialStateResync
from homeserver.services.federation.pdu_checks import PduChecker
from homeserver.services.federation.reads import FederationReadService
from homeserver.services.federation.remote_state import RemoteState
from homeserver.services.federation.server_keys import ServerKeyService
from homeserver.services.federation.transactions import FederationTransactions
from homeserver.services.graph import Services
from homeserver.services.identity.third_party_invites import ThirdPartyInviteService
from homeserver.services.media.remote import RemoteMediaFetcher
from homeserver.services.media.repository import MediaService
from homeserver.services.media.thumbnails import ThumbnailService
from homeserver.services.media.url_previews import UrlPreviewService
from homeserver.services.push.evaluator import PushEvaluator
from homeserver.services.push.notifications import NotificationService
from homeserver.services.push.pushers import PusherService
from homeserver.services.push.rules import PushRuleService
from homeserver.services.push.unread import UnreadCounts
from homeserver.services.ratelimit import OriginLimiter, RateLimiter
from homeserver.services.replication import Replication
from homeserver.services.rooms.creation import RoomService
from homeserver.services.rooms.delayed_events import DelayedEventService
from homeserver.services.rooms.directory import DirectoryService
from homeserver.services.rooms.erasure import ErasedUsers
from homeserver.services.rooms.event_format import EventFormatter
from homeserver.services.rooms.events import EventService
from homeserver.services.rooms.hierarchy import HierarchyService
from homeserver.services.rooms.membership import MembershipService
from homeserver.services.rooms.messaging import MessagingService
from homeserver.services.rooms.partial_state import PartialStateRooms
from homeserver.services.rooms.profile_lookup import ProfileLookup
from homeserver.services.rooms.recent import RecentEvents
from homeserver.services.rooms.relations import RelationsService
from homeserver.services.rooms.restricted_joins import RestrictedJoins
from homeserver.services.rooms.retention import RetentionService
from homeserver.services.rooms.search import SearchService
from homeserver.services.rooms.state import (
    EventCache,
    RoomStateCache,
    SnapshotMemo,
    update_joined_servers,
)
from homeserver.services.rooms.timeline import TimelineService
from homeserver.services.rooms.upgrades import RoomUpgradeService
from homeserver.services.rooms.wakeups import RoomEventNotifications
from homeserver.services.streams.aux import AuxStream
from homeserver.services.streams.notifier import Notifier
from homeserver.services.streams.tracker import StreamTracker
from homeserver.services.sync.cached_queries import CachedSyncQueries, UserMemberships
from homeserver.services.sync.changes import SyncChanges
from homeserver.services.sync.filters import FilterService
from homeserver.services.sync.legacy_initial_sync import InitialSyncService
from homeserver.services.sync.legacy_stream import EventStreamService
from homeserver.services.sync.rooms import RoomSyncBuilder
from homeserver.services.sync.sliding import SlidingSyncService
from homeserver.services.sync.sliding_extensions import SlidingExtensions
from homeserver.services.sync.sliding_rooms import SlidingRoomBuilder
from homeserver.services.sync.sync import SyncService
from storage.aux_stream import AuxStreamStore
from storage.database import Database
from storage.events import EventStore
from storage.media_files import MediaFileStore
from storage.stores import Stores

logger = logging.getLogger("chatgo")

def build_services(config: Config, db: Database, clock: Clock | None = None, *,
                   signing_key: Any, stream_position: int = 0, aux_position: int = 0) -> Services:
    """Every service, built in dependency order. `stream_position` and `aux_position` are where
    the room-event and aux streams stand (read from the database at start-up)."""
    clock = clock or Clock()
    stores = Stores.build(db)
    federation_client, keyring = _federation(config, stores, clock, signing_key)
    passwords = PasswordHashing(config.auth)
    # Application services: their registrations (read from their files here) and our client.
    appservices = load_registry(config)
    appservice_client = AppServiceClient(config.appservice.request_timeout_ms)
    appservice_lookups = AppServiceLookups(appservices, appservice_client, stores.appservice_queries,
                                           config.server_name)
    # Accounts an admin locked, suspended or shadow-banned; accounts erased on deactivation.
    restrictions = AccountRestrictions(stores.accounts)
    erased_users = ErasedUsers(stores.accounts)
    auth = AuthService(db, stores.tokens, clock, config.auth, restrictions=restrictions, accounts=stores.accounts,
                       account_validity_ms=config.account_validity.period_ms, appservices=appservices,
                       devices=stores.devices, cache_bytes=config.caches.access_tokens)
    rate_limiter = RateLimiter(config.rate_limiting, db, stores.ratelimit_overrides,
                               is_exempt=appservices.exempt_from_rate_limits)
    # Identity servers, the CAS server and the captcha service: their own session, with
    # federation's TLS trust and IP filter.
    identity_transport = Transport(config.federation, [config.path(p) for p in config.federation.ca_certificates])
    reg = config.registration
    recaptcha = Recaptcha(reg.recaptcha_public_key, reg.recaptcha_private_key, reg.recaptcha_siteverify_api,
                          siteverify_over(identity_transport)) \
        if reg.recaptcha_public_key and reg.recaptcha_private_key else None
    email = EmailValidationService(config.email, stores.threepid_sessions, stores.user_threepids, clock,
                                   config.client_base_url, config.server_name, limiter=rate_limiter)
    uia = UIAService(
        stores.uia, stores.accounts, stores.registration_tokens, passwords, clock,
        config.server_name, config.auth.ui_auth_session_lifetime_ms, sso_enabled=config.cas.enabled,
        recaptcha=recaptcha, email_validated=email.validated if config.email.enabled else None,
    )
    devices = DeviceService(db, stores.devices, auth, uia, clock)
    admin_audit = AdminAuditLog(stores.admin_audit, clock)
    registration_tokens = RegistrationTokenService(db, stores.registration_tokens, clock, limiter=rate_limiter,
                                                   audit=admin_audit)
    room_state = RoomStateCache(stores.room_heads, EventCache(stores.events, config.caches.events),
                                config.caches.room_snapshots)
    stream = StreamTracker(stream_position)
    events = EventService(db, stores.events, room_state, stream, clock, config.server_name, signing_key,
                          restrictions=restrictions)
    # Joins to a room from other servers count towards rc_joins_per_room (ours are counted where they happen).
    events.on_persisted(lambda batch: _count_remote_joins(rate_limiter, batch, config.server_name))
    profiles = ProfileLookup(stores.profiles, config.server_name)
    # The servers of each room's joined members, kept per state snapshot: every event, typing
    # notice and receipt we send out, and every transaction we take in, asks for them.
    # Rooms joined with a partial state (faster joins): until their full state is in, their
    # servers are also those the resident server named at the join.
    partial_state = PartialStateRooms(stores.partial_state, clock)

    async def joined_servers(room_id: str) -> set[str]:
        servers = await stores.destinations.joined_servers(room_id)
        return servers | await partial_state.servers_in_room(room_id)

    room_servers: SnapshotMemo[set[str]] = SnapshotMemo(
        room_state, lambda room_id, _: joined_servers(room_id), config.caches.room_servers,
        update=update_joined_servers)
    directory = DirectoryService(stores.directory, room_state, events, clock, config.server_name, federation_client,
                                 room_servers.get, appservices=appservices,
                                 query_alias=appservice_lookups.query_alias if appservices else None,
                                 public_rooms_over_federation=config.federation.allow_public_rooms_over_federation)
    appservice_interest = RoomInterest(appservices, stores.appservice_queries, room_state, config.server_name)
    directory.on_aliases_changed(appservice_interest.forget_aliases)
    rooms = RoomService(db, stores.rooms, stores.directory, directory, events, profiles, clock, config.server_name,
                        limiter=rate_limiter)
    # Rooms shared with other servers: what we send them, received events, remote
    # joins/leaves/invites, transactions.
    federation_sender, pdu_broadcaster = _federation_sender(config, db, stores, clock, federation_client, events,
                                                            room_servers)
    intake = FederationIntake(events, room_state, stores.events, stores.graph,
                              RemoteState(stores.state, stores.graph, room_state.events), PduChecker(keyring),
                              room_servers.get, federation_client, clock, config.server_name,
                              is_partial=partial_state.is_partial)
    restricted = RestrictedJoins(room_state, stores.events, config.server_name)
    federation_membership = FederationMembership(
        events, room_state, intake, PduChecker(keyring), stores.events, stores.rooms, stores.graph,
        room_servers.get, stores.federation_rooms, restricted, federation_client, keyring, clock, config.server_name,
        signing_key, relay=pdu_broadcaster.broadcast, limiter=rate_limiter,
        # The resync is built below, with the caches it must correct.
        partial_state=partial_state, on_partial_join=lambda room_id: partial_state_resync.start(room_id),
        faster_joins=config.federation.faster_joins)
    federation_join_answers = JoinAnswers(stores.events, stores.state, stores.graph, room_servers.get,
                                          config.server_name, heroes=stores.sync.heroes)
    federation_reads = FederationReadService(stores.events, stores.federation_reads, stores.state, stores.timeline,
                                             room_state, clock, config.server_name,
                                             erased=erased_users.among,
                                             partial_state=partial_state)
    membership = MembershipService(events, room_state, profiles, stores.rooms, stores.events, restricted,
                                   federation_membership, config.server_name, limiter=rate_limiter)
    threepids = ThreepidService(stores.threepid_bindings, identity_transport, config.server_name, signing_key,
                                stores.user_threepids, email, uia, clock,
                                allowed_servers=config.identity.server_allowlist)
    accounts = AccountService(
        db, stores.accounts, stores.profiles, stores.registration_tokens, auth, devices, uia, passwords,
        membership, clock, config.server_name, config.registration, threepids, email_enabled=config.email.enabled,
        limiter=rate_limiter, erased=erased_users,
    )
    messaging = MessagingService(events, stores.events, room_state, directory, membership, limiter=rate_limiter)
    # The newest events of each room as the pipeline stored them: what woken /syncs read
    # (with the users' memberships below, sync/cached_queries.py), and their bundled relations.
    recent_events = RecentEvents(stream, stores.events, stores.relations, config.server_name,
                                 config.caches.recent_events)
    events.on_stored(recent_events.stored)
    partial_state_resync = PartialStateResync(events, room_state, intake, stores.events, stores.state, partial_state,
                                              config.server_name, rewritten=lambda room_id, position: (
                                                  recent_events.forget(room_id),
                                                  sync_changes.rooms.changed(room_id, position)))
    formatter = EventFormatter(stores.events, stores.timeline, stores.relations, clock, erased_users,
                               recent=recent_events)
    timeline = TimelineService(stores.events, stores.timeline, stores.state, room_state, formatter, intake.backfill,
                               full_state=partial_state.wait_for_full_state)
    relations = RelationsService(stores.events, stores.relations, room_state, formatter)
    search = SearchService(stores.search, room_state, formatter, timeline, limiter=rate_limiter)
    profile_service = ProfileService(stores.profiles, events, stores.events, room_state, config.server_name,
                                     federation_client, limiter=rate_limiter, restrictions=restrictions)
    notifier = Notifier()
    # Push rules, counts and pushers. The evaluator takes each batch before its stream positions
    # become visible and writes its push actions in the background; readers of the counts wait
    # for them (push/unread.py), so a /sync that sees a new event sees its unread counts too.
    aux = AuxStream(stores.aux_stream, StreamTracker(aux_position), notifier)
    account_data = AccountDataService(stores.account_data, aux, config.caches.ignore_lists)
    receipts = ReceiptService(stores.receipts, stores.events, membership, account_data, aux, clock)
    push_rules = PushRuleService(db, stores.push_rules, on_rules_changed=lambda user_id: _publish_push_rules(
        push_rules, account_data, user_id), cache_bytes=config.caches.push_rules)
    # Unread counts kept in memory, moved by push actions and receipts as they are written.
    unread = UnreadCounts(stream, aux.tracker, config.caches.unread_counts)
    receipts.read_moving = unread.read_moving
    notifications = NotificationService(stores.push_actions, stores.events, room_state, formatter,
                                        receipts.read_upto, unread)
    # Room upgrades: a user's tags, m.direct and room push rules follow them to the new room.
    upgrades = RoomUpgradeService(rooms, events, room_state, stores.directory, clock)
    upgrades.on_user_moved(account_data.room_upgraded)
    upgrades.on_user_moved(push_rules.copy_room_rules)
    membership.on_join(upgrades.member_joined)
    pushers = PusherService(stores.pushers, notifications.badge_count, clock, config.push)
    receipts.on_read = pushers.badge_changed
    push_evaluator = PushEvaluator(push_rules, room_state, stores.push_actions, pushers, clock,
                                   config.server_name, account_data, unread=unread,
                                   waiting_users=notifier.waiting_users,
                                   room_cache_bytes=config.caches.push_room_state,
                                   audience_cache_bytes=config.caches.push_audiences)
    events.before_publish(push_evaluator.on_persisted)
    pushers.settle = unread.settled
    room_notifications = RoomEventNotifications(stores.events, notifier, stream, room_state,
                                                config.caches.room_wakeups)
    events.on_persisted(room_notifications.on_persisted, wakes_readers=True)
    typing = TypingService(membership, stores.events, notifier, restrictions=restrictions)
    presence = PresenceService(stores.presence, stores.sync, aux, clock, config.presence, limiter=rate_limiter)
    to_device = ToDeviceService(db, stores.to_device, stores.devices, aux, clock, config.server_name,
                                limiter=rate_limiter)
    device_lists = DeviceListService(stores.device_lists, stores.sync, aux)
    devices.on_devices_changed(to_device.on_devices_changed)
    devices.on_devices_changed(device_lists.on_devices_changed)
    # Other servers' users' device lists, cached while we share a room with them.
    remote_keys = CachedRemoteKeys(federation_client, stores.remote_devices, device_lists, clock, config.server_name)
    events.on_persisted(remote_keys.on_persisted)
    e2e_keys = E2EKeyService(db, stores.e2e_keys, device_lists, aux, uia, config.server_name, remote_keys,
                             device_names_over_federation=config.federation.allow_device_name_lookup_over_federation)
    devices.on_devices_changed(e2e_keys.on_devices_changed)
    replication = _replication(db, stores, room_state, notifier, stream, aux, room_notifications, auth,
                               account_data, typing, push_rules, rate_limiter)
    restrictions.replicate = lambda: replication.publish({"k": "restrictions"})
    replication.on("restrictions", lambda m: restrictions.forget_cached())
    erased_users.replicate = lambda user_id: replication.publish({"k": "erased", "u": user_id})
    replication.on("erased", lambda m: erased_users.forget_cached(m["u"]))
    partial_state.replicate = lambda: replication.publish({"k": "partial_state"})
    replication.on("partial_state", lambda m: partial_state.forget_cached())
    sync_memberships = UserMemberships(stores.sync, stream, config.caches.sync_memberships)
    events.on_stored(sync_memberships.stored)
    # Where each room and each user's memberships last changed: a /sync looks at what moved.
    sync_changes = SyncChanges(stream)
    events.on_stored(sync_changes.stored)
    sync_queries = CachedSyncQueries(db, recent_events, sync_memberships, sync_changes)
    room_sync = RoomSyncBuilder(sync_queries, stores.events, stores.state, room_state, formatter,
                                 stores.federation_rooms)
    sync = SyncService(sync_queries, room_sync, stream, aux, notifier, stores.account_data, account_data, receipts,
                       typing, presence, to_device, device_lists, e2e_keys,
                       builds_at_once=config.tuning.sync_builds_at_once)
    sync.unread_counts = notifications.sync_unread_counts
    sync.push_rules = push_rules.rules_for
    sync.changes = sync_changes
    sync.full_state_arrived = partial_state.cleared_between
    sliding_sync = SlidingSyncService(
        sync_queries, SlidingRoomBuilder(sync_queries, stores.events, stores.state, room_state, formatter, room_sync),
        SlidingExtensions(sync_queries, stores.account_data, receipts, typing, to_device, device_lists, e2e_keys, sync),
        stream, aux, typing, notifier, account_data, receipts, presence, sync, clock,
    )
    event_stream = EventStreamService(sync_queries, stores.events, room_state, formatter, sync, notifier,
                                      stores.account_data, receipts, typing, presence)
    initial_sync = InitialSyncService(sync_queries, stores.events, stores.state, room_state, formatter, sync,
                                      directory, stores.account_data, receipts, presence)
    federation_edus = _federation_edus(config, stores, federation_sender, room_servers, typing, receipts, presence,
                                       to_device, device_lists, e2e_keys, remote_keys, federation_reads.check_acl)
    # PUT /send: its EDUs go to the EDU service, and a peer that sends us a transaction is up.
    federation_transactions = FederationTransactions(
        events, room_state, intake, PduChecker(keyring), federation_membership, stores.federation_rooms, clock,
        receive_edus=federation_edus.receive, peer_is_up=federation_sender.wake, check_acl=federation_reads.check_acl)
    # Feeds of the appservices: woken by new events and typing, built from the streams.
    appservice_sender = AppServiceSender(
        appservices, stores.appservices,
        TransactionBuilder(stores.appservice_queries, stores.events, room_state, stores.rooms, formatter,
                           appservice_interest, typing, presence, appservice_lookups, config.server_name),
        appservice_client, stream, aux.tracker, clock, config.appservice)
    if appservices:
        events.on_persisted(appservice_sender.on_persisted)
        typing.on_any_change(appservice_sender.typing_changed)
    filters = FilterService(stores.filters, config.caches.filters)
    # /metrics: the figures the services keep, and every in-memory cache worth watching.
    metrics = ServerMetrics(
        db, stores.server_figures, sync_waiters=notifier.waiting, persist=events.persist_stats,
        federation_in=federation_transactions.traffic, federation_out=federation_sender.traffic,
        caches={"events": room_state.events.cache_stats, "room_snapshots": room_state.cache_stats,
                "room_servers": room_servers.cache_stats, "room_wakeups": room_notifications.cache_stats,
                "push_room_state": push_evaluator.cache_stats,
                "push_audiences": push_evaluator.audience_cache_stats, "push_rules": push_rules.cache_stats,
                "ignore_lists": account_data.ignored_cache_stats,
                "access_tokens": auth.cache_stats, "recent_events": recent_events.cache_stats,
                "sync_memberships": sync_memberships.cache_stats, "unread_counts": unread.cache_stats,
                "filters": filters.cache_stats, "sync_filters": filters.compiled_cache_stats},
        appservices_out=appservice_sender.traffic, appservice_ids=[a.id for a in appservices.services if a.url])
    media_files = MediaFileStore(config.media_path)
    media = MediaService(stores.media, media_files, clock, config.media, config.server_name,
                         RemoteMediaFetcher(federation_client, stores.media, media_files, clock, config.media),
                         limiter=rate_limiter)
    login_tokens = LoginTokenService(stores.login_tokens, accounts, uia, clock, config.login_via_existing_session)
    admin_users = AdminUserService(accounts, stores.accounts, stores.admin_users, auth, restrictions, devices,
                                   profile_service, threepids, messaging, account_data, pushers, admin_audit,
                                   config.server_name)
    # Delayed events (MSC4140): new state cancels others' scheduled events for that state, and
    # every process's scheduler hears of a new due time.
    delayed_events = DelayedEventService(stores.delayed_events, room_state, messaging, stores.accounts, clock,
                                         config.delayed_events, limiter=rate_limiter)
    events.on_persisted(delayed_events.on_persisted)
    delayed_events.replicate = lambda send_ts: replication.publish({"k": "delayed_events", "t": send_ts})
    replication.on("delayed_events", lambda m: delayed_events.due_elsewhere(int(m["t"])))
    admin_rooms, room_deletion, purge_history, room_tasks = _admin_rooms(
        config, db, stores, clock, events, room_state, room_servers, room_sync, formatter, timeline, membership,
        directory, rooms, replication, admin_audit, sync_queries, unread)
    server_notices = ServerNoticeService(db, config.server_notices, stores.accounts, stores.profiles,
                                         stores.server_notices, rooms, membership, events, stores.events, room_state,
                                         account_data, admin_audit, clock, config.server_name)
    if config.server_notices is not None:
        membership.guard_invite_rejections(server_notices.refuse_invite_rejection)
    reports = ReportService(db, stores.reports, stores.events, stores.rooms, stores.accounts, membership,
                            rate_limiter, admin_audit, clock, config.server_name)
    return Services(
        media=media, thumbnails=ThumbnailService(media, stores.media, media_files, config.media),
        url_previews=UrlPreviewService(media, media_files, stores.url_previews, clock, config.media),
        config=config, auth=auth, rate_limiter=rate_limiter, uia=uia, devices=devices,
        accounts=accounts, registration_tokens=registration_tokens,
        shared_secret_registration=SharedSecretRegistration(accounts, stores.short_sessions, clock,
                                                               config.registration.shared_secret),
        openid=OpenIdService(stores.openid_tokens, clock, config.server_name),
        health=HealthService(db), turn=TurnService(config.voip, clock),
        cas=CasService(config.cas, config.client_base_url, accounts, stores.accounts, login_tokens, uia,
                       identity_transport, clock, config.server_name),
        login_tokens=login_tokens,
        threepids=threepids, email=email,
        events=events, rooms=rooms, upgrades=upgrades,
        third_party_invites=ThirdPartyInviteService(rooms, membership, events, room_state, profiles,
                                                    config.server_name, config.identity.verify_certificates,
                                                    config.identity.server_allowlist, limiter=rate_limiter,
                                                    federation=federation_client),
        membership=membership, messaging=messaging, timeline=timeline, profiles=profile_service,
        directory=directory, relations=relations,
        hierarchy=HierarchyService(room_state, stores.events, directory, federation_client,
                                   stores.short_sessions, clock, config.server_name), search=search,
        retention=RetentionService(stores.events, clock, config.retention), sync=sync, sliding_sync=sliding_sync,
        event_stream=event_stream, initial_sync=initial_sync,
        push_rules=push_rules, notifications=notifications, pushers=pushers,
        filters=filters, account_data=account_data, receipts=receipts, typing=typing,
        presence=presence, to_device=to_device, device_lists=device_lists, replication=replication,
        e2e_keys=e2e_keys, key_backup=KeyBackupService(db, stores.key_backup),
        federation_client=federation_client, keyring=keyring, federation_intake=intake, room_servers=room_servers,
        federation_membership=federation_membership, federation_join_answers=federation_join_answers,
        federation_transactions=federation_transactions,
        request_auth=RequestAuthenticator(keyring, config.server_name, clock),
        server_keys=ServerKeyService(keyring, clock),
        federation_sender=federation_sender, pdu_broadcaster=pdu_broadcaster, federation_edus=federation_edus,
        federation_reads=federation_reads,
        admin_audit=admin_audit,
        federation_origins=OriginLimiter(config.rate_limiting.rc_federation, enabled=config.rate_limiting.enabled),
        user_ratelimit=UserRateLimitAdmin(db, stores.accounts, rate_limiter, admin_audit, config.server_name),
        delayed_events=delayed_events,
        metrics=metrics,
        appservice_sender=appservice_sender, appservice_lookups=appservice_lookups,
        admin_rooms=admin_rooms, room_deletion=room_deletion, purge_history=purge_history, room_tasks=room_tasks,
        admin_users=admin_users,
        admin_user_moderation=AdminUserModeration(admin_users, restrictions, auth, stores.accounts, admin_audit, clock,
                                                  config.account_validity.period_ms),
        server_info=ServerInfoService(stores.statistics, admin_audit),
        reports=reports,
        admin_destinations=AdminDestinationService(stores.destination_admin, federation_sender, admin_audit),
        admin_media=AdminMediaService(db, stores.media, stores.media_admin, media_files, stores.accounts,
                                      admin_audit, config.server_name),
        server_notices=server_notices,
        third_party_lookups=ThirdPartyLookups(appservices, appservice_client, clock),
        appservice_admin=AppServiceAdmin(appservices, stores.appservices, stream, clock),
        dehydrated_devices=DehydratedDeviceService(stores.dehydrated_devices, devices, e2e_keys, to_device, clock),
        phone_validation=PhoneValidationService(),
        admin_page_sessions=AdminPageSessions(accounts, auth, devices),
        admin_page_views=AdminPageViews(admin_rooms, room_deletion, reports),
        partial_state_resync=partial_state_resync,
    )


def _federation(config: Config, stores: Stores, clock: Clock, signing_key: Any) -> tuple[FederationClient, Keyring]:
    """The federation plumbing: one transport (TLS, IP filter, session), discovery, the signed
    client, and the keyring that fetches and caches other servers' keys."""
    federation = config.federation
    transport = Transport(federation, [config.path(p) for p in federation.ca_certificates])
    client = FederationClient(transport, Discovery(transport), config.server_name, signing_key,
                              federation.domain_allowlist)
    local_keys = LocalKeys(config.server_name, signing_key, federation, clock)
    return client, Keyring(stores.server_keys, client, local_keys, clock, federation.trusted_key_servers)


def _federation_sender(config: Config, db: Database, stores: Stores, clock: Clock, client: FederationClient,
                       events: EventService, room_servers: SnapshotMemo[set[str]],
                       ) -> tuple[FederationSender, PduBroadcaster]:
    """The sender (idle until `start`) and the listener that queues our events for the servers
    of their rooms."""
    federation = config.federation
    sender = FederationSender(db, stores.federation_queue, client, clock, config.server_name,
                              domain_allowlist=federation.domain_allowlist,
                              retry_min_interval_ms=federation.retry_min_interval_ms,
                              retry_max_interval_ms=federation.retry_max_interval_ms)
    pdus = PduBroadcaster(sender, room_servers.get, config.server_name)
    events.on_persisted(pdus.on_persisted)
    return sender, pdus


def _federation_edus(
    config: Config, stores: Stores, sender: FederationSender, room_servers: SnapshotMemo[set[str]],
    typing: TypingService, receipts: ReceiptService, presence: PresenceService, to_device: ToDeviceService, device_lists: DeviceListService, e2e_keys: E2EKeyService,
    remote_keys: CachedRemoteKeys, check_acl: Callable[[str, str], Awaitable[None]],
) -> FederationEduService:
    """The listeners that feed the sender our users' typing, receipts, presence, device lists
    and to-device messages, and the service for the EDUs peers send us."""
    edus = EduBroadcaster(sender, stores.federation_queue, stores.destinations, room_servers.get, stores.devices,
                          e2e_keys, config.server_name,
                          device_names=config.federation.allow_device_name_lookup_over_federation)
    typing.on_change(edus.typing_changed)  # local users' only
    receipts.on_receipt(edus.receipt_sent)
    presence.on_local_change(edus.presence_changed)
    device_lists.on_change(edus.device_list_changed)
    to_device.on_remote(edus.to_device)
    return FederationEduService(stores.events, typing, receipts, presence, to_device, device_lists,
                                config.server_name, check_acl=check_acl, remote_devices=remote_keys)


def _count_remote_joins(rate_limiter: RateLimiter, batch: list[tuple[Event, int]], server_name: str) -> None:
    for event, _ in batch:
        if event.type == "m.room.member" and event.membership == "join" \
                and server_name_of(event.sender) != server_name:
            rate_limiter.joined(event.room_id)


def _admin_rooms(config: Config, db: Database, stores: Stores, clock: Clock, events: EventService,
                 room_state: RoomStateCache, room_servers: SnapshotMemo[set[str]], room_sync: RoomSyncBuilder,
                 formatter: EventFormatter, timeline: TimelineService, membership: MembershipService,
                 directory: DirectoryService, rooms: RoomService, replication: Replication, audit: AdminAuditLog,
                 sync_queries: CachedSyncQueries, unread: UnreadCounts,
                 ) -> tuple[AdminRoomService, RoomDeletionService, PurgeHistoryService, RoomTaskRunner]:
    """The admin API's rooms: listing and moderating them, deleting them, purging history.
    What they change behind the event pipeline's back is dropped from every cache, in this
    process and (announced) in the others."""

    def drop_room(room_id: str) -> None:
        room_state.forget(room_id)
        room_servers.forget(room_id)
        room_state.events.forget_room(room_id)
        room_sync.forget_room(room_id)
        sync_queries.forget_room(room_id)
        unread.forget_room(room_id)

    def drop_room_everywhere(room_id: str) -> None:
        drop_room(room_id)
        replication.publish({"k": "room_purged", "r": room_id})
    replication.on("room_purged", lambda message: drop_room(message["r"]))

    name = config.server_name
    tasks = RoomTaskRunner(stores.room_tasks, clock)
    purger = RoomPurger(db, events, stores.events, stores.rooms, stores.directory, stores.account_data,
                        stores.receipts, stores.push_actions, stores.federation_rooms, name, unread.settled)
    purger.on_purged(drop_room_everywhere)
    admin_rooms = AdminRoomService(stores.admin_rooms, stores.rooms, room_state, stores.events, formatter, timeline,
                                   membership, events, directory, stores.accounts, audit, clock, name,
                                   drop_cached=drop_room_everywhere)
    deletion = RoomDeletionService(stores.rooms, stores.directory, stores.admin_rooms, purger, tasks, rooms,
                                   membership, events, audit, clock, name)
    purges = PurgeHistoryService(purger, tasks, room_state, stores.events, stores.admin_rooms, audit)
    return admin_rooms, deletion, purges, tasks


async def _publish_push_rules(push_rules: PushRuleService, account_data: AccountDataService, user_id: str) -> None:
    """A push rule changed: the whole ruleset goes to the user's clients as m.push_rules account data."""
    await account_data.put(user_id, "", "m.push_rules", await push_rules.rules_for(user_id))


def _replication(db: Database, stores: Stores, room_state: RoomStateCache, notifier: Notifier,
                 stream: StreamTracker, aux: AuxStream, room_notifications: RoomEventNotifications,
                 auth: AuthService, account_data: AccountDataService, typing: TypingService,
                 push_rules: PushRuleService, rate_limiter: RateLimiter) -> Replication:
    """Announcements between processes on one database (idle until `start`)."""
    replication = Replication(db, stores.events, room_state, notifier, {"events": stream, "aux": aux.tracker})
    room_notifications.replicate = replication.room_events
    aux.replicate = replication.wake
    auth.replicate = lambda user_id: replication.publish({"k": "tokens", "u": user_id})
    replication.on("tokens", lambda m: auth.forget_cached(m["u"]))
    account_data.replicate = lambda user_id, data_type: replication.publish(
        {"k": "account_data", "u": user_id, "t": data_type})

    def account_data_changed(message: dict[str, Any]) -> None:
        if message["t"] == "m.ignored_user_list":
            account_data.forget_cached(message["u"])
        elif message["t"] == "m.push_rules":
            push_rules.forget_cached(message["u"])
    replication.on("account_data", account_data_changed)
    typing.on_change(lambda room_id, user_id, is_typing, timeout_ms: replication.publish(
        {"k": "typing", "r": room_id, "u": user_id, "t": is_typing, "ms": timeout_ms}))
    replication.on("typing", lambda m: typing.apply(m["r"], m["u"], bool(m["t"]), int(m["ms"])))
    rate_limiter.replicate = lambda user_id: replication.publish({"k": "ratelimit_override", "u": user_id})
    replication.on("ratelimit_override", lambda m: rate_limiter.forget_override(m["u"]))
    return replication


async def start_services(config: Config, db: Database, clock: Clock | None = None) -> Services:
    """Build the services for a running server: its signing key and stream position loaded."""
    signing_key = load_signing_key(config.path(config.signing_key_path))
    position = await EventStore(db).current_stream_position()
    aux_position = await AuxStreamStore(db).current_position()
    return build_services(config, db, clock, signing_key=signing_key, stream_position=position,
                          aux_position=aux_position)


def load_signing_key(path: Path) -> Any:
    """The server's ed25519 signing key (the first key of a Synapse-style key file)."""
    from signedjson.key import read_signing_keys

    try:
        with path.open() as f:
            keys = read_signing_keys(f)
    except FileNotFoundError:
        raise SystemExit(f"signing key not found: {path} (chatgo generate-config writes one)") from None
    if not keys:
        raise SystemExit(f"no signing key in {path}")
    return keys[0]
