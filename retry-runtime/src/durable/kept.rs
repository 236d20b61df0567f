//! A durable function's `Ok` value, kept in the store as JSON when its type can be: the
//! worker writes it with the success ([`Backend::complete_with_result`]), and
//! [`Store::wait_for`] reads it back.
//!
//! Durable functions whose `Ok` type is not `Serialize` still compile and run, as they did
//! before results were kept: they store no result (NULL). The expansion picks, by autoref as
//! for the arguments (`args.rs`), `(&Probe::<T>::new()).keeper()`: a [`Keep<T>`] that
//! serializes when `T: Serialize` ([`KeepViaSerde`]), one that keeps nothing otherwise
//! ([`KeepNothing`]).
//!
//! [`Backend::complete_with_result`]: super::Backend::complete_with_result
//! [`Store::wait_for`]: super::Store::wait_for

use serde::Serialize;

use super::args::Probe;
use crate::result::{RetryResult, Returns};

/// How a durable function's `Ok` value of type `T` is kept: as JSON text, or not at all.
pub struct Keep<T>(fn(&T) -> Option<String>);

impl<T> Clone for Keep<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Keep<T> {}

impl<T> Keep<T> {
    /// The value as stored: its JSON text, or `None` (not kept, `null` as for `()`, or a
    /// value that failed to serialize, which is logged).
    #[must_use]
    pub fn json(&self, value: &T) -> Option<String> {
        (self.0)(value)
    }

    /// Keeps nothing.
    #[must_use]
    pub fn nothing() -> Self {
        Keep(|_| None)
    }
}

impl<T: Serialize> Keep<T> {
    /// Keeps the value as JSON.
    #[must_use]
    pub fn serialized() -> Self {
        Keep(to_json::<T>)
    }
}

fn to_json<T: Serialize>(value: &T) -> Option<String> {
    match serde_json::to_string(value) {
        Ok(json) if json == "null" => None,
        Ok(json) => Some(json),
        Err(e) => {
            tracing::warn!(
                target: "retry_runtime::durable",
                error = %e,
                "the durable call's result does not serialize; it is not kept",
            );
            None
        }
    }
}

/// The probe of a function's `Ok` type, from its return type's marker.
#[must_use]
pub fn ok_probe<R: RetryResult>(_: Returns<R>) -> Probe<R::Ok> {
    Probe::new()
}

/// The `Ok` type is `Serialize`: kept.
pub trait KeepViaSerde<T> {
    /// The keeper.
    fn keeper(&self) -> Keep<T>;
}

impl<T: Serialize> KeepViaSerde<T> for Probe<T> {
    fn keeper(&self) -> Keep<T> {
        Keep::serialized()
    }
}

/// Any other `Ok` type: not kept (the stored result is NULL).
pub trait KeepNothing<T> {
    /// The keeper.
    fn keeper(&self) -> Keep<T> {
        Keep::nothing()
    }
}

impl<T> KeepNothing<T> for &Probe<T> {}

#[cfg(test)]
mod tests {
    use super::{Keep, KeepNothing as _, KeepViaSerde as _, Probe};

    struct Opaque;

    #[test]
    #[allow(clippy::needless_borrow)] // as the expansion writes it: the borrow picks the keeper
    fn serialize_types_are_kept_and_others_are_not() {
        let kept = (&Probe::<u32>::new()).keeper();
        assert_eq!(kept.json(&7), Some("7".to_owned()));
        let kept = (&Probe::<Vec<&str>>::new()).keeper();
        assert_eq!(kept.json(&vec!["a"]), Some(r#"["a"]"#.to_owned()));
        let unit = (&Probe::<()>::new()).keeper();
        assert_eq!(unit.json(&()), None, "`()` is stored as NULL");
        let opaque = (&Probe::<Opaque>::new()).keeper();
        assert_eq!(opaque.json(&Opaque), None);
        assert_eq!(Keep::<u8>::nothing().json(&1), None);
    }
}
