//! The batch writer against PostgreSQL alone: what its binary `COPY` stores, and what happens
//! to a batch holding an order that is already in the table. Each test has a schema of its own.

use std::sync::atomic::Ordering;
use std::time::Duration;

use food_pipeline::store::{self, BatchWriter, Database, Row, StoreError, Stored, WriterConfig};

fn database(name: &str) -> Database {
    let url = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL is not set: run `eval \"$(dev/stack env)\"` first");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let schema = format!("store_{name}_{}_{nanos}", std::process::id());
    Database::new(url, Some(schema)).unwrap()
}

async fn drop_schema(db: &Database) {
    let client = db.connect().await.unwrap();
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            db.schema.as_deref().unwrap()
        ))
        .await
        .unwrap();
}

fn row(order_id: &str, customer_id: &str, total: &str, created_at_ms: i64) -> Row {
    Row {
        order_id: order_id.to_string(),
        customer_id: customer_id.to_string(),
        items: format!(
            r#"[{{"item_id":"ITEM-001","name":"Pad \"thai\" für {order_id}","quantity":2,"price":1.50,"subtotal":3.00}}]"#
        ),
        total_amount: total.to_string(),
        status: "pending".to_string(),
        created_at_ms,
    }
}

/// Submits every row before the writer runs (the test's runtime has one thread, so the writer's
/// task only runs once this one waits): the rows form one batch. The outcomes, in order.
async fn store_as_one_batch(
    writer: &BatchWriter,
    rows: Vec<Row>,
) -> Vec<Result<Stored, StoreError>> {
    let mut outcomes = Vec::new();
    for r in rows {
        let (tx, rx) = tokio::sync::oneshot::channel();
        writer
            .submit(
                r,
                Box::new(move |o| {
                    let _ = tx.send(o);
                }),
            )
            .await
            .unwrap();
        outcomes.push(rx);
    }
    let mut out = Vec::new();
    for rx in outcomes {
        out.push(rx.await.unwrap());
    }
    out
}

/// `(order_id, total_amount::text, items, created_at in ms)` of every row, in `ingest_seq` order.
async fn stored(db: &Database) -> Vec<(String, String, serde_json::Value, i64)> {
    let client = db.connect().await.unwrap();
    client
        .query(
            "SELECT order_id, total_amount::text, items::text,
                    (extract(epoch FROM created_at) * 1000)::bigint
             FROM orders ORDER BY ingest_seq",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get(0),
                r.get(1),
                serde_json::from_str(r.get::<_, &str>(2)).unwrap(),
                r.get(3),
            )
        })
        .collect()
}

#[tokio::test]
async fn copy_stores_each_value_as_written() {
    let db = database("values");
    store::migrate(&db).await.unwrap();
    // Every batch by COPY, however small.
    let config = WriterConfig {
        copy_min_rows: 1,
        ..WriterConfig::default()
    };
    let (writer, handle) = BatchWriter::start(db.clone(), config);
    // Totals around the base-10000 digit boundaries, created_at before and after 2000-01-01.
    let cases = [
        ("0.00", "0.00", 0),
        ("0.05", "0.05", 946_684_800_000),
        ("7", "7.00", 946_684_799_999),
        ("12.30", "12.30", 1_795_000_000_123),
        ("1234.56", "1234.56", 1_795_000_000_124),
        ("10000.00", "10000.00", 1_795_000_000_125),
        ("12345678.99", "12345678.99", 1_795_000_000_126),
        ("00042.1", "42.10", -86_400_000),
        ("-5.50", "-5.50", 4_102_444_800_000),
        // Rounded to the column's two decimals, as a cast would.
        ("0.125", "0.13", 1),
    ];
    let rows: Vec<Row> = cases
        .iter()
        .enumerate()
        .map(|(i, (total, _, ms))| row(&format!("ORD-V-{i:05}"), "CUST-00001", total, *ms))
        .collect();
    for r in &rows {
        assert_eq!(writer.store(r.clone()).await, Ok(Stored::Inserted));
    }
    let got = stored(&db).await;
    assert_eq!(got.len(), cases.len());
    for ((r, (_, want_total, ms)), (id, total, items, created)) in rows.iter().zip(cases).zip(got) {
        assert_eq!(id, r.order_id);
        assert_eq!(total, want_total, "{}", r.total_amount);
        assert_eq!(
            items,
            serde_json::from_str::<serde_json::Value>(&r.items).unwrap()
        );
        assert_eq!(created, ms);
    }
    let stats = writer.stats().clone();
    assert_eq!(stats.copy_conflicts.load(Ordering::Relaxed), 0);
    assert_eq!(stats.insert_batches.load(Ordering::Relaxed), 0);
    drop(writer);
    handle.close(Duration::from_secs(5)).await;
    drop_schema(&db).await;
}

