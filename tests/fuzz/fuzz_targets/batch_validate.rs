//! Any bytes as producer batches: validation (lengths, CRC, every record, decompression
//! under a limit) must return, never panic; an accepted batch must iterate cleanly.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for batch in fjord_record::batches(data) {
        let Ok(batch) = batch else { break };
        if fjord_record::validate_batch(&batch, 1 << 20).is_ok() {
            let records = batch
                .decompressed_record_bytes(1 << 20)
                .expect("validated batches decompress");
            for record in fjord_record::Records::new(&records) {
                record.expect("validated batches have valid records");
            }
        }
    }
});
