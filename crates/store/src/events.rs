//! Motion events: one row per event in `events`, its frames in `event_frames`.
//!
//! camhub writes the JPEG files under `data_dir/events/` and records here only their paths (relative to
//! that directory) and sizes. Every operation is one transaction, so a crash (even `kill -9`) leaves each
//! event as of its last completed call: an event that was ongoing keeps `end_ms` NULL and its `last_ms`,
//! and [`Store::close_open_events`] ends it there at the next start.
//!
//! Files and rows cannot change atomically together. The order that loses nothing: write a file, then
//! record it ([`Store::event_update`]); delete or prune the row, then delete the files it returns. A crash
//! in between leaves at worst a file no event names, which a sweep against [`Store::event_files`] finds.

use std::collections::HashSet;

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row, TransactionBehavior};

use crate::{Store, StoreError};

/// The most events [`Store::events`] returns at once (a larger `limit` is lowered to this).
pub const MAX_EVENTS_PER_QUERY: usize = 1000;

/// The most buckets [`Store::histogram`] computes; a larger request is refused with [`StoreError::Invalid`].
pub const MAX_HISTOGRAM_BUCKETS: usize = 10_000;

/// A box in normalized picture coordinates (0..=1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EventBox {
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
}

/// One stored motion event.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// The event's id: assigned by the store, never reused.
    pub id: i64,
    /// The camera's id.
    pub camera: String,
    /// When the motion started, unix milliseconds.
    pub start_ms: i64,
    /// When it ended, unix milliseconds; `None` while the event is ongoing. Never before `last_ms`.
    pub end_ms: Option<i64>,
    /// Time of the newest frame seen in the event (for closing it after a crash).
    pub last_ms: i64,
    /// The highest motion score seen.
    pub peak_score: f64,
    /// The box of the largest change at the peak, if the detector gave one.
    pub peak_box: Option<EventBox>,
    /// File of the best snapshot, relative to the events directory.
    pub snapshot: Option<String>,
    /// Files of the event's frames, in time order, relative to the events directory.
    pub frames: Vec<String>,
    /// Sum of the sizes of the event's files (the snapshot and the frames), in bytes.
    pub bytes: i64,
}

/// What changed in an ongoing event (all optional except last_ms).
#[derive(Debug, Clone, Default)]
pub struct EventUpdate {
    /// Time of the newest frame seen, unix milliseconds. The stored value only moves forward.
    pub last_ms: i64,
    /// New peak (score and its box), if the score went up. Ignored unless the score is above the stored one.
    pub peak: Option<(f64, Option<EventBox>)>,
    /// A new best snapshot file and its size in bytes. It replaces the old one, whose path
    /// [`Store::event_update`] returns so that the caller deletes that file.
    pub snapshot: Option<(String, i64)>,
    /// Frame files added, in time order, with their sizes in bytes.
    pub add_frames: Vec<(String, i64)>,
    /// Frame files taken out (by path; applied before `add_frames`): a long event thins its frames
    /// to stay spread over its whole length. The caller deletes the files.
    pub remove_frames: Vec<String>,
}

/// Query for listing.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Only these cameras (None = all). An empty list matches nothing.
    pub cameras: Option<Vec<String>>,
    /// Events that overlap [from, to) (an ongoing event extends to +infinity). An event runs over
    /// `[start_ms, end_ms)`; one that starts inside the range overlaps it even if it lasted 0 ms.
    pub from_ms: Option<i64>,
    /// The end of the range (excluded); see `from_ms`.
    pub to_ms: Option<i64>,
    /// Pagination: only the events listed after this one (pass the last id you got). With
    /// [`Store::events`]' newest-first order that is the events with a lower `(start_ms, id)` than event
    /// `before_id`: no duplicates or gaps between pages even when ids and start times disagree. If that
    /// event has been deleted meanwhile, the ids lower than `before_id`.
    pub before_id: Option<i64>,
    /// At most this many (the caller clamps; the store clamps to 1..=[`MAX_EVENTS_PER_QUERY`] too).
    pub limit: usize,
}

