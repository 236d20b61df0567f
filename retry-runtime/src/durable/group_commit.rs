//! Group commit, as the stores' writers share it: a queue of writes, and committers that each
//! take the first write waiting plus whatever else is queued at that moment, and commit them
//! together (one transaction, one fsync, for many callers).
//!
//! A committer never waits for a batch to fill: a lone caller's write is taken at once, alone,
//! so it is not slower than without grouping; callers arriving while a transaction commits
//! queue up and share the next one. The SQLite writer thread gathers with [`gather`] from a
//! `std` channel; the PostgreSQL store's committers (its enqueues, its successes) are tasks
//! started by [`spawn_committers`].

/// `first` and whatever else `queued` yields right now, at most `max` in all, in queue order.
/// `queued` must not wait (a `try_recv`): the batch is what is there, never more.
pub(crate) fn gather<T>(first: T, max: usize, mut queued: impl FnMut() -> Option<T>) -> Vec<T> {
    let mut batch = vec![first];
    while batch.len() < max {
        match queued() {
            Some(next) => batch.push(next),
            None => break,
        }
    }
    batch
}

/// Starts `committers` tasks on the current tokio runtime that share `queue`: each waits for a
/// write, [`gather`]s at most `max` with it while it holds the queue, lets go of the queue and
/// hands the batch to `commit`, so one committer gathers while others commit. They end when
/// every sender of `queue` is gone.
#[cfg(feature = "postgres")]
pub(crate) fn spawn_committers<T, F, Fut>(
    queue: tokio::sync::mpsc::UnboundedReceiver<T>,
    committers: usize,
    max: usize,
    commit: F,
) where
    T: Send + 'static,
    F: Fn(Vec<T>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let queue = std::sync::Arc::new(tokio::sync::Mutex::new(queue));
    for _ in 0..committers.max(1) {
        let (queue, commit) = (std::sync::Arc::clone(&queue), commit.clone());
        tokio::spawn(async move {
            loop {
                let batch = {
                    let mut queue = queue.lock().await;
                    let Some(first) = queue.recv().await else {
                        return;
                    };
                    // The first write woke this task, which tokio runs next, before the tasks
                    // that were about to queue more (the other successes of a claimed batch,
                    // finished together): let them run first, then gather. Never a wait.
                    tokio::task::yield_now().await;
                    gather(first, max, || queue.try_recv().ok())
                };
                commit(batch).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::gather;

    #[test]
    fn a_batch_is_what_is_queued_now_up_to_the_limit() {
        let mut queued = vec![3, 2].into_iter().rev();
        assert_eq!(gather(1, 10, || queued.next()), vec![1, 2, 3]);
        let mut queued = 2..100;
        assert_eq!(gather(1, 4, || queued.next()), vec![1, 2, 3, 4]);
        assert_eq!(queued.next(), Some(5), "the rest is left queued");
        assert_eq!(gather(1, 4, || None::<i32>), vec![1], "no waiting for more");
    }
}
