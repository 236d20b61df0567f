//! A durable call's arguments, both ways: stored as a JSON object keyed by the parameters'
//! names ([`ArgsOut`]), read back by name by the worker ([`ArgsIn`]), each through
//! [`DurableArg`] (serde's `Serialize + DeserializeOwned`).

use core::fmt;

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
