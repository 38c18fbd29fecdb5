// Two matrix-js-sdk clients, alice and bob, share a room through ChatGO and see each
// other's actions live through their /sync loops: invite and join, messages, an edit,
// a redaction, a room name change and bob leaving.
//
// Input: {baseUrl, alice: {user, password}, bob: {user, password}}.

import { EventType, RelationType } from "matrix-js-sdk";

import { login, runScenario, start, waitFor } from "./harness.mjs";

// The live, remote (not local echo) timeline events of a room, as the observer logged them.
const liveIn = (observed, roomId) => observed.timeline.filter((e) => e.roomId === roomId && e.live);

await runScenario(async (input, step) => {
    step("login");
    const alice = await login(input.baseUrl, input.alice.user, input.alice.password);
    const bob = await login(input.baseUrl, input.bob.user, input.bob.password);
    const aliceId = alice.getUserId();
    const bobId = bob.getUserId();

    step("start sync loops");
    const aliceSaw = await start(alice);
    const bobSaw = await start(bob);

    step("alice creates a room and invites bob");
    const { room_id: roomId } = await alice.createRoom({ preset: "private_chat", invite: [bobId] });
    await waitFor("bob's invite", () =>
        bobSaw.myMemberships.find((m) => m.roomId === roomId && m.membership === "invite"));

    step("bob joins");
    await bob.joinRoom(roomId);
    await waitFor("alice sees bob join", () =>
        aliceSaw.memberships.find((m) => m.roomId === roomId && m.userId === bobId && m.membership === "join"));

    step("alice sends, bob sees it");
    const { event_id: helloId } = await alice.sendTextMessage(roomId, "hello bob");
    const bobGotHello = await waitFor("bob sees alice's message", () =>
        liveIn(bobSaw, roomId).find((e) => e.eventId === helloId));

    step("bob sends, alice sees it");
    const { event_id: replyId } = await bob.sendTextMessage(roomId, "hi alice");
    const aliceGotReply = await waitFor("alice sees bob's message", () =>
        liveIn(aliceSaw, roomId).find((e) => e.eventId === replyId));

    step("alice edits her message, bob sees the edit");
    const { event_id: editId } = await alice.sendEvent(roomId, EventType.RoomMessage, {
        "msgtype": "m.text",
        "body": "* hello bob, edited",
        "m.new_content": { msgtype: "m.text", body: "hello bob, edited" },
        "m.relates_to": { rel_type: RelationType.Replace, event_id: helloId },
    });
    const bobGotEdit = await waitFor("bob sees the edit", () =>
        liveIn(bobSaw, roomId).find((e) => e.eventId === editId));
    const helloOnBob = bob.getRoom(roomId).findEventById(helloId);

    step("bob redacts his message, alice sees the redaction");
    const { event_id: redactionId } = await bob.redactEvent(roomId, replyId);
    const aliceGotRedaction = await waitFor("alice sees the redaction", () =>
        aliceSaw.redactions.find((r) => r.roomId === roomId && r.redacts === replyId));
    const redactedOnAlice = alice.getRoom(roomId).findEventById(replyId);

    step("alice renames the room, bob sees the name");
    await alice.setRoomName(roomId, "JS interop room");
    await waitFor("bob sees the new room name", () =>
        bobSaw.names.find((n) => n.roomId === roomId && n.name === "JS interop room"));

    step("bob leaves, alice sees it");
    await bob.leave(roomId);
    await waitFor("alice sees bob leave", () =>
        aliceSaw.memberships.find((m) => m.roomId === roomId && m.userId === bobId && m.membership === "leave"));
    const bobMemberOnAlice = alice.getRoom(roomId).getMember(bobId);

    alice.stopClient();
    bob.stopClient();
    return {
        roomId,
        aliceId,
        bobId,
        helloId,
        replyId,
        editId,
        redactionId,
        bobGotHello,
        aliceGotReply,
        bobGotEdit,
        // The SDK applies the edit to the original event it holds (MatrixEvent.makeReplaced).
        helloOnBob: { replacingEventId: helloOnBob?.replacingEventId(), body: helloOnBob?.getContent().body },
        aliceGotRedaction,
        redactedOnAlice: { isRedacted: redactedOnAlice?.isRedacted(), body: redactedOnAlice?.getContent().body },
        roomNameOnBob: bob.getRoom(roomId)?.name,
        bobMembershipOnAlice: bobMemberOnAlice?.membership,
        aliceJoinedMembersAfterLeave: alice.getRoom(roomId).getJoinedMembers().map((m) => m.userId),
    };
});
