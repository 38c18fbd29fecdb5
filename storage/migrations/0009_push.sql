-- Push: users' own push rules and their changes to the server-default rules, pushers, and
-- the push actions each new event produced for each local user (unread counts,
-- /notifications, push gateway deliveries).

-- Rules a user defined (PUT /pushrules/global/{kind}/{ruleId}). Within a (user, kind) the
-- lowest position is the most important rule.
CREATE TABLE push_rules (
    user_id     TEXT NOT NULL,
    kind        TEXT NOT NULL,               -- override | content | room | sender | underride
    rule_id     TEXT NOT NULL,
    position    INTEGER NOT NULL,
    conditions  JSONB,                       -- override and underride rules
    pattern     TEXT,                        -- content rules
    actions     JSONB NOT NULL,
    enabled     BOOLEAN NOT NULL DEFAULT TRUE,
    PRIMARY KEY (user_id, kind, rule_id)
);

-- What a user changed on a server-default rule; NULL keeps the default's value.
CREATE TABLE push_rule_defaults (
    user_id  TEXT NOT NULL,
    kind     TEXT NOT NULL,
    rule_id  TEXT NOT NULL,
    enabled  BOOLEAN,
    actions  JSONB,
    PRIMARY KEY (user_id, kind, rule_id)
);

-- Pushers (POST /pushers/set). A pusher belongs to the device that set it and goes with it.
CREATE TABLE pushers (
    user_id              TEXT NOT NULL,
    app_id               TEXT NOT NULL,
    pushkey              TEXT NOT NULL,
    device_id            TEXT NOT NULL,
    kind                 TEXT NOT NULL,
    app_display_name     TEXT NOT NULL,
    device_display_name  TEXT NOT NULL,
    profile_tag          TEXT,
    lang                 TEXT NOT NULL,
    data                 JSONB NOT NULL,
    pushkey_ts           BIGINT NOT NULL,    -- milliseconds
    PRIMARY KEY (user_id, app_id, pushkey),
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
CREATE INDEX pushers_by_key ON pushers (app_id, pushkey);

-- The actions of the push rule that matched a new event, per local user, when they notify
-- or highlight. thread_id is the thread root for events in a thread, NULL for the main timeline.
CREATE TABLE event_push_actions (
    user_id          TEXT NOT NULL,
    room_id          TEXT NOT NULL,
    event_id         TEXT NOT NULL,
    stream_ordering  BIGINT NOT NULL,
    thread_id        TEXT,
    notify           BOOLEAN NOT NULL,
    highlight        BOOLEAN NOT NULL,
    actions          JSONB NOT NULL,
    ts               BIGINT NOT NULL,
    PRIMARY KEY (user_id, event_id)
);
-- Unread counts per room, and /notifications newest first.
CREATE INDEX event_push_actions_counts ON event_push_actions (user_id, room_id, stream_ordering);
CREATE INDEX event_push_actions_list ON event_push_actions (user_id, stream_ordering);
-- A redaction removes the actions of the event it redacts.
CREATE INDEX event_push_actions_event ON event_push_actions (event_id);
