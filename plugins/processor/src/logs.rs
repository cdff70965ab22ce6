//! A processor's recent log lines (its own, through the `logging` import, and its tasks'
//! errors), for `fjord processor logs NAME`. Bounded: the oldest lines go first.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::transform::LogLevel;

/// Lines kept per processor.
const LINES_MAX: usize = 1_000;

/// One line of a processor's log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogEntry {
    /// Wall-clock time the host received it.
    pub time_ms: i64,
    pub partition: i32,
    pub level: &'static str,
    pub message: String,
}

/// The last `LINES_MAX` lines of a processor.
#[derive(Debug, Default)]
pub struct LogBuffer {
    lines: Mutex<VecDeque<LogEntry>>,
}

impl LogBuffer {
    pub fn push(&self, time_ms: i64, partition: i32, level: LogLevel, message: String) {
        let level = match level {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        };
        if let Ok(mut lines) = self.lines.lock() {
            if lines.len() == LINES_MAX {
                lines.pop_front();
            }
            lines.push_back(LogEntry {
                time_ms,
                partition,
                level,
                message,
            });
        }
    }

    /// The last `count` lines, oldest first.
    pub fn tail(&self, count: usize) -> Vec<LogEntry> {
        match self.lines.lock() {
            Ok(lines) => lines
                .iter()
                .skip(lines.len().saturating_sub(count))
                .cloned()
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}
