//! The one runtime for background work: every job a serving process runs
//! beside the API (the outbox relay, the reminder scheduler, the webhook
//! intake and dispatcher, the mail sender, the janitor, the revocation
//! watcher) is started,
//! woken and stopped the same way.
//!
//! A job is an async function given a [`Stop`]. It does its work when
//! signalled and on a period ([`Stop::pause`]), makes every step safe to
//! repeat (another process, or this one after a crash, may have done it
//! already), and returns soon after a stop is requested, having finished
//! the step it was in.

pub mod janitor;

use std::time::Duration;

use tokio::{sync::watch, task::JoinSet};

/// Asked of a job: stop after the current step.
#[derive(Debug, Clone)]
pub struct Stop(watch::Receiver<bool>);

/// Why [`Stop::pause`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woken {
    /// The signal the job waits for fired.
    Signalled,
    /// The period elapsed.
    Period,
    /// Shutdown: finish up and return.
    Stopping,
}

impl Stop {
    pub fn is_requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once a stop is requested.
    pub async fn requested(&mut self) {
        // An error means the runtime is gone, which is a stop too.
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    /// Waits for `signal`, `period` or a stop, whichever comes first.
    pub async fn pause(&mut self, period: Duration, signal: impl Future<Output = ()>) -> Woken {
        if self.is_requested() {
            return Woken::Stopping;
        }
        tokio::select! {
            _ = self.requested() => Woken::Stopping,
            () = signal => Woken::Signalled,
            () = tokio::time::sleep(period) => Woken::Period,
        }
    }
}

/// Running jobs. Dropping it aborts them; [`Jobs::shutdown`] lets them
/// finish their step first.
#[derive(Debug)]
pub struct Jobs {
    stop: watch::Sender<bool>,
    running: JoinSet<()>,
}

impl Default for Jobs {
    fn default() -> Self {
        Self::new()
    }
}

impl Jobs {
    pub fn new() -> Self {
        Self {
            stop: watch::Sender::new(false),
            running: JoinSet::new(),
        }
    }

    /// Starts a job. Its start and end are logged under its name.
    pub fn spawn<F, Fut>(&mut self, name: &'static str, job: F)
    where
        F: FnOnce(Stop) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let run = job(Stop(self.stop.subscribe()));
        self.running.spawn(async move {
            tracing::debug!(job = name, "job started");
            run.await;
            tracing::debug!(job = name, "job stopped");
        });
    }

    /// Asks every job to stop and waits up to `grace` for them; the ones
    /// still running then are aborted.
    pub async fn shutdown(mut self, grace: Duration) {
        self.stop.send_replace(true);
        let all_done = async { while self.running.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, all_done).await.is_err() {
            tracing::warn!(
                still_running = self.running.len(),
                "background jobs did not stop in time; aborting them"
            );
            self.running.abort_all();
        }
    }
}

/// A job that works through due rows in rounds (the webhook dispatcher,
/// the mail sender), run by [`in_rounds`].
pub trait Rounds: Send + Sync {
    type Error: std::fmt::Display + Send;

    /// Works on every row due now, once; how many there were.
    fn round(&self) -> impl Future<Output = Result<usize, Self::Error>> + Send;

    /// When the next row is due, if any is known.
    fn next_due(&self) -> impl Future<Output = Option<chrono::DateTime<chrono::Utc>>> + Send;
}

/// The loop of a [`Rounds`] job: a round right after one that found work,
/// else a sleep until the next row is due (at most `poll`), until `wake` is
/// rung or a stop is requested; a failing round backs off. `name` is for
/// the log.
pub async fn in_rounds(
    name: &'static str,
    job: &impl Rounds,
    mut stop: Stop,
    wake: &tokio::sync::Notify,
    poll: Duration,
) {
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    loop {
        // Listening before the round: a wake-up rung during it is not lost.
        let woken = wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let wait = match job.round().await {
            Ok(done) if done > 0 => Duration::ZERO,
            Ok(_) => {
                backoff.succeeded();
                until_due(job.next_due().await, poll)
            }
            Err(err) => {
                let delay = backoff.failed();
                tracing::warn!(job = name, error = %err, retry_in = ?delay, "round failed");
                delay
            }
        };
        if wait.is_zero() {
            if stop.is_requested() {
                return;
            }
            continue;
        }
        if stop.pause(wait, woken).await == Woken::Stopping {
            return;
        }
    }
}

/// Doubling delays for a job whose step keeps failing, up to `max`, with
/// up to a fifth of random jitter so that processes do not retry in step.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    first: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            next: first,
            first,
            max,
        }
    }

    /// The delay before the next attempt.
    pub fn failed(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        jitter(delay)
    }

    pub fn succeeded(&mut self) {
        self.next = self.first;
    }
}

/// How long to sleep before a row due at `at` (if any), at most `max`: a
/// job polling for due rows wakes for the soonest one, and at least every
/// `max` for rows other processes add.
pub fn until_due(at: Option<chrono::DateTime<chrono::Utc>>, max: Duration) -> Duration {
    at.map_or(max, |at| {
        (at - chrono::Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(max)
    })
}

/// `delay` plus up to 20% at random.
pub fn jitter(delay: Duration) -> Duration {
    let mut byte = [0u8; 2];
    let spread = match getrandom::fill(&mut byte) {
        Ok(()) => u16::from_le_bytes(byte) as f64 / u16::MAX as f64,
        Err(_) => 0.5,
    };
    delay.mul_f64(1.0 + 0.2 * spread)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shutdown_lets_a_job_finish_its_step() {
        let (done, finished) = tokio::sync::oneshot::channel();
        let mut jobs = Jobs::new();
        jobs.spawn("test", |mut stop| async move {
            stop.requested().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = done.send(());
        });
        jobs.shutdown(Duration::from_secs(5)).await;
        assert!(finished.await.is_ok(), "the job ran to its end");
    }

    #[tokio::test]
    async fn pause_wakes_on_the_signal_before_the_period() {
        let jobs = Jobs::new();
        let mut stop = Stop(jobs.stop.subscribe());
        let woken = stop.pause(Duration::from_secs(60), async {}).await;
        assert_eq!(woken, Woken::Signalled);
        jobs.stop.send_replace(true);
        let woken = stop
            .pause(Duration::from_secs(60), std::future::pending())
            .await;
        assert_eq!(woken, Woken::Stopping);
    }

    #[test]
    fn backoff_doubles_up_to_its_ceiling_with_bounded_jitter() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        let delays: Vec<Duration> = (0..5).map(|_| backoff.failed()).collect();
        for (delay, base) in delays.iter().zip([1, 2, 4, 5, 5]) {
            let base = Duration::from_secs(base);
            assert!(
                *delay >= base && *delay <= base.mul_f64(1.2),
                "{delay:?} vs {base:?}"
            );
        }
        backoff.succeeded();
        assert!(backoff.failed() <= Duration::from_millis(1200));
    }
}
