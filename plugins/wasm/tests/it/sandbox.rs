//! A guest that misbehaves is contained: each limit stops it with a clear error, and a new
//! instance carries on with the state of the last commit.

use fjord_processor::{CallError, Transform};
use fjord_wasm::{Error, Runtime, RuntimeConfig};

use crate::{call, record, start, test_limits};

#[test]
fn an_endless_loop_runs_out_of_fuel_and_a_new_instance_carries_on() {
    let limits = test_limits();
    let mut looping = start("sandbox-guest", &[("mode", "loop")], limits).expect("starts");
    let error = looping
        .process(vec![record(0, None, "x")], call(0))
        .expect_err("never returns");
    assert_eq!(
        error,
        CallError::OutOfFuel {
            fuel: limits.fuel_per_call
        }
    );
    assert_eq!(looping.fuel_consumed(), limits.fuel_per_call);

    let state = Box::new(looping).into_state();
    let mut echo = crate::module("sandbox-guest")
        .instantiate(&[("mode".to_owned(), "echo".to_owned())], limits, state)
        .expect("starts");
    let output = echo
        .process(vec![record(0, None, "x")], call(0))
        .expect("echoes");
    assert_eq!(output.outputs.len(), 1);
    assert!(echo.fuel_consumed() > 0 && echo.fuel_consumed() < limits.fuel_per_call);
}

#[test]
fn unbounded_allocation_stops_at_the_memory_limit() {
    let limits = test_limits();
    let mut hoarder = start("sandbox-guest", &[("mode", "alloc")], limits).expect("starts");
    let error = hoarder
        .process(vec![record(0, None, "x")], call(0))
        .expect_err("cannot allocate forever");
    assert_eq!(
        error,
        CallError::OutOfMemory {
            memory_bytes_max: limits.memory_bytes
        }
    );
}

#[test]
fn a_panic_traps_and_the_batch_is_rolled_back_from_the_state() {
    let limits = test_limits();
    let mut counter = start("sandbox-guest", &[("mode", "count")], limits).expect("starts");
    let first = counter
        .process(
            vec![record(0, Some("k"), "a"), record(1, Some("k"), "b")],
            call(0),
        )
        .expect("counts");
    assert_eq!(
        first.outputs.last().and_then(|output| output.value.clone()),
        Some(b"2".to_vec())
    );
    assert_eq!(
        counter.state().take_changes().len(),
        1,
        "one key written: the batch commits"
    );

    let error = counter.process(
        vec![record(2, Some("k"), "c"), record(3, Some("k"), "panic")],
        call(0),
    );
    let Err(CallError::Trap { message }) = error else {
        panic!("expected a trap, got {error:?}")
    };
    assert!(message.contains("unreachable"), "{message}");

    let mut state = Box::new(counter).into_state();
    state.rollback();
    assert_eq!(
        state.get(b"k"),
        Some(&2_u64.to_be_bytes()[..]),
        "the failed batch's writes are undone"
    );
    let mut again = crate::module("sandbox-guest")
        .instantiate(&[("mode".to_owned(), "count".to_owned())], limits, state)
        .expect("starts");
    let retried = again
        .process(vec![record(2, Some("k"), "c")], call(0))
        .expect("counts");
    assert_eq!(retried.outputs[0].value, Some(b"3".to_vec()));
}

#[test]
fn outputs_past_the_limits_are_refused() {
    let mut limits = test_limits();
    limits.output_records_per_call = 5;
    limits.output_bytes_per_call = 4 * 1024;
    let mut many = start(
        "sandbox-guest",
        &[("mode", "oversize"), ("count", "6"), ("bytes", "1")],
        limits,
    )
    .expect("starts");
    let error = many
        .process(vec![record(0, None, "x")], call(0))
        .expect_err("six outputs");
    assert_eq!(
        error,
        CallError::TooManyOutputs {
            count: 6,
            count_max: 5
        }
    );

    let mut large = start(
        "sandbox-guest",
        &[("mode", "oversize"), ("count", "5"), ("bytes", "1024")],
        limits,
    )
    .expect("starts");
    let error = large
        .process(vec![record(0, None, "x")], call(0))
        .expect_err("5 KiB");
    assert_eq!(
        error,
        CallError::OutputTooLarge {
            size_bytes: 5 * 1024,
            size_bytes_max: 4 * 1024
        }
    );
}

