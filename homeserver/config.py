"""Configuration: frozen dataclasses loaded from one YAML file.

Unknown keys and ill-typed values are refused with an error naming the key
(`listeners[1].port: expected an integer`). Relative paths are relative to the config file's
directory. Environment variables override the database URL (`CHATGO_DATABASE_URL`), the
listeners (`CHATGO_LISTENERS`, a YAML/JSON list in the same shape as the file's) and the
registration shared secret (`CHATGO_REGISTRATION_SHARED_SECRET`), so that a container's config
file can hold no secret.
`configs/homeserver.yaml` is the documented example. This module says what can be
configured; homeserver/config_loading.py turns a YAML file into a Config and checks it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESOURCES = frozenset({"client", "federation", "keys", "media", "metrics", "admin"})
LOCALPART = re.compile(r"[a-z0-9._=\-/+]+")


class ConfigError(ValueError):
    """The config file is missing, unreadable, or has a bad key or value."""


@dataclass(frozen=True)
class ListenerConfig:
    port: int
    bind_addresses: tuple[str, ...] = ("127.0.0.1",)
    resources: tuple[str, ...] = ("client",)
    # TLS is on when both paths are set; `tls: true` without paths uses the server's
    # generated certificate (`tls_certificate_path` in the top-level section).
    tls: bool = False
    tls_certificate_path: str | None = None
    tls_private_key_path: str | None = None
    # Trust X-Forwarded-For from a reverse proxy in front of this listener.
    x_forwarded: bool = False


@dataclass(frozen=True)
class DatabaseConfig:
    # postgresql://user:pass@host:port/dbname ; None = the embedded cluster under data_dir.
    url: str | None = None
    min_connections: int = 2
    max_connections: int = 10


@dataclass(frozen=True)
class RegistrationConfig:
    enabled: bool = False
    # Require an `m.login.registration_token` stage (tokens: `chatgo registration-token`).
    requires_token: bool = False
    # Usernames that may not be registered (in addition to the reserved ones).
    reserved_localparts: tuple[str, ...] = ()
    # Allow guest accounts (POST /register?kind=guest); guests reach only the spec's guest
    # endpoints and join only rooms with m.room.guest_access "can_join".
    allow_guests: bool = False
    # A secret that lets operators' scripts create accounts (admins too) through Synapse's
    # `/_synapse/admin/v1/register` (HMAC with a nonce); empty = off. Keep it secret.
    shared_secret: str | None = None
    # reCAPTCHA: with both keys set, the m.login.recaptcha stage is checked with the siteverify
    # API; requires_captcha makes registration ask for it.
    requires_captcha: bool = False
    recaptcha_public_key: str | None = None
    recaptcha_private_key: str | None = None
    recaptcha_siteverify_api: str = "https://www.recaptcha.net/recaptcha/api/siteverify"


@dataclass(frozen=True)
class AuthConfig:
    # Lifetime of access tokens issued with a refresh token (clients that ask for one).
    refreshable_access_token_lifetime_ms: int = 5 * 60 * 1000
    # argon2id parameters; the defaults follow OWASP's recommendation for argon2id.
    argon2_time_cost: int = 2
    argon2_memory_cost_kib: int = 19 * 1024
    argon2_parallelism: int = 1
    # Password hashes (and checks) computed at once; each takes argon2_memory_cost_kib of memory.
    argon2_max_concurrent: int = 2
    # Lifetime of an unfinished user-interactive auth session.
    ui_auth_session_lifetime_ms: int = 15 * 60 * 1000


@dataclass(frozen=True)
class RateLimit:
    """One token bucket, in Synapse's shape: `burst_count` actions at once, then `per_second`.
    The defaults are Synapse's for a limit given without them."""
    per_second: float = 0.17
    burst_count: float = 3.0
    # false: this action is never limited.
    enabled: bool = True


def _limit(per_second: float, burst_count: float) -> Any:
    return field(default_factory=lambda: RateLimit(float(per_second), float(burst_count)))


@dataclass(frozen=True)
class LoginRateLimits:
    address: RateLimit = _limit(0.003, 5)          # per client IP
    account: RateLimit = _limit(0.003, 5)          # per account logged into
    failed_attempts: RateLimit = _limit(0.17, 3)   # failed logins per account


