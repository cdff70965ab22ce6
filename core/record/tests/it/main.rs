//! Integration tests for fjord-record: round trips through our builder and an independent
//! encoder (kafka-protocol), and hostile input.

mod cross_codec;
mod hostile;
mod round_trip;