/// One histogram bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    /// The bucket's start, unix milliseconds (a multiple of the bucket size).
    pub start_ms: i64,
    /// Events that started in this bucket.
    pub events: u64,
    /// Milliseconds of motion in this bucket: the sum of the overlaps of every event with the bucket (an
    /// ongoing event runs to `now_ms`, or to its `last_ms` if the clock says that is later). Events of several cameras at once count each, so this can exceed
    /// the bucket's length.
    pub motion_ms: i64,
}

const EVENT_COLUMNS: &str =
    "id, camera, start_ms, end_ms, last_ms, peak_score, box_x, box_y, box_w, box_h, snapshot, bytes";

/// An `events` row as SQLite returns it (columns in [`EVENT_COLUMNS`] order), before the checks that turn
/// it into an [`EventRecord`].
struct EventRow {
    id: i64,
    camera: String,
    start_ms: i64,
    end_ms: Option<i64>,
    last_ms: i64,
    peak_score: f64,
    peak_box: [Option<f64>; 4],
    snapshot: Option<String>,
    bytes: i64,
}

impl EventRow {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<EventRow> {
        Ok(EventRow {
            id: row.get(0)?,
            camera: row.get(1)?,
            start_ms: row.get(2)?,
            end_ms: row.get(3)?,
            last_ms: row.get(4)?,
            peak_score: row.get(5)?,
            peak_box: [row.get(6)?, row.get(7)?, row.get(8)?, row.get(9)?],
            snapshot: row.get(10)?,
            bytes: row.get(11)?,
        })
    }

    /// Checks the row and adds its frames.
    fn into_record(self, conn: &Connection) -> Result<EventRecord, StoreError> {
        let id = self.id;
        let peak_box = match self.peak_box {
            [Some(x), Some(y), Some(w), Some(h)] => Some(EventBox { x, y, w, h }),
            [None, None, None, None] => None,
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "motion event {id}'s box has only some of its four coordinates"
                )))
            }
        };
        let frames = conn
            .prepare_cached("SELECT path FROM event_frames WHERE event_id = ?1 ORDER BY n")?
            .query_map([id], |row| row.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(EventRecord {
            id,
            camera: self.camera,
            start_ms: self.start_ms,
            end_ms: self.end_ms,
            last_ms: self.last_ms,
            peak_score: self.peak_score,
            peak_box,
            snapshot: self.snapshot,
            frames,
            bytes: self.bytes,
        })
    }
}

/// Event `id` with its frames, None if there is none.
fn load(conn: &Connection, id: i64) -> Result<Option<EventRecord>, StoreError> {
    let row = conn
        .prepare_cached(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = ?1"))?
        .query_row([id], EventRow::from_row)
        .optional()?;
    row.map(|row| row.into_record(conn)).transpose()
}

/// Deletes event `id` (its frames go with it: ON DELETE CASCADE) and returns it, None if there is none.
fn take(conn: &Connection, id: i64) -> Result<Option<EventRecord>, StoreError> {
    let event = load(conn, id)?;
    if event.is_some() {
        conn.prepare_cached("DELETE FROM events WHERE id = ?1")?
            .execute([id])?;
    }
    Ok(event)
}

/// `what` must be a number: SQLite would store NaN as NULL.
fn finite(value: f64, what: &str) -> Result<f64, StoreError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(StoreError::Invalid(format!(
            "{what} is {value}, not a finite number"
        )))
    }
}

fn check_box(bx: Option<EventBox>) -> Result<[Option<f64>; 4], StoreError> {
    match bx {
        None => Ok([None; 4]),
        Some(b) => Ok([
            Some(finite(b.x, "the box's x")?),
            Some(finite(b.y, "the box's y")?),
            Some(finite(b.w, "the box's width")?),
            Some(finite(b.h, "the box's height")?),
        ]),
    }
}

