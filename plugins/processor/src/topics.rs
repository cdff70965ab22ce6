//! The topics a processor needs: its input and outputs (and dead-letter topic) must exist;
//! its changelog is created with the input's partition count, compacted.

use std::collections::BTreeMap;

use fjord_engine::Engine;

use crate::error::{Error, Result};
use crate::spec::{ErrorPolicy, ProcessorSpec};

/// Checks the topics `spec` names and creates its changelog when missing.
pub async fn prepare(engine: &Engine, spec: &ProcessorSpec) -> Result<()> {
    let input = engine.require_topic(&spec.input)?;
    if spec.outputs.is_empty() {
        return Err(Error::NoOutput);
    }
    for output in &spec.outputs {
        engine.require_topic(output)?;
    }
    if let ErrorPolicy::DeadLetter { topic } = &spec.error_policy {
        engine.require_topic(topic)?;
    }
    let changelog = spec.changelog_topic();
    match engine.topic(&changelog) {
        Some(existing) if existing.partition_count() >= input.partition_count() => Ok(()),
        Some(existing) => {
            let count = input.partition_count();
            engine.create_partitions(&changelog, count, false).await?;
            tracing::info!(topic = %changelog, from = existing.partition_count(), to = count, "changelog partitions added");
            Ok(())
        }
        None => {
            let overrides = BTreeMap::from([("cleanup.policy".to_owned(), "compact".to_owned())]);
            engine
                .create_topic(&changelog, input.partition_count(), overrides, false)
                .await?;
            Ok(())
        }
    }
}
