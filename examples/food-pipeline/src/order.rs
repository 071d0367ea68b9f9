//! The pipeline's order: what a customer placed, as it travels on the `food-orders` topic, and
//! the mock data that the producer makes of it.
//!
//! Orders are keyed by `customer_id`, so one customer's orders share a partition and are read in
//! the order they were placed. Money is `rust_decimal::Decimal`, an Avro `decimal(10, 2)`, so
//! prices, subtotals and totals add up exactly and land in PostgreSQL's `DECIMAL(10,2)` as
//! written.
//!
//! ```
//! use food_pipeline::order::MockOrders;
//!
//! let mut a = MockOrders::new(42);
//! let mut b = MockOrders::new(42);
//! let (x, y) = (a.next_order(), b.next_order());
//! assert_eq!((&x.order_id[13..], &x.customer_id, &x.items), (&y.order_id[13..], &y.customer_id, &y.items));
//! assert!(x.order_id.starts_with("ORD-") && x.order_id.ends_with("-00001"));
//! assert_eq!(x.total_amount, x.items.iter().map(|i| i.subtotal).sum());
//! ```

use chrono::{DateTime, Utc};
use flowodm::{Avro, Model};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;

/// The topic orders travel on unless `KAFKA_TOPIC_ORDERS` names another.
pub const DEFAULT_TOPIC: &str = "food-orders";

/// An order as placed by a customer.
#[derive(Debug, Clone, PartialEq, Model)]
#[flowodm(
    topic = "food-orders",
    key = "customer_id",
    consumer_group = "order-store",
    namespace = "com.pipeline.orders"
)]
pub struct Order {
    /// `ORD-YYYYMMDD-NNNNN`: the day it was placed and the producer's running number.
    pub order_id: String,
    /// `CUST-XXXXX`; the message key.
    pub customer_id: String,
    /// The customer's name.
    pub customer_name: String,
    /// The customer's email address.
    pub customer_email: String,
    /// What was ordered.
    pub items: Vec<OrderItem>,
    /// The sum of the items' subtotals.
    #[flowodm(decimal(precision = 10, scale = 2))]
    pub total_amount: Decimal,
    /// `pending` when placed.
    pub status: String,
    /// When it was placed (milliseconds).
    pub created_at: DateTime<Utc>,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Avro)]
#[flowodm(namespace = "com.pipeline.orders")]
pub struct OrderItem {
    /// `ITEM-XXX`.
    pub item_id: String,
    /// The menu item's name.
    pub name: String,
    /// How many.
    pub quantity: i32,
    /// Price of one.
    #[flowodm(decimal(precision = 10, scale = 2))]
    pub price: Decimal,
    /// `price × quantity`.
    #[flowodm(decimal(precision = 10, scale = 2))]
    pub subtotal: Decimal,
}

impl Order {
    /// The running number of `order_id` (`ORD-20261122-00042` → 42): the order in which the
    /// producer placed it.
    pub fn sequence(&self) -> Option<u64> {
        sequence_of(&self.order_id)
    }

    /// The items as the JSON array stored in the `items` column.
    ///
    /// ```
    /// use food_pipeline::order::OrderItem;
    /// use rust_decimal::Decimal;
    /// let item = OrderItem {
    ///     item_id: "ITEM-001".into(), name: "Pad \"thai\"".into(), quantity: 2,
    ///     price: Decimal::new(1150, 2), subtotal: Decimal::new(2300, 2),
    /// };
    /// assert_eq!(
    ///     food_pipeline::order::items_json(&[item]),
    ///     r#"[{"item_id":"ITEM-001","name":"Pad \"thai\"","quantity":2,"price":11.50,"subtotal":23.00}]"#
    /// );
    /// ```
    pub fn items_json(&self) -> String {
        items_json(&self.items)
    }
}

/// The running number of an order id (`ORD-20261122-00042` → 42).
pub fn sequence_of(order_id: &str) -> Option<u64> {
    order_id.rsplit('-').next()?.parse().ok()
}