#[tokio::test]
async fn a_batch_holding_a_stored_order_is_written_without_error_or_duplicate() {
    let db = database("redelivery");
    store::migrate(&db).await.unwrap();
    let config = WriterConfig {
        connections: 1,
        max_batch: 1000,
        copy_min_rows: 1,
    };
    let (writer, handle) = BatchWriter::start(db.clone(), config);
    let stats = writer.stats().clone();
    let batches = || stats.batches.load(Ordering::Relaxed);
    let conflicts = || stats.copy_conflicts.load(Ordering::Relaxed);
    let upserts = || stats.insert_batches.load(Ordering::Relaxed);
    let r = |n: u32| {
        row(
            &format!("ORD-R-{n:05}"),
            "CUST-00002",
            "10.00",
            1_795_000_000_000 + i64::from(n),
        )
    };

    // A first batch, by COPY.
    let first = store_as_one_batch(&writer, (1..=3).map(r).collect()).await;
    assert_eq!(first, vec![Ok(Stored::Inserted); 3]);
    assert_eq!((batches(), conflicts(), upserts()), (1, 0, 0));

    // A re-delivery of order 2 between new orders: its COPY fails on the primary key, and the
    // batch goes in again with INSERT … ON CONFLICT DO NOTHING, in the order submitted.
    let second = store_as_one_batch(&writer, [4, 2, 5].into_iter().map(r).collect()).await;
    assert_eq!(
        second,
        vec![
            Ok(Stored::Inserted),
            Ok(Stored::Duplicate),
            Ok(Stored::Inserted)
        ]
    );
    assert_eq!((batches(), conflicts(), upserts()), (2, 1, 1));
    assert_eq!(stats.duplicates.load(Ordering::Relaxed), 1);

    // The next batches take the INSERT directly (re-deliveries come in runs) until one meets no
    // stored order; the one after that goes back to COPY.
    let third = store_as_one_batch(&writer, [6, 3].into_iter().map(r).collect()).await;
    assert_eq!(third, vec![Ok(Stored::Inserted), Ok(Stored::Duplicate)]);
    assert_eq!((batches(), conflicts(), upserts()), (3, 1, 2));
    let fourth = store_as_one_batch(&writer, [7].into_iter().map(r).collect()).await;
    assert_eq!(fourth, vec![Ok(Stored::Inserted)]);
    assert_eq!((batches(), conflicts(), upserts()), (4, 1, 3));
    let fifth = store_as_one_batch(&writer, [8, 9].into_iter().map(r).collect()).await;
    assert_eq!(fifth, vec![Ok(Stored::Inserted); 2]);
    assert_eq!((batches(), conflicts(), upserts()), (5, 1, 3));

    // Once each, in the order first submitted.
    let ids: Vec<String> = stored(&db).await.into_iter().map(|s| s.0).collect();
    let want: Vec<String> = [1, 2, 3, 4, 5, 6, 7, 8, 9]
        .into_iter()
        .map(|n| format!("ORD-R-{n:05}"))
        .collect();
    assert_eq!(ids, want);
    assert_eq!(stats.inserted.load(Ordering::Relaxed), 9);
    assert_eq!(stats.failed_attempts.load(Ordering::Relaxed), 0);
    drop(writer);
    handle.close(Duration::from_secs(5)).await;
    drop_schema(&db).await;
}

