//! A consumer-loop service for crash tests: `loop-worker TOPIC GROUP LOG` handles every `Job` of
//! TOPIC in GROUP and appends `partition offset seq` to LOG for each, until SIGTERM or SIGINT.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flowodm::runner::{shutdown_on_signals, ConsumerLoop, HandlerError};
use flowodm::Client;
use flowodm_it::Job;

#[tokio::main]
async fn main() -> flowodm::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().collect();
    let (topic, group, log) = (args[1].clone(), args[2].clone(), args[3].clone());
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .expect("log file");
    let file = Arc::new(Mutex::new(file));
    let client = Client::from_env()?;
    let stats = ConsumerLoop::<Job>::builder(&client)
        .group(group)
        .consumer(|c| {
            c.topics([topic])
                .set("heartbeat.interval.ms", "500")
                .set("session.timeout.ms", "6000")
        })
        .max_concurrent(3)
        .commit_interval(Duration::from_millis(100))
        .run(
            move |record| {
                let file = file.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    // One write per line: a SIGKILL cannot tear it (it reaches the kernel whole).
                    let line = format!(
                        "{} {} {}\n",
                        record.partition, record.offset, record.value.seq
                    );
                    file.lock()
                        .unwrap()
                        .write_all(line.as_bytes())
                        .map_err(HandlerError::retryable)?;
                    Ok(())
                }
            },
            shutdown_on_signals(),
        )
        .await?;
    eprintln!("stopped: {stats:?}");
    Ok(())
}
