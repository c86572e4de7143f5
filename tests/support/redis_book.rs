//! What the Redis book tests share: their runtime, a book on given servers, and a slot's state.

use std::time::Duration;

use surgegate::SlotState;
use surgegate::redis::RedisSlotBook;

/// A two-thread runtime, as the portal and the gate run.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A book on `urls` under `namespace`, holds lasting `ttl_ms`, `limit` per applicant.
pub async fn book(urls: &[String], namespace: &str, ttl_ms: u64, limit: u32) -> RedisSlotBook {
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    RedisSlotBook::builder()
        .hold_ttl(Duration::from_millis(ttl_ms))
        .max_active_per_applicant(limit)
        .namespace(namespace)
        .connect(&urls)
        .await
        .unwrap_or_else(|e| panic!("connect to {urls:?}: {e}"))
}

/// A slot's state as the book reads it.
pub fn state(capacity: u32, held: u32, booked: u32) -> Option<SlotState> {
    Some(SlotState {
        capacity,
        held,
        booked,
    })
}