#[tokio::test]
async fn a_small_batch_goes_in_with_one_insert() {
    let db = database("small");
    store::migrate(&db).await.unwrap();
    let config = WriterConfig {
        connections: 1,
        max_batch: 1000,
        copy_min_rows: 3,
    };
    let (writer, handle) = BatchWriter::start(db.clone(), config);
    let stats = writer.stats().clone();
    let r = |n: u32| {
        row(
            &format!("ORD-S-{n:05}"),
            "CUST-00004",
            "1.00",
            1_795_000_000_000 + i64::from(n),
        )
    };
    let counts = || {
        (
            stats.batches.load(Ordering::Relaxed),
            stats.insert_batches.load(Ordering::Relaxed),
            stats.copy_conflicts.load(Ordering::Relaxed),
        )
    };
    // Two rows: under copy_min_rows, one INSERT.
    let small = store_as_one_batch(&writer, [1, 2].into_iter().map(r).collect()).await;
    assert_eq!(small, vec![Ok(Stored::Inserted); 2]);
    assert_eq!(counts(), (1, 1, 0));
    // Three rows, one of them stored already: by COPY, which meets it, then by INSERT.
    let big = store_as_one_batch(&writer, [3, 1, 4].into_iter().map(r).collect()).await;
    assert_eq!(
        big,
        vec![
            Ok(Stored::Inserted),
            Ok(Stored::Duplicate),
            Ok(Stored::Inserted)
        ]
    );
    assert_eq!(counts(), (2, 2, 1));
    let ids: Vec<String> = stored(&db).await.into_iter().map(|s| s.0).collect();
    assert_eq!(
        ids,
        ["ORD-S-00001", "ORD-S-00002", "ORD-S-00003", "ORD-S-00004"]
    );
    drop(writer);
    handle.close(Duration::from_secs(5)).await;
    drop_schema(&db).await;
}

#[tokio::test]
async fn a_row_the_database_refuses_fails_alone() {
    let db = database("rejected");
    store::migrate(&db).await.unwrap();
    let (writer, handle) = BatchWriter::start(
        db.clone(),
        WriterConfig {
            connections: 1,
            max_batch: 1000,
            copy_min_rows: 1,
        },
    );
    let rejected = |o: &Result<Stored, StoreError>, sqlstate: &str| matches!(o, Err(StoreError::Rejected(m)) if m.starts_with(sqlstate));
    // order_id is VARCHAR(50): the COPY fails, and the rows are tried one by one.
    let too_long = "ORD-".repeat(20);
    let outcomes = store_as_one_batch(
        &writer,
        vec![
            row("ORD-X-00001", "CUST-00003", "1.00", 1_795_000_000_000),
            row(&too_long, "CUST-00003", "1.00", 1_795_000_000_001),
            row("ORD-X-00002", "CUST-00003", "2.00", 1_795_000_000_002),
        ],
    )
    .await;
    assert_eq!(outcomes[0], Ok(Stored::Inserted));
    assert!(rejected(&outcomes[1], "22001"), "{:?}", outcomes[1]);
    assert_eq!(outcomes[2], Ok(Stored::Inserted));
    // A total that is not a decimal cannot be put in COPY's format: the batch goes to the
    // INSERT, which lets the database refuse that row.
    let outcomes = store_as_one_batch(
        &writer,
        vec![
            row("ORD-X-00003", "CUST-00003", "3.00", 1_795_000_000_003),
            row("ORD-X-00004", "CUST-00003", "ten", 1_795_000_000_004),
            row("ORD-X-00005", "CUST-00003", "5.00", 1_795_000_000_005),
        ],
    )
    .await;
    assert_eq!(outcomes[0], Ok(Stored::Inserted));
    assert!(rejected(&outcomes[1], "22P02"), "{:?}", outcomes[1]);
    assert_eq!(outcomes[2], Ok(Stored::Inserted));
    let ids: Vec<String> = stored(&db).await.into_iter().map(|s| s.0).collect();
    assert_eq!(
        ids,
        ["ORD-X-00001", "ORD-X-00002", "ORD-X-00003", "ORD-X-00005"]
    );
    assert_eq!(writer.stats().rejected.load(Ordering::Relaxed), 2);
    drop(writer);
    handle.close(Duration::from_secs(5)).await;
    drop_schema(&db).await;
}
