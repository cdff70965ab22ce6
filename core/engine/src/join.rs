//! Waiting for several futures at once, without a dependency for it.
//!
//! Each future gets a waker of its own that queues its index, so a wake-up polls only the
//! futures that were woken: a produce request's thousand partitions cost a thousand polls,
//! not a million.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

/// Polls every future at once until all are done; their outputs in order.
pub(crate) async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    if futures.len() <= 1 {
        let mut outputs = Vec::with_capacity(futures.len());
        for future in futures {
            outputs.push(future.await);
        }
        return outputs;
    }
    let count = futures.len();
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    let woken = Arc::new(Woken {
        indexes: Mutex::new((0..count).collect()),
        parent: Mutex::new(None),
    });
    let wakers: Vec<Waker> = (0..count)
        .map(|index| {
            Waker::from(Arc::new(ChildWaker {
                index,
                woken: Arc::clone(&woken),
            }))
        })
        .collect();
    let mut done = 0;
    std::future::poll_fn(|cx| {
        // Registered before the queue is taken: a wake-up after that polls us again.
        *lock(&woken.parent) = Some(cx.waker().clone());
        let due = std::mem::take(&mut *lock(&woken.indexes));
        for index in due {
            let (Some(future), Some(output), Some(waker)) = (
                futures.get_mut(index),
                outputs.get_mut(index),
                wakers.get(index),
            ) else {
                continue;
            };
            if output.is_some() {
                continue;
            }
            if let Poll::Ready(value) = future.as_mut().poll(&mut Context::from_waker(waker)) {
                *output = Some(value);
                done += 1;
            }
        }
        if done == count {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// The futures woken since the last poll, and the task to wake for them.
struct Woken {
    indexes: Mutex<Vec<usize>>,
    parent: Mutex<Option<Waker>>,
}

struct ChildWaker {
    index: usize,
    woken: Arc<Woken>,
}

impl Wake for ChildWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        lock(&self.woken.indexes).push(self.index);
        if let Some(parent) = lock(&self.woken.parent).as_ref() {
            parent.wake_by_ref();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::join_all;

    #[tokio::test(flavor = "current_thread")]
    async fn every_output_in_order_whatever_finishes_first() {
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..100)
            .map(|_| tokio::sync::oneshot::channel::<usize>())
            .unzip();
        let joined = tokio::spawn(join_all(
            receivers
                .into_iter()
                .map(|r| async move { r.await.unwrap_or(usize::MAX) })
                .collect(),
        ));
        // Answered last to first, each after a yield, so the futures finish out of order.
        for (index, sender) in senders.into_iter().enumerate().rev() {
            tokio::task::yield_now().await;
            let _ = sender.send(index);
        }
        let outputs = joined.await.unwrap_or_default();
        assert_eq!(outputs, (0..100).collect::<Vec<_>>());
        assert!(
            join_all(Vec::<std::future::Ready<u8>>::new())
                .await
                .is_empty()
        );
    }
}