#[test]
fn a_full_state_store_fails_the_record_not_the_instance() {
    let mut limits = test_limits();
    limits.state.size_bytes_max = 1024 * 1024;
    let mut bomb = start("sandbox-guest", &[("mode", "state-bomb")], limits).expect("starts");
    let output = bomb
        .process(vec![record(0, None, "x")], call(0))
        .expect("the guest sees the refusal");
    assert_eq!(output.failures.len(), 1);
    assert_eq!(output.failures[0].index, 0);
    assert!(
        output.failures[0]
            .message
            .contains("would pass its limit of 1048576 bytes"),
        "{:?}",
        output.failures
    );
    assert!(bomb.state().size_bytes() <= limits.state.size_bytes_max);
}

#[test]
fn a_log_flood_is_capped_per_call_and_counted() {
    let mut flood =
        start("sandbox-guest", &[("mode", "log-flood")], test_limits()).expect("starts");
    flood
        .process(vec![record(0, None, "x")], call(0))
        .expect("logs");
    let (lines, dropped) = flood.take_logs();
    assert_eq!(lines.len(), fjord_processor::limits::LOG_LINES_PER_CALL_MAX);
    assert_eq!(lines[0].message, "line 0 of offset 0");
    assert_eq!(dropped, 1_000 - lines.len() as u64);
}

#[test]
fn a_refused_configuration_is_reported_with_the_guests_message() {
    let error = start("sandbox-guest", &[("mode", "refuse")], test_limits()).expect_err("refuses");
    assert_eq!(
        error.to_string(),
        "the processor refused its configuration: refused on purpose"
    );
    let error = start("sandbox-guest", &[], test_limits()).expect_err("no mode");
    assert_eq!(
        error.to_string(),
        "the processor refused its configuration: missing setting `mode`"
    );
}

#[test]
fn what_is_not_a_processor_component_is_refused_by_name() {
    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    assert!(matches!(
        runtime.compile(b"\0asm\x01\x00\x00\x00"),
        Err(Error::NotAComponent)
    ));
    assert!(matches!(
        runtime.compile(b"#!/bin/sh\necho hi\n"),
        Err(Error::NotWasm)
    ));
    let component = guest_harness::component("json-filter");
    let truncated = &component[..component.len() / 2];
    assert!(matches!(
        runtime.compile(truncated),
        Err(Error::Compile { .. })
    ));

    let newer = runtime
        .compile(&guest_harness::component("newer-world-guest"))
        .expect_err("a newer world");
    assert!(
        matches!(&newer, Error::UnsupportedWorld { import, .. } if import == "fjord:processor/logging@0.2.0"),
        "{newer}"
    );
    let foreign = runtime
        .compile(&guest_harness::component("foreign-import-guest"))
        .expect_err("a foreign import");
    assert!(
        matches!(&foreign, Error::UnknownImport { import } if import == "fjord:secrets/vault@0.1.0"),
        "{foreign}"
    );

    let small = Runtime::new(RuntimeConfig {
        module_bytes_max: 1024,
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let too_large = small.compile(&component).expect_err("larger than 1 KiB");
    assert!(matches!(
        too_large,
        Error::ModuleTooLarge {
            size_bytes_max: 1024,
            ..
        }
    ));
}

#[test]
fn clocks_and_random_numbers_repeat_for_the_same_call() {
    let limits = test_limits();
    let run = |time_ms: i64, seed: u64| {
        let mut instance = start("sandbox-guest", &[("mode", "entropy")], limits).expect("starts");
        let context = fjord_processor::CallContext {
            time_ms,
            random_seed: seed,
        };
        let output = instance
            .process(vec![record(7, None, "x")], context)
            .expect("runs");
        String::from_utf8(output.outputs[0].value.clone().unwrap_or_default()).expect("UTF-8")
    };
    let first = run(1_700_000_000_000, 42);
    assert_eq!(
        first,
        run(1_700_000_000_000, 42),
        "a replay sees the same time and random numbers"
    );
    assert!(first.starts_with("1700000000000 "), "{first}");
    assert_ne!(
        first,
        run(1_700_000_000_000, 43),
        "another seed, other random numbers"
    );
}
