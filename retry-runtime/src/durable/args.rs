//! A durable call's arguments, both ways: stored as a JSON object keyed by the parameters'
//! names ([`ArgsOut`]), read back by name by the worker ([`ArgsIn`]), each through
//! [`DurableArg`] (serde's `Serialize + DeserializeOwned`).

use core::fmt;
use core::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::durable::StoreError;

/// The arguments of a call being stored, as a JSON object keyed by the parameters' names
/// (readable in the store).
#[derive(Debug, Default)]
pub struct ArgsOut(serde_json::Map<String, serde_json::Value>);

impl ArgsOut {
    /// No arguments yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the argument `name`.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] when the value does not serialize.
    pub fn put<T: DurableArg>(&mut self, name: &str, value: &T) -> Result<(), StoreError> {
        let v = value.to_json().map_err(|e| {
            StoreError::Invalid(format!("argument `{name}` does not serialize: {e}"))
        })?;
        self.0.insert(name.to_owned(), v);
        Ok(())
    }

    /// The arguments so far, as a JSON object (a `unique = ...` key is made from it).
    pub(crate) fn as_map(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.0
    }

    pub(crate) fn into_json(self) -> String {
        serde_json::Value::Object(self.0).to_string()
    }
}

/// An argument of a durable function: stored as JSON, read back by a worker.
#[diagnostic::on_unimplemented(
    message = "durable calls store their arguments as JSON, so each argument must implement serde's `Serialize` and `DeserializeOwned`; `{Self}` does not",
    label = "not `Serialize + DeserializeOwned`",
    note = "derive them: `#[derive(serde::Serialize, serde::Deserialize)]`, or use `mode = \"background\"`"
)]
pub trait DurableArg: Sized {
    /// The value as JSON.
    ///
    /// # Errors
    /// When it does not serialize.
    fn to_json(&self) -> serde_json::Result<serde_json::Value>;
    /// The value from JSON.
    ///
    /// # Errors
    /// When the JSON does not decode as this type.
    fn from_json(v: serde_json::Value) -> serde_json::Result<Self>;
}

impl<T: Serialize + DeserializeOwned> DurableArg for T {
    fn to_json(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::to_value(self)
    }
    fn from_json(v: serde_json::Value) -> serde_json::Result<Self> {
        serde_json::from_value(v)
    }
}

// The expansion checks each argument once, at its type, and stores and reads it through the
// witness the check picks: `(&Probe::<T>::new()).witness()` finds [`Arg<T>`] when `T` is
// `Serialize + DeserializeOwned` and [`NotStored<T>`] otherwise (by autoref, as the error
// format is picked in `hooks.rs`). Only `checked` requires the witness to be an `Arg<T>`:
// one error, at the argument's type, however many of the two traits are missing. A
// `NotStored` stores and reads like an `Arg`, so its later uses report nothing more.

/// The argument type `T`, to pick its witness.
pub struct Probe<T>(PhantomData<fn() -> T>);

impl<T> Default for Probe<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Probe<T> {
    /// The probe.
    #[must_use]
    pub const fn new() -> Self {
        Self(PhantomData)
    }
}

/// `T` can be stored: its witness is an `Arg<T>`.
pub trait ViaSerde<T> {
    /// The witness.
    fn witness(&self) -> Arg<T> {
        Arg(PhantomData)
    }
}

impl<T: Serialize + DeserializeOwned> ViaSerde<T> for Probe<T> {}

/// `T` cannot be stored: its witness is a `NotStored<T>`.
pub trait ViaNothing<T> {
    /// The witness.
    fn witness(&self) -> NotStored<T> {
        NotStored(PhantomData)
    }
}

impl<T> ViaNothing<T> for &Probe<T> {}

/// The witness that an argument of type `T` can be stored and read back.
pub struct Arg<T>(PhantomData<fn() -> T>);

/// The witness of an argument that cannot be stored (reported by [`checked`]).
pub struct NotStored<T>(PhantomData<fn() -> T>);

/// A witness that says `T` can be stored.
#[diagnostic::on_unimplemented(
    message = "durable calls store their arguments as JSON, so each argument must implement serde's `Serialize` and `DeserializeOwned`; `{T}` does not",
    label = "not `Serialize + DeserializeOwned`",
    note = "derive them: `#[derive(serde::Serialize, serde::Deserialize)]`, or use `mode = \"background\"`"
)]
pub trait Stores<T> {}

#[diagnostic::do_not_recommend] // no hint that names the private witness
impl<T> Stores<T> for Arg<T> {}

/// Checks a witness (the expansion spans the call on the argument's type).
#[inline]
pub fn checked<T, W: Stores<T>>(w: W) -> W {
    w
}

#[allow(clippy::unused_self)] // the receiver is the witness
impl<T: DurableArg> Arg<T> {
    /// Adds the argument `name` to `out`.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] when the value does not serialize.
    pub fn put(self, out: &mut ArgsOut, name: &str, value: &T) -> Result<(), StoreError> {
        out.put(name, value)
    }

    /// Takes the argument `name` from `args`.
    ///
    /// # Errors
    /// When it is missing or does not decode as a `T`.
    pub fn take(self, args: &mut ArgsIn, name: &str) -> Result<T, ArgsError> {
        args.take(name)
    }
}

#[allow(clippy::unused_self)] // the receiver is the witness
impl<T> NotStored<T> {
    /// Never runs: the program did not compile.
    ///
    /// # Errors
    /// Never.
    pub fn put(self, _: &mut ArgsOut, _: &str, _: &T) -> Result<(), StoreError> {
        unreachable!("a durable argument that cannot be stored is a compile error")
    }

    /// Never runs: the program did not compile.
    ///
    /// # Errors
    /// Never.
    pub fn take(self, _: &mut ArgsIn, _: &str) -> Result<T, ArgsError> {
        unreachable!("a durable argument that cannot be stored is a compile error")
    }
}

/// The stored arguments of a call, read back by name.
#[derive(Debug)]
pub struct ArgsIn(serde_json::Map<String, serde_json::Value>);

/// Stored arguments that do not fit the function any more.
#[derive(Debug)]
pub struct ArgsError(String);

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl ArgsIn {
    pub(crate) fn parse(json: &str) -> Result<Self, ArgsError> {
        match serde_json::from_str(json) {
            Ok(serde_json::Value::Object(m)) => Ok(Self(m)),
            Ok(_) => Err(ArgsError(
                "the stored arguments are not a JSON object".into(),
            )),
            Err(e) => Err(ArgsError(format!("the stored arguments are not JSON: {e}"))),
        }
    }

    /// Takes the argument `name`.
    ///
    /// # Errors
    /// When it is missing or does not decode as a `T`.
    pub fn take<T: DurableArg>(&mut self, name: &str) -> Result<T, ArgsError> {
        let v = self
            .0
            .remove(name)
            .ok_or_else(|| ArgsError(format!("the stored arguments have no `{name}`")))?;
        T::from_json(v)
            .map_err(|e| ArgsError(format!("the stored argument `{name}` does not decode: {e}")))
    }
}