@dataclass(frozen=True)
class JoinRateLimits:
    local: RateLimit = _limit(0.1, 10)    # per user, rooms this server is in
    remote: RateLimit = _limit(0.01, 10)  # per user, rooms joined through another server


@dataclass(frozen=True)
class InviteRateLimits:
    per_room: RateLimit = _limit(0.3, 10)
    per_user: RateLimit = _limit(0.003, 5)   # per invitee
    per_issuer: RateLimit = _limit(0.3, 10)  # per inviter


@dataclass(frozen=True)
class PresenceRateLimits:
    per_user: RateLimit = _limit(0.1, 1)


@dataclass(frozen=True)
class FederationRateLimits:
    """Inbound federation requests per origin server (Synapse's rc_federation): past
    `sleep_limit` requests in `window_size` ms each waits `sleep_delay` ms; `concurrent` run at
    once and the rest queue; past `reject_limit` queued ones, 429."""
    window_size: int = 1000
    sleep_limit: int = 10
    sleep_delay: int = 500
    reject_limit: int = 50
    concurrent: int = 3
    enabled: bool = True


@dataclass(frozen=True)
class RateLimitConfig:
    # The global switch: false turns every limit below off.
    enabled: bool = True
    # Requests per user (per IP before login) to the other endpoints the spec marks rate-limited.
    per_second: float = 10.0
    burst: int = 50
    # Per-action limits, named and defaulted as Synapse's (they may also be written at the top
    # level of the file, as in Synapse's homeserver.yaml).
    rc_message: RateLimit = _limit(0.2, 10)
    rc_admin_redaction: RateLimit | None = None  # null: redactions count as messages
    rc_registration: RateLimit = _limit(0.17, 3)
    rc_registration_token_validity: RateLimit = _limit(0.1, 5)
    rc_login: LoginRateLimits = field(default_factory=LoginRateLimits)
    rc_joins: JoinRateLimits = field(default_factory=JoinRateLimits)
    rc_joins_per_room: RateLimit = _limit(1, 10)
    rc_3pid_validation: RateLimit = _limit(0.003, 5)
    rc_invites: InviteRateLimits = field(default_factory=InviteRateLimits)
    rc_third_party_invite: RateLimit = _limit(0.0025, 5)
    rc_media_create: RateLimit = _limit(10, 50)
    rc_federation: FederationRateLimits = field(default_factory=FederationRateLimits)
    rc_presence: PresenceRateLimits = field(default_factory=PresenceRateLimits)
    rc_delayed_event_mgmt: RateLimit = _limit(1, 5)
    rc_reports: RateLimit = _limit(1, 5)
    rc_room_creation: RateLimit = _limit(0.016, 10)
    rc_user_directory: RateLimit = _limit(0.016, 200)
    rc_key_requests: RateLimit = _limit(20, 100)


@dataclass(frozen=True)
class LoginViaExistingSessionConfig:
    # POST /login/get_token: a signed-in device may get a one-time token to sign in another
    # (QR-code sign-in). Off by default, as Synapse; with require_ui_auth the user confirms
    # with their password first.
    enabled: bool = False
    require_ui_auth: bool = True
    token_timeout_ms: int = 5 * 60 * 1000


@dataclass(frozen=True)
class AdminApiConfig:
    # Serve the admin API (/_synapse/admin) on `client` listeners too, as Synapse does; false
    # keeps it to listeners with the `admin` resource (e.g. one bound to an internal address).
    on_client_listeners: bool = True


@dataclass(frozen=True)
class VoipConfig:
    # TURN servers handed to clients for calls (GET /voip/turnServer), e.g.
    # "turn:turn.example.com:3478?transport=udp"; none = calls use the clients' own settings.
    turn_uris: tuple[str, ...] = ()
    # coturn's `static-auth-secret` (TURN REST API): per-user credentials valid for
    # turn_user_lifetime_ms. Without it, the static turn_username/turn_password are given out.
    turn_shared_secret: str | None = None
    turn_username: str | None = None
    turn_password: str | None = None
    turn_user_lifetime_ms: int = 3600 * 1000
    turn_allow_guests: bool = True


