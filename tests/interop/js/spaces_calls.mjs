// Spaces, room upgrades and TURN through matrix-js-sdk: alice builds a space with two child
// rooms and bob walks it with getRoomHierarchy (in pages); alice upgrades a room and bob, who
// sees the tombstone through his sync loop, follows it to the new room; both ask for TURN
// credentials as the SDK's call setup does.
//
// Input: {baseUrl, alice: {user, password}, bob: {user, password}}.

import { EventType } from "matrix-js-sdk";

import { login, runScenario, start, waitFor } from "./harness.mjs";

await runScenario(async (input, step) => {
    step("login");
    const alice = await login(input.baseUrl, input.alice.user, input.alice.password);
    const bob = await login(input.baseUrl, input.bob.user, input.bob.password);
    const serverName = alice.getUserId().split(":")[1];

    step("alice builds a space");
    const { room_id: spaceId } = await alice.createRoom({
        preset: "public_chat", name: "JS space", creation_content: { type: "m.space" },
    });
    const { room_id: lobbyId } = await alice.createRoom({ preset: "public_chat", name: "Lobby" });
    const { room_id: gamesId } = await alice.createRoom({ preset: "public_chat", name: "Games" });
    await alice.sendStateEvent(spaceId, EventType.SpaceChild, { via: [serverName], order: "a" }, lobbyId);
    await alice.sendStateEvent(spaceId, EventType.SpaceChild, { via: [serverName], order: "b", suggested: true }, gamesId);

    step("bob walks the space in pages");
    await bob.joinRoom(spaceId);
    const first = await bob.getRoomHierarchy(spaceId, 2);
    const second = await bob.getRoomHierarchy(spaceId, 2, undefined, false, first.next_batch);
    const suggested = await bob.getRoomHierarchy(spaceId, 10, undefined, true);

    step("bob's sync loop starts");
    const bobSaw = await start(bob);

    step("alice upgrades the lobby; bob follows the tombstone");
    await bob.joinRoom(lobbyId);
    await waitFor("bob's lobby", () => bob.getRoom(lobbyId));
    const { replacement_room: newLobbyId } = await alice.upgradeRoom(lobbyId, "11");
    const tombstone = await waitFor("bob sees the tombstone", () =>
        bob.getRoom(lobbyId)?.currentState.getStateEvents(EventType.RoomTombstone, ""));
    const replacement = tombstone.getContent().replacement_room;
    await bob.joinRoom(replacement);
    const newRoom = await waitFor("bob is in the new room", () => {
        const room = bob.getRoom(replacement);
        return room?.getMyMembership() === "join" ? room : undefined;
    });
    const predecessor = newRoom.findPredecessor();

    step("TURN credentials");
    const turn = await bob.turnServer();

    bob.stopClient();
    return {
        spaceId, lobbyId, gamesId, newLobbyId, replacement,
        firstPage: first.rooms.map((r) => r.room_id),
        secondPage: second.rooms.map((r) => r.room_id),
        hasNextAfterSecond: Boolean(second.next_batch),
        suggested: suggested.rooms.map((r) => r.room_id),
        spaceChildren: first.rooms[0].children_state.map((c) => c.state_key),
        spaceType: first.rooms[0].room_type,
        predecessor: predecessor?.roomId,
        newRoomVersion: newRoom.getVersion(),
        syncStates: bobSaw.syncStates.length,
        turn,
    };
});
