//! What a task tells `fjord processor list` and `describe`.

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    Starting,
    Running,
    /// An error the task retries with backoff (the engine was busy, a commit failed).
    Retrying,
    /// Stopped by the processor's stop policy, or unable to start; see `last_error`.
    Failed,
    Stopped,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Starting => "starting",
            TaskState::Running => "running",
            TaskState::Retrying => "retrying",
            TaskState::Failed => "failed",
            TaskState::Stopped => "stopped",
        }
    }
}

/// One task's counters and position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskReport {
    pub partition: i32,
    pub state: TaskState,
    /// The input position of the last commit.
    pub committed_offset: i64,
    /// The input partition's last stable offset when last read: lag is the difference.
    pub log_end_offset: i64,
    pub records_in: u64,
    pub records_out: u64,
    pub errors: u64,
    pub last_error: Option<String>,
}

impl TaskReport {
    pub fn new(partition: i32) -> TaskReport {
        TaskReport {
            partition,
            state: TaskState::Starting,
            committed_offset: 0,
            log_end_offset: 0,
            records_in: 0,
            records_out: 0,
            errors: 0,
            last_error: None,
        }
    }

    /// The task is in `state` because of `error`.
    pub fn set_error(&mut self, state: TaskState, error: &impl std::fmt::Display) {
        self.state = state;
        self.last_error = Some(error.to_string());
    }

    pub fn lag(&self) -> i64 {
        (self.log_end_offset - self.committed_offset).max(0)
    }
}