@dataclass(frozen=True)
class SupportContact:
    matrix_id: str | None = None
    email_address: str | None = None
    role: str = "m.role.admin"  # m.role.admin, m.role.security, or a namespaced role


@dataclass(frozen=True)
class SupportConfig:
    # Served in /.well-known/matrix/support (spec: who to contact about this server); with
    # neither set, that path answers 404.
    contacts: tuple[SupportContact, ...] = ()
    support_page: str | None = None


@dataclass(frozen=True)
class RetentionConfig:
    # How long a redacted event's original content is kept (for moderators and abuse
    # reports) before it is erased; null keeps it forever. Synapse's default is 7 days.
    redaction_retention_period_ms: int | None = 7 * 24 * 3600 * 1000


@dataclass(frozen=True)
class PushConfig:
    # Allow push gateway URLs on loopback, private and link-local addresses (refused by
    # default, like Synapse's ip_range_blacklist): for a gateway on this host or network.
    allow_private_gateways: bool = False


@dataclass(frozen=True)
class EmailConfig:
    # E-mail addresses as third-party identifiers: we send the validation mails ourselves
    # (registration with an e-mail address, adding one to an account, logging in with it).
    enabled: bool = False
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_pass: str | None = None
    # STARTTLS before sending (refuse to send without it).
    require_transport_security: bool = False
    # The From: address of our mails, e.g. "Example Chat <noreply@example.org>".
    notif_from: str | None = None
    # Hide from requestToken whether an address has an account here (Synapse's setting of the
    # same name): instead of M_THREEPID_IN_USE (registering or adding it) or
    # M_THREEPID_NOT_FOUND (a password reset), answer as if a mail went, and send none.
    request_token_inhibit_3pid_errors: bool = False


@dataclass(frozen=True)
class CasConfig:
    # Single sign-on through a CAS server: GET /login offers m.login.sso (and m.login.cas),
    # a CAS user logs in as the user of the same (mapped) localpart, created on first login,
    # and users may complete user-interactive auth through it.
    enabled: bool = False
    # The CAS server's base URL (its /login and /proxyValidate are under it).
    server_url: str | None = None


@dataclass(frozen=True)
class PresenceConfig:
    # Presence (online/unavailable/offline and status messages) for users who share a room.
    # Off: PUT is accepted and ignored, GET says offline, /sync carries no presence.
    enabled: bool = True


@dataclass(frozen=True)
class IdentityConfig:
    # Check the TLS certificates of identity servers (third-party invites by e-mail). Off only
    # for tests against identity servers with self-signed certificates (sytest's).
    verify_certificates: bool = True
    # The identity servers (host[:port]) clients may name in 3PID binds and invites; null =
    # any. An empty list turns identity servers off (nothing is ever contacted).
    server_allowlist: tuple[str, ...] | None = None


@dataclass(frozen=True)
class AccountValidityConfig:
    # Accounts expire `period` after they are first used (or after an admin renews them with
    # POST /_synapse/admin/v1/account_validity/validity); an expired account gets 403
    # ORG_MATRIX_EXPIRED_ACCOUNT on every request but logout, as Synapse answers. Durations
    # as Synapse writes them: milliseconds, or a number with s, m, h, d, w or y ("6w").
    enabled: bool = False
    period: str | None = None

    @property
    def period_ms(self) -> int | None:
        """The validity period when the feature is on, else None."""
        return parse_duration_ms(self.period) if self.enabled and self.period is not None else None


@dataclass(frozen=True)
class AppServiceConfig:
    # A transaction an appservice did not take is retried after retry_min_interval_ms, then
    # twice as long after each further failure, up to retry_max_interval_ms (as Synapse: 2 s
    # doubling to 512 s). Its events wait, in order, in the database meanwhile.
    retry_min_interval_ms: int = 2_000
    retry_max_interval_ms: int = 512_000
    # How long one request to an appservice may take (transactions, user and alias queries, pings).
    request_timeout_ms: int = 60_000


