//! Producer and consumer throughput: flowodm's typed clients against raw rdkafka, in one run, on
//! the same topic, with the same librdkafka settings.
//!
//! - produce: flowodm encodes each `OrderEvent` and sends it either with a delivery callback
//!   that counts it (`send_with_callback`) or with `send_and_forget`, which counts deliveries in
//!   the producer; raw rdkafka sends the same events pre-encoded (so its figure excludes
//!   encoding), counting them in its producer context's delivery callback. Each flushes at the
//!   end and checks that every message was acknowledged. The three take turns going first.
//! - consume: each reader takes the same messages with its own group: raw rdkafka touching only
//!   the payload bytes (the floor), raw rdkafka decoding into apache-avro's generic `Value` (what
//!   a hand-written consumer does), raw rdkafka decoding with flowodm's generated decoder called
//!   by hand (the same work as flowodm's consumers, without them), flowodm's blocking and async
//!   consumers decoding into
//!   `OrderEvent`, raw rdkafka written as an at-least-once loop (async, decoding, storing each
//!   handled message's offset, as rust-rdkafka's own example does), and flowodm's consumer loop
//!   with a no-op handler, ordered by partition and by key. Each reports the CPU time of the
//!   whole process per message; the readers on one thread also that thread's.
//!
//! Needs the stack (`eval "$(dev/stack up)"`). Run:
//! `cargo bench -p food-pipeline --bench clients` (`BENCH_MESSAGES`, default 1000000;
//! `BENCH_ROUNDS`, default 3: the medians are printed; `BENCH_ONLY=produce` skips the consumers,
//! `BENCH_ONLY=codec,Blocking` runs only the consumers whose names contain one of the
//! comma-separated parts).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flowodm::codec::Codec;
use flowodm::consumer::Consumed;
use flowodm::registry::SchemaRegistryClient;
use flowodm::runner::{CancellationToken, ConsumerLoop, HandlerError, OrderBy};
use flowodm::{Client, KafkaConfig, Model};
use food_pipeline::events::{Address, OrderEvent, OrderItem, PaymentMethod};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext};

fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run `eval \"$(dev/stack up)\"` first"))
}

/// Distinct, realistic events, cycled to make up the run.
fn events(n: usize) -> Vec<OrderEvent> {
    (0..n)
        .map(|i| {
            let items = (0..3)
                .map(|j| OrderItem {
                    sku: format!("ITEM-{:03}", (i + j) % 20),
                    quantity: (j + 1) as i32,
                    unit_price: 4.5 + j as f64,
                })
                .collect();
            let mut e = OrderEvent::order_created(
                &format!("ORD-20261122-{i:05}"),
                &format!("CUST-{:05}", i % 100),
                items,
            );
            e.payload.shipping_address = Some(Address {
                street: format!("{i} Main St"),
                city: "Springfield".into(),
                postal_code: "12345".into(),
                state: Some("IL".into()),
                country: "US".into(),
            });
            e.payload.payment_method = Some(PaymentMethod::CreditCard);
            e.payload.metadata = Some([("channel".to_string(), "web".to_string())].into());
            e
        })
        .collect()
}

/// The producer settings both sides use: flowodm's defaults.
fn producer_config() -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", env("KAFKA_BOOTSTRAP_SERVERS"));
    for (k, v) in flowodm::profiles::PRODUCTION_DEFAULTS {
        c.set(*k, *v);
    }
    c
}

/// Raw rdkafka's producer context: counts the acknowledged messages, as flowodm's side does.
#[derive(Default)]
struct Acked(AtomicU64);

impl ClientContext for Acked {}

impl ProducerContext for Acked {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_ok() {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// CPU time used so far (user and system), in seconds, from a `/proc` stat file: `self` for
/// the whole process (every thread, librdkafka's included), `thread-self` for the calling
/// thread; NaN where `/proc` is not available. Unlike throughput, it hardly depends on what
/// else the machine is running.
fn cpu_seconds(of: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{of}/stat")) else {
        return f64::NAN;
    };
    // The fields after the command name (which is in parentheses); utime and stime are the
    // 14th and 15th fields of the line, in clock ticks (100 per second on Linux).
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => (user + system) / 100.0,
        _ => f64::NAN,
    }
}

