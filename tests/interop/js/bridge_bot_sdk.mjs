// A bridge built on matrix-bot-sdk's Appservice, run by tests/interop/test_js_bridge.py against
// ChatGO: it relays between Matrix portal rooms (#fakenet_<channel>, created when the server asks
// about the alias) and the channels of the test's fake network, with ghosts (@fakenet_<user>)
// for the network's users; it answers third-party lookups for the protocol "fakenet" and
// publishes its portals in its network's room directory.
//
// Run as `node --require ./optional_crypto.cjs bridge_bot_sdk.mjs <input.json>`; input:
// {homeserverUrl, homeserverName, registration, networkUrl, port}. Prints "READY" once it
// listens; logs go to stderr.

import { readFileSync } from "node:fs";

import { Appservice, LogLevel, LogService, MemoryStorageProvider } from "matrix-bot-sdk";

const input = JSON.parse(readFileSync(process.argv[2], "utf8"));
const { homeserverUrl, homeserverName, registration, networkUrl, port } = input;
const PREFIX = "fakenet";
const NETWORK_ID = "fakenet-main";

LogService.setLevel(LogLevel.WARN);

const appservice = new Appservice({
    port,
    bindAddress: "127.0.0.1",
    homeserverName,
    homeserverUrl,
    registration,
    storage: new MemoryStorageProvider(),
});
const bot = appservice.botClient;

const channelOfAlias = (alias) => alias.slice(1).split(":")[0].slice(PREFIX.length + 1);
const aliasOfChannel = (channel) => `#${PREFIX}_${channel}:${homeserverName}`;
const channels = new Map(); // portal room ID -> channel

async function channelOfRoom(roomId) {
    if (!channels.has(roomId)) {
        const state = await bot.getRoomStateEvent(roomId, "m.room.canonical_alias", "").catch(() => null);
        if (state?.alias?.startsWith(`#${PREFIX}_`)) {
            channels.set(roomId, channelOfAlias(state.alias));
        }
    }
    return channels.get(roomId);
}

// The server asks about an alias of our namespace: make the portal (bot-sdk creates the room
// with the alias), and list it in our network's room directory.
appservice.on("query.room", async (alias, createRoom) => {
    const channel = channelOfAlias(alias);
    const options = { preset: "public_chat", name: `${channel} (FakeNet)` };
    await createRoom(options);
    const roomId = options.__roomId; // set by bot-sdk once the room exists
    channels.set(roomId, channel);
    await bot.doRequest("PUT", `/_matrix/client/v3/directory/list/appservice/${NETWORK_ID}/${encodeURIComponent(roomId)}`,
        null, { visibility: "public" });
});

// Matrix -> network: what people say in a portal (not our bot's or ghosts' messages: no echo).
appservice.on("room.message", async (roomId, event) => {
    if (event.sender === appservice.botUserId || appservice.isNamespacedUser(event.sender)) return;
    const channel = await channelOfRoom(roomId);
    if (channel === undefined || !event.content?.body) return;
    await fetch(`${networkUrl}/channels/${encodeURIComponent(channel)}/messages`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ sender: event.sender, body: event.content.body }),
    });
});

// Third-party lookups.
appservice.on("thirdparty.protocol", (protocol, respond) => {
    respond({
        user_fields: ["username"],
        location_fields: ["channel"],
        icon: "mxc://fakenet.example/icon",
        field_types: {
            username: { regexp: "[a-z]+", placeholder: "carol" },
            channel: { regexp: "[a-z]+", placeholder: "general" },
        },
        instances: [{ desc: "FakeNet", network_id: NETWORK_ID, fields: {} }],
    });
});
appservice.on("thirdparty.location.remote", (protocol, fields, respond) => {
    respond(fields.channel ? [{ alias: aliasOfChannel(fields.channel), protocol, fields: { channel: fields.channel } }] : []);
});
appservice.on("thirdparty.user.remote", (protocol, fields, respond) => {
    respond(fields.username
        ? [{ userid: `@${PREFIX}_${fields.username}:${homeserverName}`, protocol, fields: { username: fields.username } }]
        : []);
});

// Network -> Matrix: a remote user spoke at `ts`; their ghost says it in the portal, at that time.
let txn = 0;
appservice.expressAppInstance.post("/network/messages", async (req, res) => {
    try {
        const { channel, user, body, ts } = req.body;
        const roomId = await bot.resolveRoom(aliasOfChannel(channel));
        const ghost = appservice.getIntentForUserId(`@${PREFIX}_${user}:${homeserverName}`);
        await ghost.ensureRegistered();
        await ghost.underlyingClient.setDisplayName(`${user} (FakeNet)`);
        await ghost.ensureJoined(roomId);
        // bot-sdk's sendEvent has no timestamp: the request it would make, with `ts`.
        const sent = await ghost.underlyingClient.doRequest("PUT",
            `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/fakenet-${++txn}`,
            { ts }, { msgtype: "m.text", body });
        res.json({ event_id: sent.event_id });
    } catch (err) {
        console.error("relaying from the network failed", err);
        res.status(500).json({ error: String(err?.body?.error ?? err) });
    }
});

await appservice.begin();
console.log("READY");
