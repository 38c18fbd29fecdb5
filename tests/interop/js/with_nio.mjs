// One matrix-js-sdk client talking to a matrix-nio client (driven by the Python test) in
// the same ChatGO room: the js-sdk side accepts nio's invite, says hello, and waits to see
// nio's message arrive live through its /sync loop.
//
// Input: {baseUrl, user, password, roomId, nioUserId}.

import { login, runScenario, start, waitFor } from "./harness.mjs";

await runScenario(async (input, step) => {
    const { roomId, nioUserId } = input;

    step("login and start the sync loop");
    const client = await login(input.baseUrl, input.user, input.password);
    const saw = await start(client);

    step("accept nio's invite");
    await waitFor("the invite from nio", () => client.getRoom(roomId)?.getMyMembership() === "invite");
    await client.joinRoom(roomId);

    step("say hello, wait for nio's message");
    const { event_id: sentId } = await client.sendTextMessage(roomId, "hello from js-sdk");
    const fromNio = await waitFor("nio's message", () =>
        saw.timeline.find((e) => e.roomId === roomId && e.live && e.sender === nioUserId && e.type === "m.room.message"));

    client.stopClient();
    return { userId: client.getUserId(), sentId, fromNio };
});