/// CPU time the calling thread has used, in seconds: the cost of a consumer on its own thread.
fn thread_cpu_seconds() -> f64 {
    cpu_seconds("thread-self")
}

/// Prints the consuming thread's CPU time per message since `since` (a `thread_cpu_seconds`).
fn report_cpu(messages: usize, since: f64) {
    let used = thread_cpu_seconds() - since;
    println!(
        "  consuming thread: {:.3} us CPU per message",
        used * 1e6 / messages as f64
    );
}

/// Prints the whole process's CPU time per message since `since` (a `cpu_seconds("self")`):
/// librdkafka's threads and, for the loops, the runtime's, included.
fn report_process_cpu(messages: usize, since: f64) {
    let used = cpu_seconds("self") - since;
    println!(
        "  whole process: {:.3} us CPU per message",
        used * 1e6 / messages as f64
    );
}

/// What a raw rdkafka consumer does with each payload.
#[derive(Debug, Clone, Copy)]
enum RawDecode {
    /// Only touches the bytes: the floor.
    None,
    /// Decodes into apache-avro's generic `Value`.
    ApacheAvro,
    /// Decodes into `OrderEvent` with flowodm's generated decoder, called by hand.
    FlowodmCodec,
    /// The same, and copies the key, topic and headers out as a `Record` holds them: the
    /// work of flowodm's consumers with their defaults.
    FlowodmCodecAndMetadata,
}

/// What a hand-written consumer that does flowodm's consumers' work keeps of a message: the
/// value decoded by flowodm's generated decoder (skipping the 5-byte frame, no registry look-up),
/// and key, topic and headers copied out as a `Record` holds them.
type Decoded = (
    OrderEvent,
    Option<Vec<u8>>,
    String,
    Vec<(String, Option<Vec<u8>>)>,
);

fn decode_with_metadata(m: &BorrowedMessage<'_>) -> Decoded {
    let value = flowodm::avro::from_avro::<OrderEvent>(&m.payload().unwrap()[5..]).unwrap();
    let headers = m
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default();
    (
        value,
        m.key().map(<[u8]>::to_vec),
        m.topic().to_string(),
        headers,
    )
}

