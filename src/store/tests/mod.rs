//! Store tests, one file per area; helpers here.

mod audit;
mod cdr;
mod crash;
mod objects;
mod open;
mod registrations;
mod stir;
mod tokens;
mod users;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use super::{Change, Store, StoreResult};

/// A clock the test moves by hand.
#[derive(Debug, Clone)]
pub(super) struct TestClock(Arc<AtomicI64>);

impl TestClock {
    pub(super) fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

/// An in-memory store whose clock starts at 1,000,000 ms.
pub(super) fn memory_store() -> StoreResult<(Store, TestClock)> {
    let mut store = Store::open_in_memory()?;
    let clock = TestClock(Arc::new(AtomicI64::new(1_000_000)));
    let handle = clock.clone();
    store.set_clock(Box::new(move || handle.0.load(Ordering::SeqCst)));
    Ok((store, clock))
}

pub(super) fn admin() -> Change {
    Change::new("token:1", Some("127.0.0.1:40000".into()))
}