/// Items as a JSON array; decimals are written as JSON numbers with their two decimals.
pub fn items_json(items: &[OrderItem]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(96 * items.len() + 2);
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"item_id":"#);
        push_json_string(&mut out, &item.item_id);
        out.push_str(r#","name":"#);
        push_json_string(&mut out, &item.name);
        let _ = write!(
            out,
            r#","quantity":{},"price":{},"subtotal":{}}}"#,
            item.quantity, item.price, item.subtotal
        );
    }
    out.push(']');
    out
}

/// `s` as a JSON string, escaped as `serde_json` escapes it (quote, backslash and control
/// characters), without building a `serde_json::Value` for it.
fn push_json_string(out: &mut String, s: &str) {
    use std::fmt::Write;
    out.push('"');
    let mut plain = 0;
    // The bytes to escape are all ASCII, so each one is a character boundary.
    for (i, b) in s.bytes().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[plain..i]);
        if escaped.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escaped);
        }
        plain = i + 1;
    }
    out.push_str(&s[plain..]);
    out.push('"');
}

/// A menu item: name and price in cents.
const MENU: [(&str, i64); 20] = [
    ("Margherita Pizza", 1299),
    ("Pepperoni Pizza", 1449),
    ("Chicken Pad Thai", 1350),
    ("Beef Pho", 1225),
    ("Tonkotsu Ramen", 1395),
    ("Salmon Sushi Roll", 1150),
    ("California Roll", 895),
    ("Caesar Salad", 925),
    ("Greek Salad", 875),
    ("Falafel Wrap", 795),
    ("Classic Cheeseburger", 1095),
    ("Veggie Burger", 1050),
    ("Chicken Tikka Masala", 1475),
    ("Vegetable Samosas", 595),
    ("Garlic Naan", 350),
    ("Fish Tacos", 1125),
    ("Beef Burrito", 1195),
    ("French Fries", 425),
    ("Chocolate Brownie", 495),
    ("Mango Lassi", 450),
];

const FIRST_NAMES: [&str; 20] = [
    "Alice", "Bruno", "Chloe", "David", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kofi",
    "Lena", "Mateo", "Nadia", "Oscar", "Priya", "Quentin", "Rosa", "Sven", "Yuki",
];

const LAST_NAMES: [&str; 10] = [
    "Smith", "Garcia", "Müller", "Rossi", "Kim", "Okafor", "Dubois", "Novak", "Silva", "Tanaka",
];

/// How many customers the mock data has.
pub const CUSTOMERS: usize = 100;

/// A customer of the mock data.
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    /// `CUST-XXXXX`.
    pub id: String,
    /// Full name.
    pub name: String,
    /// Email address.
    pub email: String,
}

/// Seedable mock orders: 100 customers, 20 menu items, 1–4 distinct items per order with 1–3 of
/// each. The same seed gives the same customers, items and amounts in the same sequence; only
/// `created_at` (and the date in `order_id`) come from the clock.
#[derive(Debug)]
pub struct MockOrders {
    rng: StdRng,
    customers: Vec<Customer>,
    next: u64,
}

impl MockOrders {
    /// Mock orders from `seed` (the producer takes it from `MOCK_SEED`, 42 by default).
    pub fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let customers = (1..=CUSTOMERS)
            .map(|n| {
                let first = FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())];
                let last = LAST_NAMES[rng.random_range(0..LAST_NAMES.len())];
                let mail_last: String = last
                    .chars()
                    .map(|c| if c == 'ü' { 'u' } else { c })
                    .collect();
                Customer {
                    id: format!("CUST-{n:05}"),
                    name: format!("{first} {last}"),
                    email: format!(
                        "{}.{}{n}@example.com",
                        first.to_lowercase(),
                        mail_last.to_lowercase()
                    ),
                }
            })
            .collect();
        MockOrders {
            rng,
            customers,
            next: 1,
        }
    }

    /// The customers.
    pub fn customers(&self) -> &[Customer] {
        &self.customers
    }

    /// The next order, placed now.
    pub fn next_order(&mut self) -> Order {
        self.next_order_at(now_millis())
    }

    /// The next order, placed at `created_at`.
    pub fn next_order_at(&mut self, created_at: DateTime<Utc>) -> Order {
        let customer = &self.customers[self.rng.random_range(0..self.customers.len())];
        let lines = self.rng.random_range(1..=4usize);
        let mut chosen: Vec<usize> = Vec::with_capacity(lines);
        while chosen.len() < lines {
            let i = self.rng.random_range(0..MENU.len());
            if !chosen.contains(&i) {
                chosen.push(i);
            }
        }
        let items: Vec<OrderItem> = chosen
            .into_iter()
            .map(|i| {
                let (name, cents) = MENU[i];
                let quantity = self.rng.random_range(1..=3);
                let price = Decimal::new(cents, 2);
                OrderItem {
                    item_id: format!("ITEM-{:03}", i + 1),
                    name: name.to_string(),
                    quantity,
                    price,
                    subtotal: price * Decimal::from(quantity),
                }
            })
            .collect();
        let total_amount = items.iter().map(|i| i.subtotal).sum();
        let order = Order {
            order_id: format!("ORD-{}-{:05}", created_at.format("%Y%m%d"), self.next),
            customer_id: customer.id.clone(),
            customer_name: customer.name.clone(),
            customer_email: customer.email.clone(),
            items,
            total_amount,
            status: "pending".to_string(),
            created_at,
        };
        self.next += 1;
        order
    }
}

