use super::*;

fn tp(p: i32) -> TopicPartition {
    TopicPartition {
        topic: "t".into(),
        partition: p,
    }
}

fn queued(p: i32, offset: i64) -> Queued {
    Queued {
        item: Item::Tombstone(crate::consumer::Tombstone {
            key: None,
            topic: "t".into(),
            partition: p,
            offset,
            timestamp: None,
        }),
        epoch: 0,
    }
}

#[test]
fn workers_are_capped_and_a_busy_lane_lets_waiting_lanes_take_turns() {
    let d = Dispatch::new(10_000, 10, 1);
    let (a, b) = (
        Lane {
            tp: tp(0),
            key: None,
        },
        Lane {
            tp: tp(1),
            key: None,
        },
    );
    let n = LANE_TURN as i64 + 100;
    assert!(d.push(&a, queued(0, 0)), "the first lane gets a worker");
    for o in 1..n {
        assert!(!d.push(&a, queued(0, o)));
    }
    assert!(
        !d.push(&b, queued(1, 0)),
        "one worker at most: lane b waits"
    );
    let (mut lane, mut turn) = (a.clone(), 0);
    let mut order = Vec::new();
    while let Some(q) = d.pop(&mut lane, &mut turn) {
        order.push((q.item.partition().partition, q.item.offset()));
    }
    // Lane a's first turn, then b, then the rest of a, each lane in offset order.
    assert_eq!(order.len(), n as usize + 1);
    assert_eq!(order[LANE_TURN], (1, 0));
    let a_offsets: Vec<i64> = order
        .iter()
        .filter(|(p, _)| *p == 0)
        .map(|(_, o)| *o)
        .collect();
    assert_eq!(a_offsets, (0..n).collect::<Vec<_>>());
    assert_eq!(d.buffered.load(AtomicOrdering::Relaxed), 0);
    // The worker ended; the next item starts a new one.
    assert!(d.push(&b, queued(1, 1)));
}

#[test]
fn a_lane_that_nobody_waits_behind_keeps_taking_whole_runs() {
    let d = Dispatch::new(100_000, 10, 1);
    let a = Lane {
        tp: tp(0),
        key: None,
    };
    let n = 3 * LANE_TURN as i64;
    for o in 0..n {
        d.push(&a, queued(0, o));
    }
    let (mut lane, mut turn, mut run) = (a.clone(), 0, Vec::new());
    let mut sizes = Vec::new();
    while d.pop_run(&mut lane, &mut turn, &mut run, LANE_TURN) {
        sizes.push(run.len());
        let offsets: Vec<i64> = run.drain(..).map(|q| q.item.offset()).collect();
        assert!(offsets.windows(2).all(|w| w[1] == w[0] + 1));
    }
    // Not one item at a time once its first turn is over.
    assert_eq!(sizes, vec![LANE_TURN; 3]);
}

#[test]
fn handled_messages_buffers_go_back_to_the_poller_within_bounds() {
    let d = Dispatch::new(10, 1, 1);
    let mut slots = Slots::default();
    let mut spent: Buffers = (0..(10 + DRAIN_AT_ONCE + 5))
        .map(|_| {
            let mut raw = Box::<RawMessage>::default();
            raw.payload = Some(Vec::with_capacity(100));
            raw
        })
        .collect();
    let mut large = Box::<RawMessage>::default();
    large.payload = Some(Vec::with_capacity(RECYCLE_UP_TO + 1));
    spent.insert(0, large);
    d.recycle(&mut spent);
    assert!(spent.is_empty());
    let pooled = d.recycled.lock().unwrap().len();
    assert_eq!(pooled, 10 + DRAIN_AT_ONCE, "at most what can be buffered");
    // The poller takes a drain's worth at a time, all of the small ones.
    let slot = slots.next(&d);
    assert_eq!(slot.payload.as_ref().map(Vec::capacity), Some(100));
    assert_eq!(slots.0.len(), DRAIN_AT_ONCE - 1);
    assert_eq!(d.recycled.lock().unwrap().len(), 10);
}

#[test]
fn the_watermark_moves_only_over_a_contiguous_finished_run() {
    let s = Shared::default();
    let e = (10..15).map(|o| s.received(&tp(0), o)).last().unwrap();
    // 12 and 11 finish before 10: nothing may be committed past 10 yet.
    assert_eq!(s.complete(&tp(0), e, 12), Some(9));
    assert_eq!(s.complete(&tp(0), e, 11), Some(9));
    // 10 finishes: 10..=12 are done, 13 is not.
    assert_eq!(s.complete(&tp(0), e, 10), Some(12));
    assert_eq!(s.complete(&tp(0), e, 14), Some(12));
    assert_eq!(s.complete(&tp(0), e, 13), Some(14));
    // A second completion of one offset changes nothing.
    assert_eq!(s.complete(&tp(0), e, 13), None);
    // Other partitions are independent.
    let e1 = s.received(&tp(1), 0);
    assert_eq!(s.complete(&tp(1), e1, 0), Some(0));
}

#[test]
fn a_revocation_drops_unstarted_messages_and_ignores_late_completions() {
    let s = Shared::default();
    let old = s.received(&tp(0), 5);
    s.received(&tp(0), 6);
    s.revoke(&[tp(0)], Duration::ZERO);
    assert!(
        !s.is_current(&tp(0), old),
        "queued messages of a revoked partition are stale"
    );
    // Reassigned later: fresh offsets, a new epoch; a stale completion does not count.
    let new = s.received(&tp(0), 5);
    assert_ne!(new, old);
    assert_eq!(s.complete(&tp(0), old, 5), None);
    assert_eq!(s.complete(&tp(0), new, 5), Some(5));
}

#[test]
fn in_flight_work_of_a_revoked_partition_still_stores_its_offset_while_draining() {
    let s = Arc::new(Shared::default());
    let e = s.received(&tp(0), 7);
    s.started(&tp(0));
    let s2 = s.clone();
    let drain = std::thread::spawn(move || s2.revoke(&[tp(0)], Duration::from_secs(10)));
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(s.complete(&tp(0), e, 7), Some(7));
    s.finished(&tp(0));
    drain.join().unwrap();
}
