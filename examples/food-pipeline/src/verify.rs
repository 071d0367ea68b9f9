//! Checks what ended up in the `orders` table: one row per order, and each customer's orders
//! stored in the order they were placed.
//!
//! Order is judged by `ingest_seq` (the order rows were written in) against the running number
//! in `order_id` (the order the producer placed them in): a customer is out of order when one of
//! their orders was written after an order they placed later.

use std::collections::{BTreeSet, HashSet};

use crate::store::Database;

/// What the table holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableCheck {
    /// Rows.
    pub rows: u64,
    /// Distinct order ids (equal to `rows`: `order_id` is the primary key).
    pub distinct_orders: u64,
    /// Customers with at least one order.
    pub customers: u64,
    /// Customers one of whose orders was stored after an order they placed later.
    pub customers_out_of_order: u64,
}

impl TableCheck {
    /// Rows beyond the first of their order id.
    pub fn duplicates(&self) -> u64 {
        self.rows - self.distinct_orders
    }
}

/// Counts rows, duplicates and customers stored out of order.
pub async fn check_table(db: &Database) -> Result<TableCheck, tokio_postgres::Error> {
    let client = db.connect().await?;
    let row = client
        .query_one(
            "SELECT count(*), count(DISTINCT order_id), count(DISTINCT customer_id) FROM orders",
            &[],
        )
        .await?;
    let out_of_order = client
        .query_one(
            "SELECT count(DISTINCT customer_id) FROM (
                 SELECT customer_id, split_part(order_id, '-', 3)::bigint AS n,
                        lag(split_part(order_id, '-', 3)::bigint)
                            OVER (PARTITION BY customer_id ORDER BY ingest_seq) AS prev
                 FROM orders) t
             WHERE prev > n",
            &[],
        )
        .await?;
    Ok(TableCheck {
        rows: row.get::<_, i64>(0) as u64,
        distinct_orders: row.get::<_, i64>(1) as u64,
        customers: row.get::<_, i64>(2) as u64,
        customers_out_of_order: out_of_order.get::<_, i64>(0) as u64,
    })
}

/// The order ids of the table.
pub async fn stored_ids(db: &Database) -> Result<HashSet<String>, tokio_postgres::Error> {
    let client = db.connect().await?;
    let rows = client.query("SELECT order_id FROM orders", &[]).await?;
    Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
}

/// Which of `expected` are missing from `stored`, and which stored ids were not expected.
pub fn compare<'a>(
    expected: impl IntoIterator<Item = &'a str>,
    stored: &HashSet<String>,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let expected: HashSet<&str> = expected.into_iter().collect();
    let missing = expected
        .iter()
        .filter(|id| !stored.contains(**id))
        .map(|id| id.to_string())
        .collect();
    let unexpected = stored
        .iter()
        .filter(|id| !expected.contains(id.as_str()))
        .cloned()
        .collect();
    (missing, unexpected)
}
