//! The engine's in-process API, driven directly with a manual clock: one test binary.

mod background;
mod consume;
mod contract;
mod data;
mod groups;
mod support;
mod transactions;