/// The current time, truncated to milliseconds (what `timestamp-millis` carries).
pub fn now_millis() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_orders() {
        let at = now_millis();
        let a: Vec<Order> = {
            let mut m = MockOrders::new(7);
            (0..50).map(|_| m.next_order_at(at)).collect()
        };
        let b: Vec<Order> = {
            let mut m = MockOrders::new(7);
            (0..50).map(|_| m.next_order_at(at)).collect()
        };
        assert_eq!(a, b);
        let mut c = MockOrders::new(8);
        assert_ne!(
            a[..5],
            (0..5).map(|_| c.next_order_at(at)).collect::<Vec<_>>()[..]
        );
    }

    #[test]
    fn orders_are_well_formed() {
        let mut m = MockOrders::new(42);
        assert_eq!(m.customers().len(), 100);
        let mut seen_customers = std::collections::HashSet::new();
        for n in 1..=2000u64 {
            let o = m.next_order();
            assert_eq!(o.sequence(), Some(n));
            assert_eq!(o.order_id.len(), "ORD-YYYYMMDD-NNNNN".len());
            assert!(o.customer_id.starts_with("CUST-") && o.customer_id.len() == 10);
            assert!((1..=4).contains(&o.items.len()));
            for i in &o.items {
                assert!(i.item_id.starts_with("ITEM-") && i.item_id.len() == 8);
                assert!((1..=3).contains(&i.quantity));
                assert_eq!(i.subtotal, i.price * Decimal::from(i.quantity));
            }
            assert_eq!(o.total_amount, o.items.iter().map(|i| i.subtotal).sum());
            assert_eq!(o.total_amount.scale(), 2);
            assert_eq!(o.status, "pending");
            seen_customers.insert(o.customer_id);
        }
        assert!(seen_customers.len() > 90, "{}", seen_customers.len());
    }

    #[test]
    fn orders_round_trip_through_avro() {
        let o = MockOrders::new(1).next_order();
        let bytes = flowodm::avro::to_avro(&o).unwrap();
        assert_eq!(flowodm::avro::from_avro::<Order>(&bytes).unwrap(), o);
        assert_eq!(o.key(), Some(o.customer_id.clone().into_bytes()));
    }

    #[test]
    fn item_names_are_escaped_as_serde_json_escapes_them() {
        for name in [
            "Pad Thai",
            "Pad \"thai\"",
            "back\\slash",
            "tab\tnew\nline\rcr\u{8}\u{c}",
            "\u{0}\u{1}\u{1f} end",
            "Müller's crème brûlée 🍰",
            "",
        ] {
            let mut ours = String::new();
            push_json_string(&mut ours, name);
            assert_eq!(ours, serde_json::to_string(name).unwrap(), "{name:?}");
        }
    }

    #[test]
    fn items_are_valid_json() {
        let o = MockOrders::new(3).next_order();
        let v: serde_json::Value = serde_json::from_str(&o.items_json()).unwrap();
        assert_eq!(v.as_array().unwrap().len(), o.items.len());
        assert_eq!(v[0]["item_id"], o.items[0].item_id.as_str());
    }
}