@dataclass(frozen=True)
class LimitsConfig:
    # Largest accepted request body outside the media repository.
    max_request_body_bytes: int = 1024 * 1024


@dataclass(frozen=True)
class MediaConfig:
    # Where uploaded content is kept; None = <data_dir>/media.
    store_path: str | None = None
    # Largest accepted upload (bytes), advertised to clients as m.upload.size. 50 MiB, as Synapse.
    max_upload_size: int = 50 * 1024 * 1024
    # Images with more pixels than this are not thumbnailed (413): a guard against decompression bombs.
    max_image_pixels: int = 32_000_000
    # An mxc:// URI reserved with POST /_matrix/media/v1/create waits this long for its content,
    # and a user may have this many such URIs waiting at once.
    unused_expiration_time_ms: int = 24 * 3600 * 1000
    max_pending_media_uploads: int = 5
    # The spec's "freeze" of the deprecated unauthenticated /_matrix/media/v3/download and
    # /thumbnail: media uploaded while this is true is served only by the authenticated
    # /_matrix/client/v1/media endpoints (404 on the old ones); older media stays reachable.
    freeze_legacy_unauthenticated: bool = False
    # URL previews (GET .../preview_url): the server fetches the pages users link to.
    url_preview_enabled: bool = False
    # Addresses previews may reach although they are private (loopback, LAN, link-local...).
    url_preview_ip_range_allowlist: tuple[str, ...] = ()
    url_preview_max_size: int = 10 * 1024 * 1024
    url_preview_timeout_ms: int = 10_000


@dataclass(frozen=True)
class TuningConfig:
    """Settings of the process found by measuring (docs/performance.md); the defaults suit
    small and large servers alike."""
    # Python's cyclic garbage collector (as Synapse's gc_thresholds): a young collection every
    # N new container objects, a middle one every M young ones, a full one every K middle ones.
    # Python's own (700, 10, 10) walked the whole heap several times a second in big fan-outs.
    gc_thresholds: tuple[int, ...] = (50_000, 20, 10)
    # Connections each listener's kernel queue holds before they are accepted (the kernel caps
    # it at net.core.somaxconn). aiohttp's 128 overflows when thousands of clients (re)connect
    # at once (a restart, a network blip): the kernel drops their SYNs and they retry after 1,
    # 3, 7, 15... seconds.
    listen_backlog: int = 4096
    # /sync responses built at once; the others wait their turn, in the order they woke.
    sync_builds_at_once: int = 64


MIB = 1024 * 1024


@dataclass(frozen=True)
class CachesConfig:
    """The ceiling of each in-memory cache, in (estimated) bytes of the Python objects it holds."""
    # Parsed events (auth checks, push rules and joins read the same state events again and again).
    events: int = 16 * MIB
    # Each room's current state (IDs) and forward extremities: what a send builds on.
    room_snapshots: int = 16 * MIB
    # The servers of each room (federation sends), per state snapshot.
    room_servers: int = 2 * MIB
    # Whom each room's events wake (its joined, invited and knocking members), per state snapshot.
    room_wakeups: int = 4 * MIB
    # What push rules need of each room (members, display names, power levels), per state snapshot.
    push_room_state: int = 8 * MIB
    # Each room's local members grouped by push ruleset, with their ignore lists.
    push_audiences: int = 4 * MIB
    # Each user's merged and compiled push rules.
    push_rules: int = 8 * MIB
    # Each user's ignore list (m.ignored_user_list), read by /sync and push evaluation.
    ignore_lists: int = 1 * MIB
    # Authenticated access tokens.
    access_tokens: int = 4 * MIB
    # The newest events of each room and its membership changes: what woken /syncs read.
    recent_events: int = 8 * MIB
    # Each user's memberships (room -> membership), read by every /sync.
    sync_memberships: int = 4 * MIB
    # Each user's unread notification counts per room, moved as push actions and receipts are written.
    unread_counts: int = 4 * MIB
    # Uploaded sync filters (never changed once stored), read by every /sync naming one; and,
    # as much again, the /sync `filter` parameters compiled (inline JSON too).
    filters: int = 1 * MIB


