-- The room directories of application services (spec: "Application service room directories"):
-- rooms an appservice published for one of the third-party networks it bridges. publicRooms
-- with third_party_instance_id "{appservice_id}|{network_id}" lists one network's rooms;
-- include_all_networks lists them beside the server's own directory (published_rooms).
CREATE TABLE appservice_room_list (
    appservice_id  TEXT NOT NULL,
    network_id     TEXT NOT NULL,
    room_id        TEXT NOT NULL,
    published_ts   BIGINT NOT NULL,
    PRIMARY KEY (appservice_id, network_id, room_id)
);
