// One matrix-js-sdk client talking to a matrix-nio client (driven by the Python test) in
// the same ChatGO room. The two sides coordinate through the room alone: each acts only
// once its /sync loop has shown it the other's previous action, so every step below both
// proves that nio's action arrived live and triggers nio's next one. The turns:
//
//   js joins, says hello            -> nio starts typing
//   js sees nio typing, types       -> nio sees it, stops typing
//   js sees nio stop, stops typing  -> nio sees it, reads js's hello (receipt), says hello
//   js sees the receipt and hello, reads nio's hello -> nio sees the receipt, edits its hello
//   js sees the edit, edits its hello               -> nio sees it, redacts its hello
//   js sees the redaction, redacts its hello        -> nio sees it (and the test ends)
//
// Each receipt is for the newest message in the room, so no server may ignore it as stale.
//
// Input: {baseUrl, user, password, roomId, nioUserId}.

import { EventType, ReceiptType, RelationType } from "matrix-js-sdk";

import { login, runScenario, start, waitFor } from "./harness.mjs";

await runScenario(async (input, step) => {
    const { roomId, nioUserId } = input;

    step("login and start the sync loop");
    const client = await login(input.baseUrl, input.user, input.password);
    const saw = await start(client);

    step("accept nio's invite");
    await waitFor("the invite from nio", () => client.getRoom(roomId)?.getMyMembership() === "invite");
    await client.joinRoom(roomId);
    const room = client.getRoom(roomId);
    const fromNioLive = () => saw.timeline.filter((e) => e.roomId === roomId && e.live && e.sender === nioUserId);

    step("say hello, wait for nio to start typing");
    const { event_id: sentId } = await client.sendTextMessage(roomId, "hello from js-sdk");
    const nioTyping = (typing) => saw.typing.findIndex((t) =>
        t.roomId === roomId && t.userId === nioUserId && t.typing === typing);
    await waitFor("nio's typing notification", () => nioTyping(true) >= 0);
    const nioTypingOnJs = room.getMember(nioUserId)?.typing;

    step("type too, wait for nio to stop typing");
    await client.sendTyping(roomId, true, 30000);
    await waitFor("nio's typing stopping", () => saw.typing.some((t, i) =>
        i > nioTyping(true) && t.roomId === roomId && t.userId === nioUserId && !t.typing));
    const nioTypingOnJsAfterStop = room.getMember(nioUserId)?.typing;

    step("stop typing, wait for nio's read receipt on our hello and nio's message");
    await client.sendTyping(roomId, false, 0);
    const nioReceipt = await waitFor("nio's read receipt on our hello", () =>
        saw.receipts.find((r) => r.roomId === roomId && r.userId === nioUserId && r.eventId === sentId));
    const fromNio = await waitFor("nio's message", () => fromNioLive().find((e) => e.type === EventType.RoomMessage));
    const nioHelloId = fromNio.eventId;

    step("read nio's message, wait for nio's edit of it");
    await client.sendReadReceipt(room.findEventById(nioHelloId), ReceiptType.Read);
    const nioEdit = await waitFor("nio's edit", () => fromNioLive().find((e) => e.relType === RelationType.Replace));
    const nioHelloOnJs = await waitFor("nio's message shown with the edit's content", () => {
        const shown = room.findEventById(nioHelloId);
        return shown?.replacingEventId() === nioEdit.eventId &&
            { replacingEventId: shown.replacingEventId(), body: shown.getContent().body };
    });

    step("edit our hello, wait for nio's redaction of its message");
    const { event_id: editId } = await client.sendEvent(roomId, EventType.RoomMessage, {
        "msgtype": "m.text",
        "body": "* hello from js-sdk, edited",
        "m.new_content": { msgtype: "m.text", body: "hello from js-sdk, edited" },
        "m.relates_to": { rel_type: RelationType.Replace, event_id: sentId },
    });
    const nioRedaction = await waitFor("nio's redaction", () =>
        saw.redactions.find((r) => r.roomId === roomId && r.sender === nioUserId));
    const nioHelloAfterRedaction = room.findEventById(nioHelloId);

    step("redact our hello");
    const { event_id: redactionId } = await client.redactEvent(roomId, sentId);

    client.stopClient();
    return {
        userId: client.getUserId(),
        sentId,
        editId,
        redactionId,
        fromNio,
        nioTypingOnJs,
        nioTypingOnJsAfterStop,
        nioReceipt,
        nioEdit,
        nioHelloOnJs,
        nioRedaction,
        nioHelloAfterRedaction: {
            isRedacted: nioHelloAfterRedaction?.isRedacted(),
            body: nioHelloAfterRedaction?.getContent().body,
        },
    };
});
