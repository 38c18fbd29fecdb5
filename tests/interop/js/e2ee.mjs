// matrix-js-sdk's Rust crypto (matrix-sdk-crypto-wasm, in-memory store) against ChatGO's
// end-to-end encryption endpoints. One script, three independent parts (input.part), each
// run by its own pytest test so one failing does not hide the others:
//
//   messages      alice and bob exchange Megolm-encrypted messages in an encrypted room and
//                 each decrypts the other's (keys/upload, keys/query, keys/claim, Olm
//                 to-device room keys through sendToDevice and /sync).
//   backup        alice creates a key backup (room_keys/version), her room key is uploaded
//                 (room_keys/keys); a second device of hers restores it with the backup key
//                 and decrypts a message sent before it existed.
//   crossSigning  alice bootstraps cross-signing (keys/device_signing/upload, maybe behind
//                 password UIA, keys/signatures/upload); bob, through device_lists and
//                 keys/query, sees her identity and her device signed by it; alice then
//                 replaces her keys, which must go through password UIA, and bob sees the
//                 identity change.
//
// Input: {baseUrl, part, alice: {user, password}, bob: {user, password}}.
//
// Every HTTP request the SDK makes is logged to stdout (successful /sync polls only when
// they carry device_lists), with the response and request bodies when it fails, so a
// failing test shows the failing request.

import { EventType, MatrixEventEvent } from "matrix-js-sdk";
import { CrossSigningKey } from "matrix-js-sdk/lib/crypto-api/index.js";
import { RustBackupManager } from "matrix-js-sdk/lib/rust-crypto/backup.js";

import { login, runScenario, start, waitFor } from "./harness.mjs";

// The SDK delays its first backup upload by up to 10 s (to spread clients' load); its own
// tests lower this, and so do we.
RustBackupManager.maxBackupLoopStartDelayMillis = 0;

const MEGOLM = "m.megolm.v1.aes-sha2";

// The HTTP traffic of one client: a fetch that logs each request of `who` (method, path,
// status; error responses in full, with the request body; the device_lists of /sync), and
// keeps what is needed to tell when the client's view of its own keys has settled.
class HttpWatch {
    constructor(who) {
        this.who = who;
        this.userId = null;  // set once logged in
        this.queriesInFlight = 0;
        this.ownListChangedAt = 0;  // when a /sync last said our own device list changed
        this.ownQueryDoneAt = 0;  // when a keys/query started after that change last answered
        this.fetchFn = (url, init) => this.fetch(url, init);
    }

    async fetch(url, init = {}) {
        const method = init.method ?? "GET";
        const { pathname } = new URL(url);
        const isSync = pathname.endsWith("/sync");
        const isQuery = pathname.endsWith("/keys/query");
        const startedAt = performance.now();
        if (!isSync) console.log(`[http ${this.who}] ${method} ${pathname} ...`);
        if (isQuery) this.queriesInFlight++;
        let response;
        try {
            response = await fetch(url, init);
        } finally {
            if (isQuery) this.queriesInFlight--;
        }
        if (response.status >= 400) {
            const body = await response.clone().text();
            const sent = typeof init.body === "string" ? ` request body: ${init.body.slice(0, 2000)}` : "";
            console.log(`[http ${this.who}] ${method} ${pathname} -> ${response.status} ${body.slice(0, 2000)}${sent}`);
        } else if (isSync) {
            const { device_lists: lists } = await response.clone().json();
            if (lists?.changed?.length || lists?.left?.length) {
                console.log(`[http ${this.who}] GET /sync -> device_lists ${JSON.stringify(lists)}`);
            }
            if (lists?.changed?.includes(this.userId)) this.ownListChangedAt = performance.now();
        } else {
            if (isQuery && startedAt > this.ownListChangedAt) this.ownQueryDoneAt = performance.now();
            // JS_SDK_HTTP_LOG_BODIES=<regexp of paths> also logs those requests' bodies.
            const verbose = process.env.JS_SDK_HTTP_LOG_BODIES && new RegExp(process.env.JS_SDK_HTTP_LOG_BODIES).test(pathname);
            const detail = verbose ? ` ${typeof init.body === "string" ? init.body : ""} => ${await response.clone().text()}` : "";
            console.log(`[http ${this.who}] ${method} ${pathname} -> ${response.status}${detail}`);
        }
        return response;
    }

    // True when every change to our own device list that /sync announced has been followed
    // by an answered keys/query, and no keys/query is in flight: no stale answer about our
    // own keys can still reach the crypto. (A change the server has yet to deliver would
    // wake the long-poll at once; callers wait for this to hold a little while.)
    settled() {
        return this.queriesInFlight === 0 && this.ownQueryDoneAt > this.ownListChangedAt;
    }
}