fn check_size(bytes: i64, path: &str) -> Result<i64, StoreError> {
    if bytes >= 0 {
        Ok(bytes)
    } else {
        Err(StoreError::Invalid(format!(
            "the size of {path:?} is {bytes} bytes, below 0"
        )))
    }
}

/// `cameras` sorted, without duplicates.
fn distinct(cameras: &[String]) -> Vec<&str> {
    let mut cameras: Vec<&str> = cameras.iter().map(String::as_str).collect();
    cameras.sort_unstable();
    cameras.dedup();
    cameras
}

/// ` AND {column} IN (?, ...)` for `cameras`, appending them to `args`. `column` is `camera`, or `+camera`
/// to keep SQLite from choosing the `(camera, start_ms)` index.
fn camera_filter(column: &str, cameras: &[&str], args: &mut Vec<Value>) -> String {
    args.extend(cameras.iter().map(|c| Value::Text((*c).to_owned())));
    let marks = vec!["?"; cameras.len()].join(", ");
    format!(" AND {column} IN ({marks})")
}

/// Where a page of [`Store::events`] goes on from ([`EventQuery::before_id`]).
#[derive(Clone, Copy)]
enum Cursor {
    /// After this event in newest-first order: a lower `(start_ms, id)`.
    After { start_ms: i64, id: i64 },
    /// The cursor's event is gone: below its id.
    BelowId(i64),
}

impl Cursor {
    /// The condition, appending its arguments. `plus` is "+" to keep SQLite off the `start_ms` indexes.
    /// (`+id`: a search by rowid would lose the order of the `start_ms` index.)
    fn filter(self, plus: &str, args: &mut Vec<Value>) -> String {
        match self {
            Cursor::After { start_ms, id } => {
                args.extend([
                    Value::Integer(start_ms),
                    Value::Integer(start_ms),
                    Value::Integer(id),
                ]);
                format!(" AND {plus}start_ms <= ? AND ({plus}start_ms < ? OR +id < ?)")
            }
            Cursor::BelowId(id) => {
                args.push(Value::Integer(id));
                " AND +id < ?".to_owned()
            }
        }
    }
}

/// Sorts rows in [`Store::events`]' order.
fn newest_first(rows: &mut [EventRow]) {
    rows.sort_unstable_by_key(|row| std::cmp::Reverse((row.start_ms, row.id)));
}

/// A statement and its arguments.
type Query = (String, Vec<Value>);

/// The newest `limit` events (of `camera`, or all) that start in `[from, to)` and come after `cursor`,
/// newest first: an ordered walk down the `start_ms` or `(camera, start_ms)` index that stops at `limit`.
fn starting_sql(
    camera: Option<&str>,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    cursor: Option<Cursor>,
    limit: usize,
) -> Query {
    let mut sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE 1");
    let mut args = Vec::new();
    if let Some(camera) = camera {
        sql += " AND camera = ?";
        args.push(Value::Text(camera.to_owned()));
    }
    if let Some(from) = from_ms {
        sql += " AND start_ms >= ?";
        args.push(Value::Integer(from));
    }
    if let Some(to) = to_ms {
        sql += " AND start_ms < ?";
        args.push(Value::Integer(to));
    }
    if let Some(cursor) = cursor {
        sql += &cursor.filter("", &mut args);
    }
    sql += " ORDER BY start_ms DESC, id DESC LIMIT ?";
    args.push(Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
    (sql, args)
}

/// The events (of `cameras`, or all) that started before `at_ms` and still ran at it (ongoing, or ending
/// after it) and come after `cursor`, in no order: through the `end_ms` index (`+` keeps SQLite from
/// walking every older start instead). Few: the events in progress at one moment.
fn running_at_sql(cameras: Option<&[&str]>, at_ms: i64, cursor: Option<Cursor>) -> Query {
    let mut sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE (end_ms > ? OR end_ms IS NULL) AND +start_ms < ?"
    );
    let mut args = vec![Value::Integer(at_ms), Value::Integer(at_ms)];
    if let Some(cameras) = cameras {
        sql += &camera_filter("+camera", cameras, &mut args);
    }
    if let Some(cursor) = cursor {
        sql += &cursor.filter("+", &mut args);
    }
    (sql, args)
}

