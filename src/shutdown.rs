//! Graceful stop: SIGINT/SIGTERM become a shutdown request every task can wait for.

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;

/// Asks every [`Shutdown`] holder to stop. Dropping it also counts as a request.
#[derive(Debug)]
pub struct ShutdownTrigger {
    sender: watch::Sender<bool>,
}

/// A cloneable handle that tells whether, and waits until, a stop was requested.
#[derive(Debug, Clone)]
pub struct Shutdown {
    receiver: watch::Receiver<bool>,
}

/// A connected trigger and handle.
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (sender, receiver) = watch::channel(false);
    (ShutdownTrigger { sender }, Shutdown { receiver })
}

impl ShutdownTrigger {
    pub fn request(&self) {
        self.sender.send_replace(true);
    }
}

impl Shutdown {
    /// Whether a stop has been requested.
    pub fn is_requested(&self) -> bool {
        *self.receiver.borrow()
    }

    /// Completes once a stop has been requested (at once if it already was).
    pub async fn requested(mut self) {
        // An error means the trigger is gone, which counts as a request too.
        let _ = self.receiver.wait_for(|requested| *requested).await;
    }
}

/// SIGINT and SIGTERM, installed once so that none is lost between two waits.
#[derive(Debug)]
pub struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    pub fn install() -> std::io::Result<Self> {
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Completes with the signal's name when the next SIGINT or SIGTERM arrives.
    pub async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn request_wakes_every_handle() {
        let (trigger, shutdown) = channel();
        let other = shutdown.clone();
        assert!(!shutdown.is_requested());
        let waiter = tokio::spawn(other.requested());
        trigger.request();
        assert!(shutdown.is_requested());
        let woke = tokio::time::timeout(Duration::from_secs(1), waiter).await;
        assert!(matches!(woke, Ok(Ok(()))));
        // Already requested: completes at once.
        let again = tokio::time::timeout(Duration::from_secs(1), shutdown.requested()).await;
        assert!(again.is_ok());
    }

    #[tokio::test]
    async fn dropped_trigger_counts_as_request() {
        let (trigger, shutdown) = channel();
        drop(trigger);
        let woke = tokio::time::timeout(Duration::from_secs(1), shutdown.requested()).await;
        assert!(woke.is_ok());
    }
}
