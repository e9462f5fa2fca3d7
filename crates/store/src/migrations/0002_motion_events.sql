-- Schema version 2: motion events (src/events.rs).
-- Released migrations are never edited: change the schema by adding the next numbered file.

-- One row per motion event of one camera. The JPEG files live under data_dir/events/; only their paths
-- (relative to that directory) and sizes are stored here.
-- AUTOINCREMENT: an id is never reused, so a link to event 7 never shows another event after 7 is deleted.
CREATE TABLE events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    camera         TEXT    NOT NULL,
    start_ms       INTEGER NOT NULL,
    -- NULL while the event is ongoing. Never before last_ms (so never before start_ms).
    end_ms         INTEGER CHECK (end_ms IS NULL OR end_ms >= last_ms),
    -- Time of the newest frame seen: a crash leaves end_ms NULL, and the next start ends the event here.
    last_ms        INTEGER NOT NULL CHECK (last_ms >= start_ms),
    peak_score     REAL    NOT NULL,
    -- The box of the largest change at the peak, in normalized picture coordinates; all four or none.
    box_x          REAL,
    box_y          REAL,
    box_w          REAL,
    box_h          REAL,
    -- The best snapshot's file; snapshot_bytes is its size (0 without one).
    snapshot       TEXT,
    snapshot_bytes INTEGER NOT NULL DEFAULT 0 CHECK (snapshot_bytes >= 0),
    -- snapshot_bytes plus the sizes of every row of event_frames: what retention by size counts.
    bytes          INTEGER NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    CHECK ((box_x IS NULL) = (box_y IS NULL) AND (box_x IS NULL) = (box_w IS NULL) AND (box_x IS NULL) = (box_h IS NULL)),
    CHECK (snapshot IS NOT NULL OR snapshot_bytes = 0)
);
-- Listing one camera's events newest first.
CREATE INDEX events_camera_start ON events (camera, start_ms);
-- Listing every camera's events newest first, the histogram, retention by size (oldest first).
CREATE INDEX events_start ON events (start_ms);
-- Open events (end_ms IS NULL: closing them at start-up), retention by age, events overlapping a time range.
CREATE INDEX events_end ON events (end_ms);

-- The frames of an event, spread across it: n is 0, 1, 2... in the order they were added (time order).
CREATE TABLE event_frames (
    event_id INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    n        INTEGER NOT NULL CHECK (n >= 0),
    path     TEXT    NOT NULL,
    bytes    INTEGER NOT NULL CHECK (bytes >= 0),
    PRIMARY KEY (event_id, n)
) WITHOUT ROWID;

-- The sum of every event's bytes (retention by size, /metrics), kept by the triggers below so that reading
-- it does not scan every event. One row.
CREATE TABLE event_totals (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    bytes INTEGER NOT NULL CHECK (bytes >= 0)
);
INSERT INTO event_totals (id, bytes) VALUES (1, 0);
CREATE TRIGGER events_bytes_insert AFTER INSERT ON events BEGIN
    UPDATE event_totals SET bytes = bytes + NEW.bytes;
END;
CREATE TRIGGER events_bytes_update AFTER UPDATE OF bytes ON events BEGIN
    UPDATE event_totals SET bytes = bytes - OLD.bytes + NEW.bytes;
END;
CREATE TRIGGER events_bytes_delete AFTER DELETE ON events BEGIN
    UPDATE event_totals SET bytes = bytes - OLD.bytes;
END;