/// `start_ms, end_ms, last_ms` of the events (of `cameras`, or all) overlapping `[lo, hi)`: those starting
/// in it (the `start_ms` indexes) and those starting before it that still run at `lo` (as
/// [`running_at_sql`]).
fn histogram_sql(cameras: Option<&[&str]>, lo: i64, hi: i64) -> Query {
    let mut args = Vec::new();
    let mut in_range = String::new();
    let mut before = String::new();
    if let Some(cameras) = cameras {
        in_range = camera_filter("camera", cameras, &mut args);
    }
    args.extend([Value::Integer(lo), Value::Integer(hi)]);
    if let Some(cameras) = cameras {
        before = camera_filter("+camera", cameras, &mut args);
    }
    args.extend([Value::Integer(lo), Value::Integer(lo)]);
    let sql = format!(
        "SELECT start_ms, end_ms, last_ms FROM events WHERE 1{in_range} AND start_ms >= ? AND start_ms < ?
         UNION ALL
         SELECT start_ms, end_ms, last_ms FROM events WHERE 1{before}
           AND (end_ms > ? OR end_ms IS NULL) AND +start_ms < ?"
    );
    (sql, args)
}

/// The event rows a [`starting_sql`] or [`running_at_sql`] query selects.
fn event_rows(conn: &Connection, (sql, args): Query) -> Result<Vec<EventRow>, StoreError> {
    let rows = conn
        .prepare_cached(&sql)?
        .query_map(params_from_iter(args), EventRow::from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// The sum of every event's `bytes`, which triggers keep in `event_totals` (no scan of every event).
fn total_bytes(conn: &Connection) -> Result<u64, StoreError> {
    let total: i64 = conn
        .prepare_cached("SELECT bytes FROM event_totals")?
        .query_row([], |row| row.get(0))?;
    u64::try_from(total).map_err(|_| {
        StoreError::Corrupt(format!(
            "the motion events' sizes add up to {total} bytes, below 0"
        ))
    })
}

impl Store {
    /// Starts an event of `camera` at `start_ms` with a first score and box; returns its id. The event is
    /// ongoing (`end_ms` None) with `last_ms` = `start_ms` until [`Store::event_update`] and
    /// [`Store::event_end`]. A score or box coordinate that is not a finite number is refused with
    /// [`StoreError::Invalid`].
    pub fn event_start(
        &self,
        camera: &str,
        start_ms: i64,
        score: f64,
        bx: Option<EventBox>,
    ) -> Result<i64, StoreError> {
        let score = finite(score, "the motion score")?;
        let [x, y, w, h] = check_box(bx)?;
        let conn = self.conn();
        conn.prepare_cached(
            "INSERT INTO events (camera, start_ms, last_ms, peak_score, box_x, box_y, box_w, box_h)
             VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![camera, start_ms, score, x, y, w, h])?;
        Ok(conn.last_insert_rowid())
    }

    /// Records progress of an ongoing event, all in one transaction: `last_ms` (it only moves forward),
    /// the peak (only if its score is above the stored one), the snapshot, and the frames appended after
    /// the existing ones. `bytes` follows: it loses the replaced snapshot's size and gains the new files'.
    ///
    /// Returns the replaced snapshot's path for the caller to delete, if any (None when there was none, or
    /// when the new snapshot has the same path, i.e. the file was overwritten in place).
    ///
    /// An event that does not exist (deleted by a user while ongoing) or has already ended is refused with
    /// [`StoreError::EventNotOpen`], a negative size or a non-finite score with [`StoreError::Invalid`];
    /// nothing is recorded then, and the caller deletes the files it meant to add.
    pub fn event_update(
        &self,
        id: i64,
        update: &EventUpdate,
    ) -> Result<Option<String>, StoreError> {
        let peak = match update.peak {
            None => None,
            Some((score, bx)) => Some((finite(score, "the motion score")?, check_box(bx)?)),
        };
        if let Some((path, bytes)) = &update.snapshot {
            check_size(*bytes, path)?;
        }
        for (path, bytes) in &update.add_frames {
            check_size(*bytes, path)?;
        }

        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let old_snapshot: Option<String> = match tx
            .prepare_cached("SELECT snapshot FROM events WHERE id = ?1 AND end_ms IS NULL")?
            .query_row([id], |row| row.get(0))
            .optional()?
        {
            None => return Err(StoreError::EventNotOpen(id)),
            Some(snapshot) => snapshot,
        };

        tx.prepare_cached("UPDATE events SET last_ms = max(last_ms, ?2) WHERE id = ?1")?
            .execute(params![id, update.last_ms])?;
        if let Some((score, [x, y, w, h])) = peak {
            tx.prepare_cached(
                "UPDATE events SET peak_score = ?2, box_x = ?3, box_y = ?4, box_w = ?5, box_h = ?6
                 WHERE id = ?1 AND peak_score < ?2",
            )?
            .execute(params![id, score, x, y, w, h])?;
        }
        let mut replaced = None;
        if let Some((path, bytes)) = &update.snapshot {
            // The right-hand sides see the row's old values: bytes loses the old snapshot_bytes.
            tx.prepare_cached(
                "UPDATE events SET bytes = bytes - snapshot_bytes + ?3, snapshot = ?2, snapshot_bytes = ?3
                 WHERE id = ?1",
            )?
            .execute(params![id, path, bytes])?;
            replaced = old_snapshot.filter(|old| old != path);
        }
        if !update.remove_frames.is_empty() {
            let mut remove = tx.prepare_cached(
                "DELETE FROM event_frames WHERE event_id = ?1 AND path = ?2 RETURNING bytes",
            )?;
            let mut removed: i64 = 0;
            for path in &update.remove_frames {
                let bytes: Option<i64> = remove
                    .query_row(params![id, path], |row| row.get(0))
                    .optional()?;
                removed = removed.saturating_add(bytes.unwrap_or(0));
            }
            drop(remove);
            tx.prepare_cached("UPDATE events SET bytes = bytes - ?2 WHERE id = ?1")?
                .execute(params![id, removed])?;
        }
        if !update.add_frames.is_empty() {
            // The frames are numbered on from the last one: their order is the order they were added in.
            let next: i64 = tx
                .prepare_cached(
                    "SELECT coalesce(max(n) + 1, 0) FROM event_frames WHERE event_id = ?1",
                )?
                .query_row([id], |row| row.get(0))?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO event_frames (event_id, n, path, bytes) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut added: i64 = 0;
            for (n, (path, bytes)) in (next..).zip(&update.add_frames) {
                insert.execute(params![id, n, path, bytes])?;
                added = added.checked_add(*bytes).ok_or_else(|| {
                    StoreError::Invalid(format!(
                        "the frames added to motion event {id} add up to more than {} bytes",
                        i64::MAX
                    ))
                })?;
            }
            drop(insert);
            tx.prepare_cached("UPDATE events SET bytes = bytes + ?2 WHERE id = ?1")?
                .execute(params![id, added])?;
        }
        tx.commit()?;
        Ok(replaced)
    }

    /// Ends an event at end_ms (no-op if already ended, or if there is no such event). The end is never
    /// before the event's `last_ms`: an earlier `end_ms` (a wall clock stepped back) is raised to it.
    pub fn event_end(&self, id: i64, end_ms: i64) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "UPDATE events SET end_ms = max(?2, last_ms) WHERE id = ?1 AND end_ms IS NULL",
            )?
            .execute(params![id, end_ms])?;
        Ok(())
    }

    /// At start-up: ends every event left open by a crash at its last_ms; returns how many.
    ///
    /// Call it before starting any detector: it closes every ongoing event, including one that another
    /// process using the same file is still recording.
    pub fn close_open_events(&self) -> Result<usize, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("UPDATE events SET end_ms = last_ms WHERE end_ms IS NULL")?
            .execute([])?)
    }

    /// Event `id` with its frames, None if there is none.
    pub fn event(&self, id: i64) -> Result<Option<EventRecord>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        load(&tx, id)
    }

    /// The events matching `q`, newest first (by start_ms, then id), at most `q.limit` clamped to
    /// 1..=[`MAX_EVENTS_PER_QUERY`]. See [`EventQuery`] for the filters and the pagination.
    ///
    /// Reads only what the page needs: the events starting in the range come through the `start_ms` index
    /// (one camera's through the `(camera, start_ms)` one, several cameras' merged here), stopping at the
    /// limit; those that started earlier and still ran at `from_ms` through the `end_ms` index.
    pub fn events(&self, q: &EventQuery) -> Result<Vec<EventRecord>, StoreError> {
        let limit = q.limit.clamp(1, MAX_EVENTS_PER_QUERY);
        let cameras = q.cameras.as_deref().map(distinct);
        if cameras.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Vec::new());
        }
        if let (Some(from), Some(to)) = (q.from_ms, q.to_ms) {
            if from >= to {
                return Ok(Vec::new());
            }
        }

        let mut conn = self.conn();
        // One read transaction: the cursor, the rows and their frames are one snapshot of the file.
        let tx = conn.transaction()?;
        let cursor = match q.before_id {
            None => None,
            Some(id) => Some(
                match tx
                    .prepare_cached("SELECT start_ms FROM events WHERE id = ?1")?
                    .query_row([id], |row| row.get(0))
                    .optional()?
                {
                    Some(start_ms) => Cursor::After { start_ms, id },
                    None => Cursor::BelowId(id),
                },
            ),
        };

        let starting = |camera| starting_sql(camera, q.from_ms, q.to_ms, cursor, limit);
        let mut rows = match &cameras {
            None => event_rows(&tx, starting(None))?,
            Some(cameras) => {
                let mut rows = Vec::new();
                for camera in cameras {
                    rows.extend(event_rows(&tx, starting(Some(camera)))?);
                }
                newest_first(&mut rows);
                rows.truncate(limit);
                rows
            }
        };
        // Every event that started before `from` is older than every event that started after it.
        if let Some(from) = q.from_ms {
            if rows.len() < limit {
                let mut older = event_rows(&tx, running_at_sql(cameras.as_deref(), from, cursor))?;
                newest_first(&mut older);
                older.truncate(limit - rows.len());
                rows.extend(older);
            }
        }
        rows.into_iter().map(|row| row.into_record(&tx)).collect()
    }

    /// Deletes one event (ongoing or not) with its frames; returns it (so the caller deletes its files),
    /// None if absent. A detector still recording it then gets [`StoreError::EventNotOpen`] from
    /// [`Store::event_update`].
    pub fn delete_event(&self, id: i64) -> Result<Option<EventRecord>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let event = take(&tx, id)?;
        tx.commit()?;
        Ok(event)
    }

    /// Histogram over [from, to) in buckets of `bucket_ms` aligned to the Unix epoch (UTC minute/hour/day),
    /// for `cameras` (None = all, an empty list matches nothing).
    ///
    /// `from_ms` is rounded down and `to_ms` up to bucket boundaries, and every bucket of that range is
    /// returned in time order, empty ones too; each counts what falls in the whole bucket. Nothing when
    /// `to_ms <= from_ms`. A `bucket_ms` below 1 or a range of more than [`MAX_HISTOGRAM_BUCKETS`] buckets
    /// is refused with [`StoreError::Invalid`].
    ///
    /// Only the events overlapping the range are read (through the `start_ms` and `end_ms` indexes).
    pub fn histogram(
        &self,
        cameras: Option<&[String]>,
        from_ms: i64,
        to_ms: i64,
        bucket_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<Bucket>, StoreError> {
        if bucket_ms < 1 {
            return Err(StoreError::Invalid(format!(
                "a histogram bucket of {bucket_ms} ms: it must be at least 1 ms"
            )));
        }
        if to_ms <= from_ms {
            return Ok(Vec::new());
        }
        // i128: the rounding and the arithmetic below cannot overflow whatever the i64 inputs.
        let size = i128::from(bucket_ms);
        let lo = i128::from(from_ms).div_euclid(size) * size;
        let count = (i128::from(to_ms) - lo + size - 1).div_euclid(size);
        if count > MAX_HISTOGRAM_BUCKETS as i128 {
            return Err(StoreError::Invalid(format!(
                "a histogram of {count} buckets of {bucket_ms} ms; at most {MAX_HISTOGRAM_BUCKETS} are allowed — use larger buckets or a shorter range"
            )));
        }
        let hi = lo + count * size;
        let mut buckets = (0..count)
            .map(|k| {
                let start_ms = i64::try_from(lo + k * size).map_err(|_| {
                    StoreError::Invalid(format!(
                        "a histogram bucket starting outside the range of i64 milliseconds (from {from_ms} to {to_ms} by {bucket_ms})"
                    ))
                })?;
                Ok(Bucket {
                    start_ms,
                    events: 0,
                    motion_ms: 0,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        // lo is buckets[0].start_ms, so it fits; hi may lie past i64::MAX, where no event starts.
        let lo_sql = buckets.first().map_or(i64::MIN, |b| b.start_ms);
        let hi_sql = i64::try_from(hi).unwrap_or(i64::MAX);

        let cameras = cameras.map(distinct);
        if cameras.as_ref().is_some_and(Vec::is_empty) {
            return Ok(buckets);
        }
        let (sql, args) = histogram_sql(cameras.as_deref(), lo_sql, hi_sql);
        let spans = self
            .conn()
            .prepare(&sql)?
            .query_map(params_from_iter(args), |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, Option<i64>>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;

        for (start, end, last) in spans {
            let start = i128::from(start);
            // An ongoing event runs to now (and at least to its newest frame).
            let end = i128::from(end.unwrap_or_else(|| now_ms.max(last))).max(start);
            if (lo..hi).contains(&start) {
                // In range: 0 <= index < count <= MAX_HISTOGRAM_BUCKETS.
                buckets[((start - lo) / size) as usize].events += 1;
            }
            let (from, to) = (start.max(lo), end.min(hi));
            if from >= to {
                continue;
            }
            for k in (from - lo) / size..=(to - 1 - lo) / size {
                let bucket_start = lo + k * size;
                let overlap = to.min(bucket_start + size) - from.max(bucket_start);
                // At most bucket_ms, which is an i64; k is in 0..count as above.
                let motion = &mut buckets[k as usize].motion_ms;
                *motion = motion.saturating_add(i64::try_from(overlap).unwrap_or(i64::MAX));
            }
        }
        Ok(buckets)
    }

    /// Retention: deletes ended events that ended before `older_than_ms`, then — oldest first — ended
    /// events while the total bytes of all events exceed `max_bytes`. Returns the deleted records, oldest
    /// (by start_ms, then id) first, so the caller deletes their files. Never deletes an ongoing event: if
    /// ongoing events alone exceed `max_bytes`, every ended event goes and the total stays above it.
    ///
    /// One transaction: a crash deletes all of these rows or none.
    pub fn prune_events(
        &self,
        older_than_ms: i64,
        max_bytes: u64,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;

        let mut doomed: Vec<(i64, i64)> = tx
            .prepare_cached("SELECT id, bytes FROM events WHERE end_ms < ?1")?
            .query_map([older_than_ms], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut total = i128::from(total_bytes(&tx)?);
        total -= doomed.iter().map(|&(_, b)| i128::from(b)).sum::<i128>();
        if total > i128::from(max_bytes) {
            let old: HashSet<i64> = doomed.iter().map(|&(id, _)| id).collect();
            let mut statement = tx.prepare_cached(
                "SELECT id, bytes FROM events WHERE end_ms IS NOT NULL ORDER BY start_ms, id",
            )?;
            let mut rows = statement.query([])?;
            while total > i128::from(max_bytes) {
                let Some(row) = rows.next()? else { break };
                let (id, bytes): (i64, i64) = (row.get(0)?, row.get(1)?);
                if !old.contains(&id) {
                    doomed.push((id, bytes));
                    total -= i128::from(bytes);
                }
            }
        }

        let mut deleted = Vec::with_capacity(doomed.len());
        for (id, _) in doomed {
            deleted.extend(take(&tx, id)?);
        }
        tx.commit()?;
        deleted.sort_by_key(|e| (e.start_ms, e.id));
        Ok(deleted)
    }

    /// Total bytes of all events' files (ongoing events included).
    pub fn events_bytes(&self) -> Result<u64, StoreError> {
        total_bytes(&self.conn())
    }

    /// Every file any event names (snapshots and frames), relative to the events directory, in no
    /// particular order. For a sweep at start-up: a file under `data_dir/events/` that is not listed was
    /// left by a crash between writing it and recording it (or between forgetting it and deleting it).
    pub fn event_files(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let files = tx
            .prepare_cached(
                "SELECT snapshot FROM events WHERE snapshot IS NOT NULL
                 UNION ALL SELECT path FROM event_frames",
            )?
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(files)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// SQLite's plan for `query`, one line per step, on a store with some events (and no ANALYZE
    /// statistics, as in the field).
    fn plan(store: &Store, (sql, args): Query) -> String {
        let conn = store.conn();
        let mut statement = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let lines: Vec<String> = statement
            .query_map(params_from_iter(args), |row| row.get(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        lines.join("\n")
    }

    fn store() -> Store {
        let store = Store::open_in_memory().unwrap();
        for i in 0..100 {
            let id = store
                .event_start(["a", "b", "c"][i % 3], i as i64 * 1_000, 0.5, None)
                .unwrap();
            store.event_end(id, i as i64 * 1_000 + 500).unwrap();
        }
        store
    }

    #[test]
    fn listing_walks_an_index_in_order_and_never_sorts() {
        let store = store();
        let cursors = [
            None,
            Some(Cursor::After {
                start_ms: 50_000,
                id: 51,
            }),
            Some(Cursor::BelowId(51)),
        ];
        for camera in [None, Some("a")] {
            for from in [None, Some(10_000)] {
                for to in [None, Some(90_000)] {
                    for cursor in cursors {
                        let plan = plan(&store, starting_sql(camera, from, to, cursor, 50));
                        let index = match camera {
                            Some(_) => "USING INDEX events_camera_start",
                            None => "USING INDEX events_start",
                        };
                        assert!(plan.contains(index), "{plan}");
                        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
                        if from.is_some() || to.is_some() {
                            assert!(plan.starts_with("SEARCH"), "{plan}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn events_running_at_a_moment_come_from_the_end_index() {
        let store = store();
        for cameras in [None, Some(&["a", "b"][..])] {
            for cursor in [
                None,
                Some(Cursor::After {
                    start_ms: 5_000,
                    id: 6,
                }),
                Some(Cursor::BelowId(51)),
            ] {
                let plan = plan(&store, running_at_sql(cameras, 10_000, cursor));
                assert!(!plan.contains("SCAN"), "{plan}");
                assert!(!plan.contains("events_start"), "{plan}");
                assert!(
                    plan.contains("SEARCH events USING INDEX events_end"),
                    "{plan}"
                );
            }
        }
    }

    #[test]
    fn the_histogram_reads_only_events_overlapping_its_range() {
        let store = store();
        for (cameras, start_index) in [
            (None, "events_start"),
            (Some(&["a", "b"][..]), "events_camera_start"),
        ] {
            let plan = plan(&store, histogram_sql(cameras, 10_000, 20_000));
            assert!(!plan.contains("SCAN"), "{plan}");
            assert!(
                plan.contains(&format!("SEARCH events USING INDEX {start_index} (")),
                "{plan}"
            );
            assert!(
                plan.contains("SEARCH events USING INDEX events_end"),
                "{plan}"
            );
        }
    }
}
