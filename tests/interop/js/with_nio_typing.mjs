// Typing back and forth between a matrix-js-sdk client and a matrix-nio client (driven by the
// Python test), several rounds, with the same turn-taking through the room as with_nio.mjs:
// each round nio starts typing -> js sees it and types -> nio sees that and stops -> js sees
// it stop and stops. Many rounds make the nio side's check meaningful (see the test); nio ends
// the rounds early by saying "done typing" in the room.
//
// Input: {baseUrl, user, password, roomId, nioUserId, rounds}.

import { login, runScenario, start, waitFor } from "./harness.mjs";

await runScenario(async (input, step) => {
    const { roomId, nioUserId, rounds } = input;

    step("login and start the sync loop");
    const client = await login(input.baseUrl, input.user, input.password);
    const saw = await start(client);

    step("accept nio's invite");
    await waitFor("the invite from nio", () => client.getRoom(roomId)?.getMyMembership() === "invite");
    await client.joinRoom(roomId);

    // RoomMember.typing fires on changes only, so the n-th change of nio's typing is round n's.
    const nioChanges = (typing) => saw.typing.filter((t) =>
        t.roomId === roomId && t.userId === nioUserId && t.typing === typing).length;
    const nioDone = () => saw.timeline.some((e) =>
        e.roomId === roomId && e.live && e.sender === nioUserId && e.body === "done typing");
    let round = 1;
    for (; round <= rounds; round++) {
        step(`round ${round}: wait for nio to type, then type`);
        await waitFor(`nio typing (round ${round})`, () => nioChanges(true) >= round || nioDone());
        if (nioDone()) break;
        await client.sendTyping(roomId, true, 30000);

        step(`round ${round}: wait for nio to stop, then stop`);
        await waitFor(`nio stopping (round ${round})`, () => nioChanges(false) >= round || nioDone());
        if (nioDone()) break;
        await client.sendTyping(roomId, false, 0);
    }
    if (round > rounds) {
        step("wait for nio to say it is done");
        await waitFor("nio's done typing", nioDone);
    }

    client.stopClient();
    return { userId: client.getUserId(), typing: saw.typing.filter((t) => t.roomId === roomId) };
});