/// Produces a round's messages one way: (messages per second, CPU µs per message).
type ProduceRun<'a> = dyn Fn() -> (f64, f64) + 'a;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let n: usize = std::env::var("BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let registry = SchemaRegistryClient::new(&env("SCHEMA_REGISTRY_URL")).unwrap();
    let client = Client::new(
        KafkaConfig::new(env("KAFKA_BOOTSTRAP_SERVERS")),
        registry.clone(),
    );
    let admin = client.admin().unwrap();
    let pool = events(1000);

    // Pre-encoded payloads and keys for the raw side.
    let codec = Codec::<OrderEvent>::new(registry.clone()).unwrap();
    let schema_id = rt.block_on(codec.schema_id()).unwrap();
    let avro_schema =
        apache_avro::Schema::parse_str(&rt.block_on(registry.schema_by_id(schema_id)).unwrap())
            .unwrap();
    let encoded: Vec<(Vec<u8>, Vec<u8>)> = pool
        .iter()
        .map(|e| {
            let mut buf = Vec::new();
            Codec::<OrderEvent>::encode_with_id(schema_id, e, &mut buf).unwrap();
            (e.key().unwrap(), buf)
        })
        .collect();
    println!(
        "messages per round: {n}; payload {} bytes on average",
        encoded.iter().map(|(_, p)| p.len()).sum::<usize>() / encoded.len()
    );

    // Per way of producing: (messages per second, CPU microseconds per message over all
    // threads) of each round; and its throughput over raw rdkafka's of the same round.
    let mut produce: std::collections::BTreeMap<&str, Vec<(f64, f64)>> = Default::default();
    let mut produce_ratio: std::collections::BTreeMap<&str, Vec<f64>> = Default::default();
    let mut consume: std::collections::BTreeMap<&str, Vec<f64>> = Default::default();
    for round in 0..rounds {
        let topic = format!("bench-clients-{}-{round}", std::process::id());
        rt.block_on(admin.create_topic(
            &flowodm::admin::TopicSpec::new(&topic, 3),
            Duration::from_secs(30),
        ))
        .unwrap();
        let flip = round % 2 == 1; // alternate which side goes first

        let raw_produce = || {
            let producer: ThreadedProducer<Acked> = producer_config()
                .create_with_context(Acked::default())
                .unwrap();
            let (start, cpu) = (Instant::now(), cpu_seconds("self"));
            for i in 0..n {
                let (k, p) = &encoded[i % encoded.len()];
                let mut rec = BaseRecord::to(&topic)
                    .key(k.as_slice())
                    .payload(p.as_slice());
                loop {
                    match producer.send(rec) {
                        Ok(()) => break,
                        Err((_, r)) => {
                            rec = r;
                            std::thread::sleep(Duration::from_micros(200));
                        }
                    }
                }
            }
            producer.flush(Duration::from_secs(120)).unwrap();
            let rate = n as f64 / start.elapsed().as_secs_f64();
            let cpu = (cpu_seconds("self") - cpu) * 1e6 / n as f64;
            assert_eq!(producer.context().0.load(Ordering::Relaxed), n as u64);
            (rate, cpu)
        };
        let odm_produce = |forget: bool| {
            let producer = client
                .producer::<OrderEvent>()
                .topic(&topic)
                .build()
                .unwrap();
            rt.block_on(producer.codec().schema_id()).unwrap();
            let delivered = Arc::new(AtomicU64::new(0));
            let (start, cpu) = (Instant::now(), cpu_seconds("self"));
            for i in 0..n {
                let e = &pool[i % pool.len()];
                loop {
                    let sent = if forget {
                        producer.send_and_forget(e)
                    } else {
                        let d = delivered.clone();
                        producer.send_with_callback(e, move |r| {
                            if r.is_ok() {
                                d.fetch_add(1, Ordering::Relaxed);
                            }
                        })
                    };
                    match sent {
                        Ok(()) => break,
                        Err(e) if e.is_retriable() => {
                            std::thread::sleep(Duration::from_micros(200))
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            // With send_and_forget, flush fails if any message was not delivered.
            producer.flush(Duration::from_secs(120)).unwrap();
            let rate = n as f64 / start.elapsed().as_secs_f64();
            let cpu = (cpu_seconds("self") - cpu) * 1e6 / n as f64;
            if forget {
                assert_eq!(producer.delivery_counts().delivered, n as u64);
            } else {
                assert_eq!(delivered.load(Ordering::Relaxed), n as u64);
            }
            (rate, cpu)
        };
        let (odm_callback, odm_forget) = (|| odm_produce(false), || odm_produce(true));
        let mut producers: Vec<(&str, &ProduceRun)> = vec![
            ("raw rdkafka", &raw_produce),
            ("flowodm send_with_callback", &odm_callback),
            ("flowodm send_and_forget", &odm_forget),
        ];
        // Rotate which side goes first.
        let sides = producers.len();
        producers.rotate_left(round % sides);
        let mut raw_rate = f64::NAN;
        let mut line = format!("round {round}: produce");
        for (name, f) in &producers {
            let (rate, cpu) = f();
            line += &format!(" | {name} {rate:.0}/s, {cpu:.2} µs CPU/msg");
            produce.entry(*name).or_default().push((rate, cpu));
            if *name == "raw rdkafka" {
                raw_rate = rate;
            }
        }
        for (name, _) in &producers {
            if *name != "raw rdkafka" {
                let (rate, _) = *produce[name].last().unwrap();
                produce_ratio
                    .entry(*name)
                    .or_default()
                    .push(rate / raw_rate);
            }
        }
        println!("{line}");

        // The topic now holds 3n messages.
        // Each consumer reads the first `n` messages with its own group, from the beginning;
        // the clock starts at its first message (joining the group is not measured).
        // A raw rdkafka reader of the topic, in its own group, from the beginning.
        let raw_config = |group: String| {
            let mut c = ClientConfig::new();
            c.set("bootstrap.servers", env("KAFKA_BOOTSTRAP_SERVERS"))
                .set("group.id", group)
                .set("auto.offset.reset", "earliest")
                .set("fetch.queue.backoff.ms", "20");
            c
        };
        let raw_consume = |decode: RawDecode| {
            let consumer: BaseConsumer = raw_config(format!("{topic}-raw-{decode:?}"))
                .set("enable.auto.commit", "false")
                .create()
                .unwrap();
            consumer.subscribe(&[&topic]).unwrap();
            let reader = apache_avro::reader::datum::GenericDatumReader::builder(&avro_schema)
                .build()
                .unwrap();
            let touch = |m: &BorrowedMessage<'_>| -> usize {
                let payload = m.payload().unwrap();
                match decode {
                    RawDecode::None => payload.len(),
                    // What a hand-written consumer does with the usual crate: skip the 5-byte
                    // frame, decode into apache-avro's generic Value.
                    RawDecode::ApacheAvro => {
                        let mut datum = &payload[5..];
                        let v = reader.read_value(&mut datum).unwrap();
                        matches!(v, apache_avro::types::Value::Record(_)) as usize
                    }
                    // The same work as flowodm's consumers, by hand: skip the 5-byte frame and
                    // run flowodm's generated decoder (no registry look-up, no record metadata).
                    RawDecode::FlowodmCodec => {
                        let v = flowodm::avro::from_avro::<OrderEvent>(&payload[5..]).unwrap();
                        v.payload.total_amount.is_some() as usize
                    }
                    RawDecode::FlowodmCodecAndMetadata => {
                        let kept = std::hint::black_box(decode_with_metadata(m));
                        kept.0.payload.total_amount.is_some() as usize
                    }
                }
            };
            let first = loop {
                if let Some(m) = consumer.poll(Duration::from_millis(100)) {
                    break touch(&m.unwrap());
                }
            };
            let start = Instant::now();
            let cpu = thread_cpu_seconds();
            let process_cpu = cpu_seconds("self");
            let (mut count, mut acc) = (1usize, first);
            while count < n {
                if let Some(m) = consumer.poll(Duration::from_millis(100)) {
                    acc += touch(&m.unwrap());
                    count += 1;
                }
            }
            assert!(acc > 0);
            report_cpu(n - 1, cpu);
            report_process_cpu(n - 1, process_cpu);
            (n - 1) as f64 / start.elapsed().as_secs_f64()
        };
        let odm_consume = |skip_headers: bool| {
            let mut builder = client
                .consumer::<OrderEvent>()
                .topics([&topic])
                .group(format!("{topic}-odm-{skip_headers}"))
                .profile(flowodm::profiles::Profile::Batch);
            if skip_headers {
                builder = builder.skip_headers();
            }
            let consumer = builder.build_blocking().unwrap();
            let first = loop {
                if let Consumed::Record(r) =
                    consumer.consume_one(Duration::from_millis(100)).unwrap()
                {
                    break r;
                }
            };
            let start = Instant::now();
            let cpu = thread_cpu_seconds();
            let process_cpu = cpu_seconds("self");
            let mut count = 1usize;
            let mut total = first.value.payload.total_amount.unwrap_or(0.0);
            while count < n {
                if let Consumed::Record(r) =
                    consumer.consume_one(Duration::from_millis(100)).unwrap()
                {
                    total += r.value.payload.total_amount.unwrap_or(0.0);
                    count += 1;
                }
            }
            assert!(total > 0.0);
            report_cpu(n - 1, cpu);
            report_process_cpu(n - 1, process_cpu);
            (n - 1) as f64 / start.elapsed().as_secs_f64()
        };
        let odm_async_consume = || {
            rt.block_on(async {
                let consumer = client
                    .consumer::<OrderEvent>()
                    .topics([&topic])
                    .group(format!("{topic}-odm-async"))
                    .profile(flowodm::profiles::Profile::Batch)
                    .build()
                    .unwrap();
                let first = loop {
                    if let Consumed::Record(r) = consumer
                        .consume_one(Duration::from_millis(100))
                        .await
                        .unwrap()
                    {
                        break r;
                    }
                };
                let start = Instant::now();
                let process_cpu = cpu_seconds("self");
                let mut count = 1usize;
                let mut total = first.value.payload.total_amount.unwrap_or(0.0);
                while count < n {
                    if let Consumed::Record(r) = consumer
                        .consume_one(Duration::from_millis(100))
                        .await
                        .unwrap()
                    {
                        total += r.value.payload.total_amount.unwrap_or(0.0);
                        count += 1;
                    }
                }
                assert!(total > 0.0);
                report_process_cpu(n - 1, process_cpu);
                (n - 1) as f64 / start.elapsed().as_secs_f64()
            })
        };
        // The job a consumer loop does, written by hand with raw rdkafka the way rust-rdkafka's
        // at-least-once example writes it: an async `StreamConsumer` with automatic commits of
        // stored offsets, each message decoded (flowodm's decoder), its metadata copied as a
        // `Record` holds it, handed to a no-op handler and its offset stored once handled.
        let raw_at_least_once = || {
            rt.block_on(async {
                use rdkafka::consumer::StreamConsumer;
                let consumer: StreamConsumer = raw_config(format!("{topic}-raw-at-least-once"))
                    .set("enable.auto.commit", "true")
                    .set("enable.auto.offset.store", "false")
                    .create()
                    .unwrap();
                consumer.subscribe(&[&topic]).unwrap();
                async fn handle(value: &OrderEvent) -> Result<(), HandlerError> {
                    std::hint::black_box(value.payload.total_amount);
                    Ok(())
                }
                let mut count = 0usize;
                let mut start = None;
                while count < n {
                    let m = consumer.recv().await.unwrap();
                    let record = std::hint::black_box(decode_with_metadata(&m));
                    handle(&record.0).await.unwrap();
                    consumer.store_offset_from_message(&m).unwrap();
                    count += 1;
                    // The clock starts at the first message (joining the group is not measured).
                    start.get_or_insert_with(|| (Instant::now(), cpu_seconds("self")));
                }
                let (start, process_cpu) = start.unwrap();
                report_process_cpu(n - 1, process_cpu);
                (n - 1) as f64 / start.elapsed().as_secs_f64()
            })
        };
        let odm_loop = |order_by: OrderBy| {
            // What the no-op handler touches: one shared value, one reference count per call.
            #[derive(Default)]
            struct Progress {
                count: AtomicU64,
                first: std::sync::OnceLock<(Instant, f64)>,
                last: std::sync::OnceLock<Instant>,
                done: CancellationToken,
            }
            let progress = Arc::new(Progress::default());
            let p = progress.clone();
            let stats = rt
                .block_on(
                    ConsumerLoop::<OrderEvent>::builder(&client)
                        .group(format!("{topic}-loop-{order_by:?}"))
                        .consumer(|c| {
                            c.topics([&topic])
                                .profile(flowodm::profiles::Profile::Batch)
                        })
                        .order_by(order_by)
                        .max_concurrent(100)
                        .run(
                            move |record| {
                                let p = p.clone();
                                async move {
                                    p.first
                                        .get_or_init(|| (Instant::now(), cpu_seconds("self")));
                                    std::hint::black_box(record.value.payload.total_amount);
                                    if p.count.fetch_add(1, Ordering::Relaxed) + 1 == n as u64 {
                                        p.last.get_or_init(Instant::now);
                                        report_process_cpu(n - 1, p.first.get().unwrap().1);
                                        p.done.cancel();
                                    }
                                    Ok::<(), HandlerError>(())
                                }
                            },
                            progress.done.clone(),
                        ),
                )
                .unwrap();
            assert!(stats.processed >= n as u64);
            let (first, last) = (
                &progress.first.get().unwrap().0,
                progress.last.get().unwrap(),
            );
            (n - 1) as f64 / (*last - *first).as_secs_f64()
        };
        let mut consumers: Vec<(&str, &dyn Fn() -> f64)> = vec![];
        let (raw_bytes, raw_avro, raw_codec, raw_codec_meta) = (
            || raw_consume(RawDecode::None),
            || raw_consume(RawDecode::ApacheAvro),
            || raw_consume(RawDecode::FlowodmCodec),
            || raw_consume(RawDecode::FlowodmCodecAndMetadata),
        );
        let (odm_blocking, odm_blocking_skip) = (|| odm_consume(false), || odm_consume(true));
        let (loop_partition, loop_key) =
            (|| odm_loop(OrderBy::Partition), || odm_loop(OrderBy::Key));
        consumers.push(("raw rdkafka, bytes only", &raw_bytes));
        consumers.push(("raw rdkafka + apache-avro Value", &raw_avro));
        consumers.push(("raw rdkafka + flowodm codec", &raw_codec));
        consumers.push(("raw rdkafka + flowodm codec + metadata", &raw_codec_meta));
        consumers.push(("flowodm BlockingConsumer", &odm_blocking));
        consumers.push(("flowodm BlockingConsumer, skip_headers", &odm_blocking_skip));
        consumers.push(("flowodm Consumer (async)", &odm_async_consume));
        consumers.push(("raw rdkafka at-least-once loop", &raw_at_least_once));
        consumers.push(("flowodm loop, OrderBy::Partition", &loop_partition));
        consumers.push(("flowodm loop, OrderBy::Key", &loop_key));
        if flip {
            consumers.reverse();
        }
        let only = std::env::var("BENCH_ONLY").unwrap_or_default();
        for (name, f) in consumers {
            if !only.split(',').any(|part| name.contains(part)) {
                continue;
            }
            let rate = f();
            println!("round {round}: consume {name}: {rate:.0}/s");
            consume.entry(name).or_default().push(rate);
        }
        rt.block_on(admin.delete_topic(&topic, Duration::from_secs(30)))
            .unwrap();
    }
    for (name, rounds) in &produce {
        let rate = median(rounds.iter().map(|r| r.0).collect());
        let cpu = median(rounds.iter().map(|r| r.1).collect());
        let ratio = produce_ratio.get(name).map_or(String::new(), |r| {
            format!(
                ", {:.2}x raw rdkafka (median of the rounds' ratios)",
                median(r.clone())
            )
        });
        println!("median produce {name}: {rate:.0} msg/s, {cpu:.2} µs CPU per message{ratio}");
    }
    // Ratios to each baseline that ran (BENCH_ONLY may leave some out): the median of the
    // rounds' ratios, each round's readers having run back to back on one topic.
    let baselines: Vec<(&str, &Vec<f64>)> = [
        ("raw rdkafka, bytes only", "raw bytes"),
        ("raw rdkafka + apache-avro Value", "raw + apache-avro"),
        ("raw rdkafka + flowodm codec", "raw + flowodm codec"),
        (
            "raw rdkafka + flowodm codec + metadata",
            "raw + flowodm codec + metadata",
        ),
        ("raw rdkafka at-least-once loop", "raw at-least-once loop"),
    ]
    .into_iter()
    .filter_map(|(reader, label)| consume.get(reader).map(|r| (label, r)))
    .collect();
    for (name, rates) in &consume {
        let ratios: String = baselines
            .iter()
            .map(|(label, base)| {
                let per_round = rates.iter().zip(base.iter()).map(|(r, b)| r / b).collect();
                format!(", {:.2}x {label}", median(per_round))
            })
            .collect();
        let m = median(rates.clone());
        println!("median consume {name}: {m:.0} msg/s{ratios} (median of the rounds' ratios)");
    }
}