@dataclass(frozen=True)
class DelayedEventsConfig:
    # Delayed events (MSC4140, used by Element Call for call membership): clients schedule an
    # event to be sent later unless they cancel or restart it. The longest delay allowed, in
    # milliseconds or as Synapse writes durations ("24h"); null = clients may not delay events.
    max_event_delay_duration: str | None = None
    # How many delayed events one user may have scheduled at once.
    max_delayed_events_per_user: int = 100

    @property
    def max_delay_ms(self) -> int | None:
        """The longest delay when delayed events are on, else None."""
        if self.max_event_delay_duration is None or self.max_delayed_events_per_user <= 0:
            return None
        return parse_duration_ms(self.max_event_delay_duration)


_DURATION_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000,
                      "y": 31_536_000_000}


def parse_duration_ms(value: str) -> int:
    """A duration as Synapse's config writes it: a number of milliseconds, or a number with
    ms, s, m, h, d, w or y ("24h")."""
    text = value.strip()
    number, unit = text, "ms"
    for suffix in sorted(_DURATION_UNITS_MS, key=len, reverse=True):
        if text.endswith(suffix):
            number, unit = text[: -len(suffix)], suffix
            break
    if not number.isdigit():
        raise ValueError(f"not a duration: {value!r}")
    return int(number) * _DURATION_UNITS_MS[unit]


@dataclass(frozen=True)
class ServerNoticesConfig:
    # Server notices (Synapse's): admins message users through POST
    # /_synapse/admin/v1/send_server_notice, from this system user (created when first
    # needed; choose a localpart nobody has), into a room per user that they cannot write in.
    system_mxid_localpart: str
    system_mxid_display_name: str | None = None
    system_mxid_avatar_url: str | None = None
    room_name: str | None = "Server Notices"
    room_avatar_url: str | None = None
    room_topic: str | None = None
    # Join users to their notices room instead of inviting them.
    auto_join: bool = False


# Outbound federation never connects to these unless allowlisted (as Synapse's ip_range_blacklist):
# loopback, private, CGNAT, link-local, multicast, reserved and documentation ranges, IPv6 ULA.
DEFAULT_IP_RANGE_DENYLIST = (
    "0.0.0.0/8", "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
    "192.0.0.0/24", "169.254.0.0/16", "192.88.99.0/24", "198.18.0.0/15", "192.0.2.0/24",
    "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    "::/128", "::1/128", "fe80::/10", "fc00::/7", "2001:db8::/32", "ff00::/8", "fec0::/10",
)


@dataclass(frozen=True)
class VerifyKeyConfig:
    key_id: str  # "ed25519:<version>"
    key: str     # the public key, unpadded base64


@dataclass(frozen=True)
class OldSigningKeyConfig:
    key_id: str
    key: str
    expired_ts: int  # when the key stopped being used (ms since the epoch)


@dataclass(frozen=True)
class TrustedKeyServerConfig:
    server_name: str
    # The notary's own keys; when empty they are fetched from it directly.
    verify_keys: tuple[VerifyKeyConfig, ...] = ()


@dataclass(frozen=True)
class ServerNameOverrideConfig:
    # Reach `server_name` at host:port without discovery (test networks); the certificate
    # must still be valid for the server name's host.
    server_name: str
    host: str
    port: int


