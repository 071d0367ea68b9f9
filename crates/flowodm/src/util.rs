//! Small shared helpers.

use std::future::Future;

use crate::error::{Error, Result};

/// Runs a future to completion from synchronous code, on a helper thread with its own runtime,
/// so it works both outside any runtime and inside one (where blocking the current thread on a
/// nested runtime would panic).
pub(crate) fn block_on<F, T>(future: F) -> Result<T>
where
    F: Future<Output = Result<T>> + Send,
    T: Send,
{
    std::thread::scope(|s| {
        s.spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::config("runtime", e.to_string()))?
                .block_on(future)
        })
        .join()
        .unwrap_or_else(|_| Err(Error::config("runtime", "the helper thread panicked")))
    })
}
