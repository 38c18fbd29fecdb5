"""Stores(db): the one list of stores, built once by the app."""

from __future__ import annotations

from dataclasses import dataclass

from storage.account_data import AccountDataStore
from storage.accounts import AccountStore
from storage.admin_audit import AdminAuditStore
from storage.admin_rooms import AdminRoomQueries, RoomTaskStore
from storage.admin_users import AdminUserQueries
from storage.aux_stream import AuxStreamStore
from storage.database import Database
from storage.dehydrated_devices import DehydratedDeviceStore
from storage.delayed_events import DelayedEventStore
from storage.device_lists import DeviceListStore
from storage.devices import DeviceStore
from storage.directory import DirectoryStore
from storage.e2e_keys import E2EKeyStore
from storage.event_graph import EventGraphQueries
from storage.events import EventStore
from storage.timeline import TimelineQueries
from storage.federation_destinations import DestinationAdminQueries
from storage.federation_queue import DestinationQueries, FederationQueueStore
from storage.federation_reads import FederationReadQueries
from storage.federation_rooms import FederationRoomStore
from storage.filters import FilterStore
from storage.key_backup import KeyBackupStore
from storage.login_tokens import LoginTokenStore
from storage.media import MediaStore, UrlPreviewStore
from storage.media_admin import MediaAdminQueries
from storage.openid import OpenIdTokenStore
from storage.presence import PresenceStore
from storage.profiles import ProfileStore
from storage.push import PushActionStore, PusherStore, PushRuleStore
from storage.ratelimit_overrides import RateLimitOverrideStore
from storage.receipts import ReceiptStore
from storage.registration_tokens import RegistrationTokenStore
from storage.relations import RelationQueries
from storage.remote_devices import RemoteDeviceStore
from storage.reports import ReportStore
from storage.room_heads import RoomHeadQueries
from storage.rooms import RoomStore
from storage.search import SearchQueries
from storage.server_figures import ServerFigureQueries
from storage.server_keys import ServerKeyStore
from storage.server_notices import ServerNoticeQueries
from storage.state import StateStore
from storage.statistics import StatisticsQueries
from storage.sync import SyncQueries
from storage.threepids import ThreepidBindingStore, ThreepidValidationStore, UserThreepidStore
from storage.to_device import ToDeviceStore
from storage.tokens import TokenStore
from storage.uia import UIAuthStore
from storage.appservices import AppServiceQueries, AppServiceStore
from storage.short_sessions import ShortSessionStore
from storage.partial_state import PartialStateStore


@dataclass(frozen=True)
class Stores:
    accounts: AccountStore
    devices: DeviceStore
    tokens: TokenStore
    uia: UIAuthStore
    registration_tokens: RegistrationTokenStore
    openid_tokens: OpenIdTokenStore
    threepid_bindings: ThreepidBindingStore
    threepid_sessions: ThreepidValidationStore
    user_threepids: UserThreepidStore
    login_tokens: LoginTokenStore
    profiles: ProfileStore
    rooms: RoomStore
    events: EventStore
    state: StateStore
    timeline: TimelineQueries
    graph: EventGraphQueries
    federation_rooms: FederationRoomStore
    federation_reads: FederationReadQueries
    directory: DirectoryStore
    relations: RelationQueries
    search: SearchQueries
    sync: SyncQueries
    filters: FilterStore
    push_rules: PushRuleStore
    pushers: PusherStore
    push_actions: PushActionStore
    aux_stream: AuxStreamStore
    account_data: AccountDataStore
    receipts: ReceiptStore
    to_device: ToDeviceStore
    device_lists: DeviceListStore
    remote_devices: RemoteDeviceStore
    presence: PresenceStore
    media: MediaStore
    url_previews: UrlPreviewStore
    e2e_keys: E2EKeyStore
    key_backup: KeyBackupStore
    server_keys: ServerKeyStore
    federation_queue: FederationQueueStore
    destinations: DestinationQueries
    admin_audit: AdminAuditStore
    ratelimit_overrides: RateLimitOverrideStore
    delayed_events: DelayedEventStore
    server_figures: ServerFigureQueries
    appservices: AppServiceStore
    appservice_queries: AppServiceQueries
    admin_rooms: AdminRoomQueries
    room_tasks: RoomTaskStore
    reports: ReportStore
    destination_admin: DestinationAdminQueries
    media_admin: MediaAdminQueries
    statistics: StatisticsQueries
    server_notices: ServerNoticeQueries
    dehydrated_devices: DehydratedDeviceStore
    admin_users: AdminUserQueries
    room_heads: RoomHeadQueries
    short_sessions: ShortSessionStore
    partial_state: PartialStateStore

    @classmethod
    def build(cls, db: Database) -> Stores:
        return cls(
            accounts=AccountStore(db),
            devices=DeviceStore(db),
            tokens=TokenStore(db),
            uia=UIAuthStore(db),
            registration_tokens=RegistrationTokenStore(db),
            openid_tokens=OpenIdTokenStore(db),
            threepid_bindings=ThreepidBindingStore(db),
            threepid_sessions=ThreepidValidationStore(db),
            user_threepids=UserThreepidStore(db),
            login_tokens=LoginTokenStore(db),
            profiles=ProfileStore(db),
            rooms=RoomStore(db),
            events=EventStore(db),
            state=StateStore(db),
            timeline=TimelineQueries(db),
            graph=EventGraphQueries(db),
            federation_rooms=FederationRoomStore(db),
            federation_reads=FederationReadQueries(db),
            directory=DirectoryStore(db),
            relations=RelationQueries(db),
            search=SearchQueries(db),
            sync=SyncQueries(db),
            filters=FilterStore(db),
            push_rules=PushRuleStore(db),
            pushers=PusherStore(db),
            push_actions=PushActionStore(db),
            aux_stream=AuxStreamStore(db),
            account_data=AccountDataStore(db),
            receipts=ReceiptStore(db),
            to_device=ToDeviceStore(db),
            device_lists=DeviceListStore(db),
            remote_devices=RemoteDeviceStore(db),
            presence=PresenceStore(db),
            media=MediaStore(db),
            url_previews=UrlPreviewStore(db),
            e2e_keys=E2EKeyStore(db),
            key_backup=KeyBackupStore(db),
            server_keys=ServerKeyStore(db),
            federation_queue=FederationQueueStore(db),
            destinations=DestinationQueries(db),
            admin_audit=AdminAuditStore(db),
            ratelimit_overrides=RateLimitOverrideStore(db),
            delayed_events=DelayedEventStore(db),
            server_figures=ServerFigureQueries(db),
            appservices=AppServiceStore(db),
            appservice_queries=AppServiceQueries(db),
            admin_rooms=AdminRoomQueries(db),
            room_tasks=RoomTaskStore(db),
            reports=ReportStore(db),
            destination_admin=DestinationAdminQueries(db),
            media_admin=MediaAdminQueries(db),
            statistics=StatisticsQueries(db),
            server_notices=ServerNoticeQueries(db),
            dehydrated_devices=DehydratedDeviceStore(db),
            admin_users=AdminUserQueries(db),
            room_heads=RoomHeadQueries(db),
            short_sessions=ShortSessionStore(db),
            partial_state=PartialStateStore(db),
        )
