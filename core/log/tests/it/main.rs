//! Integration tests for fjord-log, one binary (see the style guide).

mod basics;
mod compaction;
mod corruption;
mod fetch;
mod idempotence;
mod model;
mod rules;
mod scale;
mod support;
mod transaction_compaction;
mod transactions;
