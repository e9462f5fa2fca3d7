//! Motion events against a real SQLite file in a temporary directory.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use camhub_store::{
    Bucket, EventBox, EventQuery, EventRecord, EventUpdate, Store, StoreError, DB_FILE_NAME,
    MAX_EVENTS_PER_QUERY, MAX_HISTOGRAM_BUCKETS,
};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// A UTC midnight: 2023-11-15T00:00:00Z.
const T0: i64 = 1_700_006_400_000;

fn sqlite(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

fn bx(x: f64) -> EventBox {
    EventBox {
        x,
        y: 0.25,
        w: 0.5,
        h: 0.125,
    }
}

fn frames(list: &[(&str, i64)]) -> Vec<(String, i64)> {
    list.iter().map(|(p, b)| ((*p).to_owned(), *b)).collect()
}

/// An ended event of `camera` over `[start, end)` with `bytes` of frames (one file).
fn ended(store: &Store, camera: &str, start: i64, end: i64, bytes: i64) -> i64 {
    let id = store.event_start(camera, start, 0.5, None).unwrap();
    store
        .event_update(
            id,
            &EventUpdate {
                last_ms: start,
                add_frames: frames(&[(&format!("{camera}/{id}-0.jpg"), bytes)]),
                ..EventUpdate::default()
            },
        )
        .unwrap();
    store.event_end(id, end).unwrap();
    id
}

fn ids(events: &[EventRecord]) -> Vec<i64> {
    events.iter().map(|e| e.id).collect()
}

fn query(limit: usize) -> EventQuery {
    EventQuery {
        limit,
        ..EventQuery::default()
    }
}

/// The invariant a crash must not break: `bytes` is the snapshot's size plus the frames'.
fn assert_bytes_consistent(path: &Path) {
    let bad: i64 = sqlite(path)
        .query_row(
            "SELECT count(*) FROM events e WHERE bytes != snapshot_bytes
               + (SELECT coalesce(sum(bytes), 0) FROM event_frames f WHERE f.event_id = e.id)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(bad, 0, "events whose bytes disagree with their files");
    let (total, sum): (i64, i64) = sqlite(path)
        .query_row(
            "SELECT (SELECT bytes FROM event_totals), (SELECT coalesce(sum(bytes), 0) FROM events)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(total, sum, "the running total disagrees with the events");
}

#[test]
fn start_update_end_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_dir(dir.path()).unwrap();
    assert_eq!(store.event(1).unwrap(), None);

    let id = store.event_start("door", T0, 0.2, Some(bx(0.1))).unwrap();
    let started = store.event(id).unwrap().unwrap();
    assert_eq!(
        started,
        EventRecord {
            id,
            camera: "door".to_owned(),
            start_ms: T0,
            end_ms: None,
            last_ms: T0,
            peak_score: 0.2,
            peak_box: Some(bx(0.1)),
            snapshot: None,
            frames: vec![],
            bytes: 0,
        }
    );

    // Frames keep the order they were added in, across updates.
    let replaced = store
        .event_update(
            id,
            &EventUpdate {
                last_ms: T0 + 500,
                peak: Some((0.7, Some(bx(0.3)))),
                snapshot: Some(("door/1-snap-a.jpg".to_owned(), 1_000)),
                add_frames: frames(&[("door/1-f0.jpg", 100), ("door/1-f1.jpg", 200)]),
                remove_frames: Vec::new(),
            },
        )
        .unwrap();
    assert_eq!(replaced, None, "there was no snapshot to replace");
    store
        .event_update(
            id,
            &EventUpdate {
                last_ms: T0 + 900,
                add_frames: frames(&[("door/1-f2.jpg", 300)]),
                ..EventUpdate::default()
            },
        )
        .unwrap();

    // A lower score is not a new peak; an older last_ms does not move last_ms back.
    store
        .event_update(
            id,
            &EventUpdate {
                last_ms: T0 + 100,
                peak: Some((0.4, None)),
                ..EventUpdate::default()
            },
        )
        .unwrap();
    let e = store.event(id).unwrap().unwrap();
    assert_eq!((e.peak_score, e.peak_box), (0.7, Some(bx(0.3))));
    assert_eq!(e.last_ms, T0 + 900);
    assert_eq!(
        e.frames,
        ["door/1-f0.jpg", "door/1-f1.jpg", "door/1-f2.jpg"]
    );
    assert_eq!(e.snapshot.as_deref(), Some("door/1-snap-a.jpg"));
    assert_eq!(e.bytes, 1_000 + 100 + 200 + 300);
    assert_eq!(e.end_ms, None);

    // A higher peak without a box clears the box.
    store
        .event_update(
            id,
            &EventUpdate {
                last_ms: T0 + 1_000,
                peak: Some((0.9, None)),
                ..EventUpdate::default()
            },
        )
        .unwrap();

    store.event_end(id, T0 + 2_000).unwrap();
    // Ending twice keeps the first end.
    store.event_end(id, T0 + 9_000).unwrap();
    // Ending an event that does not exist is a no-op too.
    store.event_end(id + 100, T0).unwrap();
    let e = store.event(id).unwrap().unwrap();
    assert_eq!(e.end_ms, Some(T0 + 2_000));
    assert_eq!((e.peak_score, e.peak_box), (0.9, None));
    assert_eq!(e.last_ms, T0 + 1_000);
    assert_eq!(store.events_bytes().unwrap(), 1_600);

    // An ended event takes no more updates: the caller learns its files were not recorded.
    let err = store
        .event_update(
            id,
            &EventUpdate {
                last_ms: T0 + 3_000,
                add_frames: frames(&[("door/late.jpg", 50)]),
                ..EventUpdate::default()
            },
        )
        .unwrap_err();
    assert!(
        matches!(err, StoreError::EventNotOpen(i) if i == id),
        "{err:?}"
    );
    assert!(err.to_string().contains(&id.to_string()), "{err}");
    let err = store
        .event_update(id + 100, &EventUpdate::default())
        .unwrap_err();
    assert!(matches!(err, StoreError::EventNotOpen(_)), "{err:?}");
    assert_eq!(store.event(id).unwrap().unwrap(), e);

    // An end before the newest frame (a clock stepped back) is raised to it.
    let other = store.event_start("door", T0 + 10_000, 0.1, None).unwrap();
    store
        .event_update(
            other,
            &EventUpdate {
                last_ms: T0 + 12_000,
                ..EventUpdate::default()
            },
        )
        .unwrap();
    store.event_end(other, T0 + 5_000).unwrap();
    assert_eq!(
        store.event(other).unwrap().unwrap().end_ms,
        Some(T0 + 12_000)
    );
    assert_bytes_consistent(&dir.path().join(DB_FILE_NAME));
}

#[test]
fn a_replaced_snapshot_is_returned_for_deletion_and_bytes_stay_right() {
    let store = Store::open_in_memory().unwrap();
    let id = store.event_start("door", T0, 0.5, None).unwrap();
    let snapshot = |path: &str, bytes: i64| EventUpdate {
        last_ms: T0,
        snapshot: Some((path.to_owned(), bytes)),
        ..EventUpdate::default()
    };
    assert_eq!(
        store.event_update(id, &snapshot("a.jpg", 1_000)).unwrap(),
        None
    );
    store
        .event_update(
            id,
            &EventUpdate {
                last_ms: T0,
                add_frames: frames(&[("f0.jpg", 10)]),
                ..EventUpdate::default()
            },
        )
        .unwrap();
    assert_eq!(store.event(id).unwrap().unwrap().bytes, 1_010);

    assert_eq!(
        store.event_update(id, &snapshot("b.jpg", 400)).unwrap(),
        Some("a.jpg".to_owned())
    );
    let e = store.event(id).unwrap().unwrap();
    assert_eq!((e.snapshot.as_deref(), e.bytes), (Some("b.jpg"), 410));

    // The same path again (the file was overwritten in place): nothing to delete, the size is updated.
    assert_eq!(
        store.event_update(id, &snapshot("b.jpg", 700)).unwrap(),
        None
    );
    let e = store.event(id).unwrap().unwrap();
    assert_eq!((e.snapshot.as_deref(), e.bytes), (Some("b.jpg"), 710));

    // A snapshot and frames in one update.
    let replaced = store
        .event_update(
            id,
            &EventUpdate {
                last_ms: T0 + 1,
                snapshot: Some(("c.jpg".to_owned(), 5)),
                add_frames: frames(&[("f1.jpg", 20), ("f2.jpg", 30)]),
                ..EventUpdate::default()
            },
        )
        .unwrap();
    assert_eq!(replaced.as_deref(), Some("b.jpg"));
    let e = store.event(id).unwrap().unwrap();
    assert_eq!(e.bytes, 5 + 10 + 20 + 30);
    assert_eq!(e.frames, ["f0.jpg", "f1.jpg", "f2.jpg"]);
    assert_eq!(store.events_bytes().unwrap(), 65);

    let mut files = store.event_files().unwrap();
    files.sort();
    assert_eq!(files, ["c.jpg", "f0.jpg", "f1.jpg", "f2.jpg"]);

    // Thinning: frames taken out leave the others in order, and their bytes leave the totals.
    store
        .event_update(
            id,
            &EventUpdate {
                last_ms: T0 + 2,
                remove_frames: vec!["f1.jpg".to_owned(), "not-there.jpg".to_owned()],
                add_frames: frames(&[("f3.jpg", 40)]),
                ..EventUpdate::default()
            },
        )
        .unwrap();
    let e = store.event(id).unwrap().unwrap();
    assert_eq!(e.frames, ["f0.jpg", "f2.jpg", "f3.jpg"]);
    assert_eq!(e.bytes, 5 + 10 + 30 + 40);
    assert_eq!(store.events_bytes().unwrap(), 85);
}

#[test]
fn bad_values_are_refused_and_nothing_is_recorded() {
    let store = Store::open_in_memory().unwrap();
    let err = store.event_start("door", T0, f64::NAN, None).unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    let err = store
        .event_start("door", T0, 0.5, Some(bx(f64::INFINITY)))
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert_eq!(store.events(&query(10)).unwrap(), []);

    let id = store.event_start("door", T0, 0.5, None).unwrap();
    let before = store.event(id).unwrap().unwrap();
    let err = store
        .event_update(
            id,
            &EventUpdate {
                last_ms: T0 + 5,
                add_frames: frames(&[("ok.jpg", 10), ("bad.jpg", -1)]),
                ..EventUpdate::default()
            },
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert!(err.to_string().contains("bad.jpg"), "{err}");
    let err = store
        .event_update(
            id,
            &EventUpdate {
                last_ms: T0 + 5,
                peak: Some((f64::NAN, None)),
                ..EventUpdate::default()
            },
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert_eq!(store.event(id).unwrap().unwrap(), before);
}

#[test]
fn events_survive_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_dir(dir.path()).unwrap();
    let a = ended(&store, "door", T0, T0 + 1_000, 10);
    let b = store
        .event_start("yard", T0 + 500, 0.3, Some(bx(0.5)))
        .unwrap();
    store
        .event_update(
            b,
            &EventUpdate {
                last_ms: T0 + 700,
                snapshot: Some(("yard/s.jpg".to_owned(), 99)),
                add_frames: frames(&[("yard/0.jpg", 1), ("yard/1.jpg", 2)]),
                ..EventUpdate::default()
            },
        )
        .unwrap();
    let before = store.events(&query(10)).unwrap();
    assert_eq!(ids(&before), [b, a]);
    drop(store);

    let store = Store::open_dir(dir.path()).unwrap();
    assert_eq!(store.events(&query(10)).unwrap(), before);
    assert_eq!(store.events_bytes().unwrap(), 10 + 99 + 3);
    // Ids are never reused, even after the newest event is deleted and the file reopened.
    store.delete_event(b).unwrap();
    drop(store);
    let store = Store::open_dir(dir.path()).unwrap();
    assert!(store.event_start("door", T0, 0.1, None).unwrap() > b);
}

#[test]
fn an_event_left_open_by_a_crash_is_closed_at_its_last_frame() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_dir(dir.path()).unwrap();
    let done = ended(&store, "door", T0, T0 + 1_000, 10);
    let open = store.event_start("door", T0 + 5_000, 0.5, None).unwrap();
    store
        .event_update(
            open,
            &EventUpdate {
                last_ms: T0 + 6_500,
                add_frames: frames(&[("door/open-0.jpg", 10)]),
                ..EventUpdate::default()
            },
        )
        .unwrap();
    // The process dies: the Store goes away without event_end.
    drop(store);

    let store = Store::open_dir(dir.path()).unwrap();
    assert_eq!(store.event(open).unwrap().unwrap().end_ms, None);
    assert_eq!(store.close_open_events().unwrap(), 1);
    assert_eq!(store.close_open_events().unwrap(), 0);
    let e = store.event(open).unwrap().unwrap();
    assert_eq!(e.end_ms, Some(T0 + 6_500));
    assert_eq!(e.end_ms, Some(e.last_ms));
    assert_eq!(e.frames, ["door/open-0.jpg"]);
    assert_eq!(
        store.event(done).unwrap().unwrap().end_ms,
        Some(T0 + 1_000),
        "ended events are left alone"
    );
}

/// The directory of the store [`kill_9_mid_event`] writes to, when this test binary runs as its victim.
const VICTIM_ENV: &str = "CAMHUB_STORE_EVENTS_VICTIM_DIR";

/// Not a test of its own: the process [`kill_9_mid_event`] starts and kills. It records an event's frames
/// as fast as it can until it is killed.
#[test]
fn kill_9_victim() {
    let Some(dir) = std::env::var_os(VICTIM_ENV) else {
        return;
    };
    let store = Store::open_dir(Path::new(&dir)).unwrap();
    let id = store.event_start("door", T0, 0.1, None).unwrap();
    for n in 0i64.. {
        // Every update moves last_ms to the frame's time, adds the frame, and sometimes a snapshot.
        store
            .event_update(
                id,
                &EventUpdate {
                    last_ms: T0 + 10 * (n + 1),
                    peak: Some((n as f64, Some(bx(0.5)))),
                    snapshot: (n % 3 == 0).then(|| (format!("snap-{n}.jpg"), 1_000 + n)),
                    add_frames: frames(&[(&format!("f-{n}.jpg"), n)]),
                    remove_frames: Vec::new(),
                },
            )
            .unwrap();
        if n == 50 {
            println!("recording");
        }
    }
}

#[cfg(unix)]
#[test]
fn kill_9_mid_event() {
    use std::io::BufRead as _;
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "kill_9_victim",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(VICTIM_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    for line in stdout.lines() {
        if line.unwrap().contains("recording") {
            break;
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let store = Store::open_dir(dir.path()).unwrap();
    assert_bytes_consistent(&dir.path().join(DB_FILE_NAME));
    assert_eq!(store.close_open_events().unwrap(), 1);
    let e = &store.events(&query(10)).unwrap()[0];
    // Every update committed whole: the newest frame's time, its frame and its peak go together.
    let frames = e.frames.len() as i64;
    assert!(frames > 50, "{frames} frames");
    assert_eq!(e.last_ms, T0 + 10 * frames);
    assert_eq!(e.end_ms, Some(e.last_ms));
    assert_eq!(e.peak_score, (frames - 1) as f64);
    assert_eq!(e.frames.last().unwrap(), &format!("f-{}.jpg", frames - 1));
    let snap = (frames - 1) / 3 * 3;
    assert_eq!(e.snapshot, Some(format!("snap-{snap}.jpg")));
    assert_eq!(
        e.bytes,
        (0..frames).sum::<i64>() + 1_000 + snap,
        "bytes count the last snapshot and every frame"
    );
    assert_eq!(store.events_bytes().unwrap(), e.bytes as u64);
}

#[test]
fn listing_is_newest_first_and_filters() {
    let store = Store::open_in_memory().unwrap();
    let door1 = ended(&store, "door", T0, T0 + 1_000, 1);
    let yard1 = ended(&store, "yard", T0 + 2_000, T0 + 3_000, 1);
    let door2 = ended(&store, "door", T0 + 4_000, T0 + 6_000, 1);
    // Ongoing since T0 + 7_000.
    let yard2 = store.event_start("yard", T0 + 7_000, 0.5, None).unwrap();
    // Same start as door2: the higher id is the newer.
    let gate = ended(&store, "gate", T0 + 4_000, T0 + 4_000, 1);

    let all = store.events(&query(100)).unwrap();
    assert_eq!(ids(&all), [yard2, gate, door2, yard1, door1]);
    assert_eq!(all[0].end_ms, None);
    assert_eq!(all[2].frames.len(), 1, "listed events carry their frames");

    let cameras = |list: &[&str]| EventQuery {
        cameras: Some(list.iter().map(|s| (*s).to_owned()).collect()),
        ..query(100)
    };
    assert_eq!(
        ids(&store.events(&cameras(&["door"])).unwrap()),
        [door2, door1]
    );
    assert_eq!(
        ids(&store.events(&cameras(&["door", "yard"])).unwrap()),
        [yard2, door2, yard1, door1]
    );
    assert_eq!(
        ids(&store.events(&cameras(&["nowhere"])).unwrap()),
        [] as [i64; 0]
    );
    assert_eq!(
        ids(&store.events(&cameras(&[])).unwrap()),
        [] as [i64; 0],
        "an empty camera list matches nothing"
    );

    let range = |from: Option<i64>, to: Option<i64>| EventQuery {
        from_ms: from,
        to_ms: to,
        ..query(100)
    };
    // [T0 + 500, T0 + 2_500) overlaps door1 (ends inside) and yard1 (starts inside).
    assert_eq!(
        ids(&store
            .events(&range(Some(T0 + 500), Some(T0 + 2_500)))
            .unwrap()),
        [yard1, door1]
    );
    // Ranges are half-open, and so are events: door1 ends at T0 + 1_000, yard1 starts at T0 + 2_000.
    assert_eq!(
        ids(&store
            .events(&range(Some(T0 + 1_000), Some(T0 + 2_000)))
            .unwrap()),
        [] as [i64; 0]
    );
    // A 0 ms event overlaps a range it starts in.
    assert_eq!(
        ids(&store
            .events(&range(Some(T0 + 4_000), Some(T0 + 4_001)))
            .unwrap()),
        [gate, door2]
    );
    // The ongoing event extends to +infinity: it overlaps any later range.
    assert_eq!(
        ids(&store
            .events(&range(Some(T0 + DAY), Some(T0 + 2 * DAY)))
            .unwrap()),
        [yard2]
    );
    assert_eq!(
        ids(&store.events(&range(Some(T0 + 5_000), None)).unwrap()),
        [yard2, door2]
    );
    assert_eq!(
        ids(&store.events(&range(None, Some(T0 + 2_000))).unwrap()),
        [door1]
    );
    // Filters combine.
    assert_eq!(
        ids(&store
            .events(&EventQuery {
                from_ms: Some(T0 + 500),
                ..cameras(&["yard"])
            })
            .unwrap()),
        [yard2, yard1]
    );

    // limit 0 is raised to 1; a huge limit is lowered to MAX_EVENTS_PER_QUERY.
    assert_eq!(ids(&store.events(&query(0)).unwrap()), [yard2]);
    assert_eq!(store.events(&query(usize::MAX)).unwrap().len(), 5);
}

#[test]
fn pagination_has_no_duplicates_or_gaps() {
    let store = Store::open_in_memory().unwrap();
    let mut expected = Vec::new();
    for i in 0..25 {
        // Starts out of id order (a clock stepped back, or cameras' starts recorded late), and some equal.
        let start = T0 + [5, 1, 3, 3, 0][i % 5] * 1_000 + (i as i64 / 5) * 10_000;
        let camera = if i % 2 == 0 { "door" } else { "yard" };
        expected.push((start, ended(&store, camera, start, start + 500, 1)));
    }
    expected.sort_by(|a, b| b.cmp(a));
    let expected: Vec<i64> = expected.into_iter().map(|(_, id)| id).collect();

    let mut seen = Vec::new();
    let mut before_id = None;
    loop {
        let page = store
            .events(&EventQuery {
                before_id,
                ..query(4)
            })
            .unwrap();
        assert!(page.len() <= 4);
        let Some(last) = page.last() else { break };
        before_id = Some(last.id);
        seen.extend(ids(&page));
    }
    assert_eq!(seen, expected);

    // A page boundary whose event has been deleted meanwhile: the rest continues below its id.
    let first = store
        .events(&EventQuery {
            cameras: Some(vec!["door".to_owned()]),
            ..query(3)
        })
        .unwrap();
    store.delete_event(first[2].id).unwrap();
    let rest = store
        .events(&EventQuery {
            cameras: Some(vec!["door".to_owned()]),
            before_id: Some(first[2].id),
            ..query(100)
        })
        .unwrap();
    assert!(rest
        .iter()
        .all(|e| e.id < first[2].id && e.camera == "door"));
    assert!(!rest.is_empty());
    // At MAX_EVENTS_PER_QUERY a page is full.
    assert_eq!(MAX_EVENTS_PER_QUERY, 1000);
}

#[test]
fn listing_and_paging_agree_with_a_brute_force_filter() {
    let store = Store::open_in_memory().unwrap();
    // Pseudo-random events, inserted out of start order: some long, some of 0 ms, some ongoing.
    let mut seed: u64 = 7;
    let mut next = |n: u64| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (seed >> 33) % n
    };
    let mut all: Vec<(i64, String, i64, Option<i64>)> = Vec::new();
    for _ in 0..80 {
        let camera = ["door", "yard", "gate"][next(3) as usize].to_owned();
        let start = T0 + next(100) as i64 * 1_000;
        let id = store.event_start(&camera, start, 0.5, None).unwrap();
        let end = match next(10) {
            0 => None,
            1 => Some(start),
            2 => Some(start + 40_000),
            _ => Some(start + next(5_000) as i64),
        };
        if let Some(end) = end {
            store.event_end(id, end).unwrap();
        }
        all.push((id, camera, start, end));
    }
    all.sort_by_key(|&(id, _, start, _)| std::cmp::Reverse((start, id)));

    let camera_lists: [Option<&[&str]>; 4] = [
        None,
        Some(&["door"]),
        Some(&["yard", "door", "yard"]),
        Some(&["nowhere", "gate"]),
    ];
    let ranges = [
        (None, None),
        (Some(T0 + 30_000), None),
        (None, Some(T0 + 60_000)),
        (Some(T0 + 30_000), Some(T0 + 60_000)),
        (Some(T0 + 45_500), Some(T0 + 45_501)),
        (Some(T0 + 200_000), Some(T0 + 300_000)),
    ];
    for cameras in camera_lists {
        for (from, to) in ranges {
            let expected: Vec<i64> = all
                .iter()
                .filter(|(_, camera, start, end)| {
                    cameras.is_none_or(|list| list.contains(&camera.as_str()))
                        && to.is_none_or(|to| *start < to)
                        && from
                            .is_none_or(|from| *start >= from || end.is_none_or(|end| end > from))
                })
                .map(|&(id, ..)| id)
                .collect();
            for page in [1, 3, 7, 1000] {
                let mut seen = Vec::new();
                let mut before_id = None;
                loop {
                    let got = store
                        .events(&EventQuery {
                            cameras: cameras.map(|l| l.iter().map(|c| (*c).to_owned()).collect()),
                            from_ms: from,
                            to_ms: to,
                            before_id,
                            limit: page,
                        })
                        .unwrap();
                    assert!(got.len() <= page);
                    let Some(last) = got.last() else { break };
                    before_id = Some(last.id);
                    seen.extend(ids(&got));
                }
                assert_eq!(
                    seen, expected,
                    "cameras {cameras:?}, from {from:?}, to {to:?}, pages of {page}"
                );
            }
        }
    }
}

#[test]
fn histogram_buckets() {
    let store = Store::open_in_memory().unwrap();
    // Inside the first minute.
    ended(&store, "door", T0 + 10_000, T0 + 20_000, 1);
    // Across the first and second minute: 20 s in each.
    ended(&store, "yard", T0 + 40_000, T0 + 80_000, 1);
    // Before the range, ending 5 s into it: counted as motion, not as an event.
    ended(&store, "door", T0 - 30_000, T0 + 5_000, 1);
    // Well before the range: not read at all.
    ended(&store, "door", T0 - HOUR, T0 - HOUR + 1_000, 1);
    // Ongoing since 3.5 minutes in: runs to now (4 minutes 15 s in).
    store.event_start("gate", T0 + 210_000, 0.5, None).unwrap();
    let now = T0 + 255_000;

    let minutes = store
        .histogram(None, T0, T0 + 6 * MINUTE, MINUTE, now)
        .unwrap();
    let bucket = |k: i64, events: u64, motion_ms: i64| Bucket {
        start_ms: T0 + k * MINUTE,
        events,
        motion_ms,
    };
    assert_eq!(
        minutes,
        [
            bucket(0, 2, 5_000 + 10_000 + 20_000),
            bucket(1, 0, 20_000),
            bucket(2, 0, 0),
            bucket(3, 1, 30_000),
            bucket(4, 0, 15_000),
            bucket(5, 0, 0),
        ]
    );

    // The range is widened to whole buckets: from is rounded down, to up.
    let rounded = store
        .histogram(None, T0 + 30_000, T0 + 90_000, MINUTE, now)
        .unwrap();
    assert_eq!(rounded, minutes[..2]);

    // Cameras.
    let door = ["door".to_owned()];
    let doors = store
        .histogram(Some(&door), T0, T0 + 2 * MINUTE, MINUTE, now)
        .unwrap();
    assert_eq!(doors, [bucket(0, 1, 15_000), bucket(1, 0, 0)]);
    let none = store
        .histogram(Some(&[]), T0, T0 + 2 * MINUTE, MINUTE, now)
        .unwrap();
    assert_eq!(none, [bucket(0, 0, 0), bucket(1, 0, 0)]);

    // Hours and days are aligned to UTC.
    let hours = store
        .histogram(None, T0 - HOUR, T0 + HOUR, HOUR, now)
        .unwrap();
    assert_eq!(hours.len(), 2);
    assert_eq!(hours[0].start_ms, T0 - HOUR);
    assert_eq!((hours[0].events, hours[0].motion_ms), (2, 1_000 + 30_000));
    assert_eq!(
        (hours[1].events, hours[1].motion_ms),
        (3, 5_000 + 10_000 + 40_000 + 45_000)
    );
    let days = store.histogram(None, T0 + 1, T0 + 2, DAY, now).unwrap();
    assert_eq!(days.len(), 1);
    assert_eq!(days[0].start_ms, T0);
    // Started that day: not the two events of the previous one.
    assert_eq!(days[0].events, 3);

    // An empty range has no buckets; a bad bucket or too many buckets are refused.
    assert_eq!(store.histogram(None, T0, T0, MINUTE, now).unwrap(), []);
    let most = MAX_HISTOGRAM_BUCKETS as i64;
    assert_eq!(
        store
            .histogram(None, T0, T0 + most * MINUTE, MINUTE, now)
            .unwrap()
            .len(),
        MAX_HISTOGRAM_BUCKETS
    );
    let err = store
        .histogram(None, T0, T0 + (most + 1) * MINUTE, MINUTE, now)
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert!(err.to_string().contains("10000"), "{err}");
    let err = store.histogram(None, T0, T0 + 1, 0, now).unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    let err = store
        .histogram(None, i64::MIN, i64::MAX, 1, now)
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
}

#[test]
fn prune_by_age_oldest_first() {
    let store = Store::open_in_memory().unwrap();
    let a = ended(&store, "door", T0, T0 + 1_000, 10);
    // Started after b but inserted first, and ended earlier.
    let c = ended(&store, "yard", T0 + 3_000, T0 + 3_500, 10);
    let b = ended(&store, "door", T0 + 2_000, T0 + 4_000, 10);
    let d = ended(&store, "door", T0 + 5_000, T0 + 6_000, 10);
    let ongoing = store.event_start("gate", T0 - DAY, 0.5, None).unwrap();

    // Ended strictly before the cutoff; the ongoing event, however old, stays.
    let pruned = store.prune_events(T0 + 4_000, u64::MAX).unwrap();
    assert_eq!(ids(&pruned), [a, c]);
    assert_eq!(pruned[0].frames, [format!("door/{a}-0.jpg")]);
    assert_eq!(ids(&store.events(&query(10)).unwrap()), [d, b, ongoing]);
    assert_eq!(store.prune_events(T0 + 4_000, u64::MAX).unwrap(), []);

    let pruned = store.prune_events(T0 + DAY, u64::MAX).unwrap();
    assert_eq!(ids(&pruned), [b, d]);
    assert_eq!(ids(&store.events(&query(10)).unwrap()), [ongoing]);
}

#[test]
fn prune_by_size_oldest_first_never_the_ongoing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_dir(dir.path()).unwrap();
    let a = ended(&store, "door", T0, T0 + 1_000, 100);
    let b = ended(&store, "yard", T0 + 1_000, T0 + 2_000, 200);
    let c = ended(&store, "door", T0 + 2_000, T0 + 3_000, 300);
    // Ongoing and the oldest of all.
    let ongoing = store.event_start("gate", T0 - 1_000, 0.5, None).unwrap();
    store
        .event_update(
            ongoing,
            &EventUpdate {
                last_ms: T0,
                snapshot: Some(("gate/s.jpg".to_owned(), 50)),
                ..EventUpdate::default()
            },
        )
        .unwrap();
    assert_eq!(store.events_bytes().unwrap(), 650);

    // At the limit: nothing to do.
    assert_eq!(store.prune_events(0, 650).unwrap(), []);
    // 649: the oldest ended event goes (650 - 100 = 550), and that is enough.
    assert_eq!(ids(&store.prune_events(0, 649).unwrap()), [a]);
    assert_eq!(store.events_bytes().unwrap(), 550);
    // 300: b goes (350), then c (50).
    assert_eq!(ids(&store.prune_events(0, 300).unwrap()), [b, c]);
    assert_eq!(store.events_bytes().unwrap(), 50);
    // The ongoing event alone is over the limit, and stays.
    assert_eq!(store.prune_events(0, 0).unwrap(), []);
    assert_eq!(ids(&store.events(&query(10)).unwrap()), [ongoing]);

    // Age and size in one call: the old event goes for its age, then the oldest others for the size.
    let old = ended(&store, "door", T0 + 10_000, T0 + 11_000, 1_000);
    let mid = ended(&store, "door", T0 + 20_000, T0 + 21_000, 1_000);
    let new = ended(&store, "door", T0 + 30_000, T0 + 31_000, 1_000);
    let pruned = store.prune_events(T0 + 15_000, 1_100).unwrap();
    assert_eq!(ids(&pruned), [old, mid]);
    assert_eq!(ids(&store.events(&query(10)).unwrap()), [new, ongoing]);
    assert_eq!(store.events_bytes().unwrap(), 1_050);
    assert_bytes_consistent(&dir.path().join(DB_FILE_NAME));
}

#[test]
fn delete_event() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_dir(dir.path()).unwrap();
    let keep = ended(&store, "door", T0, T0 + 1_000, 10);
    let id = ended(&store, "door", T0 + 2_000, T0 + 3_000, 20);
    let record = store.event(id).unwrap().unwrap();

    assert_eq!(store.delete_event(id).unwrap(), Some(record));
    assert_eq!(store.delete_event(id).unwrap(), None);
    assert_eq!(store.event(id).unwrap(), None);
    assert_eq!(ids(&store.events(&query(10)).unwrap()), [keep]);
    assert_eq!(store.events_bytes().unwrap(), 10);
    // Its frames went with it.
    let frames: i64 = sqlite(&dir.path().join(DB_FILE_NAME))
        .query_row(
            "SELECT count(*) FROM event_frames WHERE event_id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(frames, 0);
    assert_eq!(store.event_files().unwrap(), [format!("door/{keep}-0.jpg")]);

    // An ongoing event can be deleted; its detector then learns it is gone.
    let ongoing = store.event_start("door", T0 + 5_000, 0.5, None).unwrap();
    assert!(store.delete_event(ongoing).unwrap().is_some());
    let err = store
        .event_update(
            ongoing,
            &EventUpdate {
                last_ms: T0 + 6_000,
                add_frames: frames_of("door/x.jpg"),
                ..EventUpdate::default()
            },
        )
        .unwrap_err();
    assert!(
        matches!(err, StoreError::EventNotOpen(i) if i == ongoing),
        "{err:?}"
    );
    assert_eq!(store.event_files().unwrap().len(), 1);
}

fn frames_of(path: &str) -> Vec<(String, i64)> {
    frames(&[(path, 1)])
}