// Waits until check() has held for `quietMs` in a row.
async function waitSteady(what, check, quietMs = 300) {
    let since = null;
    await waitFor(what, () => {
        if (!check()) since = null;
        else since ??= performance.now();
        return since !== null && performance.now() - since >= quietMs;
    });
}

// Logs in, starts Rust crypto with its in-memory store (Node has no IndexedDB; the WASM
// module loads itself from node_modules), then starts the /sync loop.
async function cryptoClient(input, name, who = name) {
    const http = new HttpWatch(who);
    const client = await login(input.baseUrl, input[name].user, input[name].password, { fetchFn: http.fetchFn });
    http.userId = client.getUserId();
    await client.initRustCrypto({ useIndexedDB: false });
    const observed = await start(client);
    return { client, observed, http, crypto: client.getCrypto() };
}

// Password UIA for keys/device_signing/upload: first try without auth (the spec lets a
// server skip UIA for a user's first cross-signing keys), then answer the 401 with the
// password and the session it gave. Records which of the two happened in `record`.
function passwordAuth(user, password, record) {
    return async (makeRequest) => {
        try {
            await makeRequest(null);
            record.uia = "not required";
        } catch (error) {
            if (error?.httpStatus !== 401 || !error.data?.flows) throw error;
            record.uia = { flows: error.data.flows, session: Boolean(error.data.session) };
            await makeRequest({
                type: "m.login.password",
                identifier: { type: "m.id.user", user },
                password,
                session: error.data.session,
            });
        }
    };
}

// Waits until the event is in the room and decrypted; returns what it decrypted to. A
// decryption failure is only final at the timeout: the room key may arrive after the event.
async function decrypted(client, roomId, eventId, what) {
    let event;
    try {
        return await waitFor(what, () => {
            event = client.getRoom(roomId)?.findEventById(eventId);
            if (!event || event.isBeingDecrypted() || event.isDecryptionFailure()) return null;
            if (event.getWireType() !== EventType.RoomMessageEncrypted) {
                throw new Error(`${eventId} arrived unencrypted: ${JSON.stringify(event.event)}`);
            }
            return {
                eventId,
                sender: event.getSender(),
                wireType: event.getWireType(),
                type: event.getType(),
                body: event.getClearContent()?.body,
                algorithm: event.getWireContent().algorithm,
                senderCurve25519: Boolean(event.getSenderKey()),
            };
        });
    } catch (error) {
        const state = event
            ? `failure=${event.isDecryptionFailure()} reason=${event.decryptionFailureReason} content=${JSON.stringify(event.getContent())}`
            : "event not in the room";
        throw new Error(`${error.message} (${state})`);
    }
}

// Decryption outcomes as the SDK announces them (MatrixEventEvent.Decrypted), per event.
function watchDecryption(client) {
    const outcomes = [];
    client.on(MatrixEventEvent.Decrypted, (event, err) => {
        outcomes.push({ eventId: event.getId(), ok: !err && !event.isDecryptionFailure(),
            reason: event.decryptionFailureReason ?? undefined });
    });
    return outcomes;
}

async function createEncryptedRoom(client, invite) {
    const { room_id: roomId } = await client.createRoom({
        preset: "private_chat",
        invite,
        initial_state: [{ type: EventType.RoomEncryption, state_key: "", content: { algorithm: MEGOLM } }],
    });
    await waitFor("the creator sees the room's m.room.encryption", () =>
        client.getRoom(roomId)?.currentState.getStateEvents(EventType.RoomEncryption, ""));
    return roomId;
}

async function messages(input, step) {
    step("login and start Rust crypto");
    const alice = await cryptoClient(input, "alice");
    const bob = await cryptoClient(input, "bob");
    const aliceId = alice.client.getUserId();
    const bobId = bob.client.getUserId();
    const aliceDecrypted = watchDecryption(alice.client);
    const bobDecrypted = watchDecryption(bob.client);

    step("alice creates an encrypted room and invites bob");
    const roomId = await createEncryptedRoom(alice.client, [bobId]);
    await waitFor("bob's invite", () =>
        bob.observed.myMemberships.find((m) => m.roomId === roomId && m.membership === "invite"));

    step("bob joins");
    await bob.client.joinRoom(roomId);
    await waitFor("alice sees bob join", () =>
        alice.observed.memberships.find((m) => m.roomId === roomId && m.userId === bobId && m.membership === "join"));
    const encryptedOnAlice = await alice.crypto.isEncryptionEnabledInRoom(roomId);
    const encryptedOnBob = await waitFor("bob's crypto sees the room as encrypted",
        () => bob.crypto.isEncryptionEnabledInRoom(roomId));

    step("alice sends an encrypted message, bob decrypts it");
    const { event_id: helloId } = await alice.client.sendTextMessage(roomId, "secret hello bob");
    const bobGotHello = await decrypted(bob.client, roomId, helloId, "bob decrypts alice's message");

    step("bob replies, alice decrypts it");
    const { event_id: replyId } = await bob.client.sendTextMessage(roomId, "secret hi alice");
    const aliceGotReply = await decrypted(alice.client, roomId, replyId, "alice decrypts bob's reply");

    step("each sees the other's device");
    const bobDevicesOnAlice = await alice.crypto.getUserDeviceInfo([bobId]);
    const aliceDevicesOnBob = await bob.crypto.getUserDeviceInfo([aliceId]);

    alice.client.stopClient();
    bob.client.stopClient();
    return {
        roomId, aliceId, bobId, helloId, replyId,
        aliceDeviceId: alice.client.getDeviceId(),
        bobDeviceId: bob.client.getDeviceId(),
        encryptedOnAlice, encryptedOnBob,
        bobGotHello, aliceGotReply,
        bobDecryptedEvents: bobDecrypted.filter((d) => d.eventId === helloId),
        aliceDecryptedEvents: aliceDecrypted.filter((d) => d.eventId === replyId),
        bobDevicesOnAlice: [...(bobDevicesOnAlice.get(bobId)?.keys() ?? [])],
        aliceDevicesOnBob: [...(aliceDevicesOnBob.get(aliceId)?.keys() ?? [])],
    };
}