@dataclass(frozen=True)
class FederationConfig:
    # Check peers' TLS certificates (always, in production); extra CA files to trust.
    verify_certificates: bool = True
    ca_certificates: tuple[str, ...] = ()
    ip_range_denylist: tuple[str, ...] = DEFAULT_IP_RANGE_DENYLIST
    ip_range_allowlist: tuple[str, ...] = ()
    server_name_overrides: tuple[ServerNameOverrideConfig, ...] = ()
    # Federate only with these servers (Synapse's federation_domain_whitelist); None = with any.
    # [] switches outbound federation off: no other server is looked up or contacted.
    domain_allowlist: tuple[str, ...] | None = None
    # Notaries asked for keys a server does not serve itself. Synapse defaults to matrix.org.
    trusted_key_servers: tuple[TrustedKeyServerConfig, ...] = ()
    # Keys we used to sign with, published in old_verify_keys.
    old_signing_keys: tuple[OldSigningKeyConfig, ...] = ()
    # How long peers may cache our key response (valid_until_ts = now + this); 1 day as Synapse.
    key_refresh_interval_ms: int = 24 * 3600 * 1000
    request_timeout_ms: int = 60_000
    connect_timeout_ms: int = 10_000
    # Outbound transactions: after a failure a destination waits retry_min_interval_ms, doubling
    # with each further failure up to retry_max_interval_ms (1 day). A peer that sends us a
    # transaction is retried at once.
    retry_min_interval_ms: int = 30_000
    retry_max_interval_ms: int = 24 * 3600 * 1000
    # Give other servers our users' device display names (device lists, keys/query, device-list
    # EDUs); off by default as in Synapse: the names often say too much.
    allow_device_name_lookup_over_federation: bool = False
    # Let other servers read our room directory (/_matrix/federation/v1/publicRooms); off by
    # default as in Synapse.
    allow_public_rooms_over_federation: bool = False
    # Faster joins (MSC3706/MSC3902, spec v1.6 send_join `omit_members`): a remote join asks
    # the resident server to leave the members out, returns at once and fetches the full
    # state in the background. On by default, as in Synapse.
    faster_joins: bool = True


@dataclass(frozen=True)
class Config:
    server_name: str
    data_dir: str = "."
    signing_key_path: str = "signing.key"
    tls_certificate_path: str = "tls.crt"
    tls_private_key_path: str = "tls.key"
    # Where clients reach us (used in .well-known); default https://server_name/.
    public_baseurl: str | None = None
    # Served at /.well-known/matrix/server; None = do not serve it.
    serve_server_wellknown: bool = True
    federation_port: int = 8448
    log_level: str = "INFO"
    # Log lines as plain text or as one JSON object per line (for log shippers).
    log_format: str = "text"
    # One line per request (logger chatgo.access, INFO); off saves its cost on busy servers.
    access_log: bool = True
    listeners: tuple[ListenerConfig, ...] = ()
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    registration: RegistrationConfig = field(default_factory=RegistrationConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    rate_limiting: RateLimitConfig = field(default_factory=RateLimitConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    admin_api: AdminApiConfig = field(default_factory=AdminApiConfig)
    login_via_existing_session: LoginViaExistingSessionConfig = field(default_factory=LoginViaExistingSessionConfig)
    voip: VoipConfig = field(default_factory=VoipConfig)
    support: SupportConfig = field(default_factory=SupportConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    push: PushConfig = field(default_factory=PushConfig)
    presence: PresenceConfig = field(default_factory=PresenceConfig)
    cas: CasConfig = field(default_factory=CasConfig)
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    account_validity: AccountValidityConfig = field(default_factory=AccountValidityConfig)
    email: EmailConfig = field(default_factory=EmailConfig)
    media: MediaConfig = field(default_factory=MediaConfig)
    federation: FederationConfig = field(default_factory=FederationConfig)
    delayed_events: DelayedEventsConfig = field(default_factory=DelayedEventsConfig)
    # Application services (bridges, bots): their registration files, as Synapse's
    # app_service_config_files (relative to this file's directory), and how we talk to them.
    app_service_config_files: tuple[str, ...] = ()
    appservice: AppServiceConfig = field(default_factory=AppServiceConfig)
    # None (no section): server notices are off.
    server_notices: ServerNoticesConfig | None = None
    caches: CachesConfig = field(default_factory=CachesConfig)
    tuning: TuningConfig = field(default_factory=TuningConfig)
    # Directory of the config file; relative paths are resolved against it. Not read from YAML.
    config_dir: str = field(default=".", metadata={"internal": True})

    def path(self, value: str) -> Path:
        """Resolve a configured path against the config file's directory."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else Path(self.config_dir) / p

    @property
    def data_path(self) -> Path:
        return self.path(self.data_dir)

    @property
    def media_path(self) -> Path:
        return self.path(self.media.store_path) if self.media.store_path else self.data_path / "media"

    @property
    def client_base_url(self) -> str:
        return self.public_baseurl or f"https://{self.server_name}/"
