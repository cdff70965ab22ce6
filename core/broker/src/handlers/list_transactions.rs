//! ListTransactions: transactional ids, filtered by state, producer id, how long their
//! transaction has been open (v1) and a regular expression on the id (v2, KIP-1152).

use kafka_protocol::messages::list_transactions_response::TransactionState as Listed;
use kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use super::Context;
use crate::codes::Refusal;
use crate::limits::REGEX_BYTES_MAX;
use fjord_engine::TransactionState;

/// Unknown state names echoed back, at most (a client names a few).
const UNKNOWN_STATES_MAX: usize = 64;

pub(crate) fn handle(
    context: &Context,
    request: ListTransactionsRequest,
) -> ListTransactionsResponse {
    // At most the eight states, each once; unknown names each once.
    let mut states = Vec::new();
    let mut unknown = Vec::new();
    for name in &request.state_filters {
        match TransactionState::from_name(name) {
            Some(state) if !states.contains(&state) => states.push(state),
            Some(_) => {}
            None if !unknown.contains(name) && unknown.len() < UNKNOWN_STATES_MAX => {
                unknown.push(name.clone());
            }
            None => {}
        }
    }
    let pattern = match request
        .transactional_id_pattern
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        None => None,
        Some(pattern) => match compile(pattern) {
            Some(regex) => Some(regex),
            None => {
                return ListTransactionsResponse::default()
                    .with_error_code(Refusal::InvalidRegularExpression.code());
            }
        },
    };
    let producer_ids: Vec<fjord_engine::ProducerId> = request
        .producer_id_filters
        .iter()
        .map(|p| fjord_engine::ProducerId(p.0))
        .collect();
    let min_open_ms = (request.duration_filter >= 0).then_some(request.duration_filter);
    // Only a filter naming nothing but unknown states leaves nothing to list.
    let listed = if states.is_empty() && !unknown.is_empty() {
        Vec::new()
    } else {
        context
            .engine()
            .transactions()
            .list(&states, &producer_ids, min_open_ms)
    };
    let transactions = listed
        .into_iter()
        .filter(|m| {
            pattern
                .as_ref()
                .is_none_or(|p| p.is_match(&m.transactional_id))
        })
        .map(|m| {
            Listed::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(m.transactional_id)))
                .with_producer_id(ProducerId(m.producer_id.0))
                .with_transaction_state(StrBytes::from_static_str(m.state.name()))
        })
        .collect();
    ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown)
        .with_transaction_states(transactions)
}

/// The id pattern, matched whole as Java's `Pattern.matches` does; `None` if it is not a
/// valid expression or would compile too large.
fn compile(pattern: &str) -> Option<regex::Regex> {
    if pattern.len() > REGEX_BYTES_MAX {
        return None;
    }
    // Valid on its own first: `a)|(b` would otherwise close the anchoring group early.
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_BYTES_MAX * 64)
        .dfa_size_limit(REGEX_BYTES_MAX * 64)
        .build()
        .ok()?;
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(REGEX_BYTES_MAX * 64)
        .dfa_size_limit(REGEX_BYTES_MAX * 64)
        .build()
        .ok()
}