async function backup(input, step) {
    step("login and start Rust crypto");
    const first = await cryptoClient(input, "alice", "alice-1");

    step("alice creates a key backup");
    await first.crypto.resetKeyBackup();
    const version = await first.crypto.getActiveSessionBackupVersion();
    if (!version) throw new Error("no active backup version after resetKeyBackup");
    const backupKey = await first.crypto.getSessionBackupPrivateKey();

    step("alice sends in an encrypted room; her room key is backed up");
    const roomId = await createEncryptedRoom(first.client, []);
    const { event_id: secretId } = await first.client.sendTextMessage(roomId, "backed-up secret");
    let lastPoll = 0;
    const serverKeys = await waitFor("the room key reaches the backup on the server", async () => {
        if (performance.now() - lastPoll < 200) return null;
        lastPoll = performance.now();
        const keys = await first.client.http.authedRequest("GET", "/room_keys/keys", { version });
        return Object.keys(keys.rooms?.[roomId]?.sessions ?? {}).length > 0 && keys;
    });
    const serverInfo = await first.client.http.authedRequest("GET", "/room_keys/version");

    step("a second device of alice restores the backup and decrypts the old message");
    const second = await cryptoClient(input, "alice", "alice-2");
    await waitFor("the second device has the room", () => second.client.getRoom(roomId)?.findEventById(secretId));
    await second.crypto.storeSessionBackupPrivateKey(backupKey, version);
    const check = await second.crypto.checkKeyBackupAndEnable();
    const restored = await second.crypto.restoreKeyBackup();
    const onSecond = await decrypted(second.client, roomId, secretId, "the second device decrypts the old message");
    const activeOnSecond = await second.crypto.getActiveSessionBackupVersion();

    first.client.stopClient();
    second.client.stopClient();
    return {
        roomId, secretId, version, activeOnSecond,
        serverInfo: { version: serverInfo.version, algorithm: serverInfo.algorithm, count: serverInfo.count,
            etag: serverInfo.etag, signed: Object.keys(serverInfo.auth_data?.signatures ?? {}) },
        serverSessions: Object.fromEntries(Object.entries(serverKeys.rooms ?? {}).map(
            ([room, { sessions }]) => [room, Object.keys(sessions)])),
        check: check && { version: check.backupInfo.version, trusted: check.trustInfo.trusted,
            matchesDecryptionKey: check.trustInfo.matchesDecryptionKey },
        restored: { total: restored.total, imported: restored.imported },
        onSecond,
        devices: [first.client.getDeviceId(), second.client.getDeviceId()],
    };
}

// What bob's Rust crypto believes about alice's identity and one of her devices.
async function trustOnBob(bob, aliceId, aliceDeviceId) {
    const identity = await bob.crypto.getUserVerificationStatus(aliceId);
    const device = await bob.crypto.getDeviceVerificationStatus(aliceId, aliceDeviceId);
    return {
        known: identity.known,
        needsUserApproval: identity.needsUserApproval,
        deviceSignedByOwner: device?.signedByOwner ?? null,
    };
}

// The cross-signing keys of `userId` as another user reads them through keys/query.
async function queryCrossSigning(client, userId, deviceId) {
    const queried = await client.http.authedRequest("POST", "/keys/query", undefined,
        { device_keys: { [userId]: [] } });
    return {
        master: queried.master_keys?.[userId] ?? null,
        selfSigning: queried.self_signing_keys?.[userId] ?? null,
        userSigningVisible: Boolean(queried.user_signing_keys?.[userId]),
        deviceSignatures: Object.keys(queried.device_keys?.[userId]?.[deviceId]?.signatures?.[userId] ?? {}),
    };
}

