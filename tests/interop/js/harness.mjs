// Shared plumbing for the scenarios run by tests/interop/test_js_sdk.py.
//
// A scenario is run as `node <scenario>.mjs <input.json> <result.json>`: it reads its
// input (the server's base URL, users and passwords), drives real matrix-js-sdk clients
// and writes what they observed to the result file. Results go to a file rather than
// stdout because the SDK logs through console, which the Python side only shows on
// failure.

import { readFileSync, writeFileSync } from "node:fs";

import {
    ClientEvent,
    createClient,
    RoomEvent,
    RoomMemberEvent,
    SyncState,
} from "matrix-js-sdk";
import { logger } from "matrix-js-sdk/lib/logger.js";

// How long one step may wait for the other side to observe something.
const STEP_TIMEOUT_MS = Number(process.env.JS_SDK_STEP_TIMEOUT_MS ?? 10000);

// Everything a client saw through its sync loop, as plain JSON, in arrival order.
// Scenarios wait on these logs (by polling) so a listener is never attached too late.
export class Observed {
    constructor(client) {
        this.timeline = [];
        this.redactions = [];
        this.names = [];
        this.memberships = [];
        this.myMemberships = [];
        this.typing = [];
        this.receipts = [];
        this.syncStates = [];

        client.on(RoomEvent.Timeline, (event, room, toStartOfTimeline, removed, data) => {
            const relation = event.getRelation();
            this.timeline.push({
                roomId: room?.roomId ?? event.getRoomId(),
                eventId: event.getId(),
                type: event.getType(),
                sender: event.getSender(),
                body: event.getOriginalContent().body,
                newBody: event.getOriginalContent()["m.new_content"]?.body,
                relType: relation?.rel_type,
                relatesTo: relation?.event_id,
                // A live event arrived through /sync, not from back-pagination or a local echo.
                live: Boolean(data?.liveEvent) && !toStartOfTimeline && !event.status,
            });
        });
        client.on(RoomEvent.Redaction, (event, room) => {
            this.redactions.push({
                roomId: room.roomId,
                sender: event.getSender(),
                redacts: event.event.redacts ?? event.getContent().redacts,
            });
        });
        client.on(RoomEvent.Name, (room) => {
            this.names.push({ roomId: room.roomId, name: room.name });
        });
        client.on(RoomMemberEvent.Membership, (event, member) => {
            this.memberships.push({
                roomId: member.roomId,
                userId: member.userId,
                membership: member.membership,
            });
        });
        client.on(RoomEvent.MyMembership, (room, membership) => {
            this.myMemberships.push({ roomId: room.roomId, membership });
        });
        client.on(RoomMemberEvent.Typing, (event, member) => {
            this.typing.push({ roomId: member.roomId, userId: member.userId, typing: member.typing });
        });
        client.on(RoomEvent.Receipt, (event, room) => {
            // content: {eventId: {receiptType: {userId: {ts, thread_id?}}}}
            for (const [eventId, byType] of Object.entries(event.getContent())) {
                for (const [receiptType, byUser] of Object.entries(byType)) {
                    for (const userId of Object.keys(byUser)) {
                        this.receipts.push({ roomId: room.roomId, eventId, receiptType, userId });
                    }
                }
            }
        });
        client.on(ClientEvent.Sync, (state, prevState, data) => {
            this.syncStates.push({ state, error: data?.error ? String(data.error) : undefined });
        });
    }
}

// Resolves with check()'s first truthy value (check may be async); rejects naming `what`
// after the step timeout.
export async function waitFor(what, check, timeoutMs = STEP_TIMEOUT_MS) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const value = await check();
        if (value) return value;
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 25));
    }
}

// Logs in with a password through the SDK and returns an authenticated client, the way
// the SDK recommends: loginRequest on a bare client, then a new client with the token.
// `clientOpts` go to createClient as well (e.g. a logging fetchFn).
export async function login(baseUrl, user, password, clientOpts = {}) {
    const bare = createClient({ baseUrl, ...clientOpts });
    const response = await bare.loginRequest({
        type: "m.login.password",
        identifier: { type: "m.id.user", user },
        password,
        initial_device_display_name: "matrix-js-sdk interop",
    });
    return createClient({
        baseUrl,
        accessToken: response.access_token,
        userId: response.user_id,
        deviceId: response.device_id,
        ...clientOpts,
    });
}

// Server gaps the harness had to paper over, reported in every result so the Python side
// can warn about them; empty once ChatGO serves everything the SDK needs to start.
export const workarounds = new Set();

// js-sdk fetches GET /pushrules/ before its first /sync and retries it forever on any
// error, so a server without push rules never gets a syncing client. When ChatGO answers
// M_UNRECOGNIZED, start with the SDK's own default rules instead (and say so).
function tolerateMissingPushRules(client) {
    const fetchPushRules = client.getPushRules.bind(client);
    client.getPushRules = async () => {
        try {
            return await fetchPushRules();
        } catch (error) {
            if (error?.errcode !== "M_UNRECOGNIZED") throw error;
            workarounds.add("GET /pushrules/ answered M_UNRECOGNIZED: the SDK started with its default push rules");
            client.setPushRules({ global: {} });
            return client.pushRules;
        }
    };
}

// Starts the client's real /sync loop and waits until its first sync is processed.
export async function start(client) {
    const observed = new Observed(client);
    tolerateMissingPushRules(client);
    await client.startClient({ initialSyncLimit: 20 });
    await waitFor(`${client.getUserId()}'s first sync (sync states so far: ${JSON.stringify(observed.syncStates)})`,
        () => observed.syncStates.some((s) => s.state === SyncState.Prepared || s.state === SyncState.Syncing));
    return observed;
}

// Runs a scenario: fn(input) returns the result object. Any failure is written to the
// result file as {error, step} so the Python side can report which step broke.
export async function runScenario(fn) {
    logger.setLevel(process.env.JS_SDK_LOG_LEVEL ?? "warn");
    const [inputPath, resultPath] = process.argv.slice(2);
    const input = JSON.parse(readFileSync(inputPath, "utf8"));
    const progress = { step: "start" };
    let exitCode = 0;
    try {
        const result = await fn(input, (step) => {
            progress.step = step;
            console.log(`--- step: ${step}`);
        });
        writeFileSync(resultPath, JSON.stringify({ ok: true, workarounds: [...workarounds], ...result }));
    } catch (error) {
        writeFileSync(resultPath, JSON.stringify({
            ok: false, step: progress.step, error: String(error?.stack ?? error), workarounds: [...workarounds],
        }));
        exitCode = 1;
    }
    // The SDK keeps timers and sockets alive after stopClient; end the process explicitly.
    process.exit(exitCode);
}
