use fjord_record::{BatchBuilder, Compression, Error, NewRecord, batches, validate_batch};
use proptest::prelude::*;

fn one_batch(codec: Compression) -> Vec<u8> {
    let mut builder = BatchBuilder::new(codec);
    for i in 0..5u8 {
        builder
            .push(&NewRecord {
                timestamp_ms: 7,
                key: Some(&[i]),
                value: Some(&[i; 64]),
                headers: &[(b"h", Some(b"v"))],
            })
            .expect("small batch");
    }
    builder.build().expect("small batch")
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        for batch in batches(&bytes).flatten() {
            let _ = validate_batch(&batch, 1 << 20);
        }
    }

    #[test]
    fn any_flipped_byte_after_the_epoch_is_caught(codec in proptest::sample::select(Compression::ALL.to_vec()), at in 16usize..200, bit in 0u8..8) {
        let mut bytes = one_batch(codec);
        let at = at.min(bytes.len() - 1);
        bytes[at] ^= 1 << bit;
        let verdict = batches(&bytes).next().map(|b| b.and_then(|b| validate_batch(&b, 1 << 20)));
        prop_assert!(!matches!(verdict, Some(Ok(()))), "flip at {} went unnoticed", at);
    }

    #[test]
    fn mutated_records_with_fixed_crc_never_panic(at in 61usize..400, value: u8) {
        let mut bytes = one_batch(Compression::None);
        let at = at.min(bytes.len() - 1);
        bytes[at] = value;
        let crc = crc32c::crc32c(&bytes[21..]);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        if let Some(Ok(batch)) = batches(&bytes).next() {
            let _ = validate_batch(&batch, 1 << 20);
        }
    }
}

#[test]
fn torn_tail_is_reported_where_good_data_ends() {
    let mut two = one_batch(Compression::None);
    let first_len = two.len();
    two.extend_from_slice(&one_batch(Compression::None));
    two.truncate(two.len() - 10);
    let results: Vec<_> = batches(&two).collect();
    assert_eq!(results.len(), 2);
    assert!(results[0].is_ok());
    match &results[1] {
        Err(Error::Truncated { position, .. }) => assert_eq!(*position, first_len),
        other => panic!("expected a truncation, got {other:?}"),
    }
}

#[test]
fn old_magic_and_bad_lengths_are_typed_errors() {
    let mut bytes = one_batch(Compression::None);
    bytes[16] = 1;
    assert!(matches!(
        batches(&bytes).next(),
        Some(Err(Error::UnsupportedMagic { magic: 1, .. }))
    ));
    let mut bytes = one_batch(Compression::None);
    bytes[8..12].copy_from_slice(&(-5i32).to_be_bytes());
    assert!(matches!(
        batches(&bytes).next(),
        Some(Err(Error::InvalidLength { .. }))
    ));
}

#[test]
fn decompression_bomb_is_refused() -> anyhow::Result<()> {
    let mut builder = BatchBuilder::new(Compression::Zstd);
    let zeros = vec![0u8; 4 << 20];
    builder.push(&NewRecord {
        timestamp_ms: 0,
        key: None,
        value: Some(&zeros),
        headers: &[],
    })?;
    let bytes = builder.build()?;
    assert!(
        bytes.len() < 64 * 1024,
        "zeros compress well: {}",
        bytes.len()
    );
    let batch = batches(&bytes).next().expect("one batch")?;
    assert!(matches!(
        validate_batch(&batch, 1 << 20),
        Err(Error::DecompressedTooLarge { .. })
    ));
    Ok(())
}