async function crossSigning(input, step) {
    step("login and start Rust crypto");
    const alice = await cryptoClient(input, "alice");
    const bob = await cryptoClient(input, "bob");
    const aliceId = alice.client.getUserId();
    const bobId = bob.client.getUserId();
    const aliceDeviceId = alice.client.getDeviceId();
    const statusBefore = await alice.crypto.getCrossSigningStatus();

    step("alice and bob share an encrypted room, so bob's crypto tracks alice's keys");
    const roomId = await createEncryptedRoom(alice.client, [bobId]);
    await waitFor("bob's invite", () =>
        bob.observed.myMemberships.find((m) => m.roomId === roomId && m.membership === "invite"));
    await bob.client.joinRoom(roomId);
    await waitFor("bob's crypto tracks alice's device", async () =>
        (await bob.crypto.getUserDeviceInfo([aliceId])).get(aliceId)?.has(aliceDeviceId));
    const onBobBefore = await trustOnBob(bob, aliceId, aliceDeviceId);

    step("alice bootstraps cross-signing");
    const firstAuth = {};
    await alice.crypto.bootstrapCrossSigning({
        authUploadDeviceSigningKeys: passwordAuth(input.alice.user, input.alice.password, firstAuth),
    });
    const status = await alice.crypto.getCrossSigningStatus();
    // The SDK learns its own new identity and device signature back through keys/query.
    const masterKeyId = await waitFor("alice's crypto trusts her new master key", () =>
        alice.crypto.getCrossSigningKeyId(CrossSigningKey.Master));
    const selfSigningKeyId = await alice.crypto.getCrossSigningKeyId(CrossSigningKey.SelfSigning);
    const ready = await alice.crypto.isCrossSigningReady();
    const ownDevice = await waitFor("alice's device is signed by her self-signing key", async () => {
        const device = await alice.crypto.getDeviceVerificationStatus(aliceId, aliceDeviceId);
        return device?.signedByOwner && device;
    });

    step("bob learns alice's identity (device_lists.changed, keys/query)");
    const onBob = await waitFor("bob's crypto knows alice's identity and her cross-signed device", async () => {
        const trust = await trustOnBob(bob, aliceId, aliceDeviceId);
        return trust.known && trust.deviceSignedByOwner && trust;
    });
    const queried = await queryCrossSigning(bob.client, aliceId, aliceDeviceId);

    step("alice's crypto has heard the last of her old keys");
    // Each upload above changed alice's own device list, so her sync loop re-queries her own
    // keys. An answer still in flight when she replaces her keys would describe the old ones,
    // and the Rust crypto, seeing public keys that differ from its new private ones, would
    // drop the new private keys (a client-side race, whatever the server): wait it out.
    await waitSteady("alice's own keys/query settles", () => alice.http.settled());

    step("alice replaces her cross-signing keys (password UIA)");
    const resetAuth = {};
    await alice.crypto.bootstrapCrossSigning({
        setupNewCrossSigning: true,
        authUploadDeviceSigningKeys: passwordAuth(input.alice.user, input.alice.password, resetAuth),
    });
    let lastSeen;
    const newMasterKeyId = await waitFor("alice's crypto trusts her replaced master key", async () => {
        const id = await alice.crypto.getCrossSigningKeyId(CrossSigningKey.Master);
        const own = await alice.crypto.getOwnIdentity();
        lastSeen = { id, master: own?.masterKey, verified: own?.isVerified(), status: await alice.crypto.getCrossSigningStatus() };
        return id !== masterKeyId && id;
    }).catch((e) => { throw new Error(`${e.message}: ${JSON.stringify(lastSeen)}`); });
    const queriedAfterReset = await queryCrossSigning(bob.client, aliceId, aliceDeviceId);
    const onBobAfterReset = await waitFor("bob's crypto sees alice's identity change", async () => {
        const trust = await trustOnBob(bob, aliceId, aliceDeviceId);
        return trust.needsUserApproval && trust;
    });

    alice.client.stopClient();
    bob.client.stopClient();
    return {
        aliceId, aliceDeviceId, firstAuth, resetAuth,
        statusBefore, status, ready, masterKeyId, selfSigningKeyId, newMasterKeyId,
        ownDevice: ownDevice && { signedByOwner: ownDevice.signedByOwner,
            crossSigningVerified: ownDevice.crossSigningVerified },
        queried, queriedAfterReset, onBobBefore, onBob, onBobAfterReset,
    };
}

const PARTS = { messages, backup, crossSigning };

await runScenario(async (input, step) => {
    const part = PARTS[input.part];
    if (!part) throw new Error(`unknown part ${input.part}; one of ${Object.keys(PARTS)}`);
    return await part(input, step);
});
