//! The label sets of hookwarden's series, and the closed sets of label values that the
//! series of each configured hook start with at zero (`ALL`).

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HookStatus {
    pub hook: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HookLabel {
    pub hook: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct SinkLabel {
    pub hook: String,
    pub sink: String,
}

/// Why a request was turned away (label `reason` of `hookwarden_rejections_total`).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Reason {
    unauthorized,
    ip_not_allowed,
    unsupported_media_type,
    payload_too_large,
    bad_request,
    store_unavailable,
    store_full,
    store_disk_low,
    /// The store did not commit a delivery in time (503, Okta retries).
    store_slow,
    timeout,
    not_found,
    method_not_allowed,
}

impl Reason {
    /// Every reason: each hook's rejections start at zero for each.
    pub const ALL: [Reason; 12] = [
        Reason::unauthorized,
        Reason::ip_not_allowed,
        Reason::unsupported_media_type,
        Reason::payload_too_large,
        Reason::bad_request,
        Reason::store_unavailable,
        Reason::store_full,
        Reason::store_disk_low,
        Reason::store_slow,
        Reason::timeout,
        Reason::not_found,
        Reason::method_not_allowed,
    ];
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectionLabel {
    pub hook: String,
    pub reason: Reason,
}

/// How an inline hook call ended (label `outcome` of `hookwarden_inline_calls_total`).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum InlineOutcome {
    /// The handler's answer carried commands.
    commands,
    /// The handler refused, in its type's terms (an `error`; DENY; UNVERIFIED; FAILED),
    /// and its answer went as written.
    refusal,
    /// The handler answered `{}` (Okta's default action).
    empty,
    /// The same answer as before, repeated to Okta's retry of one `eventId`.
    repeated,
    /// The fallback was sent: the handler missed the budget.
    fallback_deadline,
    /// The fallback was sent: the handler failed.
    fallback_handler_error,
    /// The fallback was sent: the handler's answer broke the contract.
    fallback_invalid,
    /// The handler refused, in an answer that broke the contract: its refusal was sent
    /// rebuilt in the type's refusal form (texts cut, what Okta would reject left out).
    refusal_repaired,
    /// The handler refused, in an answer that could not be rebuilt: the closed fallback
    /// was sent, whatever the hook's `fallback` says.
    fallback_refusal,
}

impl InlineOutcome {
    /// Every outcome: each inline hook's calls start at zero for each.
    pub const ALL: [InlineOutcome; 9] = [
        InlineOutcome::commands,
        InlineOutcome::refusal,
        InlineOutcome::empty,
        InlineOutcome::repeated,
        InlineOutcome::fallback_deadline,
        InlineOutcome::fallback_handler_error,
        InlineOutcome::fallback_invalid,
        InlineOutcome::refusal_repaired,
        InlineOutcome::fallback_refusal,
    ];
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InlineLabel {
    pub hook: String,
    pub outcome: InlineOutcome,
}

/// How one delivery attempt to a sink ended (label `outcome` of
/// `hookwarden_sink_attempt_seconds`).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum AttemptOutcome {
    /// The sink took the event (or, after a crash, already held it).
    delivered,
    /// The sink failed, or gave no outcome in time: retried or dead-lettered.
    failed,
}

impl AttemptOutcome {
    /// Every outcome: each sink's attempt histogram starts at zero for each.
    pub const ALL: [AttemptOutcome; 2] = [AttemptOutcome::delivered, AttemptOutcome::failed];
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabel {
    pub hook: String,
    pub sink: String,
    pub outcome: AttemptOutcome,
}

/// Why a reconciliation pass of a hook failed (see `ReconcileError::kind`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileErrorLabel {
    pub hook: String,
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The matches are exhaustive: a new variant does not compile here until it is
    /// listed, a reminder to list it in its `ALL` too, whose lengths are checked.
    #[test]
    fn every_variant_is_in_all() {
        let reasons = Reason::ALL.map(|r| match r {
            Reason::unauthorized
            | Reason::ip_not_allowed
            | Reason::unsupported_media_type
            | Reason::payload_too_large
            | Reason::bad_request
            | Reason::store_unavailable
            | Reason::store_full
            | Reason::store_disk_low
            | Reason::store_slow
            | Reason::timeout
            | Reason::not_found
            | Reason::method_not_allowed => format!("{r:?}"),
        });
        let outcomes = InlineOutcome::ALL.map(|o| match o {
            InlineOutcome::commands
            | InlineOutcome::refusal
            | InlineOutcome::empty
            | InlineOutcome::repeated
            | InlineOutcome::fallback_deadline
            | InlineOutcome::fallback_handler_error
            | InlineOutcome::fallback_invalid
            | InlineOutcome::refusal_repaired
            | InlineOutcome::fallback_refusal => format!("{o:?}"),
        });
        let attempts = AttemptOutcome::ALL.map(|o| match o {
            AttemptOutcome::delivered | AttemptOutcome::failed => format!("{o:?}"),
        });
        for names in [&reasons[..], &outcomes[..], &attempts[..]] {
            let distinct: std::collections::BTreeSet<_> = names.iter().collect();
            assert_eq!(distinct.len(), names.len(), "listed twice: {names:?}");
        }
    }
}
