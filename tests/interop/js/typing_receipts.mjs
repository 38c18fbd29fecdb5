// Ephemeral events between two matrix-js-sdk clients through ChatGO: alice's typing
// notifications reach bob (RoomMember.typing) and bob's read receipt reaches alice
// (Room.receipt), both through the ephemeral section of their /sync responses.
//
// Input: {baseUrl, alice: {user, password}, bob: {user, password}}.

import { ReceiptType } from "matrix-js-sdk";

import { login, runScenario, start, waitFor } from "./harness.mjs";

await runScenario(async (input, step) => {
    step("login and start sync loops");
    const alice = await login(input.baseUrl, input.alice.user, input.alice.password);
    const bob = await login(input.baseUrl, input.bob.user, input.bob.password);
    const aliceId = alice.getUserId();
    const bobId = bob.getUserId();
    const aliceSaw = await start(alice);
    const bobSaw = await start(bob);

    step("alice creates a room, bob joins");
    const { room_id: roomId } = await alice.createRoom({ preset: "private_chat", invite: [bobId] });
    await waitFor("bob's invite", () =>
        bobSaw.myMemberships.find((m) => m.roomId === roomId && m.membership === "invite"));
    await bob.joinRoom(roomId);
    await waitFor("alice sees bob join", () =>
        aliceSaw.memberships.find((m) => m.roomId === roomId && m.userId === bobId && m.membership === "join"));

    step("alice starts typing, bob sees it");
    await alice.sendTyping(roomId, true, 20000);
    await waitFor("bob sees alice typing", () =>
        bobSaw.typing.find((t) => t.roomId === roomId && t.userId === aliceId && t.typing));
    const typingOnBob = bob.getRoom(roomId).getMember(aliceId).typing;

    step("alice stops typing, bob sees it stop");
    await alice.sendTyping(roomId, false, 0);
    await waitFor("bob sees alice stop typing", () =>
        bobSaw.typing.find((t) => t.roomId === roomId && t.userId === aliceId && !t.typing));
    const typingOnBobAfterStop = bob.getRoom(roomId).getMember(aliceId).typing;

    step("alice sends a message, bob reads it, alice sees the receipt");
    const { event_id: messageId } = await alice.sendTextMessage(roomId, "read me");
    await waitFor("bob receives the message", () => bob.getRoom(roomId).findEventById(messageId));
    await bob.sendReadReceipt(bob.getRoom(roomId).findEventById(messageId), ReceiptType.Read);
    const receipt = await waitFor("alice sees bob's read receipt", () =>
        aliceSaw.receipts.find((r) => r.roomId === roomId && r.eventId === messageId && r.userId === bobId));
    const messageOnAlice = alice.getRoom(roomId).findEventById(messageId);

    alice.stopClient();
    bob.stopClient();
    return {
        aliceId,
        bobId,
        messageId,
        typingOnBob,
        typingOnBobAfterStop,
        receipt,
        readUpToOnAlice: alice.getRoom(roomId).getEventReadUpTo(bobId, true),
        usersReadUpToOnAlice: alice.getRoom(roomId).getUsersReadUpTo(messageOnAlice),
    };
});
