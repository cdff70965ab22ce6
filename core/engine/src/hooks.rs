//! Points in slow background work where a test can hold the engine, to show what keeps
//! going meanwhile. Without a hook installed (always, outside tests) they cost one branch.

use std::sync::Arc;

use crate::Result;
use crate::blocking::BlockingPool;

/// Where a hook is called from. Hooks run on the engine's blocking pool, never on an async
/// worker, so a hook that blocks holds up only the work it sits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HookPoint {
    /// A compaction round was planned and is about to run, outside the partition's lock.
    CompactionRunning,
    /// A new topic's file is written and its partitions' logs are about to be created.
    TopicCreating,
    /// A transaction's `PrepareCommit` or `PrepareAbort` is durable and its markers are
    /// about to be written: a crash here leaves a transaction for start-up to complete.
    MarkersWriting,
}

type HookFn = dyn Fn(HookPoint) + Send + Sync;

/// An optional callback at each [`HookPoint`].
#[derive(Clone, Default)]
pub struct Hooks {
    hook: Option<Arc<HookFn>>,
}

impl Hooks {
    /// Calls `hook` at every hook point.
    pub fn new(hook: impl Fn(HookPoint) + Send + Sync + 'static) -> Self {
        Self {
            hook: Some(Arc::new(hook)),
        }
    }

    pub(crate) fn reached(&self, point: HookPoint) {
        if let Some(hook) = &self.hook {
            hook(point);
        }
    }

    /// [`Self::reached`] from async code: the hook runs on `pool`. Without a hook installed
    /// nothing is sent to the pool.
    pub(crate) async fn reached_async(&self, point: HookPoint, pool: &BlockingPool) -> Result<()> {
        let Some(hook) = self.hook.clone() else {
            return Ok(());
        };
        pool.run(move || {
            hook(point);
            Ok(())
        })
        .await
    }
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("installed", &self.hook.is_some())
            .finish()
    }
}
